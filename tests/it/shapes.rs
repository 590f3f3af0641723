//! Every function shape a real service has keeps compiling, keeps its
//! signature, and still records (exact figures on the paused clock).

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, assert_send, ms};
use selftime::{external_call, timed_handler};
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::sleep;

#[external_call("dep")]
async fn dep(d: Duration) {
    sleep(d).await;
}

// ---- generics, where clauses, impl Trait, lifetimes, patterns -------------

/// Doc comments survive.
#[timed_handler]
pub async fn generic<T>(x: T, extra: impl Into<u64> + Send) -> String
where
    T: Display + Send,
{
    dep(ms(extra.into())).await;
    format!("{x}")
}

#[timed_handler]
async fn returns_impl(n: u32) -> impl Display {
    dep(ms(1)).await;
    n * 2
}

// A returned iterator would do its work after the handler's end, and is
// refused (compile-check's UI tests); an `impl Trait` value built by the
// return is measured as a plain fn.
#[timed_handler]
fn sync_impl_into(xs: impl IntoIterator<Item = u32>) -> impl Into<Vec<u32>> {
    xs.into_iter().map(|x| x + 1).collect::<Vec<_>>()
}

#[timed_handler]
async fn first<'a>(xs: &'a [u32]) -> Option<&'a u32> {
    dep(ms(2)).await;
    xs.first()
}

#[timed_handler]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() { a } else { b }
}

struct Wrapper(u32);

#[timed_handler]
#[allow(unused_mut)]
async fn patterns((a, b): (u32, u32), Wrapper(c): Wrapper, mut d: u32, (): ()) -> u32 {
    d += 1;
    a + b + c + d
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn generics_impl_trait_lifetimes_and_patterns() {
    let (capture, _g) = Capture::install();
    assert_eq!(assert_send(generic("x", 3u8)).await, "x");
    assert_eq!(returns_impl(4).await.to_string(), "8");
    assert_eq!(sync_impl_into([1, 2]).into(), [2, 3]);
    let xs = [5, 6];
    assert_eq!(first(&xs).await, Some(&5));
    assert_eq!(longest("ab", "c"), "ab");
    assert_eq!(patterns((1, 2), Wrapper(3), 4, ()).await, 11);

    assert_eq!(capture.only("generic").figures(), (3_000, 3_000, 0));
    assert_eq!(capture.only("returns_impl").figures(), (1_000, 1_000, 0));
    assert_eq!(capture.only("first").figures(), (2_000, 2_000, 0));
    for name in ["sync_impl_into", "longest", "patterns"] {
        assert_eq!(capture.only(name).outcome(), "ok");
    }
}

// ---- receivers and Self ---------------------------------------------------

#[derive(Default)]
struct Service {
    hits: u32,
}

impl Service {
    #[timed_handler]
    async fn by_ref(&self) -> u32 {
        dep(ms(1)).await;
        self.hits
    }

    #[timed_handler]
    fn by_mut(&mut self) -> &mut u32 {
        self.hits += 1;
        &mut self.hits
    }

    #[timed_handler]
    async fn by_mut_async(&mut self) -> &mut u32 {
        dep(ms(1)).await;
        self.hits += 1;
        &mut self.hits
    }

    #[timed_handler]
    async fn by_arc(self: Arc<Self>) -> Self {
        dep(ms(1)).await;
        Self { hits: self.hits }
    }

    #[timed_handler]
    fn by_value(self) -> u32 {
        let fresh = Self::default();
        self.hits + fresh.hits
    }

    #[external_call("self_dep")]
    async fn fetch(&self, d: Duration) -> u32 {
        sleep(d).await;
        self.hits
    }

    #[external_call("self_dep")]
    fn fetch_sync(&mut self) -> &mut u32 {
        &mut self.hits
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn receivers_and_self() {
    let (capture, _g) = Capture::install();
    let mut svc = Service::default();
    *svc.by_mut() += 10;
    *svc.by_mut_async().await += 1;
    // 0, +1 in by_mut, +10 here, +1 in by_mut_async, +1 here.
    assert_eq!(svc.by_ref().await, 13);
    *svc.fetch_sync() += 1;
    assert_eq!(svc.fetch(ms(1)).await, 14);
    let svc = Arc::new(svc);
    let back = assert_send(Arc::clone(&svc).by_arc()).await;
    assert_eq!(back.by_value(), 14);
    for name in ["by_mut", "by_mut_async", "by_ref", "by_arc", "by_value"] {
        assert_eq!(capture.only(name).outcome(), "ok", "{name}");
    }
    assert_eq!(capture.only("by_arc").figures(), (1_000, 1_000, 0));
}

// ---- early return and ? ---------------------------------------------------

#[derive(Debug, PartialEq)]
struct Oops;

impl From<std::num::ParseIntError> for Oops {
    fn from(_: std::num::ParseIntError) -> Self {
        Self
    }
}

#[timed_handler]
fn parse_sync(s: &str) -> Result<u32, Oops> {
    if s.is_empty() {
        return Err(Oops);
    }
    let n: u32 = s.parse()?;
    Ok(n)
}

#[timed_handler]
async fn parse_async(s: &str) -> Result<u32, Oops> {
    dep(ms(1)).await;
    if s.is_empty() {
        return Ok(0);
    }
    Ok(s.parse::<u32>()?)
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn early_return_and_question_mark() {
    let (capture, _g) = Capture::install();
    assert_eq!(parse_sync("7"), Ok(7));
    assert_eq!(parse_sync(""), Err(Oops));
    assert_eq!(parse_sync("x"), Err(Oops));
    assert_eq!(parse_async("").await, Ok(0));
    assert_eq!(parse_async("y").await, Err(Oops));
    let sync: Vec<_> = capture
        .named("parse_sync")
        .iter()
        .map(|s| s.outcome().to_owned())
        .collect();
    assert_eq!(sync, ["ok", "error", "error"]);
    let not_async: Vec<_> = capture
        .named("parse_async")
        .iter()
        .map(|s| s.outcome().to_owned())
        .collect();
    assert_eq!(not_async, ["ok", "error"]);
}

// ---- traits: native async fn, #[async_trait] ------------------------------

trait Store {
    async fn get(&self, key: u32) -> u32;
    fn name(&self) -> &'static str {
        "store"
    }
}

struct Memory;

impl Store for Memory {
    #[timed_handler]
    async fn get(&self, key: u32) -> u32 {
        dep(ms(4)).await;
        key
    }

    #[timed_handler]
    fn name(&self) -> &'static str {
        "memory"
    }
}

#[async_trait::async_trait]
trait Backend {
    async fn load(&self, key: u32) -> Result<u32, Oops>;
    async fn ping(&self);
}

struct Remote;

#[async_trait::async_trait]
impl Backend for Remote {
    #[timed_handler]
    async fn load(&self, key: u32) -> Result<u32, Oops> {
        self.ping().await;
        sleep(ms(2)).await;
        if key == 0 { Err(Oops) } else { Ok(key) }
    }

    #[external_call("remote")]
    async fn ping(&self) {
        sleep(ms(6)).await;
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn trait_methods_native_and_async_trait() {
    let (capture, _g) = Capture::install();
    assert_eq!(Memory.get(3).await, 3);
    assert_eq!(Memory.name(), "memory");
    assert_eq!(capture.only("get").figures(), (4_000, 4_000, 0));

    let backend: Box<dyn Backend + Send + Sync> = Box::new(Remote);
    assert_eq!(assert_send(backend.load(5)).await, Ok(5));
    assert_eq!(backend.load(0).await, Err(Oops));
    let loads = capture.named("load");
    assert_eq!(loads.len(), 2);
    // The boxed inner future is what is timed, not the creation of the box.
    assert_eq!(loads[0].figures(), (8_000, 6_000, 2_000));
    assert_eq!(loads[0].breakdown(), "remote=6000us/1");
    assert_eq!(loads[0].outcome(), "ok");
    assert_eq!(loads[1].outcome(), "error");
}

// ---- fns returning futures; recursion through Box::pin ---------------------

#[timed_handler]
fn returns_future(n: u64) -> impl Future<Output = Result<u64, Oops>> + Send {
    let d = ms(n);
    async move {
        dep(d).await;
        sleep(ms(1)).await;
        Ok(n)
    }
}

#[external_call("lazy")]
fn lazy_call(n: u64) -> impl Future<Output = u64> {
    async move {
        sleep(ms(n)).await;
        n
    }
}

#[timed_handler]
fn factorial(n: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        dep(ms(1)).await;
        if n <= 1 {
            1
        } else {
            n * factorial(n - 1).await
        }
    })
}

#[timed_handler]
async fn calls_lazy() -> u64 {
    let fut = lazy_call(3);
    sleep(ms(2)).await; // created, not yet polled: not external
    fut.await
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn functions_returning_futures_and_boxed_recursion() {
    let (capture, _g) = Capture::install();
    assert_eq!(assert_send(returns_future(5)).await, Ok(5));
    assert_eq!(
        capture.only("returns_future").figures(),
        (6_000, 5_000, 1_000)
    );

    assert_eq!(calls_lazy().await, 3);
    let span = capture.only("calls_lazy");
    assert_eq!(span.figures(), (5_000, 3_000, 2_000));
    assert_eq!(span.breakdown(), "lazy=3000us/1");

    assert_eq!(factorial(4).await, 24);
    let mut levels: Vec<_> = capture
        .named("factorial")
        .iter()
        .map(|s| (s.figures(), s.u64("external.calls")))
        .collect();
    levels.sort_unstable();
    // Each level sees its own call and every call of the levels inside it.
    assert_eq!(
        levels,
        [
            ((1_000, 1_000, 0), 1),
            ((2_000, 2_000, 0), 2),
            ((3_000, 3_000, 0), 3),
            ((4_000, 4_000, 0), 4),
        ]
    );
}

// ---- !Send futures --------------------------------------------------------

#[timed_handler]
async fn not_send() -> usize {
    let rc = std::rc::Rc::new(5);
    dep(ms(1)).await;
    *rc
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_not_send_future_still_compiles_and_records() {
    let (capture, _g) = Capture::install();
    assert_eq!(not_send().await, 5);
    assert_eq!(capture.only("not_send").figures(), (1_000, 1_000, 0));
}

// ---- stacking with tokio and tracing attributes ---------------------------

#[timed_handler]
#[tokio::main(flavor = "current_thread")]
async fn main_below() -> Option<u64> {
    dep(ms(1)).await;
    selftime::current().map(|s| s.calls())
}

#[tokio::main(flavor = "current_thread")]
#[timed_handler]
async fn main_above() -> Option<u64> {
    dep(ms(1)).await;
    selftime::current().map(|s| s.calls())
}

#[cfg(not(feature = "test-util"))]
#[test]
fn stacks_with_tokio_main_in_either_order() {
    let (capture, _g) = Capture::install();
    assert_eq!(main_below(), Some(1));
    assert_eq!(main_above(), Some(1));
    for name in ["main_below", "main_above"] {
        let span = capture.only(name);
        assert_eq!(span.u64("external.calls"), 1, "{name}");
        assert_eq!(span.outcome(), "ok");
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
#[timed_handler]
async fn stacks_under_tokio_test() {
    dep(ms(1)).await;
    assert_eq!(selftime::current().unwrap().calls(), 1);
}

#[cfg(feature = "test-util")]
#[timed_handler]
#[tokio::test(start_paused = true)]
async fn stacks_over_tokio_test() {
    dep(ms(1)).await;
    assert_eq!(selftime::current().unwrap().calls(), 1);
}

#[tracing::instrument]
#[timed_handler(name = "timed_below_instrument")]
async fn instrument_above(user: u32) {
    dep(ms(2)).await;
    let _ = user;
}

#[timed_handler(name = "timed_above_instrument")]
#[tracing::instrument]
async fn instrument_below(user: u32) {
    dep(ms(2)).await;
    let _ = user;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn stacks_with_tracing_instrument_in_either_order() {
    let (capture, _g) = Capture::install();
    instrument_above(1).await;
    instrument_below(2).await;
    for name in ["timed_below_instrument", "timed_above_instrument"] {
        let span = capture.only(name);
        assert_eq!(span.figures(), (2_000, 2_000, 0), "{name}");
        // Our span records no arguments, whatever `#[instrument]` does.
        assert_eq!(span.field("user"), None);
    }
    assert_eq!(capture.only("instrument_above").field("user"), Some("1"));
    assert_eq!(capture.only("instrument_below").field("user"), Some("2"));
}

// ---- select! in the body ---------------------------------------------------

#[timed_handler]
async fn races() -> &'static str {
    tokio::select! {
        () = dep(ms(10)) => "slow",
        () = async { dep(ms(3)).await; sleep(ms(1)).await; } => "fast",
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn select_in_the_body() {
    let (capture, _g) = Capture::install();
    assert_eq!(races().await, "fast");
    let span = capture.only("races");
    // Both calls ran 0..3; the slow one was dropped at 4 by the select.
    assert_eq!(span.figures(), (4_000, 4_000, 0));
    assert_eq!(span.breakdown(), "dep=4000us/2");
}

// ---- axum -----------------------------------------------------------------

#[timed_handler]
async fn axum_handler(
    axum::extract::Path(id): axum::extract::Path<u32>,
) -> Result<String, (axum::http::StatusCode, String)> {
    dep(ms(1)).await;
    Ok(id.to_string())
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn an_axum_handler_stays_an_axum_handler() {
    use tower::ServiceExt as _;
    let (capture, _g) = Capture::install();
    let router: axum::Router = axum::Router::new().route("/{id}", axum::routing::get(axum_handler));
    let request = axum::http::Request::get("/42")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 64)
        .await
        .unwrap();
    assert_eq!(&body[..], b"42");
    // axum extracted the path and called the handler, which was measured.
    let span = capture.only("axum_handler");
    assert_eq!(span.figures(), (1_000, 1_000, 0));
    assert_eq!(span.breakdown(), "dep=1000us/1");
    assert_eq!(span.outcome(), "ok");
}

// ---- span = "current" onto a span that lacks the fields -------------------

#[timed_handler(span = "current")]
async fn onto_a_bare_span() -> u64 {
    dep(ms(3)).await;
    sleep(ms(1)).await;
    selftime::current().map_or(0, |now| now.calls())
}

#[timed_handler(span = "current", split)]
fn onto_a_span_without_the_split() {}

#[timed_handler(span = "current")]
async fn onto_a_reordered_span() {
    dep(ms(2)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn span_current_onto_a_span_without_the_fields_warns_once_and_still_measures() {
    use tracing::Instrument as _;
    use tracing::field::Empty;
    let (capture, _g) = Capture::install();
    let bare = tracing::info_span!("bare", total.duration_us = Empty, outcome = Empty);
    for _ in 0..3 {
        // The ledger is whole: `current()` reads the call.
        assert_eq!(onto_a_bare_span().instrument(bare.clone()).await, 1);
    }
    drop(bare);
    let warnings = capture.events("selftime");
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the handler: {warnings:#?}"
    );
    let warning = &warnings[0];
    assert_eq!(warning.level, "WARN");
    assert_eq!(warning.fields["handler"], "onto_a_bare_span");
    assert_eq!(warning.fields["span"], "bare");
    assert_eq!(
        warning.fields["missing"],
        "external.duration_us, internal.duration_us, external.calls, external.breakdown, \
         internal.backlog_us, external.between_us"
    );
    assert!(
        warning.fields["message"].contains("external.calls = tracing::field::Empty"),
        "{warning:?}"
    );
    // The fields the span declares still get their figures.
    let bare = capture.only("bare");
    assert_eq!(bare.u64("total.duration_us"), 4_000);
    assert_eq!(bare.outcome(), "ok");
    assert_eq!(bare.field("external.duration_us"), None);

    // With `split`, the split fields are asked for too.
    let eight = tracing::info_span!(
        "eight",
        total.duration_us = Empty,
        external.duration_us = Empty,
        internal.duration_us = Empty,
        external.calls = Empty,
        external.breakdown = Empty,
        outcome = Empty,
        internal.backlog_us = Empty,
        external.between_us = Empty,
    );
    eight.in_scope(onto_a_span_without_the_split);
    let warnings = capture.events("selftime");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(
        warnings[1].fields["handler"],
        "onto_a_span_without_the_split"
    );
    assert_eq!(
        warnings[1].fields["missing"],
        "internal.busy_us, internal.scheduled_us, internal.waiting_us"
    );

    // Every field declared, in an order of the user's own: nothing to say,
    // and every figure recorded.
    let reordered = tracing::info_span!(
        "reordered",
        outcome = Empty,
        external.between_us = Empty,
        internal.backlog_us = Empty,
        external.breakdown = Empty,
        external.calls = Empty,
        internal.duration_us = Empty,
        external.duration_us = Empty,
        total.duration_us = Empty,
    );
    onto_a_reordered_span().instrument(reordered).await;
    assert_eq!(capture.events("selftime").len(), 2);
    let reordered = capture.only("reordered");
    assert_eq!(reordered.figures(), (2_000, 2_000, 0));
    assert_eq!(reordered.breakdown(), "dep=2000us/1");
    assert_eq!(reordered.u64("internal.backlog_us"), 0);
}
