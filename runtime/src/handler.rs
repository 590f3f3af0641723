//! [`HandlerContext`]: a running handler, the one thing every part of this crate
//! talks about: its ledger, where it started, the handler around it. It is
//! shared (the task-local holds it, calls in flight hold it, users carry it
//! into other tasks), so it is a reference-counted pointer; and each
//! thread's pool of finished handlers' state, for reuse.

use crate::backlog::Backlog;
use crate::clock::Origin;
use crate::ledger::{Ledger, TICKET_BITS, Ticket};
use crate::names::DepId;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many enclosing handlers a call counts toward. A call made deeper than
/// this (a handler recursing 12 levels into itself) counts toward the 12
/// innermost handlers only. (Twelve tickets fit six bytes, which with the
/// rest of a call fill 24 without padding.)
pub(crate) const MAX_DEPTH: usize = 12;

/// A running handler, captured where it is in scope so that work elsewhere
/// counts toward it.
///
/// `tokio::spawn`, `spawn_blocking` and `std::thread::spawn` start without
/// the spawning task's task-locals, so external calls made there belong to
/// no handler. Capture the handler with [`HandlerContext::capture`] where it is in
/// scope and enter it where the work runs ([`HandlerContext::scope`] for a future,
/// [`HandlerContext::sync_scope`] for a closure); [`FutureExt::in_current_handler`],
/// [`bind`], [`spawn`] and [`spawn_blocking`] do both at once.
///
/// A `HandlerContext` keeps the handler's ledger alive, not its run: calls made
/// after the handler has reported are accepted and ignored. Cloning one is
/// cheap (a reference count).
///
/// [`FutureExt::in_current_handler`]: crate::FutureExt::in_current_handler
/// [`bind`]: crate::bind
/// [`spawn`]: crate::spawn
/// [`spawn_blocking`]: crate::spawn_blocking
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::external_call("legacy")]
/// fn blocking_lookup() -> u32 { 7 }
///
/// #[selftime::timed_handler]
/// async fn handler() -> u64 {
///     let handler = selftime::HandlerContext::capture().expect("inside a handler");
///     let n = tokio::task::spawn_blocking(move || handler.sync_scope(blocking_lookup))
///         .await
///         .unwrap();
///     assert_eq!(n, 7);
///     selftime::current().unwrap().calls()
/// }
///
/// assert_eq!(handler().await, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct HandlerContext {
    state: Arc<State>,
}

/// What a running handler holds. This is the one allocation a handler
/// makes, when its thread has no finished one to reuse.
#[derive(Debug)]
pub(crate) struct State {
    /// The clock's origin, shared by the whole chain so that one clock
    /// reading serves every ledger a call updates.
    base: Origin,
    /// This handler's start, in nanoseconds from `base`.
    start: u64,
    /// How long its request had waited in this process before the start
    /// (known behind `HandlerLayer` with arrival times): part of its total
    /// and of its backlog.
    waited: u64,
    ledger: Ledger,
    /// Waits after a dependency's answer: taken only by wake-mode steps.
    backlog: Mutex<Backlog>,
    /// Whether any wait was ever opened: a handler without wake-mode calls
    /// reads its backlog without taking the lock.
    waits: AtomicBool,
    parent: Option<HandlerContext>,
}

impl fmt::Debug for HandlerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerContext")
            .field("depth", &self.state.chain().count())
            .finish_non_exhaustive()
    }
}

/// What a call opened in each ledger of the chain: a [`Ticket`] a level,
/// two to a byte (no wider alignment than a byte).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tickets([u8; MAX_DEPTH / 2]);

impl Tickets {
    fn set(&mut self, level: usize, ticket: Ticket) {
        let shift = (level % 2) * TICKET_BITS as usize;
        self.0[level / 2] |= ticket.bits() << shift;
    }

    fn at(self, level: usize) -> Ticket {
        let shift = (level % 2) * TICKET_BITS as usize;
        Ticket::from_bits((self.0[level / 2] >> shift) & ((1 << TICKET_BITS) - 1))
    }
}

impl HandlerContext {
    /// Opens a handler now, in no other.
    #[cfg(test)]
    pub(crate) fn open(split: bool) -> Self {
        Self::open_waited(split, 0, None)
    }

    /// Opens a handler now, nested in `parent` (the handler in scope, if
    /// any), whose request had already waited `waited` nanoseconds in this
    /// process.
    ///
    /// Its state comes from this thread's pool of finished ones when it has
    /// one (see [`recycle`]), so that a steady stream of handlers allocates
    /// nothing; otherwise it is allocated.
    pub(crate) fn open_waited(split: bool, waited: u64, parent: Option<Self>) -> Self {
        let (base, start) = match &parent {
            Some(parent) => (parent.state.base, parent.state.base.elapsed()),
            None => (Origin::now(), 0),
        };
        if let Some(mut pooled) = pop_pooled() {
            if let Some(state) = Arc::get_mut(&mut pooled) {
                state.base = base;
                state.start = start;
                state.waited = waited;
                state.ledger.reset(split);
                state
                    .backlog
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .reset();
                *state.waits.get_mut() = false;
                state.parent = parent;
                return Self { state: pooled };
            }
        }
        let ledger = if split {
            Ledger::with_split()
        } else {
            Ledger::new()
        };
        Self {
            state: Arc::new(State {
                base,
                start,
                waited,
                ledger,
                backlog: Mutex::new(Backlog::default()),
                waits: AtomicBool::new(false),
                parent,
            }),
        }
    }

    /// What it holds, borrowed.
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The state, for the pool, when nothing else holds it any more.
    pub(crate) fn into_unique(self) -> Option<Arc<State>> {
        let mut state = self.state;
        let unique = Arc::get_mut(&mut state)?;
        // Its parent is let go at once, not when it is reused.
        unique.parent = None;
        Some(state)
    }
}

impl State {
    /// This handler's own ledger (not the enclosing ones').
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The clock, read as nanoseconds from this chain's origin.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.base.elapsed()
    }

    /// This handler's start, in the chain's nanoseconds.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// How long its request waited in this process before the start.
    pub(crate) fn waited(&self) -> u64 {
        self.waited
    }

    /// The backlog of waits after dependencies' answers, up to `now`
    /// (without [`State::waited`]).
    pub(crate) fn backlog(&self, now: u64) -> u64 {
        // Acquire: a wait opened on another thread (a wake) is seen with
        // the flag that announced it.
        if !self.waits.load(Acquire) {
            return 0;
        }
        let external = self.ledger.external_at(now);
        self.backlog_lock().at(now, external)
    }

    fn backlog_lock(&self) -> MutexGuard<'_, Backlog> {
        // Its updates are plain arithmetic that cannot panic halfway: the
        // data behind a poisoned lock is whole.
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This handler, then each one around it, innermost first.
    fn chain(&self) -> impl Iterator<Item = &Self> {
        std::iter::successors(Some(self), |s| s.parent.as_ref().map(HandlerContext::state))
            .take(MAX_DEPTH)
    }

    /// Records the start of a call to `dep` in this ledger and every
    /// enclosing one.
    pub(crate) fn begin(&self, dep: DepId, now: u64) -> Tickets {
        self.each_level(|ledger| ledger.begin(dep, now))
    }

    /// Reopens a call in flight again without counting a new call (wake
    /// mode), in this ledger and every enclosing one.
    pub(crate) fn resume(&self, dep: DepId, now: u64) -> Tickets {
        self.each_level(|ledger| ledger.resume(dep, now))
    }

    /// A dependency woke a call at `now`: in every ledger that splits
    /// internal time, the wait for the next poll starts.
    pub(crate) fn wait_begin(&self, now: u64) -> Tickets {
        for state in self.chain() {
            let external = state.ledger.external_at(now);
            state.waits.store(true, Release);
            state.backlog_lock().open(now, external);
        }
        self.each_level(|ledger| ledger.wait_begin(now))
    }

    /// Records the end of the call that `begin` returned `tickets` for.
    pub(crate) fn end(&self, dep: DepId, tickets: Tickets, now: u64) {
        for (level, state) in self.chain().enumerate() {
            state.ledger.end(dep, tickets.at(level), now);
        }
    }

    /// Records a call's time between the two ends (see [`Ledger::between`])
    /// in this ledger and every enclosing one.
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn between(&self, dep: DepId, between: u64) {
        for state in self.chain() {
            state.ledger.between(dep, between);
        }
    }

    /// Ends the waits `wait_begin` returned `tickets` for.
    pub(crate) fn wait_end(&self, tickets: Tickets, now: u64) {
        for (level, state) in self.chain().enumerate() {
            state.ledger.wait_end(tickets.at(level), now);
            let external = state.ledger.external_at(now);
            state.backlog_lock().close(now, external);
        }
    }

    fn each_level(&self, mut f: impl FnMut(&Ledger) -> Ticket) -> Tickets {
        let mut tickets = Tickets::default();
        for (level, state) in self.chain().enumerate() {
            tickets.set(level, f(&state.ledger));
        }
        tickets
    }
}

/// How many finished handlers' state a thread keeps for reuse: about 6 KB
/// at most.
const POOL_SIZE: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Arc<State>>> = const { RefCell::new(Vec::new()) };
}

/// A finished handler's state, for the next handler to start on this thread.
pub(crate) fn pop_pooled() -> Option<Arc<State>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Hands a finished handler's state back for reuse by the next handler to
/// start on this thread, if nothing else holds it (a call still in flight
/// in a task the handler spawned keeps it alive until that call ends: then
/// it is simply freed).
pub(crate) fn recycle(handler: HandlerContext) {
    let Some(state) = handler.into_unique() else {
        return;
    };
    // A thread being torn down, or a pool in use further up this stack
    // (impossible today, handled anyway), frees the state instead.
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < POOL_SIZE {
                if pool.capacity() == 0 {
                    pool.reserve_exact(POOL_SIZE);
                }
                pool.push(state);
            }
        }
    });
}
