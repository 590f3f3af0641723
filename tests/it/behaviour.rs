//! Exact figures on tokio's paused clock: every scenario of the contract.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, ms};
use selftime::{FutureExt as _, external_call, timed_handler};
use std::time::Duration;
use tokio::time::sleep;

#[external_call("a")]
async fn call_a(d: Duration) {
    sleep(d).await;
}

#[external_call("b")]
async fn call_b(d: Duration) {
    sleep(d).await;
}

#[external_call]
async fn legacy(d: Duration) -> u32 {
    sleep(d).await;
    7
}

#[timed_handler]
async fn sequential() {
    call_a(ms(10)).await;
    sleep(ms(5)).await; // the handler's own time
    call_b(ms(20)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn sequential_calls_add_up_and_gaps_are_internal() {
    let (capture, _g) = Capture::install();
    sequential().await;
    let span = capture.only("sequential");
    assert_eq!(span.figures(), (35_000, 30_000, 5_000));
    assert_eq!(span.u64("external.calls"), 2);
    assert_eq!(span.breakdown(), "a=10000us/1,b=20000us/1");
    assert_eq!(span.outcome(), "ok");
    assert_eq!(span.target, module_path!());
    assert_eq!(span.level, "INFO");
}

#[timed_handler]
async fn concurrent() {
    tokio::join!(call_a(ms(10)), call_b(ms(20)));
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn concurrent_calls_count_as_their_union_not_their_sum() {
    let (capture, _g) = Capture::install();
    concurrent().await;
    let span = capture.only("concurrent");
    assert_eq!(span.figures(), (20_000, 20_000, 0));
    assert_eq!(span.u64("external.calls"), 2);
    assert_eq!(span.breakdown(), "a=10000us/1,b=20000us/1");
}

#[timed_handler]
async fn overlapping() {
    // a: 0..30, b: 20..40, then 5 of our own.
    tokio::join!(call_a(ms(30)), async {
        sleep(ms(20)).await;
        call_b(ms(20)).await;
    });
    sleep(ms(5)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn partially_overlapping_calls() {
    let (capture, _g) = Capture::install();
    overlapping().await;
    let span = capture.only("overlapping");
    assert_eq!(span.figures(), (45_000, 40_000, 5_000));
}

#[timed_handler]
async fn picture() {
    // The crate docs' picture: A 10..30, B 20..40, C 45..55, handler 0..60.
    tokio::join!(
        async {
            sleep(ms(10)).await;
            call_a(ms(20)).await;
        },
        async {
            sleep(ms(20)).await;
            call_b(ms(20)).await;
        },
        async {
            sleep(ms(45)).await;
            legacy(ms(10)).await;
        },
    );
    sleep(ms(5)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_contract_picture() {
    let (capture, _g) = Capture::install();
    picture().await;
    let span = capture.only("picture");
    // The union of 10..30, 20..40 and 45..55 is 30 + 10.
    assert_eq!(span.figures(), (60_000, 40_000, 20_000));
    assert_eq!(span.breakdown(), "a=20000us/1,b=20000us/1,legacy=10000us/1");
}

#[external_call("proxy")]
async fn through_proxy() {
    sleep(ms(10)).await;
    legacy(ms(30)).await;
    sleep(ms(10)).await;
}

#[timed_handler]
async fn nested_calls() {
    through_proxy().await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn nested_calls_count_once_in_the_union_and_once_per_dependency() {
    let (capture, _g) = Capture::install();
    nested_calls().await;
    let span = capture.only("nested_calls");
    assert_eq!(span.figures(), (50_000, 50_000, 0));
    assert_eq!(span.u64("external.calls"), 2);
    assert_eq!(span.breakdown(), "proxy=50000us/1,legacy=30000us/1");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn outside_a_handler_calls_run_and_record_nothing() {
    let (capture, _g) = Capture::install();
    assert_eq!(legacy(ms(3)).await, 7);
    assert!(selftime::current().is_none());
    assert!(capture.closed().is_empty());
}

#[timed_handler]
async fn many(i: u64) {
    call_a(ms(i)).await;
    sleep(ms(100 - i)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn fifty_handlers_in_one_task_keep_their_own_figures() {
    let (capture, _g) = Capture::install();
    futures::future::join_all((1..=50).map(many)).await;
    let mut externals: Vec<u64> = capture
        .named("many")
        .iter()
        .map(|span| {
            let (total, external, internal) = span.figures();
            assert_eq!(total, 100_000);
            assert_eq!(external + internal, total);
            assert_eq!(span.u64("external.calls"), 1);
            assert_eq!(span.breakdown(), format!("a={external}us/1"));
            external
        })
        .collect();
    externals.sort_unstable();
    assert_eq!(externals, (1..=50).map(|i| i * 1_000).collect::<Vec<_>>());
}

#[timed_handler]
async fn spawns() {
    // Carried: counts.
    tokio::spawn(call_a(ms(10)).in_current_handler())
        .await
        .unwrap();
    // Not carried: tokio does not inherit task-locals, so it counts nowhere.
    tokio::spawn(call_b(ms(10))).await.unwrap();
    // Carried and still running when the handler reports: counted up to the
    // report, its late end ignored.
    tokio::spawn(legacy(ms(50)).in_current_handler());
    sleep(ms(5)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn spawned_tasks_count_only_when_carried() {
    let (capture, _g) = Capture::install();
    spawns().await;
    let span = capture.only("spawns");
    assert_eq!(span.figures(), (25_000, 15_000, 10_000));
    assert_eq!(span.u64("external.calls"), 2);
    assert_eq!(span.breakdown(), "a=10000us/1,legacy=5000us/1");
    // Let the late call finish against a ledger nobody reads any more.
    sleep(ms(100)).await;
    assert_eq!(capture.named("spawns").len(), 1);
}

#[timed_handler]
async fn boom() -> u32 {
    call_a(ms(10)).await;
    sleep(ms(2)).await;
    panic!("boom");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_panic_in_a_spawned_handler_reads_panic() {
    let (capture, _g) = Capture::install();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let err = tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(
        boom(),
        dispatch,
    ))
    .await
    .unwrap_err();
    assert!(err.is_panic());
    let span = capture.only("boom");
    assert_eq!(span.outcome(), "panic");
    assert_eq!(span.figures(), (12_000, 10_000, 2_000));
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_panic_caught_by_catch_unwind_reads_panic() {
    use futures::FutureExt as _;
    let (capture, _g) = Capture::install();
    let caught = std::panic::AssertUnwindSafe(boom()).catch_unwind().await;
    assert!(caught.is_err());
    assert_eq!(capture.only("boom").outcome(), "panic");
}

#[timed_handler]
async fn slow() {
    call_a(ms(10)).await;
    call_b(ms(100)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_handler_cancelled_by_timeout_reports_up_to_the_drop() {
    let (capture, _g) = Capture::install();
    assert!(tokio::time::timeout(ms(30), slow()).await.is_err());
    let span = capture.only("slow");
    assert_eq!(span.outcome(), "cancelled");
    // The call to b was in flight at the drop: it counts up to the drop.
    assert_eq!(span.figures(), (30_000, 30_000, 0));
    assert_eq!(span.breakdown(), "a=10000us/1,b=20000us/1");
}

#[timed_handler]
async fn inner() {
    call_b(ms(20)).await;
    sleep(ms(5)).await;
}

#[timed_handler]
async fn outer() {
    call_a(ms(10)).await;
    inner().await;
    sleep(ms(3)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn nested_handlers_have_their_own_figures_and_share_their_waits() {
    let (capture, _g) = Capture::install();
    outer().await;
    let inner = capture.only("inner");
    assert_eq!(inner.figures(), (25_000, 20_000, 5_000));
    assert_eq!(inner.breakdown(), "b=20000us/1");
    let outer = capture.only("outer");
    assert_eq!(outer.figures(), (38_000, 30_000, 8_000));
    assert_eq!(outer.u64("external.calls"), 2);
    assert_eq!(outer.breakdown(), "a=10000us/1,b=20000us/1");
}

#[derive(Debug)]
struct NotFound;

type Result<T> = std::result::Result<T, NotFound>;

#[external_call("db")]
async fn find(id: u32) -> Result<u32> {
    sleep(ms(1)).await;
    if id == 0 { Err(NotFound) } else { Ok(id) }
}

#[timed_handler]
async fn lookup(id: u32) -> Result<u32> {
    let found = find(id).await?;
    Ok(found + 1)
}

#[timed_handler]
async fn early_return(id: u32) -> u32 {
    if id == 0 {
        return 0;
    }
    find(id).await.unwrap_or_default()
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn ok_and_err_outcomes_through_a_result_alias_and_question_mark() {
    let (capture, _g) = Capture::install();
    assert_eq!(lookup(4).await.unwrap(), 5);
    assert!(lookup(0).await.is_err());
    assert_eq!(early_return(0).await, 0);
    let outcomes: Vec<_> = capture
        .named("lookup")
        .iter()
        .map(|s| (s.outcome().to_owned(), s.u64("external.calls")))
        .collect();
    assert_eq!(outcomes, [("ok".to_owned(), 1), ("error".to_owned(), 1)]);
    let early = capture.only("early_return");
    assert_eq!(early.outcome(), "ok");
    assert_eq!(early.figures(), (0, 0, 0));
    assert_eq!(early.breakdown(), "");
}

#[timed_handler]
async fn midway() -> selftime::Snapshot {
    call_a(ms(10)).await;
    sleep(ms(5)).await;
    let open = async {
        call_b(ms(20)).await;
    };
    tokio::select! {
        () = open => unreachable!(),
        () = sleep(ms(4)) => {}
    }
    selftime::current().expect("inside a handler")
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn current_reads_the_figures_so_far() {
    let snap = midway().await;
    assert_eq!(snap.total(), ms(19));
    assert_eq!(snap.external(), ms(14));
    assert_eq!(snap.internal(), ms(5));
    assert_eq!(snap.calls(), 2);
    let deps: Vec<_> = snap
        .dependencies()
        .map(|d| (d.name(), d.duration(), d.calls()))
        .collect();
    assert_eq!(deps, [("a", ms(10), 1), ("b", ms(4), 1)]);
}

#[timed_handler(name = "checkout", level = "debug")]
async fn renamed() {}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn name_and_level_arguments() {
    let (capture, _g) = Capture::install();
    renamed().await;
    let span = capture.only("checkout");
    assert_eq!(span.level, "DEBUG");
    assert_eq!(span.outcome(), "ok");
}

// `span = "current"` goes above `#[instrument]`: attributes expand from the
// top, so the handler then runs inside the span `#[instrument]` enters.
#[timed_handler(span = "current")]
#[tracing::instrument(fields(
    total.duration_us = tracing::field::Empty,
    external.duration_us = tracing::field::Empty,
    internal.duration_us = tracing::field::Empty,
    external.calls = tracing::field::Empty,
    external.breakdown = tracing::field::Empty,
    outcome = tracing::field::Empty,
    internal.backlog_us = tracing::field::Empty,
    external.between_us = tracing::field::Empty,
))]
async fn onto_current() {
    call_a(ms(7)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn span_current_records_onto_the_span_already_entered() {
    let (capture, _g) = Capture::install();
    onto_current().await;
    let span = capture.only("onto_current");
    assert_eq!(span.figures(), (7_000, 7_000, 0));
    assert_eq!(capture.closed().len(), 1, "no second span is opened");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn figures_are_kept_when_no_subscriber_wants_the_span() {
    // No subscriber at all: the ledger still runs, `current()` still reads.
    let snap = midway().await;
    assert_eq!(snap.external(), ms(14));
}

#[timed_handler]
async fn no_calls() {}

#[timed_handler]
async fn one_call() {
    call_a(Duration::from_millis(3)).await;
}

/// A writer that keeps what the fmt layer prints.
#[derive(Clone, Default)]
struct Printed(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Printed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_breakdown_is_a_string_field_that_logfmt_printers_quote_even_when_empty() {
    let printed = Printed::default();
    let writer = printed.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    no_calls().await;
    one_call().await;
    let text = String::from_utf8(printed.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("external.breakdown=\"\" outcome=\"ok\""),
        "{text}"
    );
    assert!(
        lines[1].contains("external.breakdown=\"a=3000us/1\" outcome=\"ok\""),
        "{text}"
    );
}

// --- synchronous calls borrow their handler for the length of their body ----

#[external_call("inner_sync")]
fn inner_sync() -> u64 {
    selftime::current().map_or(0, |s| s.calls())
}

#[timed_handler]
fn nested_sync_handler() -> u64 {
    inner_sync();
    selftime::current().unwrap().calls()
}

/// A synchronous call whose body opens scopes of its own (a handler, a
/// carried handler, another call) and closes them: the call ends in the
/// ledger it began in, with nothing of the inner scopes in it.
#[external_call("outer_sync")]
fn outer_sync_opening_scopes(carried: &selftime::HandlerContext) -> (u64, u64) {
    let inner = nested_sync_handler();
    let in_carried = carried.sync_scope(|| {
        inner_sync();
        selftime::current().unwrap().calls()
    });
    (inner, in_carried)
}

#[timed_handler]
fn opens_scopes_inside_a_sync_call() -> (u64, u64, u64) {
    let carried = selftime::HandlerContext::capture().unwrap();
    let (inner, in_carried) = outer_sync_opening_scopes(&carried);
    (inner, in_carried, selftime::current().unwrap().calls())
}

#[cfg(not(feature = "test-util"))]
#[test]
fn a_sync_call_may_open_and_close_scopes_in_its_body() {
    let (capture, _guard) = Capture::install();
    // The inner handler saw its own call; the carried scope (this same
    // handler) saw the outer call and its own; the handler, all three.
    assert_eq!(opens_scopes_inside_a_sync_call(), (1, 3, 3));
    let outer = capture.only("opens_scopes_inside_a_sync_call");
    assert_eq!(outer.u64("external.calls"), 3);
    let calls: Vec<(&str, &str)> = outer
        .breakdown()
        .split(',')
        .filter_map(|entry| {
            let (name, figures) = entry.split_once('=')?;
            Some((name, figures.split_once("us/")?.1))
        })
        .collect();
    assert_eq!(calls, [("outer_sync", "1"), ("inner_sync", "2")]);
    assert_eq!(capture.only("nested_sync_handler").u64("external.calls"), 1);
}

#[external_call("slow_sync")]
fn slow_sync(started: &std::sync::Barrier, released: &std::sync::Barrier) {
    started.wait();
    released.wait();
}

#[cfg(not(feature = "test-util"))]
/// A synchronous call made on a thread in a carried handler, still running
/// when the handler reports: the call ends on the handler's state, which
/// the thread's scope keeps alive, and counts for nobody after the report.
#[test]
fn a_carried_sync_call_may_outlive_its_handlers_report() {
    let (capture, _guard) = Capture::install();
    let started = std::sync::Arc::new(std::sync::Barrier::new(2));
    let released = std::sync::Arc::new(std::sync::Barrier::new(2));
    let thread = {
        let (started, released) = (started.clone(), released.clone());
        let handler = std::sync::Mutex::new(None::<selftime::HandlerContext>);
        #[timed_handler]
        fn hands_off(handler: &std::sync::Mutex<Option<selftime::HandlerContext>>) {
            *handler.lock().unwrap() = selftime::HandlerContext::capture();
        }
        hands_off(&handler);
        let carried = handler.into_inner().unwrap().unwrap();
        std::thread::spawn(move || carried.sync_scope(|| slow_sync(&started, &released)))
    };
    // The handler reported before the call began; the call runs and ends on
    // the thread, after the report, without a panic.
    started.wait();
    released.wait();
    thread.join().expect("the carried call runs to its end");
    assert_eq!(capture.only("hands_off").u64("external.calls"), 0);
}
