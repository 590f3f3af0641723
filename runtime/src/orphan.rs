//! Orphan calls: external calls made where no handler is in scope. Their
//! time counts toward no handler, which is right for a background job and a
//! bug for work a handler handed off without carrying itself along (a
//! `tokio::spawn` without `in_current_handler()`, a `spawn_blocking` without
//! `bind`). They are counted per dependency, and in debug builds the first
//! one of each call site is reported through `tracing`.
//!
//! Every counter is split in [`SHARDS`] cache lines, one per thread (threads
//! take them in turn): threads making orphan calls through one call site, or
//! to one dependency, each add to a line of their own instead of passing one
//! line back and forth. A count is the sum of its shards.

use crate::ledger::{Names, OTHER_DEPENDENCY};
use std::cell::Cell;
use std::fmt;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::OnceLock;

/// How many dependencies the orphan counts name; further ones share `other`.
const SLOTS: usize = 64;

/// How many shards each counter has: threads beyond the first eight share.
const SHARDS: usize = 8;

thread_local! {
    /// This thread's shard, taken on its first orphan call (`usize::MAX`
    /// until then).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// This thread's shard of every orphan counter.
#[inline]
fn shard() -> usize {
    let shard = SHARD
        .try_with(|shard| match shard.get() {
            usize::MAX => {
                let taken = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
                shard.set(taken);
                taken
            }
            taken => taken,
        })
        // A thread being torn down (its locals gone) uses the first shard.
        .unwrap_or(0);
    // Always so; said again so that indexing needs no bounds check.
    shard % SHARDS
}

/// A counter alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Line<T>(T);

static NAMES: Names<SLOTS> = Names::new_static();
/// Per shard, a counter per named dependency and one for `other`.
static COUNTS: [Line<[AtomicU64; SLOTS + 1]>; SHARDS] =
    [const { Line([const { AtomicU64::new(0) }; SLOTS + 1]) }; SHARDS];
/// Warned-once flags for calls made through the functions, which have no
/// call site of their own: once per dependency.
static WARNED: [AtomicBool; SLOTS + 1] = [const { AtomicBool::new(false) }; SLOTS + 1];

/// Not public API: a call site of `#[external_call]`, which counts its own
/// orphan calls (one `fetch_add` on this thread's part of the site's own
/// counter, no name lookup)
/// and names the function in the warning. The macro emits one `static` per
/// annotated fn: 640 bytes on x86-64, 512 of them its counter's shards.
#[doc(hidden)]
#[derive(Debug)]
pub struct Site {
    function: &'static str,
    module: &'static str,
    warned: AtomicBool,
    /// Set by the first orphan call to reach [`register`], which publishes
    /// the site in [`SITES`].
    registered: AtomicBool,
    /// The dependency, set before the site is published.
    dep: OnceLock<&'static str>,
    /// The next site of the list [`SITES`] heads.
    next: AtomicPtr<Site>,
    calls: [Line<AtomicU64>; SHARDS],
}

impl Site {
    /// Not public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn new(function: &'static str, module: &'static str) -> Self {
        Self {
            function,
            module,
            warned: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            dep: OnceLock::new(),
            next: AtomicPtr::new(ptr::null_mut()),
            calls: [const { Line(AtomicU64::new(0)) }; SHARDS],
        }
    }
}

/// The call sites that have counted an orphan call, newest first: a list
/// that only grows, through the sites' own `next` links (they are statics).
static SITES: AtomicPtr<Site> = AtomicPtr::new(ptr::null_mut());

/// Publishes `site` in [`SITES`], unless another call got there first.
#[cold]
fn register(site: &'static Site, dep: &'static str) {
    if site.registered.swap(true, Relaxed) {
        return;
    }
    let _ = site.dep.set(dep);
    let mut head = SITES.load(Relaxed);
    loop {
        site.next.store(head, Relaxed);
        match SITES.compare_exchange_weak(head, ptr::from_ref(site).cast_mut(), Release, Relaxed) {
            Ok(_) => return,
            Err(actual) => head = actual,
        }
    }
}

/// Counts an orphan call to `dep`: a call site's own counter when the call
/// comes from an `#[external_call]` fn, else the per-name table.
#[inline]
pub(crate) fn record(dep: &'static str, site: Option<&'static Site>) {
    match site {
        Some(site) => {
            // The first call on each shard offers to publish the site; the
            // first of those does.
            if site.calls[shard()].0.fetch_add(1, Relaxed) == 0 {
                register(site, dep);
            }
            if cfg!(debug_assertions) && !site.warned.load(Relaxed) {
                warn_once(&site.warned, dep, Some(site));
            }
        }
        None => record_by_name(dep),
    }
}

/// [`record`] for calls through the functions, which have no call site.
#[cold]
#[inline(never)]
fn record_by_name(dep: &'static str) {
    let index = NAMES.index_of(dep).unwrap_or(SLOTS);
    COUNTS[shard()].0[index].fetch_add(1, Relaxed);
    if cfg!(debug_assertions) {
        warn_once(&WARNED[index], dep, None);
    }
}

#[cold]
fn warn_once(flag: &AtomicBool, dep: &'static str, site: Option<&'static Site>) {
    if !flag.swap(true, Relaxed) {
        warn(dep, site);
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
/// After 64 distinct dependencies, further ones are counted together as
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
    // Calls through the functions, counted per name...
    let named = NAMES.iter();
    let other = std::iter::once((SLOTS, OTHER_DEPENDENCY));
    for (index, name) in named.chain(other) {
        calls.add(name, sum(COUNTS.iter().map(|shard| &shard.0[index])));
    }
    // ...and calls from `#[external_call]` fns, counted per call site.
    let mut site = SITES.load(Acquire);
    // SAFETY: every pointer in the list is a `&'static Site`.
    while let Some(s) = unsafe { site.as_ref() } {
        if let Some(&dep) = s.dep.get() {
            calls.add(dep, sum(s.calls.iter().map(|line| &line.0)));
        }
        site = s.next.load(Acquire);
    }
    calls
}

/// The sum of a counter's shards.
fn sum<'a>(shards: impl Iterator<Item = &'a AtomicU64>) -> u64 {
    shards.fold(0, |total, shard| total.saturating_add(shard.load(Relaxed)))
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

    /// Each dependency with orphan calls, in order of first orphan call.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.entries[..self.len].iter().copied()
    }
}

impl fmt::Debug for OrphanCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
