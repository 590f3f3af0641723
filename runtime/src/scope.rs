//! The handler in scope: a tokio task-local holding the innermost handler's
//! [`Scope`], which links to the scopes of the handlers around it.

use crate::ledger::{Ledger, Ticket, TICKET_BITS};
use std::cell::RefCell;
use std::sync::Arc;
use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: Arc<Scope>;
}

/// How many enclosing handlers a call counts toward. A call made deeper than
/// this (a handler recursing 32 levels into itself) counts toward the 32
/// innermost handlers only.
pub(crate) const MAX_DEPTH: usize = (u128::BITS / TICKET_BITS) as usize;

/// One running handler: its ledger, its start, and the handler around it.
///
/// This is the one allocation a handler makes, when its thread has no
/// finished one to reuse.
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

/// What a call opened in each ledger of the chain: a [`Ticket`] a level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tickets(u128);

impl Scope {
    /// Opens a handler scope at `now`, nested in the handler in scope, if any.
    ///
    /// The scope comes from this thread's pool of finished ones when it has
    /// one (see [`recycle`]), so that a steady stream of handlers allocates
    /// nothing; otherwise it is allocated.
    pub(crate) fn open(now: Instant, activity: bool) -> Arc<Self> {
        let parent = current();
        let base = parent.as_ref().map_or(now, |p| p.base);
        let start = offset(base, now);
        if let Some(mut pooled) = pop_pooled() {
            if let Some(scope) = Arc::get_mut(&mut pooled) {
                scope.base = base;
                scope.start = start;
                scope.ledger.reset(activity);
                scope.parent = parent;
                return pooled;
            }
        }
        Arc::new(Self {
            base,
            start,
            ledger: if activity {
                Ledger::with_activity()
            } else {
                Ledger::new()
            },
            parent,
        })
    }

    /// This handler's own ledger (not the enclosing ones').
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
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

    fn chain(&self) -> impl Iterator<Item = &Scope> {
        std::iter::successors(Some(self), |s| s.parent.as_deref()).take(MAX_DEPTH)
    }

    /// Records the start of a call to `dep` in this ledger and every
    /// enclosing one.
    pub(crate) fn begin(&self, dep: &'static str, now: u64) -> Tickets {
        self.each_level(|ledger| ledger.begin(dep, now))
    }

    /// Reopens a call in flight again without counting a new call (wake
    /// mode), in this ledger and every enclosing one.
    pub(crate) fn resume(&self, dep: &'static str, now: u64) -> Tickets {
        self.each_level(|ledger| ledger.resume(dep, now))
    }

    /// A dependency woke a call at `now`: in every ledger that splits
    /// internal time, the wait for the next poll starts.
    pub(crate) fn wait_begin(&self, now: u64) -> Tickets {
        self.each_level(|ledger| ledger.wait_begin(now))
    }

    /// Records the end of the call that `begin` returned `tickets` for.
    pub(crate) fn end(&self, dep: &'static str, tickets: Tickets, now: u64) {
        for (level, scope) in self.chain().enumerate() {
            scope.ledger.end(dep, tickets.at(level), now);
        }
    }

    /// Ends the waits `wait_begin` returned `tickets` for.
    pub(crate) fn wait_end(&self, tickets: Tickets, now: u64) {
        for (level, scope) in self.chain().enumerate() {
            scope.ledger.wait_end(tickets.at(level), now);
        }
    }

    fn each_level(&self, mut f: impl FnMut(&Ledger) -> Ticket) -> Tickets {
        let mut tickets = 0u128;
        for (level, scope) in self.chain().enumerate() {
            tickets |= u128::from(f(&scope.ledger).bits()) << (TICKET_BITS as usize * level);
        }
        Tickets(tickets)
    }
}

impl Tickets {
    pub(crate) fn to_bits(self) -> u128 {
        self.0
    }

    pub(crate) fn from_bits(bits: u128) -> Self {
        Self(bits)
    }

    fn at(self, level: usize) -> Ticket {
        let mask = (1u8 << TICKET_BITS) - 1;
        Ticket::from_bits((self.0 >> (TICKET_BITS as usize * level)) as u8 & mask)
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

/// How many finished scopes a thread keeps for reuse: about 15 KB at most.
const POOL_SIZE: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Arc<Scope>>> = const { RefCell::new(Vec::new()) };
}

fn pop_pooled() -> Option<Arc<Scope>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Hands a finished handler's scope back for reuse by the next handler to
/// start on this thread, if nothing else holds it (a call still in flight
/// in a task the handler spawned keeps it alive until that call ends: then
/// it is simply freed). Its parent is let go at once.
pub(crate) fn recycle(mut scope: Arc<Scope>) {
    let Some(owned) = Arc::get_mut(&mut scope) else {
        return;
    };
    owned.parent = None;
    // A thread being torn down, or a pool in use further up this stack
    // (impossible today, handled anyway), frees the scope instead.
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < POOL_SIZE {
                if pool.capacity() == 0 {
                    pool.reserve_exact(POOL_SIZE);
                }
                pool.push(scope);
            }
        }
    });
}

/// The innermost handler in scope on this task, if any.
pub(crate) fn current() -> Option<Arc<Scope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The address of the innermost handler in scope on this task, if any. It
/// stays valid while the task-local holds it: until the code that looked it
/// up returns to the scope that set it.
#[inline]
pub(crate) fn current_ptr() -> Option<*const Scope> {
    CURRENT.try_with(Arc::as_ptr).ok()
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
