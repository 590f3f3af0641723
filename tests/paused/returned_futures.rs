//! A plain fn whose return type is a future is measured over the future's
//! life, whatever its body: `impl Future` (and `+ Unpin`), a boxed
//! `Pin<Box<dyn Future>>` built from a future the body only names,
//! `futures`' `BoxFuture` and `LocalBoxFuture`, and a type alias of the
//! user's own declared with `future`; for `#[timed_handler]`,
//! `#[external_call]` and `#[external_call(.., until_wake)]`. Exact figures on the
//! paused clock.
//!
//! Every future here does the same: 5 ms of its own, then a 10 ms call to
//! `backend` (a handler's), or 10 ms of waiting (a call's). Were the
//! function's construction of the future timed instead of the future, a
//! handler would read 0 µs and a call would add nothing.

use crate::common::{Capture, Closed, assert_send, ms};
use futures::FutureExt as _;
use futures::future::{BoxFuture, LocalBoxFuture};
use selftime::{external_call, timed_handler};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::sleep;

/// The figures of one span: (total, external, internal) µs, calls,
/// breakdown, outcome.
fn figures(span: &Closed) -> ((u64, u64, u64), u64, &str, &str) {
    (
        span.figures(),
        span.u64("external.calls"),
        span.breakdown(),
        span.outcome(),
    )
}

#[derive(Debug, PartialEq, Eq)]
struct Denied;

/// A boxed future under a name of the user's own.
type Fut = Pin<Box<dyn Future<Output = u32> + Send>>;

/// The same, fallible and borrowing.
type TryFut<'a> = Pin<Box<dyn Future<Output = Result<u32, Denied>> + Send + 'a>>;

// ---- handlers --------------------------------------------------------------

#[external_call("backend")]
async fn backend(d: Duration) {
    sleep(d).await;
}

/// 5 ms of its own, then 10 ms on `backend`.
async fn work() -> u32 {
    sleep(ms(5)).await;
    backend(ms(10)).await;
    7
}

async fn refused() -> Result<u32, Denied> {
    sleep(ms(5)).await;
    backend(ms(10)).await;
    Err(Denied)
}

#[timed_handler]
async fn h_async() -> u32 {
    work().await
}

#[timed_handler]
fn h_impl() -> impl Future<Output = u32> + Send {
    work()
}

#[timed_handler]
fn h_impl_unpin() -> impl Future<Output = u32> + Unpin {
    Box::pin(work())
}

/// The shape that once timed only `Box::pin`.
#[timed_handler]
fn h_pin_box() -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let fut = work();
    Box::pin(fut)
}

#[timed_handler]
fn h_box_future() -> BoxFuture<'static, u32> {
    work().boxed()
}

#[timed_handler]
fn h_local_box_future() -> LocalBoxFuture<'static, u32> {
    work().boxed_local()
}

#[timed_handler(future)]
fn h_alias() -> Fut {
    Box::pin(work())
}

#[timed_handler]
fn h_box_future_err() -> BoxFuture<'static, Result<u32, Denied>> {
    refused().boxed()
}

#[timed_handler(future)]
fn h_alias_err<'a>(_user: &'a str) -> TryFut<'a> {
    Box::pin(refused())
}

/// A `return` in the body gives the future to measure too.
#[timed_handler]
fn h_early(cached: bool) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    if cached {
        return Box::pin(std::future::ready(1));
    }
    Box::pin(work())
}

/// The same, the body ending by boxing an async block, under a name of the
/// user's own: the early future is measured too, not only the block.
#[timed_handler]
fn h_early_block(cached: bool) -> Fut {
    if cached {
        return Box::pin(async { 1 });
    }
    Box::pin(async move { work().await })
}

struct Service {
    calls: u32,
}

impl Service {
    #[timed_handler]
    fn h_method(&self) -> BoxFuture<'_, u32> {
        async move { work().await + self.calls }.boxed()
    }

    #[timed_handler]
    fn h_method_mut(&mut self) -> impl Future<Output = u32> + '_ {
        self.calls += 1;
        async move { work().await + self.calls }
    }
}

const HANDLER: ((u64, u64, u64), u64, &str, &str) =
    ((15_000, 10_000, 5_000), 1, "backend=10000us/1", "ok");

#[tokio::test(start_paused = true)]
async fn a_handler_is_measured_over_the_future_it_returns_whatever_its_type() {
    let (capture, _g) = Capture::install();
    assert_eq!(h_async().await, 7);
    assert_eq!(assert_send(h_impl()).await, 7);
    assert_eq!(h_impl_unpin().await, 7);
    assert_eq!(assert_send(h_pin_box()).await, 7);
    assert_eq!(assert_send(h_box_future()).await, 7);
    assert_eq!(h_local_box_future().await, 7);
    assert_eq!(assert_send(h_alias()).await, 7);
    for name in [
        "h_async",
        "h_impl",
        "h_impl_unpin",
        "h_pin_box",
        "h_box_future",
        "h_local_box_future",
        "h_alias",
    ] {
        assert_eq!(figures(&capture.only(name)), HANDLER, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_returning_a_future_starts_when_called() {
    let (capture, _g) = Capture::install();
    let fut = h_pin_box();
    sleep(ms(3)).await; // not yet polled, but the handler has begun
    assert_eq!(fut.await, 7);
    assert_eq!(
        figures(&capture.only("h_pin_box")),
        ((18_000, 10_000, 8_000), 1, "backend=10000us/1", "ok")
    );
}

#[tokio::test(start_paused = true)]
async fn the_outcome_comes_from_the_output_of_an_aliased_future() {
    let (capture, _g) = Capture::install();
    assert_eq!(h_box_future_err().await, Err(Denied));
    assert_eq!(h_alias_err("ann").await, Err(Denied));
    for name in ["h_box_future_err", "h_alias_err"] {
        assert_eq!(
            figures(&capture.only(name)),
            ((15_000, 10_000, 5_000), 1, "backend=10000us/1", "error"),
            "{name}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_return_in_the_body_returns_the_future_to_measure() {
    let (capture, _g) = Capture::install();
    assert_eq!(h_early(true).await, 1);
    assert_eq!(h_early(false).await, 7);
    let spans = capture.named("h_early");
    let got: Vec<_> = spans.iter().map(figures).collect();
    assert_eq!(got, [((0, 0, 0), 0, "", "ok"), HANDLER]);

    assert_eq!(h_early_block(true).await, 1);
    assert_eq!(h_early_block(false).await, 7);
    let spans = capture.named("h_early_block");
    let got: Vec<_> = spans.iter().map(figures).collect();
    assert_eq!(got, [((0, 0, 0), 0, "", "ok"), HANDLER]);
}

#[tokio::test(start_paused = true)]
async fn methods_returning_borrowing_futures() {
    let (capture, _g) = Capture::install();
    let mut service = Service { calls: 0 };
    assert_eq!(assert_send(service.h_method()).await, 7);
    assert_eq!(service.h_method_mut().await, 8);
    for name in ["h_method", "h_method_mut"] {
        assert_eq!(figures(&capture.only(name)), HANDLER, "{name}");
    }
}

// ---- external calls --------------------------------------------------------

/// 10 ms of waiting on a dependency.
async fn wait() -> u32 {
    sleep(ms(10)).await;
    7
}

#[external_call("async")]
async fn e_async() -> u32 {
    wait().await
}

#[external_call("impl")]
fn e_impl() -> impl Future<Output = u32> + Send {
    wait()
}

#[external_call("impl_unpin")]
fn e_impl_unpin() -> impl Future<Output = u32> + Unpin {
    Box::pin(wait())
}

#[external_call("pin_box")]
fn e_pin_box() -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let fut = wait();
    Box::pin(fut)
}

#[external_call("box_future")]
fn e_box_future() -> BoxFuture<'static, u32> {
    wait().boxed()
}

#[external_call("local_box_future")]
fn e_local_box_future() -> LocalBoxFuture<'static, u32> {
    wait().boxed_local()
}

#[external_call("alias", future)]
fn e_alias() -> Fut {
    Box::pin(wait())
}

#[external_call("early")]
fn e_early(cached: bool) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    if cached {
        return Box::pin(std::future::ready(1));
    }
    Box::pin(wait())
}

#[external_call("early_block")]
fn e_early_block(cached: bool) -> Fut {
    if cached {
        return Box::pin(async { 1 });
    }
    Box::pin(async move { wait().await })
}

#[external_call("async_wake", until_wake)]
async fn e_async_wake() -> u32 {
    wait().await
}

#[external_call("impl_wake", until_wake)]
fn e_impl_wake() -> impl Future<Output = u32> + Send {
    wait()
}

#[external_call("impl_unpin_wake", until_wake)]
fn e_impl_unpin_wake() -> impl Future<Output = u32> + Unpin {
    Box::pin(wait())
}

#[external_call("pin_box_wake", until_wake)]
fn e_pin_box_wake() -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let fut = wait();
    Box::pin(fut)
}

#[external_call("box_future_wake", until_wake)]
fn e_box_future_wake() -> BoxFuture<'static, u32> {
    wait().boxed()
}

#[external_call("local_box_future_wake", until_wake)]
fn e_local_box_future_wake() -> LocalBoxFuture<'static, u32> {
    wait().boxed_local()
}

#[external_call("alias_wake", until_wake, future)]
fn e_alias_wake() -> Fut {
    Box::pin(wait())
}

/// Builds the call first, works 5 ms, then awaits the call: a call is
/// measured from its first poll, so only the 10 ms of waiting is external.
#[timed_handler]
async fn caller(call: Pin<Box<dyn Future<Output = u32> + '_>>) -> u32 {
    sleep(ms(5)).await;
    call.await
}

/// The figures of `caller` awaiting `call`.
async fn through_caller(call: impl Future<Output = u32>) -> ((u64, u64, u64), u64, String, String) {
    let (capture, _g) = Capture::install();
    assert_eq!(caller(Box::pin(call)).await, 7);
    let span = capture.only("caller");
    let (figures, calls, breakdown, outcome) = figures(&span);
    (figures, calls, breakdown.to_owned(), outcome.to_owned())
}

/// A call to `dep` of 10 ms inside 15 ms of handler.
fn called(dep: &str) -> ((u64, u64, u64), u64, String, String) {
    (
        (15_000, 10_000, 5_000),
        1,
        format!("{dep}=10000us/1"),
        "ok".to_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_call_is_measured_over_the_future_it_returns_whatever_its_type() {
    assert_eq!(through_caller(e_async()).await, called("async"));
    assert_eq!(through_caller(assert_send(e_impl())).await, called("impl"));
    assert_eq!(through_caller(e_impl_unpin()).await, called("impl_unpin"));
    assert_eq!(
        through_caller(assert_send(e_pin_box())).await,
        called("pin_box")
    );
    assert_eq!(
        through_caller(assert_send(e_box_future())).await,
        called("box_future")
    );
    assert_eq!(
        through_caller(e_local_box_future()).await,
        called("local_box_future")
    );
    assert_eq!(
        through_caller(assert_send(e_alias())).await,
        called("alias")
    );
    assert_eq!(through_caller(e_early(false)).await, called("early"));
}

#[tokio::test(start_paused = true)]
async fn a_call_in_wake_mode_is_measured_over_the_future_it_returns_whatever_its_type() {
    assert_eq!(through_caller(e_async_wake()).await, called("async_wake"));
    assert_eq!(
        through_caller(assert_send(e_impl_wake())).await,
        called("impl_wake")
    );
    assert_eq!(
        through_caller(e_impl_unpin_wake()).await,
        called("impl_unpin_wake")
    );
    assert_eq!(
        through_caller(assert_send(e_pin_box_wake())).await,
        called("pin_box_wake")
    );
    assert_eq!(
        through_caller(assert_send(e_box_future_wake())).await,
        called("box_future_wake")
    );
    assert_eq!(
        through_caller(e_local_box_future_wake()).await,
        called("local_box_future_wake")
    );
    assert_eq!(
        through_caller(assert_send(e_alias_wake())).await,
        called("alias_wake")
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_returns_early_is_measured_too() {
    let (capture, _g) = Capture::install();
    assert_eq!(caller(Box::pin(e_early(true))).await, 1);
    assert_eq!(
        figures(&capture.only("caller")),
        ((5_000, 0, 5_000), 1, "early=0us/1", "ok")
    );
    assert_eq!(caller(Box::pin(e_early_block(true))).await, 1);
    assert_eq!(caller(Box::pin(e_early_block(false))).await, 7);
    let spans = capture.named("caller");
    let got: Vec<_> = spans.iter().map(figures).collect();
    assert_eq!(
        got,
        [
            ((5_000, 0, 5_000), 1, "early=0us/1", "ok"),
            ((5_000, 0, 5_000), 1, "early_block=0us/1", "ok"),
            ((15_000, 10_000, 5_000), 1, "early_block=10000us/1", "ok"),
        ]
    );
}
