//! External calls: the time a handler spends waiting on its dependencies.

use crate::handler::{HandlerContext, State, Tickets};
use crate::names::DepId;
use crate::orphan::{self, Site};
use crate::scope;
use crate::wake::Waking;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One external call in flight: ends (and is counted) when dropped.
///
/// Outside any handler there is nothing to count, so [`Call::begin`] reads
/// no clock, counts an orphan call and returns `None`.
#[derive(Debug)]
pub(crate) struct Call {
    // Held so the ledger outlives the call even when the call outlives the
    // handler (a spawned task still running when its handler reported).
    handler: HandlerContext,
    dep: DepId,
    tickets: Tickets,
    /// When the call began: its end is never read as earlier, so that a
    /// clock that looked backwards counts the call as no time rather than
    /// taking time back from the union it closes.
    start: u64,
}

impl Call {
    /// Begins a call to the dependency numbered `dep`, looked up once by the
    /// caller (the `reqwest` middleware in place).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    #[inline]
    pub(crate) fn begin_id(dep: DepId) -> Option<Self> {
        Self::begin_with(dep, None)
    }

    /// Begins a call to `dep`, numbered through `site` when there is one,
    /// and attributes an orphan call to that `#[external_call]` site.
    // Measured (the `external` bench): left to the inliner, the call was
    // built and then copied through the stack into the future's state.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn begin_at(dep: &'static str, site: Option<&'static Site>) -> Option<Self> {
        Self::begin_with(dep_id(dep, site), site)
    }

    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn begin_with(dep: DepId, site: Option<&'static Site>) -> Option<Self> {
        let Some(handler) = scope::current() else {
            orphan::record(dep, site);
            return None;
        };
        let state = handler.state();
        let start = state.now();
        let tickets = state.begin(dep, start);
        Some(Self {
            handler,
            dep,
            tickets,
            start,
        })
    }
}

impl Call {
    /// The dependency reported `own` nanoseconds as its own time
    /// (`Server-Timing`): the rest of the call's time so far is the time
    /// between the two ends.
    #[cfg(feature = "reqwest")]
    pub(crate) fn callee(&self, own: u64) {
        let state = self.handler.state();
        let flown = state.now().saturating_sub(self.start);
        state.between(self.dep, flown.saturating_sub(own));
    }
}

impl Drop for Call {
    // Out of line: the drop glue of the states that hold no call (outside
    // any handler, finished) then needs no registers saved.
    #[inline(never)]
    fn drop(&mut self) {
        let state = self.handler.state();
        state.end(self.dep, self.tickets, state.now().max(self.start));
    }
}

/// One synchronous external call in flight: ends (and is counted) when
/// dropped, at the end of [`run_sync`], which alone makes one.
///
/// It borrows the handler's state from the task-local rather than holding a
/// reference count of its own (two atomic operations a call fewer): a
/// synchronous call starts and ends inside one stretch of its handler's
/// scope, in which the task-local holds the handler.
#[derive(Debug)]
struct SyncCall<'a> {
    state: &'a State,
    dep: DepId,
    tickets: Tickets,
    /// When the call began: see [`Call`].
    start: u64,
}

impl Drop for SyncCall<'_> {
    #[inline]
    fn drop(&mut self) {
        let state = self.state;
        state.end(self.dep, self.tickets, state.now().max(self.start));
    }
}

/// Runs `f` as a synchronous external call to `dep`; outside any handler,
/// counts an orphan call (reading no clock) and just runs it. The call ends
/// however `f` ends, a panic included.
#[inline]
pub(crate) fn run_sync<R>(
    dep: &'static str,
    site: Option<&'static Site>,
    f: impl FnOnce() -> R,
) -> R {
    let dep = dep_id(dep, site);
    let Some(state) = scope::current_state() else {
        orphan::record(dep, site);
        return f();
    };
    // SAFETY: the task-local holds the handler whose state this is, and it
    // keeps holding it until the code that looked it up returns to the scope
    // that set it: a scope entered inside `f` keeps the handler it replaces
    // until that scope ends, and no scope can end while `f` runs inside it.
    // The borrow ends when this function returns, after `f`: it never
    // outlives the stretch of scope it was taken in.
    #[allow(unsafe_code)]
    let state = unsafe { &*state };
    let start = state.now();
    let _call = SyncCall {
        state,
        dep,
        tickets: state.begin(dep, start),
        start,
    };
    f()
}

/// Measures `fut` as an external call to `dep` of the handler in scope.
///
/// The call's busy interval runs from the future's first poll to its
/// completion, or to its drop if it is cancelled first. Outside any handler
/// the future runs unmeasured, and the call is counted as an [orphan
/// call](crate#orphan-calls) (see the [cost](crate#cost)).
///
/// `#[external_call]` expands to this for a fn that returns a future, and
/// for an `async fn` in wake mode (`until_wake`). An `async fn` without `until_wake` is
/// measured without a future around its body: its call begins when the body
/// starts and ends when the body ends, however it ends, or when its future
/// is dropped.
///
/// # Examples
///
/// ```
/// # async fn fetch_session() -> Option<String> { None }
/// # async fn demo() {
/// let session = selftime::external("redis", fetch_session()).await;
/// # }
/// ```
pub fn external<F: Future>(dep: &'static str, fut: F) -> External<F> {
    External::new(dep, None, fut)
}

/// `fut` as a call from an `#[external_call]` site, billed to the site's
/// dependency.
pub(crate) fn external_at<F: Future>(site: &'static Site, fut: F) -> External<F> {
    External::new(site.dep(), Some(site), fut)
}

/// Measures `f` as an external call to `dep` of the handler in scope: a
/// blocking client, or any synchronous wait on a dependency.
///
/// A panic in `f` still ends the call. Outside any handler `f` just runs.
///
/// # Examples
///
/// ```
/// # fn query() -> u32 { 1 }
/// let rows = selftime::external_sync("legacy-db", || query());
/// # assert_eq!(rows, 1);
/// ```
pub fn external_sync<R>(dep: &'static str, f: impl FnOnce() -> R) -> R {
    run_sync(dep, None, f)
}

/// Where an [`External`] future is in its call.
#[derive(Debug)]
enum Step {
    /// Not polled yet: what the call will be.
    NotStarted(Start),
    // Held for its `Drop`, which ends the call.
    Running(#[allow(dead_code)] Call),
    // Wake mode: the call and the waker the inner future is polled with.
    Waking(Waking),
    Done,
}

/// An external call not started yet: to what, from where, in which mode.
#[derive(Clone, Copy, Debug)]
struct Start {
    dep: &'static str,
    site: Option<&'static Site>,
    until_wake: bool,
}

impl Step {
    #[inline]
    fn holds_a_call(&self) -> bool {
        matches!(self, Self::Running(_) | Self::Waking(_))
    }
}

pin_project! {
    /// A future measured as an external call; see [`external`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct External<F> {
        // Declared first so that it is dropped first: a cancelled call's
        // interval closes only once its future is gone.
        #[pin]
        inner: F,
        state: Step,
    }
}

impl<F> External<F> {
    fn new(dep: &'static str, site: Option<&'static Site>, inner: F) -> Self {
        Self {
            inner,
            state: Step::NotStarted(Start {
                dep,
                site,
                until_wake: false,
            }),
        }
    }

    /// Wake mode: end the call's interval when its dependency wakes the
    /// task, rather than when the task is next polled, so that time spent in
    /// a busy runtime's run queue is not charged to the dependency. The wait
    /// from the wake to the next poll is internal time, reported as
    /// `internal.scheduled_us` by handlers with `split`. Costs one allocation
    /// per call. `#[external_call("dep", until_wake)]` selects it.
    ///
    /// ```
    /// # async fn query() -> u32 { 1 }
    /// # async fn demo() {
    /// let rows = selftime::external("db", query()).until_wake().await;
    /// # }
    /// ```
    pub fn until_wake(mut self) -> Self {
        if let Step::NotStarted(start) = &mut self.state {
            start.until_wake = true;
        }
        self
    }
}

impl<F: Future> Future for External<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Step::NotStarted(not_started) = *this.state {
            // `NotStarted` holds nothing to drop: skip its drop glue.
            std::mem::forget(std::mem::replace(this.state, start(not_started)));
        }
        let out = match &*this.state {
            Step::Waking(call) => {
                let inner = this.inner;
                call.poll(cx, |cx| inner.poll(cx))
            }
            _ => this.inner.poll(cx),
        };
        if out.is_ready() && this.state.holds_a_call() {
            // Dropping the call ends it now rather than when the future is dropped.
            *this.state = Step::Done;
        }
        out
    }
}

#[inline]
fn start(
    Start {
        dep,
        site,
        until_wake,
    }: Start,
) -> Step {
    if until_wake {
        if let Some(waking) = start_waking(dep, site) {
            return waking;
        }
    }
    match Call::begin_at(dep, site) {
        Some(call) => Step::Running(call),
        // Outside any handler: nothing to end.
        None => Step::Done,
    }
}

/// Wake mode's start, out of line: it allocates anyway, and kept apart it
/// costs the default mode's poll nothing.
#[inline(never)]
fn start_waking(dep: &'static str, site: Option<&'static Site>) -> Option<Step> {
    let call = Waking::begin_in(scope::current()?, dep_id(dep, site));
    Some(Step::Waking(call))
}

/// `dep`'s number: looked up once per call site and kept there, or looked
/// up by its name's hash for a call made through the functions.
#[inline]
fn dep_id(dep: &'static str, site: Option<&'static Site>) -> DepId {
    match site {
        Some(site) => site.dep_id(),
        None => DepId::of(dep),
    }
}
