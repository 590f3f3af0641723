//! External calls: the time a handler spends waiting on its dependencies.

use crate::orphan::{self, Site};
use crate::scope::{self, Scope, Tickets};
use crate::wake::WakeCall;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// One external call in flight: ends (and is counted) when dropped.
///
/// Outside any handler there is nothing to count, so [`Call::begin`] reads
/// no clock, counts an orphan call and returns `None`.
#[derive(Debug)]
pub(crate) struct Call {
    // Held so the ledger outlives the call even when the call outlives the
    // handler (a spawned task still running when its handler reported).
    scope: Arc<Scope>,
    dep: &'static str,
    tickets: Tickets,
    /// When the call began: its end is never read as earlier, so that a
    /// clock that looked backwards counts the call as no time rather than
    /// taking time back from the union it closes.
    start: u64,
}

impl Call {
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    #[inline]
    pub(crate) fn begin(dep: &'static str) -> Option<Self> {
        Self::begin_at(dep, None)
    }

    /// [`Call::begin`], attributing an orphan call to an `#[external_call]` site.
    // Measured (the `beyond` bench): left to the inliner, the call came back
    // through the stack and was copied twice, at 2.5x the cost.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(crate) fn begin_at(dep: &'static str, site: Option<&'static Site>) -> Option<Self> {
        begin_in_scope(dep, site, |scope, tickets, start| Self {
            // SAFETY: `scope` is the address of the `Arc` the task-local holds
            // (`begin_in_scope`), alive now; this takes a count of our own.
            scope: unsafe {
                Arc::increment_strong_count(scope);
                Arc::from_raw(scope)
            },
            dep,
            tickets,
            start,
        })
    }
}

/// Starts a call to `dep` in the handler in scope and wraps it with `wrap`;
/// outside any handler, counts an orphan call instead (reading no clock).
///
/// The task-local is only asked for the handler's address, so that the path
/// outside any handler stays a lookup and a counter. Always inlined, so that
/// the call is built where it is kept rather than returned through the stack
/// and copied.
#[allow(clippy::inline_always)]
#[inline(always)]
fn begin_in_scope<T>(
    dep: &'static str,
    site: Option<&'static Site>,
    wrap: impl FnOnce(*const Scope, Tickets, u64) -> T,
) -> Option<T> {
    let Some(scope) = scope::current_ptr() else {
        orphan::record(dep, site);
        return None;
    };
    // SAFETY: the task-local still holds the handler's `Arc`: nothing has
    // run since the lookup.
    let handler = unsafe { &*scope };
    let now = handler.now();
    Some(wrap(scope, handler.begin(dep, now), now))
}

impl Drop for Call {
    // Out of line: the drop glue of the states that hold no call (outside
    // any handler, finished) then needs no registers saved.
    #[inline(never)]
    fn drop(&mut self) {
        self.scope
            .end(self.dep, self.tickets, self.scope.now().max(self.start));
    }
}

/// One synchronous external call in flight: ends (and is counted) when
/// dropped, which must happen before the code that found the handler in
/// scope returns.
///
/// Unlike [`Call`] it borrows the handler rather than holding it: the
/// handler in scope is held by the task-local for as long as its scope is
/// entered, and a synchronous call starts and ends inside one stretch of
/// that (a sync `#[external_call]` fn's body, `external_sync`'s closure).
/// A scope nested inside the call moves the handle aside and back, never
/// dropping it. That saves the reference count's two atomic operations.
#[derive(Debug)]
pub(crate) struct SyncCall {
    scope: *const Scope,
    dep: &'static str,
    tickets: Tickets,
    /// When the call began: its end is never read as earlier, so that a
    /// clock that looked backwards counts the call as no time rather than
    /// taking time back from the union it closes.
    start: u64,
}

impl SyncCall {
    /// Starts a call to `dep`, or counts an orphan call and returns `None`.
    #[inline]
    pub(crate) fn begin(dep: &'static str, site: Option<&'static Site>) -> Option<Self> {
        begin_in_scope(dep, site, |scope, tickets, start| Self {
            scope,
            dep,
            tickets,
            start,
        })
    }
}

impl Drop for SyncCall {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the task-local that handed out this pointer still holds its
        // `Arc` (see the type's docs): the call ends inside the same stretch
        // of the scope it began in.
        let scope = unsafe { &*self.scope };
        scope.end(self.dep, self.tickets, scope.now().max(self.start));
    }
}

/// Measures `fut` as an external call to `dep` of the handler in scope.
///
/// The call's busy interval runs from the future's first poll to its
/// completion, or to its drop if it is cancelled first. Outside any handler
/// the future runs unmeasured, at the cost of one task-local lookup.
///
/// This is what `#[external_call]` expands to for an `async fn`.
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
    External {
        inner: fut,
        dep,
        site: None,
        until_wake: false,
        state: State::NotStarted,
    }
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
    let _call = SyncCall::begin(dep, None);
    f()
}

#[derive(Debug)]
enum State {
    NotStarted,
    // Held for its `Drop`, which ends the call.
    Running { _call: Option<Call> },
    // Wake mode: the call and the waker the inner future is polled with.
    Waking(Waking),
    Done,
}

impl State {
    #[inline]
    fn holds_a_call(&self) -> bool {
        matches!(self, Self::Running { _call: Some(_) } | Self::Waking(_))
    }
}

/// A wake-mode call in flight: ends when dropped. (Its own type, so that
/// `State` needs no `Drop` of its own and dropping the other states costs
/// nothing.)
#[derive(Debug)]
struct Waking {
    call: Arc<WakeCall>,
    waker: Waker,
}

impl Drop for Waking {
    fn drop(&mut self) {
        self.call.finish();
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
        dep: &'static str,
        site: Option<&'static Site>,
        until_wake: bool,
        state: State,
    }
}

impl<F> External<F> {
    /// Not public API: attributes the call to an `#[external_call]` site.
    #[doc(hidden)]
    pub fn at(mut self, site: &'static Site) -> Self {
        self.site = Some(site);
        self
    }

    /// Wake mode: end the call's interval when its dependency wakes the
    /// task, rather than when the task is next polled, so that time spent in
    /// a busy runtime's run queue is not charged to the dependency. The wait
    /// from the wake to the next poll is internal time, reported as
    /// `internal.scheduled_us` by handlers with `polls`. Costs one allocation
    /// per call. `#[external_call("dep", wake)]` selects it.
    ///
    /// ```
    /// # async fn query() -> u32 { 1 }
    /// # async fn demo() {
    /// let rows = selftime::external("db", query()).until_wake().await;
    /// # }
    /// ```
    pub fn until_wake(mut self) -> Self {
        self.until_wake = true;
        self
    }
}

impl<F: Future> Future for External<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let State::NotStarted = this.state {
            // `NotStarted` holds nothing: skip its drop glue.
            std::mem::forget(std::mem::replace(
                this.state,
                start(this.dep, *this.site, *this.until_wake),
            ));
        }
        let out = match &*this.state {
            State::Waking(Waking { call, waker }) => {
                call.before_poll(cx.waker());
                this.inner.poll(&mut Context::from_waker(waker))
            }
            _ => this.inner.poll(cx),
        };
        if out.is_ready() && this.state.holds_a_call() {
            // Dropping the call ends it now rather than when the future is dropped.
            *this.state = State::Done;
        }
        out
    }
}

#[inline]
fn start(dep: &'static str, site: Option<&'static Site>, until_wake: bool) -> State {
    if until_wake {
        if let Some(waking) = start_waking(dep) {
            return waking;
        }
    }
    State::Running {
        _call: Call::begin_at(dep, site),
    }
}

/// Wake mode's start, out of line: it allocates anyway, and kept apart it
/// costs the default mode's poll nothing.
#[inline(never)]
fn start_waking(dep: &'static str) -> Option<State> {
    let (call, waker) = WakeCall::begin(scope::current()?, dep);
    Some(State::Waking(Waking { call, waker }))
}
