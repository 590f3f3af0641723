//! Every return shape the attributes still accept compiles without a
//! warning and runs: futures however their trait is written, and `impl
//! Trait` values that are built by the time the fn returns; and
//! `span = "current"` under an `#[instrument]` that declares the fields.

use selftime::{external_call, timed_handler};
use std::fmt::Display;
use std::future::{Future, IntoFuture};

#[timed_handler]
fn future_send() -> impl Future<Output = u32> + Send {
    async { 1 }
}

#[timed_handler]
fn future_borrowing<'a>(x: &'a u32) -> impl Future<Output = u32> + 'a {
    async move { *x }
}

#[timed_handler]
fn future_send_first() -> impl Send + Future<Output = u32> {
    async { 2 }
}

#[external_call("core")]
fn future_core_path() -> impl core::future::Future<Output = u32> {
    async { 3 }
}

#[external_call("std")]
fn future_std_path() -> impl std::future::Future<Output = u32> + Send + 'static {
    async { 4 }
}

/// What callers of an `impl IntoFuture` fn write stays the same with
/// `impl Future`, which the error advises.
#[timed_handler]
fn into_future_advised() -> impl Future<Output = u32> {
    std::future::ready(5).into_future()
}

#[timed_handler]
fn display() -> impl Display {
    6
}

#[external_call("into")]
fn into_string() -> impl Into<String> {
    "seven"
}

#[timed_handler]
async fn async_display() -> impl Display + Send {
    8
}

/// A lazy value inside another type is a value the caller delivers (axum's
/// `Sse<impl Stream<…>>`), not the fn's work: measured as a plain fn.
pub(crate) struct Response<B>(B);

#[timed_handler]
fn response_with_lazy_body() -> Response<impl Iterator<Item = u32>> {
    Response((0..3).map(|i| i + 1))
}

#[timed_handler]
fn collected(n: u32) -> Vec<u32> {
    (0..n).map(|i| i * i).collect()
}

/// `span = "current"` under an `#[instrument]` that declares every field,
/// in either of the forms tracing reads as empty.
#[timed_handler(span = "current")]
#[tracing::instrument(fields(
    total.duration_us,
    external.duration_us = tracing::field::Empty,
    internal.duration_us,
    external.calls,
    external.breakdown,
    outcome,
    internal.backlog_us,
    external.between_us,
))]
fn declared(n: u32) -> u32 {
    n
}

#[timed_handler(span = "current", split)]
#[tracing::instrument(
    skip(n),
    fields(
        total.duration_us,
        external.duration_us,
        internal.duration_us,
        external.calls,
        external.breakdown,
        outcome,
        internal.backlog_us,
        external.between_us,
        internal.busy_us,
        internal.scheduled_us,
        internal.waiting_us,
    )
)]
async fn declared_split(n: u32) -> u32 {
    n
}

/// An `#[instrument]` above has expanded before `#[timed_handler]` runs,
/// out of its sight: the runtime warns instead, if the span lacks the
/// fields.
#[tracing::instrument]
#[timed_handler(span = "current")]
fn instrument_above(n: u32) -> u32 {
    n
}

#[test]
fn every_accepted_shape_runs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let x = 10;
    assert_eq!(runtime.block_on(future_send()), 1);
    assert_eq!(runtime.block_on(future_borrowing(&x)), 10);
    assert_eq!(runtime.block_on(future_send_first()), 2);
    assert_eq!(runtime.block_on(future_core_path()), 3);
    assert_eq!(runtime.block_on(future_std_path()), 4);
    assert_eq!(runtime.block_on(into_future_advised()), 5);
    assert_eq!(display().to_string(), "6");
    assert_eq!(into_string().into(), "seven");
    assert_eq!(runtime.block_on(async_display()).to_string(), "8");
    assert_eq!(response_with_lazy_body().0.collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(collected(3), [0, 1, 4]);
    assert_eq!(declared(11), 11);
    assert_eq!(runtime.block_on(declared_split(12)), 12);
    assert_eq!(instrument_above(13), 13);
}
