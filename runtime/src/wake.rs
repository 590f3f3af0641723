//! Wake mode: an external call that ends when its dependency wakes the task,
//! not when the task is next polled.
//!
//! By default a call's interval ends when its future completes, which is
//! when the handler is polled again after the dependency answered: on a busy
//! runtime the wait in the run queue makes a fast dependency look slow. In
//! wake mode the future is polled with a waker of ours that closes the call's
//! interval at the moment of the wake and opens a *scheduled* wait, which the
//! next poll closes (reopening the call if it is not finished). The wait is
//! internal time; handlers with `split` report it as `internal.scheduled_us`.
//!
//! The call's steps (begin, wake, poll after a wake, finish) may come from
//! different threads (a waker is called wherever the dependency's I/O
//! completes), so they take turns under one lock: each is a few ledger
//! updates, and nothing outside this module runs while it is held.
//!
//! The waits from a wake to the next poll are the handler's backlog. For the
//! wake to be the moment the answer arrived, the connection that reads it
//! must not wait for a busy worker itself: a call in wake mode is polled with
//! selftime's I/O runtime current ([`crate::io`]), so that the connections
//! its client opens live there.
//!
//! The price: one allocation per call (the waker's shared state), a lock per
//! poll, and a clock read per wake and per poll after one.

use crate::handler::{HandlerContext, State, Tickets};
use crate::names::DepId;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};

/// A wake-mode call in flight, as its caller holds it: ends when dropped.
#[derive(Debug)]
pub(crate) struct Waking {
    call: Arc<WakeCall>,
    waker: Waker,
}

impl Waking {
    /// Begins a call to `dep` of `handler` now.
    pub(crate) fn begin_in(handler: HandlerContext, dep: DepId) -> Self {
        let (call, waker) = WakeCall::begin(handler, dep);
        Self { call, waker }
    }

    /// Begins a call to `dep` of the handler in scope; outside any handler,
    /// counts an orphan call and returns `None`.
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn begin(dep: DepId) -> Option<Self> {
        let Some(handler) = crate::scope::current() else {
            crate::orphan::record(dep, None);
            return None;
        };
        Some(Self::begin_in(handler, dep))
    }

    /// The dependency reported `own` nanoseconds as its own time: see
    /// [`WakeCall::callee`].
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn callee(&self, own: u64) {
        self.call.callee(own);
    }

    /// Runs one poll of the call's future, `poll`, with the call's waker and
    /// selftime's I/O runtime current.
    pub(crate) fn poll<T>(&self, cx: &Context<'_>, poll: impl FnOnce(&mut Context<'_>) -> T) -> T {
        self.call.before_poll(cx.waker());
        let mut cx = Context::from_waker(&self.waker);
        crate::io::enter(|| poll(&mut cx))
    }
}

impl Drop for Waking {
    fn drop(&mut self) {
        self.call.finish();
    }
}

pin_project! {
    /// A future measured in wake mode that hands its call on when it
    /// completes, rather than ending it: for a response whose body the call
    /// goes on into. Without a call (outside any handler) it polls its
    /// future where it is, as if there were no selftime: nothing is added
    /// to a call that measures nothing.
    #[derive(Debug)]
    pub(crate) struct Answering<F> {
        #[pin]
        inner: F,
        call: Option<Waking>,
    }
}

#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
impl<F> Answering<F> {
    pub(crate) fn new(inner: F, call: Option<Waking>) -> Self {
        Self { inner, call }
    }
}

impl<F: Future> Future for Answering<F> {
    type Output = (F::Output, Option<Waking>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let out = ready!(match this.call {
            Some(call) => call.poll(cx, |cx| inner.poll(cx)),
            None => inner.poll(cx),
        });
        Poll::Ready((out, this.call.take()))
    }
}

/// A call in wake mode: the state its waker shares with its future.
#[derive(Debug)]
pub(crate) struct WakeCall {
    dep: DepId,
    steps: Mutex<Steps>,
}

/// Where the call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The call is in flight; the tickets are the call's.
    Running,
    /// The dependency woke the task; the tickets are the scheduled wait's.
    Woken,
    /// The call is over; wakes are only forwarded.
    Done,
}

#[derive(Debug)]
struct Steps {
    phase: Phase,
    tickets: Tickets,
    /// The time of the latest step: each reads the clock as no earlier, so
    /// that a clock that looked backwards counts as no time.
    last: u64,
    /// The task's own waker, to forward every wake to.
    task: Option<Waker>,
    /// The handler the call counts toward, until the call ends: a resource
    /// may keep our waker long after (the last waker it was given), and it
    /// must not keep the handler's state from going back to its pool.
    handler: Option<HandlerContext>,
    /// The call's own time so far, the waits after its wakes left out:
    /// the closed stretches in flight, and where the open one began.
    flown: u64,
    since: u64,
}

impl Steps {
    /// The handler's state and the clock for a step, never earlier than the
    /// last step's; `None` once the call has ended.
    fn at_now(&mut self) -> Option<(&State, u64)> {
        let state = self.handler.as_ref()?.state();
        self.last = state.now().max(self.last);
        Some((state, self.last))
    }
}

impl WakeCall {
    /// Starts a call to `dep` at its first poll; the waker to poll it with.
    pub(crate) fn begin(handler: HandlerContext, dep: DepId) -> (Arc<Self>, Waker) {
        let now = handler.state().now();
        let tickets = handler.state().begin(dep, now);
        let call = Arc::new(Self {
            dep,
            steps: Mutex::new(Steps {
                phase: Phase::Running,
                tickets,
                last: now,
                task: None,
                handler: Some(handler),
                flown: 0,
                since: now,
            }),
        });
        let waker = Waker::from(Arc::clone(&call));
        (call, waker)
    }

    fn steps(&self) -> MutexGuard<'_, Steps> {
        // A step never panics halfway through its ledger updates (they are
        // atomics), so the data behind a poisoned lock is whole.
        self.steps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before each poll: remembers the task's waker, and if the dependency
    /// woke the task, ends the wait (the handler's backlog, and its
    /// `internal.scheduled_us` with `split`) and reopens the call.
    pub(crate) fn before_poll(&self, task: &Waker) {
        let mut steps = self.steps();
        match &mut steps.task {
            Some(held) if held.will_wake(task) => {}
            other => *other = Some(task.clone()),
        }
        if steps.phase == Phase::Woken {
            let tickets = steps.tickets;
            if let Some((state, now)) = steps.at_now() {
                state.wait_end(tickets, now);
                let resumed = state.resume(self.dep, now);
                steps.tickets = resumed;
                steps.phase = Phase::Running;
                steps.since = now;
            }
        }
    }

    /// The dependency reported `own` nanoseconds as its own time
    /// (`Server-Timing`): the rest of the call's time so far, less the
    /// waits after its wakes (this process's backlog, not the way between),
    /// is recorded as the time between the two ends.
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn callee(&self, own: u64) {
        let mut steps = self.steps();
        let phase = steps.phase;
        let (flown, since) = (steps.flown, steps.since);
        if let Some((state, now)) = steps.at_now() {
            let flown = match phase {
                Phase::Running => flown + now.saturating_sub(since),
                Phase::Woken | Phase::Done => flown,
            };
            state.between(self.dep, flown.saturating_sub(own));
        }
    }

    /// Ends the call now: on completion, or when its future is dropped.
    pub(crate) fn finish(&self) {
        let mut steps = self.steps();
        let (phase, tickets) = (steps.phase, steps.tickets);
        if let Some((state, now)) = steps.at_now() {
            match phase {
                Phase::Running => state.end(self.dep, tickets, now),
                Phase::Woken => state.wait_end(tickets, now),
                Phase::Done => {}
            }
        }
        steps.phase = Phase::Done;
        // Let go of the handler outside the lock.
        let handler = steps.handler.take();
        drop(steps);
        drop(handler);
    }
}

impl Wake for WakeCall {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = {
            let mut steps = self.steps();
            if steps.phase == Phase::Running {
                let tickets = steps.tickets;
                if let Some((state, now)) = steps.at_now() {
                    state.end(self.dep, tickets, now);
                    let waiting = state.wait_begin(now);
                    steps.tickets = waiting;
                    steps.phase = Phase::Woken;
                    steps.flown += now.saturating_sub(steps.since);
                }
            }
            steps.task.clone()
        };
        // Woken outside the lock: the task's waker is not ours to run under it.
        if let Some(task) = task {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WakeCall;
    use crate::handler::HandlerContext;
    use crate::names::DepId;

    /// The wait from an answer's wake to the poll that takes it is backlog,
    /// and not external time; a second wait overlapping the first counts
    /// once.
    #[test]
    fn the_wait_after_a_wake_is_backlog_and_not_external() {
        use std::task::{Context, Poll};
        use std::time::Duration;
        let handler = HandlerContext::open(false);
        let state = || handler.state();
        let first = super::Waking::begin_in(handler.clone(), DepId::of("wake-test-backlog"));
        let second = super::Waking::begin_in(handler.clone(), DepId::of("wake-test-backlog"));
        std::thread::sleep(Duration::from_millis(5));
        first.waker.wake_by_ref();
        second.waker.wake_by_ref();
        let woken = state().now();
        std::thread::sleep(Duration::from_millis(20));
        let task = std::task::Waker::noop();
        let cx = Context::from_waker(task);
        let polling = state().now();
        assert!(first.poll(&cx, |_| Poll::Ready(())).is_ready());
        assert!(second.poll(&cx, |_| Poll::Ready(())).is_ready());
        let polled = state().now();
        drop((first, second));
        let now = state().now();
        let backlog = state().backlog(now);
        let external = state().ledger().external_at(now);
        // Both calls were in flight until the wakes, then neither until the
        // polls (which take them up again until they are dropped).
        assert!(external >= 5_000_000, "{external}");
        assert!(external <= woken + (now - polling), "{external}");
        assert!(backlog >= 20_000_000, "{backlog}");
        assert!(backlog <= polled - woken + (now - polled), "{backlog}");
        assert!(external + backlog <= now, "{external} + {backlog} > {now}");
    }

    /// A resource may keep the last waker it was given long after the call:
    /// the handler's state must still be free to go back to its pool.
    #[test]
    fn a_kept_waker_does_not_keep_the_handler_once_the_call_ends() {
        let handler = HandlerContext::open(false);
        let (call, waker) = WakeCall::begin(handler.clone(), DepId::of("wake-test-kept"));
        call.finish();
        drop(call);
        assert!(handler.into_unique().is_some());
        // A wake after the end only forwards, and there is no task to wake.
        waker.wake();
    }
}
