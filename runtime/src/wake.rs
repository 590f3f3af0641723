//! Wake mode: an external call that ends when its dependency wakes the task,
//! not when the task is next polled.
//!
//! By default a call's interval ends when its future completes, which is
//! when the handler is polled again after the dependency answered: on a busy
//! runtime the wait in the run queue makes a fast dependency look slow. In
//! wake mode the future is polled with a waker of ours that closes the call's
//! interval at the moment of the wake and opens a *scheduled* wait, which the
//! next poll closes (reopening the call if it is not finished). The wait is
//! internal time; handlers with `polls` report it as `internal.scheduled_us`.
//!
//! The price: one allocation per call (the waker's shared state) and a clock
//! read per wake and per poll after one.

use crate::scope::{Scope, Tickets};
use crate::sync::pause;
use std::sync::atomic::{
    AtomicU64, AtomicU8, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// The call is in flight; `tickets` are the call's.
const RUNNING: u8 = 0;
/// A wake is closing the call: `tickets` are being replaced.
const WAKING: u8 = 1;
/// The dependency woke the task; `tickets` are the scheduled wait's.
const WOKEN: u8 = 2;
/// The call is over; wakes are only forwarded.
const DONE: u8 = 3;

/// A call in wake mode: the state its waker shares with its future.
#[derive(Debug)]
pub(crate) struct WakeCall {
    scope: Arc<Scope>,
    dep: &'static str,
    phase: AtomicU8,
    /// The open call's or the open wait's tickets (by `phase`), written
    /// before the phase that publishes them (Release) and read after it.
    tickets: [AtomicU64; 2],
    /// The time of the latest step (begin, wake, poll, finish): each reads
    /// the clock as no earlier, so that a clock that looked backwards counts
    /// as no time. The steps take turns through `phase`, which publishes it.
    last: AtomicU64,
    /// The task's own waker, to forward every wake to. Never held while
    /// anything outside this module runs.
    task: Mutex<Option<Waker>>,
}

impl WakeCall {
    /// Starts a call to `dep` at its first poll; the waker to poll it with.
    pub(crate) fn begin(scope: Arc<Scope>, dep: &'static str) -> (Arc<Self>, Waker) {
        let now = scope.now();
        let tickets = scope.begin(dep, now);
        let call = Arc::new(Self {
            scope,
            dep,
            phase: AtomicU8::new(RUNNING),
            tickets: [AtomicU64::new(0), AtomicU64::new(0)],
            last: AtomicU64::new(now),
            task: Mutex::new(None),
        });
        call.store(tickets);
        let waker = Waker::from(Arc::clone(&call));
        (call, waker)
    }

    /// The clock for this call's next step, never earlier than its last.
    fn now(&self) -> u64 {
        let now = self.scope.now().max(self.last.load(Relaxed));
        self.last.store(now, Relaxed);
        now
    }

    fn store(&self, tickets: Tickets) {
        let bits = tickets.to_bits();
        self.tickets[0].store(bits as u64, Release);
        self.tickets[1].store((bits >> 64) as u64, Release);
    }

    fn load(&self) -> Tickets {
        let low = u128::from(self.tickets[0].load(Acquire));
        let high = u128::from(self.tickets[1].load(Acquire));
        Tickets::from_bits(low | (high << 64))
    }

    /// Waits out a wake that is mid-way through closing the call.
    fn settled_phase(&self) -> u8 {
        loop {
            match self.phase.load(Acquire) {
                WAKING => pause(),
                phase => return phase,
            }
        }
    }

    /// Before each poll: remembers the task's waker, and if the dependency
    /// woke the task, ends the scheduled wait and reopens the call.
    pub(crate) fn before_poll(&self, task: &Waker) {
        {
            let mut slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *slot {
                Some(held) if held.will_wake(task) => {}
                other => *other = Some(task.clone()),
            }
        }
        if self.settled_phase() == WOKEN {
            let now = self.now();
            self.scope.wait_end(self.load(), now);
            self.store(self.scope.resume(self.dep, now));
            // Only the poller leaves `WOKEN`, so nothing raced this store.
            self.phase.store(RUNNING, Release);
        }
    }

    /// Ends the call now: on completion, or when its future is dropped.
    pub(crate) fn finish(&self) {
        loop {
            match self.settled_phase() {
                RUNNING => {
                    if self
                        .phase
                        .compare_exchange(RUNNING, DONE, AcqRel, Acquire)
                        .is_ok()
                    {
                        self.scope.end(self.dep, self.load(), self.now());
                        return;
                    }
                }
                WOKEN => {
                    self.phase.store(DONE, Release);
                    self.scope.wait_end(self.load(), self.now());
                    return;
                }
                _ => return,
            }
        }
    }
}

impl Wake for WakeCall {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self
            .phase
            .compare_exchange(RUNNING, WAKING, AcqRel, Acquire)
            .is_ok()
        {
            let now = self.now();
            self.scope.end(self.dep, self.load(), now);
            self.store(self.scope.wait_begin(now));
            self.phase.store(WOKEN, Release);
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}
