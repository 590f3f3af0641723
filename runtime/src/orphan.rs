//! Orphan calls: external calls made where no handler is in scope. Their
//! time counts toward no handler, which is right for a background job and a
//! bug for work a handler handed off without carrying itself along (a
//! `tokio::spawn` without `in_current_handler()`, a `spawn_blocking` without
//! `bind`). They are counted per dependency, and in debug builds the first
//! one of each call site is reported through `tracing`.

use crate::ledger::{Names, OTHER_DEPENDENCY};
use std::fmt;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::OnceLock;

/// How many dependencies the orphan counts name; further ones share `other`.
const SLOTS: usize = 64;

static NAMES: Names<SLOTS> = Names::new_static();
static COUNTS: [AtomicU64; SLOTS + 1] = [const { AtomicU64::new(0) }; SLOTS + 1];
/// Warned-once flags for calls made through the functions, which have no
/// call site of their own: once per dependency.
static WARNED: [AtomicBool; SLOTS + 1] = [const { AtomicBool::new(false) }; SLOTS + 1];

/// Not public API: a call site of `#[external_call]`, which counts its own
/// orphan calls (one `fetch_add` on the site's own counter, no name lookup)
/// and names the function in the warning. The macro emits one `static` per
/// annotated fn.
#[doc(hidden)]
#[derive(Debug)]
pub struct Site {
    function: &'static str,
    module: &'static str,
    warned: AtomicBool,
    calls: AtomicU64,
    /// The dependency, set by the site's first orphan call, before the site
    /// is published in [`SITES`].
    dep: OnceLock<&'static str>,
    /// The next site of the list [`SITES`] heads.
    next: AtomicPtr<Site>,
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
            calls: AtomicU64::new(0),
            dep: OnceLock::new(),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// The call sites that have counted an orphan call, newest first: a list
/// that only grows, through the sites' own `next` links (they are statics).
static SITES: AtomicPtr<Site> = AtomicPtr::new(ptr::null_mut());

/// Publishes `site`, whose first orphan call this is, in [`SITES`].
#[cold]
fn register(site: &'static Site, dep: &'static str) {
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
            // Exactly one call sees 0: it publishes the site.
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
    let index = NAMES.index_of(dep).unwrap_or(SLOTS);
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
    let named = NAMES.iter();
    let other = std::iter::once((SLOTS, OTHER_DEPENDENCY));
    for (index, name) in named.chain(other) {
        calls.add(name, COUNTS[index].load(Relaxed));
    }
    // ...and calls from `#[external_call]` fns, counted per call site.
    let mut site = SITES.load(Acquire);
    // SAFETY: every pointer in the list is a `&'static Site`.
    while let Some(s) = unsafe { site.as_ref() } {
        if let Some(&dep) = s.dep.get() {
            calls.add(dep, s.calls.load(Relaxed));
        }
        site = s.next.load(Acquire);
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
