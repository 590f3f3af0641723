//! Orphan calls: external calls made where no handler is in scope. Their
//! time counts toward no handler, which is right for a background job and a
//! bug for work a handler handed off without carrying itself along (a
//! `tokio::spawn` without `in_current_handler()`, a `spawn_blocking` without
//! `bind`). They are counted per dependency, and in debug builds the first
//! one of each call site is reported through `tracing`.
//!
//! The counters are split in [`SHARDS`] blocks, each on cache lines of its
//! own, one per thread (threads take them in turn): threads making orphan
//! calls to one dependency each add to their own line instead of passing
//! one back and forth. A count is the sum of its shards.

use crate::names::{self, DepId, OTHER_DEPENDENCY};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize};

/// How many dependencies [`OrphanCalls`] names; further ones share `other`.
const SLOTS: usize = 64;

/// How many blocks of counters the threads share out.
const SHARDS: usize = 8;

thread_local! {
    /// This thread's shard, taken on its first orphan call (`usize::MAX`
    /// until then).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// This thread's block of counters (the first, once the thread's locals
/// are gone).
#[inline]
fn shard() -> &'static Counters {
    let shard = SHARD
        .try_with(|shard| match shard.get() {
            usize::MAX => {
                let taken = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
                shard.set(taken);
                taken
            }
            taken => taken,
        })
        .unwrap_or(0);
    &COUNTS[shard % SHARDS]
}

/// A counter per numbered dependency, and one for `other`, starting on a
/// cache line of its own.
#[repr(align(64))]
struct Counters([AtomicU64; names::CAPACITY + 1]);

static COUNTS: [Counters; SHARDS] =
    [const { Counters([const { AtomicU64::new(0) }; names::CAPACITY + 1]) }; SHARDS];
/// Warned-once flags for calls made through the functions, which have no
/// call site of their own: once per dependency.
static WARNED: [AtomicBool; names::CAPACITY + 1] =
    [const { AtomicBool::new(false) }; names::CAPACITY + 1];

/// A dependency's counter and flag.
fn index(dep: DepId) -> usize {
    usize::from(dep.raw()).wrapping_sub(1).min(names::CAPACITY)
}

/// Not public API: a call site of `#[external_call]`: its dependency, the
/// dependency's number (looked up on the site's first call, not on every
/// one), and the function named in the warning about calls outside any
/// handler. The macro emits one `static` per annotated fn.
#[doc(hidden)]
#[derive(Debug)]
pub struct Site {
    function: &'static str,
    module: &'static str,
    dep: &'static str,
    warned: AtomicBool,
    /// `dep`'s number, 0 until the first call looks it up.
    id: AtomicU16,
}

impl Site {
    /// Not public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn new(function: &'static str, module: &'static str, dep: &'static str) -> Self {
        Self {
            function,
            module,
            dep,
            warned: AtomicBool::new(false),
            id: AtomicU16::new(0),
        }
    }

    /// The dependency every call through this site is billed to.
    #[inline]
    pub(crate) fn dep(&self) -> &'static str {
        self.dep
    }

    /// The number of this site's dependency.
    #[inline]
    pub(crate) fn dep_id(&self) -> DepId {
        // Acquire pairs with the Release below: a thread that sees the number
        // also sees the name table's entry that gave it out, whichever thread
        // looked it up.
        if let Some(id) = DepId::from_raw(self.id.load(Acquire)) {
            return id;
        }
        let id = DepId::of(self.dep);
        self.id.store(id.raw(), Release);
        id
    }
}

/// Counts an orphan call to `dep`, from an `#[external_call]` site or
/// through the functions.
#[inline]
pub(crate) fn record(dep: DepId, site: Option<&'static Site>) {
    shard().0[index(dep)].fetch_add(1, Relaxed);
    if cfg!(debug_assertions) {
        let flag = site.map_or(&WARNED[index(dep)], |site| &site.warned);
        if !flag.load(Relaxed) {
            warn_once(flag, dep, site);
        }
    }
}

#[cold]
fn warn_once(flag: &AtomicBool, dep: DepId, site: Option<&'static Site>) {
    if !flag.swap(true, Relaxed) {
        warn(dep.name(), site);
    }
}

fn warn(dep: &'static str, site: Option<&'static Site>) {
    let function = site.map_or("selftime::external", |s| s.function);
    let module = site.map_or("", |s| s.module);
    tracing::warn!(
        target: "selftime",
        dependency = dep,
        function,
        module,
        "external call made outside any handler: its time counts toward no handler \
         (reported once per call site, debug builds only). If a handler handed this work \
         off, carry the handler along: `selftime::spawn(fut)` or \
         `tokio::spawn(fut.in_current_handler())` for tasks, `selftime::spawn_blocking(f)` \
         or `spawn_blocking(selftime::bind(f))` for blocking work"
    );
}

/// How many external calls have been made outside any handler since the
/// process started, per dependency: see [orphan calls](crate#orphan-calls).
///
/// It names up to 64 dependencies, in the order of their process-wide
/// numbers (which follow their names' hashes, not the order of first use);
/// the counts of any further ones are added together under
/// [`OTHER_DEPENDENCY`].
///
/// # Examples
///
/// ```
/// #[selftime::external_call("cron_source")]
/// async fn poll_source() {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let before = selftime::orphan_calls().get("cron_source");
/// poll_source().await; // no handler in scope
/// assert_eq!(selftime::orphan_calls().get("cron_source"), before + 1);
/// # }
/// ```
#[must_use]
pub fn orphan_calls() -> OrphanCalls {
    let mut calls = OrphanCalls {
        entries: [("", 0); SLOTS + 1],
        len: 0,
    };
    for index in 0..=names::CAPACITY {
        let count = COUNTS
            .iter()
            .map(|shard| shard.0[index].load(Relaxed))
            .fold(0, u64::saturating_add);
        if count > 0 {
            let name = u16::try_from(index + 1)
                .ok()
                .and_then(DepId::from_raw)
                .filter(|_| index < names::CAPACITY)
                .map_or(OTHER_DEPENDENCY, DepId::name);
            calls.add(name, count);
        }
    }
    calls
}

/// The orphan call counts at one moment: see [`orphan_calls`].
#[derive(Clone, Copy)]
pub struct OrphanCalls {
    entries: [(&'static str, u64); SLOTS + 1],
    len: usize,
}

impl OrphanCalls {
    /// Adds `count` calls to `dep`'s entry; past the last entry, to `other`.
    fn add(&mut self, dep: &'static str, count: u64) {
        if count == 0 {
            return;
        }
        let entries = &mut self.entries[..self.len];
        if let Some(entry) = entries.iter_mut().find(|(name, _)| *name == dep) {
            entry.1 = entry.1.saturating_add(count);
        } else if self.len < SLOTS {
            self.entries[self.len] = (dep, count);
            self.len += 1;
        } else if let Some(entry) = entries.iter_mut().find(|(n, _)| *n == OTHER_DEPENDENCY) {
            entry.1 = entry.1.saturating_add(count);
        } else {
            self.entries[self.len] = (OTHER_DEPENDENCY, count);
            self.len += 1;
        }
    }

    /// All orphan calls.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// The orphan calls to `dep` (0 if none).
    #[must_use]
    pub fn get(&self, dep: &str) -> u64 {
        self.iter()
            .find_map(|(name, n)| (name == dep).then_some(n))
            .unwrap_or(0)
    }

    /// Each dependency with orphan calls, in the order of their numbers
    /// (no meaningful order: sort them to display them).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.entries[..self.len].iter().copied()
    }
}

impl fmt::Debug for OrphanCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
