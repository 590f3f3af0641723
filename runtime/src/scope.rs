//! The handler in scope: a tokio task-local holding the innermost handler's
//! [`Scope`], which links to the scopes of the handlers around it.

use crate::ledger::{Figures, Ledger, Ticket};
use std::sync::Arc;
use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: Arc<Scope>;
}

/// How many enclosing handlers a call counts toward. A call made deeper than
/// this (a handler recursing 64 levels into itself) counts toward the 64
/// innermost handlers only.
pub(crate) const MAX_DEPTH: usize = 64;

/// One running handler: its ledger, its start, and the handler around it.
///
/// This is the one allocation a handler makes.
#[derive(Debug)]
pub(crate) struct Scope {
    /// The clock's origin, shared by the whole chain so that one clock
    /// reading serves every ledger a call updates.
    base: Instant,
    /// This handler's start, in nanoseconds from `base`.
    start: u64,
    ledger: Ledger,
    parent: Option<Arc<Scope>>,
}

/// What a call opened in each ledger of the chain: two bits a level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tickets(u128);

impl Scope {
    /// Opens a handler scope at `now`, nested in the handler in scope, if any.
    pub(crate) fn open(now: Instant) -> Arc<Self> {
        let parent = current();
        let base = parent.as_ref().map_or(now, |p| p.base);
        Arc::new(Self {
            base,
            start: offset(base, now),
            ledger: Ledger::new(),
            parent,
        })
    }

    /// The clock, read as nanoseconds from this chain's origin.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        offset(self.base, Instant::now())
    }

    /// This handler's start, in the chain's nanoseconds.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    pub(crate) fn figures(&self, now: u64) -> Figures {
        self.ledger.figures(now)
    }

    fn chain(&self) -> impl Iterator<Item = &Scope> {
        std::iter::successors(Some(self), |s| s.parent.as_deref()).take(MAX_DEPTH)
    }

    /// Records the start of a call to `dep` in this ledger and every
    /// enclosing one.
    pub(crate) fn begin(&self, dep: &'static str, now: u64) -> Tickets {
        let mut tickets = 0u128;
        for (level, scope) in self.chain().enumerate() {
            tickets |= u128::from(scope.ledger.begin(dep, now).bits()) << (2 * level);
        }
        Tickets(tickets)
    }

    /// Records the end of the call that `begin` returned `tickets` for.
    pub(crate) fn end(&self, dep: &'static str, tickets: Tickets, now: u64) {
        for (level, scope) in self.chain().enumerate() {
            let bits = (tickets.0 >> (2 * level)) as u8 & 0b11;
            scope.ledger.end(dep, Ticket::from_bits(bits), now);
        }
    }
}

/// Nanoseconds from `base` to `t`; an instant before `base` (a clock that
/// looked backwards) reads as `base`, and the sum saturates rather than wraps.
#[inline]
fn offset(base: Instant, t: Instant) -> u64 {
    let d = t.saturating_duration_since(base);
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// The innermost handler in scope on this task, if any.
pub(crate) fn current() -> Option<Arc<Scope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `f` with `scope` as the handler in scope.
pub(crate) fn sync_scope<R>(scope: Arc<Scope>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(scope, f)
}

/// Polls `fut` with `scope` as the handler in scope, on every poll and
/// while it is dropped.
pub(crate) fn scope<F: std::future::Future>(
    scope: Arc<Scope>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<Scope>, F> {
    CURRENT.scope(scope, fut)
}

/// Runs `f` on the handler in scope without cloning it, or returns `None`.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<Scope>) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}
