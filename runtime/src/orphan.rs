//! Orphan calls: external calls made where no handler is in scope. Their
//! time counts toward no handler, which is right for a background job and a
//! bug for work a handler handed off without carrying itself along (a
//! `tokio::spawn` without `in_current_handler()`, a `spawn_blocking` without
//! `bind`). They are counted per dependency, and in debug builds the first
//! one of each call site is reported through `tracing`.

use crate::ledger::OTHER_DEPENDENCY;
use crate::table::Table;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

/// How many dependencies the orphan counts name; further ones share `other`.
const SLOTS: usize = 64;

static NAMES: Table<&'static str, SLOTS> = Table::new();
/// A counter per named dependency, and one for `other`.
static COUNTS: [AtomicU64; SLOTS + 1] = [const { AtomicU64::new(0) }; SLOTS + 1];
/// Warned-once flags for calls made through the functions, which have no
/// call site of their own: once per dependency.
static WARNED: [AtomicBool; SLOTS + 1] = [const { AtomicBool::new(false) }; SLOTS + 1];
/// The call sites that have counted an orphan call, in order of first one.
/// A site joins once, on its first orphan call, and the list is read only by
/// [`orphan_calls`]: the lock is off every hot path.
static REGISTERED: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

/// Not public API: a call site of `#[external_call]`, which counts its own
/// orphan calls (one `fetch_add`, no name lookup) and names the function in
/// the warning. The macro emits one `static` per annotated fn.
#[doc(hidden)]
#[derive(Debug)]
pub struct Site {
    function: &'static str,
    module: &'static str,
    warned: AtomicBool,
    /// The dependency, set by the site's first orphan call.
    dep: OnceLock<&'static str>,
    calls: AtomicU64,
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
            dep: OnceLock::new(),
            calls: AtomicU64::new(0),
        }
    }
}

/// Makes `site`'s counts part of [`orphan_calls`].
#[cold]
fn register(site: &'static Site, dep: &'static str) {
    let _ = site.dep.set(dep);
    REGISTERED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(site);
}

/// Counts an orphan call to `dep`: a call site's own counter when the call
/// comes from an `#[external_call]` fn, else the per-name table.
#[inline]
pub(crate) fn record(dep: &'static str, site: Option<&'static Site>) {
    match site {
        Some(site) => {
            if site.calls.fetch_add(1, Relaxed) == 0 {
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
    let index = NAMES
        .find_or_insert(0, |&held| std::ptr::eq(held, dep) || held == dep, || dep)
        .map_or(SLOTS, |(index, _)| index);
    COUNTS[index].fetch_add(1, Relaxed);
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
    let named = NAMES.iter().map(|(index, &name)| (index, name));
    let other = std::iter::once((SLOTS, OTHER_DEPENDENCY));
    for (index, name) in named.chain(other) {
        calls.add(name, COUNTS[index].load(Relaxed));
    }
    // ...and calls from `#[external_call]` fns, counted per call site.
    let sites = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    for site in sites.iter() {
        if let Some(&dep) = site.dep.get() {
            calls.add(dep, site.calls.load(Relaxed));
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
