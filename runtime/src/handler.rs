//! Handlers: open a ledger, run the body in its scope, report from a drop
//! guard however the body ends.

use crate::ledger::Ticket;
use crate::report::Route;
use crate::scope::{self, Scope};
use crate::snapshot::{Outcome, Reading};
use pin_project_lite::pin_project;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tracing::Span;

/// A handler about to run: its name and the span its figures go to.
///
/// Not public API: `#[timed_handler]` builds one. Users who want a handler
/// scope without the attribute use the `tower` layer or this crate's
/// functions.
#[derive(Debug)]
pub struct Handler {
    name: &'static str,
    route: Route,
    span: Span,
    polls: bool,
}

impl Handler {
    /// A handler named `name` (the metrics' `handler` label) recording on `span`.
    #[must_use]
    pub fn new(name: &'static str, span: Span) -> Self {
        Self {
            name,
            route: Route::Unknown,
            span,
            polls: false,
        }
    }

    /// What the `tower` layer knows of the request's route, for the
    /// OpenTelemetry series' attributes.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Also splits internal time into busy, scheduled and waiting, at the
    /// cost of two clock reads per poll (`#[timed_handler(polls)]`).
    #[must_use]
    pub fn with_polls(mut self) -> Self {
        self.polls = true;
        self
    }

    /// Runs a synchronous body in a new handler scope that starts now.
    pub fn run_sync<R>(self, body: impl FnOnce() -> R, classify: fn(&R) -> bool) -> R {
        let mut guard = Guard::start(self);
        guard.running = true;
        let out = {
            let _entered = guard.span.enter();
            let _polled = Polled::begin(&guard.scope);
            scope::sync_scope(guard.scope(), body)
        };
        guard.running = false;
        guard.finish(outcome_of(classify(&out)));
        out
    }

    /// Runs a future in a new handler scope that starts now.
    pub fn run_async<F: Future>(
        self,
        fut: F,
        classify: fn(&F::Output) -> bool,
    ) -> HandlerFuture<F> {
        let guard = Guard::start(self);
        HandlerFuture {
            inner: scope::scope(guard.scope(), fut),
            guard,
            classify,
        }
    }

    /// Runs a synchronous body that returns a future, then that future, in
    /// one handler scope: the shape of a plain `fn` whose return type is a
    /// future (`impl Future`, a boxed future, `future`).
    pub fn run_returned<F: Future>(
        self,
        body: impl FnOnce() -> F,
        classify: fn(&F::Output) -> bool,
    ) -> HandlerFuture<F> {
        let mut guard = Guard::start(self);
        guard.running = true;
        let fut = {
            let _entered = guard.span.enter();
            let _polled = Polled::begin(&guard.scope);
            scope::sync_scope(guard.scope(), body)
        };
        guard.running = false;
        HandlerFuture {
            inner: scope::scope(guard.scope(), fut),
            guard,
            classify,
        }
    }
}

fn outcome_of(is_err: bool) -> Outcome {
    if is_err {
        Outcome::Error
    } else {
        Outcome::Ok
    }
}

/// Reports a handler's figures exactly once: on completion through
/// [`Guard::finish`], or from `Drop` when the body panicked or was cancelled.
///
/// The building block of every handler scope in this crate: the attribute's
/// futures and closures above, and the `tower` layer, which finishes it only
/// when the response body ends.
#[derive(Debug)]
pub(crate) struct Guard {
    // Taken out only by `drop`, to hand the scope back for reuse.
    scope: ManuallyDrop<Arc<Scope>>,
    reported: bool,
    name: &'static str,
    route: Route,
    span: Span,
    /// Set while the body runs. A body that unwinds never clears it, which is
    /// how a panic is told from a cancellation even when the future is
    /// dropped only after unwinding has finished (tokio's task harness,
    /// `catch_unwind`), where `std::thread::panicking()` is already false.
    pub(crate) running: bool,
}

impl Guard {
    /// Opens the handler's scope now, nested in the handler in scope if any.
    pub(crate) fn start(handler: Handler) -> Self {
        Self {
            scope: ManuallyDrop::new(Scope::open(Instant::now(), handler.polls)),
            reported: false,
            name: handler.name,
            route: handler.route,
            span: handler.span,
            running: false,
        }
    }

    /// The handler's scope, to run work in with `scope::scope`/`sync_scope`.
    pub(crate) fn scope(&self) -> Arc<Scope> {
        Arc::clone(&self.scope)
    }

    /// The span the figures are recorded on (the `tower` layer enters it
    /// around each frame of a response body).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Reports now with `outcome`; later calls (and the drop) do nothing.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if !self.reported {
            self.reported = true;
            let reading = Reading::new(&self.scope, self.scope.now());
            crate::report::report(self.name, self.route, &self.span, &reading, outcome);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let outcome = if self.running {
            Outcome::Panic
        } else {
            Outcome::Cancelled
        };
        self.finish(outcome);
        // SAFETY: `scope` is not used again: this is the guard's drop.
        scope::recycle(unsafe { ManuallyDrop::take(&mut self.scope) });
    }
}

pin_project! {
    /// A handler's future: see `#[timed_handler]`. Not public API.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct HandlerFuture<F: Future> {
        // Declared before the guard so that it is dropped first, inside the
        // handler's scope: calls cancelled with it close before the report.
        #[pin]
        inner: TaskLocalFuture<Arc<Scope>, F>,
        guard: Guard,
        classify: fn(&F::Output) -> bool,
    }
}

impl<F: Future> Future for HandlerFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let guard: &mut Guard = this.guard;
        let entered = guard.span.enter();
        let polled = Polled::begin(&guard.scope);
        guard.running = true;
        let out = this.inner.poll(cx);
        guard.running = false;
        drop(polled);
        drop(entered);
        if let Poll::Ready(value) = &out {
            guard.finish(outcome_of((this.classify)(value)));
        }
        out
    }
}

/// One poll of a handler's body, for ledgers that split internal time: the
/// interval ends when this drops, so a poll that unwinds still closes it.
struct Polled<'a> {
    scope: &'a Scope,
    ticket: Ticket,
    /// When the poll began: its end is never read as earlier (see `Call`).
    start: u64,
}

impl<'a> Polled<'a> {
    #[inline]
    fn begin(scope: &'a Scope) -> Option<Self> {
        let ledger = scope.ledger();
        ledger.tracks_activity().then(|| {
            let start = scope.now();
            Self {
                scope,
                ticket: ledger.poll_begin(start),
                start,
            }
        })
    }
}

impl Drop for Polled<'_> {
    fn drop(&mut self) {
        let now = self.scope.now().max(self.start);
        self.scope.ledger().poll_end(self.ticket, now);
    }
}
