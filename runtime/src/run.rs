//! One handler's run, from its start to its report, which it makes exactly
//! once however the run ends ([`Run`]); and [`Spec`] and [`HandlerFuture`],
//! what `#[timed_handler]` expands to.

use crate::handler::{self, HandlerContext, State};
use crate::ledger::Ticket;
use crate::reading::{Outcome, Reading, Route};
use crate::scope;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;
use tracing::Span;

/// A handler about to run: its name, the span its figures go to, and what
/// else it records. `#[timed_handler]` builds one; the `tower` layer too.
///
/// Not public API.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    route: Route,
    span: Span,
    split: bool,
    waited: u64,
    client: bool,
}

impl Spec {
    /// A handler named `name` (the metrics' `handler` label) recording on `span`.
    #[must_use]
    pub fn new(name: &'static str, span: Span) -> Self {
        Self {
            name,
            route: Route::Unknown,
            span,
            split: false,
            waited: 0,
            client: false,
        }
    }

    /// The handler's response is sent to a client through it (the `tower`
    /// layer): the time the client kept the response waiting is reported,
    /// and is not internal time.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn with_client(mut self) -> Self {
        self.client = true;
        self
    }

    /// The request had already waited `waited` nanoseconds in this process
    /// when the handler starts (the `tower` layer, from its arrival time).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn with_waited(mut self, waited: u64) -> Self {
        self.waited = waited;
        self
    }

    /// What the `tower` layer knows of the request's route, for the
    /// OpenTelemetry series' attributes.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Also splits internal time into busy, scheduled and waiting, at the
    /// cost of two clock reads per poll (`#[timed_handler(split)]`).
    #[must_use]
    pub fn with_split(mut self) -> Self {
        self.split = true;
        self
    }

    /// Runs a synchronous body in a new handler that starts now.
    pub fn run_sync<R>(self, body: impl FnOnce() -> R, classify: fn(&R) -> bool) -> R {
        let (mut run, handler) = Run::start(self);
        let out = run.step(|| scope::sync_scope(handler, body));
        run.finish(outcome_of(classify(&out)));
        out
    }

    /// Runs a future in a new handler that starts now.
    pub fn run_async<F: Future>(
        self,
        fut: F,
        classify: fn(&F::Output) -> bool,
    ) -> HandlerFuture<F> {
        let (run, handler) = Run::start(self);
        HandlerFuture {
            inner: scope::scope(handler, fut),
            run,
            classify,
        }
    }

    /// Runs a synchronous body that returns a future, then that future, in
    /// one handler: the shape of a plain `fn` whose return type is a future
    /// (`impl Future`, a boxed future, `future`).
    pub fn run_returned<F: Future>(
        self,
        body: impl FnOnce() -> F,
        classify: fn(&F::Output) -> bool,
    ) -> HandlerFuture<F> {
        let (mut run, handler) = Run::start(self);
        let fut = run.step(|| scope::sync_scope(handler.clone(), body));
        HandlerFuture {
            inner: scope::scope(handler, fut),
            run,
            classify,
        }
    }
}

fn outcome_of(is_err: bool) -> Outcome {
    if is_err { Outcome::Error } else { Outcome::Ok }
}

/// One handler's run: reports its figures exactly once, on completion
/// through [`Run::finish`], or from `Drop` when the body panicked or was
/// cancelled.
///
/// Every handler runs through one: the attribute's futures and closures,
/// and the `tower` layer, which finishes it only when the response body
/// ends.
#[derive(Debug)]
pub(crate) struct Run {
    /// `None` only once `drop` has handed it to the pool.
    handler: Option<HandlerContext>,
    reported: bool,
    name: &'static str,
    route: Route,
    span: Span,
    /// Set while a step of the body runs (see [`Run::step`]). A body that
    /// unwinds never clears it, which is how a panic is told from a
    /// cancellation even when the future is dropped only after unwinding has
    /// finished (tokio's task harness, `catch_unwind`), where
    /// `std::thread::panicking()` is already false.
    running: bool,
    /// The time the client kept the response waiting, when it is tracked
    /// (see [`Run::frame_sent`]).
    client: Option<ClientWait>,
    #[cfg(all(debug_assertions, not(feature = "test-util")))]
    paused: crate::clock::PausedCheck,
}

/// The waits between a response frame handed to the server and the server
/// asking for the next: the server was sending it, at the pace the client
/// took it.
#[derive(Debug, Default)]
struct ClientWait {
    total: u64,
    /// When the last frame was handed over, and the external busy time then.
    sent: Option<(u64, u64)>,
}

impl Run {
    /// Opens the handler now, nested in the handler in scope if any; the
    /// run, and the handler to run the body's steps in.
    pub(crate) fn start(spec: Spec) -> (Self, HandlerContext) {
        let handler = HandlerContext::open_waited(spec.split, spec.waited, scope::current());
        let run = Self {
            handler: Some(handler.clone()),
            reported: false,
            name: spec.name,
            route: spec.route,
            span: spec.span,
            running: false,
            client: spec.client.then(ClientWait::default),
            #[cfg(all(debug_assertions, not(feature = "test-util")))]
            paused: crate::clock::PausedCheck::start(),
        };
        (run, handler)
    }

    /// The handler it runs, while it has one.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn handler(&self) -> Option<HandlerContext> {
        self.handler.clone()
    }

    /// The handler's name, as it will be reported.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The span the figures are recorded on.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Names the handler `name`, with `route`, from now on: in its report,
    /// and in its span's `otel.name` (the `tower` layer, naming a gRPC
    /// method only once the server has answered it).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn rename(&mut self, name: &'static str, route: Route) {
        self.name = name;
        self.route = route;
        self.span.record("otel.name", name);
    }

    /// Runs one step of the body (its call, a poll, a body frame): inside
    /// the span, timed as a poll when the ledger splits internal time, and
    /// marked running, so that a step that unwinds reads `panic`.
    pub(crate) fn step<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.running = true;
        let out = {
            let _entered = self.span.enter();
            let _polled = self.handler.as_ref().and_then(|h| Polled::begin(h.state()));
            f()
        };
        self.running = false;
        out
    }

    /// [`Run::step`] with the handler in scope, for a step that is not
    /// polled inside a task-local future of its own.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn step_in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let handler = self.handler.clone();
        self.step(|| match handler {
            Some(handler) => scope::sync_scope(handler, f),
            None => f(),
        })
    }

    /// A response frame was handed to the server now.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn frame_sent(&mut self) {
        if let (Some(client), Some(handler)) = (&mut self.client, &self.handler) {
            let state = handler.state();
            let now = state.now();
            client.sent = Some((now, state.ledger().external_at(now)));
        }
    }

    /// The server asks for the next frame now: the time since the last one
    /// was handed over, less external time in it (a carried task's call),
    /// was the client's.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn frame_asked(&mut self) {
        if let (Some(client), Some(handler)) = (&mut self.client, &self.handler) {
            if let Some((sent, external_then)) = client.sent.take() {
                let state = handler.state();
                let now = state.now();
                let external = state.ledger().external_at(now);
                let wait = now
                    .saturating_sub(sent)
                    .saturating_sub(external.saturating_sub(external_then));
                client.total = client.total.saturating_add(wait);
            }
        }
    }

    /// Reports now with `outcome`; later calls (and the drop) do nothing.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if self.reported {
            return;
        }
        self.reported = true;
        if let Some(handler) = &self.handler {
            let state = handler.state();
            let client = self.client.as_ref().map(|c| c.total);
            let reading = Reading::new(state, state.now()).with_client(client);
            crate::report::report(self.name, self.route, &self.span, &reading, outcome);
        }
        #[cfg(all(debug_assertions, not(feature = "test-util")))]
        self.paused.finish();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let outcome = if self.running {
            Outcome::Panic
        } else {
            Outcome::Cancelled
        };
        self.finish(outcome);
        if let Some(handler) = self.handler.take() {
            handler::recycle(handler);
        }
    }
}

pin_project! {
    /// A handler's future: see `#[timed_handler]`. Not public API.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct HandlerFuture<F: Future> {
        // Declared before the run so that it is dropped first, inside the
        // handler's scope: calls cancelled with it close before the report.
        #[pin]
        inner: TaskLocalFuture<HandlerContext, F>,
        run: Run,
        classify: fn(&F::Output) -> bool,
    }
}

impl<F: Future> Future for HandlerFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut inner = this.inner;
        let out = this.run.step(|| inner.as_mut().poll(cx));
        if let Poll::Ready(value) = &out {
            this.run.finish(outcome_of((this.classify)(value)));
        }
        out
    }
}

/// One poll of a handler's body, for ledgers that split internal time: the
/// interval ends when this drops, so a poll that unwinds still closes it.
struct Polled<'a> {
    state: &'a State,
    ticket: Ticket,
    /// When the poll began: its end is never read as earlier (see `Call`).
    start: u64,
}

impl<'a> Polled<'a> {
    #[inline]
    fn begin(state: &'a State) -> Option<Self> {
        let ledger = state.ledger();
        ledger.tracks_split().then(|| {
            let start = state.now();
            Self {
                state,
                ticket: ledger.poll_begin(start),
                start,
            }
        })
    }
}

impl Drop for Polled<'_> {
    fn drop(&mut self) {
        let now = self.state.now().max(self.start);
        self.state.ledger().poll_end(self.ticket, now);
    }
}
