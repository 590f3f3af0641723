//! Heap allocations, counted exactly by a counting global allocator: none
//! per external call, at most one per handler beyond what tracing itself
//! allocates for the same span under the same subscriber, and none more for
//! recording to OpenTelemetry once the SDK holds the handler's series.
//!
//! The counters are per thread, so that tests running in parallel do not
//! count each other's allocations; every measured body runs on the test's
//! own thread (sync code, or a current-thread runtime's `block_on`).
//! Each measurement follows a warm-up run of the same code, so that
//! one-time work (callsite registration, the registry's first slab page)
//! is not counted against a call.

// The trivial async fns are the subject: they await nothing on purpose.
#![allow(clippy::unused_async)]

mod common;

use common::counting::{Counting, Counts, counts};
use common::noop::registry_noop;
use selftime::{external_call, timed_handler};
use std::future::Future;
use std::hint::black_box;
use tracing::field::Empty;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` allocates and frees on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    let before = counts();
    let out = f();
    (out, counts() - before)
}

/// What awaiting `fut` allocates and frees on this thread.
async fn counted_async<F: Future>(fut: F) -> (F::Output, Counts) {
    let before = counts();
    let out = fut.await;
    (out, counts() - before)
}

/// Runs `fut` to completion on this thread.
fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(fut)
}

// ---------------------------------------------------------------------------
// External calls

#[external_call("redis")]
#[inline(never)]
fn sync_call(x: u64) -> u64 {
    black_box(x)
}

#[external_call("redis")]
async fn async_call(x: u64) -> u64 {
    black_box(x)
}

const NAMES: [&str; 20] = [
    "d00", "d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10", "d11", "d12",
    "d13", "d14", "d15", "d16", "d17", "d18", "d19",
];

const CALLS: u64 = 1_000;

#[timed_handler]
fn sync_calls_in_a_handler() -> Counts {
    sync_call(0);
    counted(|| {
        for i in 0..CALLS {
            black_box(sync_call(i));
        }
    })
    .1
}

#[timed_handler]
async fn async_calls_in_a_handler() -> Counts {
    async_call(0).await;
    counted_async(async {
        for i in 0..CALLS {
            black_box(async_call(i).await);
        }
    })
    .await
    .1
}

#[timed_handler]
async fn concurrent_calls_in_a_handler() -> Counts {
    counted_async(async {
        for i in 0..CALLS {
            black_box(tokio::join!(async_call(i), async_call(i), async_call(i)));
        }
    })
    .await
    .1
}

/// Every call names a new dependency until the ledger's slots run out and
/// the rest share `other`: claiming a slot allocates nothing either.
#[timed_handler]
fn many_dependencies_in_a_handler() -> Counts {
    counted(|| {
        for i in 0..CALLS {
            let name = NAMES[usize::try_from(i).unwrap_or(0) % NAMES.len()];
            black_box(selftime::external_sync(name, || black_box(i)));
        }
    })
    .1
}

#[timed_handler]
fn inner_handler() -> Counts {
    sync_calls_in_a_handler_body()
}

#[timed_handler]
fn outer_handler() -> Counts {
    inner_handler()
}

/// The calls of `sync_calls_in_a_handler`, without a handler of its own.
fn sync_calls_in_a_handler_body() -> Counts {
    sync_call(0);
    counted(|| {
        for i in 0..CALLS {
            black_box(sync_call(i));
        }
    })
    .1
}

const NONE: Counts = Counts {
    allocs: 0,
    frees: 0,
};

#[test]
fn an_external_call_never_allocates() {
    assert_eq!(sync_calls_in_a_handler(), NONE, "sync calls in a handler");
    assert_eq!(
        many_dependencies_in_a_handler(),
        NONE,
        "calls to 20 distinct dependencies (16 slots, then `other`)"
    );
    assert_eq!(
        outer_handler(),
        NONE,
        "sync calls counted by two nested handlers"
    );
    block_on(async {
        assert_eq!(
            async_calls_in_a_handler().await,
            NONE,
            "async calls in a handler"
        );
        assert_eq!(
            concurrent_calls_in_a_handler().await,
            NONE,
            "three concurrent async calls"
        );
    });
}

#[test]
fn an_external_call_never_allocates_under_a_subscriber() {
    let _subscriber = registry_noop();
    assert_eq!(sync_calls_in_a_handler(), NONE, "sync calls in a handler");
    block_on(async {
        assert_eq!(
            async_calls_in_a_handler().await,
            NONE,
            "async calls in a handler"
        );
    });
}

#[test]
fn an_external_call_outside_any_handler_never_allocates() {
    assert_eq!(sync_calls_in_a_handler_body(), NONE, "sync calls");
    let ((), async_counts) = block_on(counted_async(async {
        for i in 0..CALLS {
            black_box(async_call(i).await);
        }
    }));
    assert_eq!(async_counts, NONE, "async calls");
}

// ---------------------------------------------------------------------------
// Handlers

/// The six fields written by hand with tracing alone: the span tracing
/// allocates for is the same as `#[timed_handler]`'s.
#[tracing::instrument(
    skip_all,
    fields(
        total.duration_us = Empty,
        external.duration_us = Empty,
        internal.duration_us = Empty,
        external.calls = Empty,
        external.breakdown = Empty,
        outcome = Empty,
    )
)]
fn hand_written_sync() -> u64 {
    let start = tokio::time::Instant::now();
    let out = black_box(1);
    record_by_hand(start);
    out
}

#[tracing::instrument(
    skip_all,
    fields(
        total.duration_us = Empty,
        external.duration_us = Empty,
        internal.duration_us = Empty,
        external.calls = Empty,
        external.breakdown = Empty,
        outcome = Empty,
    )
)]
async fn hand_written_async() -> u64 {
    let start = tokio::time::Instant::now();
    let out = black_box(1);
    record_by_hand(start);
    out
}

fn record_by_hand(start: tokio::time::Instant) {
    let total = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let span = tracing::Span::current();
    span.record("total.duration_us", total);
    span.record("external.duration_us", 0_u64);
    span.record("internal.duration_us", total);
    span.record("external.calls", 0_u64);
    span.record("external.breakdown", "");
    span.record("outcome", "ok");
}

#[timed_handler]
fn timed_sync() -> u64 {
    black_box(1)
}

#[timed_handler]
async fn timed_async() -> u64 {
    black_box(1)
}

#[timed_handler]
fn timed_sync_with_calls() -> u64 {
    sync_call(1) + sync_call(2)
}

#[timed_handler]
fn timed_outer() -> u64 {
    timed_sync_with_calls()
}

/// Counts of the second of two runs of `f`.
fn warm<R>(mut f: impl FnMut() -> R) -> Counts {
    black_box(f());
    counted(f).1
}

async fn warm_async<F: Future>(mut f: impl FnMut() -> F) -> Counts {
    black_box(f().await);
    counted_async(f()).await.1
}

/// `selftime`'s allocations beyond tracing's own, asserted at most `most`
/// (one ledger per handler; zero once a thread has a finished one to reuse)
/// and balanced (each handler frees what it allocated, as tracing does).
fn assert_beyond_tracing(what: &str, selftime: Counts, tracing: Counts, most: u64) {
    let extra = selftime.allocs.checked_sub(tracing.allocs);
    assert!(
        extra.is_some_and(|extra| extra <= most),
        "{what}: selftime {selftime:?}, tracing alone {tracing:?}: \
         expected at most {most} allocation(s) beyond tracing's"
    );
    assert_eq!(
        selftime.allocs - selftime.frees,
        tracing.allocs - tracing.frees,
        "{what}: selftime {selftime:?}, tracing alone {tracing:?}: \
         a handler must free all it allocates"
    );
}

#[test]
fn a_handler_allocates_at_most_once_beyond_tracing_under_a_subscriber() {
    let _subscriber = registry_noop();
    let tracing_fn = warm(hand_written_sync);
    assert_beyond_tracing("sync handler", warm(timed_sync), tracing_fn, 1);
    assert_beyond_tracing(
        "sync handler making two calls",
        warm(timed_sync_with_calls),
        tracing_fn,
        1,
    );
    // Two handlers, two spans: once per handler, twice tracing's own.
    let two_spans = Counts {
        allocs: tracing_fn.allocs * 2,
        frees: tracing_fn.frees * 2,
    };
    assert_beyond_tracing("two nested handlers", warm(timed_outer), two_spans, 2);
    block_on(async {
        let tracing_future = warm_async(hand_written_async).await;
        assert_beyond_tracing(
            "async handler",
            warm_async(timed_async).await,
            tracing_future,
            1,
        );
    });
}

#[test]
fn a_handler_allocates_at_most_once_with_no_subscriber() {
    // No subscriber on this thread: tracing allocates nothing for its span.
    // One that enables nothing, rather than none at all: tracing caches a
    // callsite's interest for the whole process, and another test's
    // subscriber, registered between a warm-up and its counted run, may
    // cache "always" and give these handlers live spans (and this thread's
    // breakdown buffer its first growth) under no subscriber at all.
    let _off = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    let tracing_fn = warm(hand_written_sync);
    assert_eq!(tracing_fn, NONE, "tracing alone, no subscriber");
    assert_beyond_tracing("sync handler", warm(timed_sync), NONE, 1);
    assert_beyond_tracing("two nested handlers", warm(timed_outer), NONE, 2);
    block_on(async {
        assert_eq!(warm_async(hand_written_async).await, NONE);
        assert_beyond_tracing("async handler", warm_async(timed_async).await, NONE, 1);
    });
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the tests above against a counter that counts nothing.
    let (boxed, c) = counted(|| Box::new(black_box(7_u64)));
    drop(black_box(boxed));
    assert_eq!(c.allocs, 1);
    let ((), c) = counted(|| drop(black_box(Box::new(black_box(7_u64)))));
    assert_eq!(
        c,
        Counts {
            allocs: 1,
            frees: 1
        }
    );
}

#[test]
fn a_thread_reuses_the_ledgers_of_its_finished_handlers() {
    // No span is enabled: tracing allocates nothing, so every count is
    // selftime's. Registers the callsites, on this thread, before the
    // counted runs (a callsite's first use allocates, and run alone, this
    // test is the first to use `timed_outer`'s two).
    black_box(timed_sync());
    black_box(timed_outer());
    std::thread::spawn(|| {
        // A subscriber that enables nothing, rather than none: tracing caches
        // a callsite's interest for the whole process, and another test's
        // subscriber may have cached "always" for these handlers, which
        // would give them live spans (and this thread's breakdown buffer its
        // first growth) under no subscriber at all. Registering one that
        // says "never" makes tracing ask it for each span.
        let _off = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        // A new thread's first handler allocates its ledger, and on ending
        // hands it to the thread's pool, which allocates its list once.
        let (_, first) = counted(timed_sync);
        assert_eq!(
            first,
            Counts {
                allocs: 2,
                frees: 0
            },
            "first handler on a thread"
        );
        // Every later one reuses it: no allocation, nested handlers included
        // (the inner one takes the pooled ledger, the outer a new one, and
        // both go back to the pool).
        assert_eq!(counted(timed_sync).1, NONE, "second handler");
        let (_, nested) = counted(timed_outer);
        assert_eq!(
            nested,
            Counts {
                allocs: 1,
                frees: 0
            },
            "first two nested handlers"
        );
        assert_eq!(counted(timed_outer).1, NONE, "two nested handlers, again");
    })
    .join()
    .unwrap();
}

// ---------------------------------------------------------------------------
// OpenTelemetry

/// An SDK meter provider exporting to memory. Its reader exports from a
/// thread of its own, once a minute: the counts here are the recording
/// thread's, what a handler's report costs.
fn meter_provider() -> opentelemetry_sdk::metrics::SdkMeterProvider {
    let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
    opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build())
        .build()
}

/// `f`'s second run with `provider` as this thread's meter provider: the
/// first run makes the handler's series in the SDK (which allocates), the
/// second finds them.
fn warm_recording<R>(
    provider: &opentelemetry_sdk::metrics::SdkMeterProvider,
    f: impl FnMut() -> R,
) -> Counts {
    selftime::opentelemetry::with_local_meter_provider(provider, || warm(f))
}

#[test]
fn recording_to_opentelemetry_allocates_nothing_once_the_series_exist() {
    let provider = meter_provider();
    // No subscriber: every count is selftime's (and the SDK's), once warm.
    assert_eq!(warm(timed_sync_with_calls), NONE, "without a provider");
    assert_eq!(
        warm_recording(&provider, timed_sync_with_calls),
        NONE,
        "a handler making two calls: five series"
    );
    assert_eq!(
        warm_recording(&provider, timed_outer),
        NONE,
        "two nested handlers"
    );
    let with_provider = selftime::opentelemetry::with_local_meter_provider(&provider, || {
        block_on(warm_async(timed_async))
    });
    assert_eq!(with_provider, NONE, "async handler");

    // A handler's first report to a provider does allocate: the SDK's
    // entries for its new series. Measured against the same handler, warm
    // without a provider.
    #[timed_handler]
    fn first_time() -> u64 {
        sync_call(3)
    }
    assert_eq!(warm(first_time), NONE, "warm, without a provider");
    let first =
        selftime::opentelemetry::with_local_meter_provider(&provider, || counted(first_time).1);
    assert!(first.allocs > 0, "new series in the SDK: {first:?}");
}

#[test]
fn recording_to_opentelemetry_adds_nothing_under_a_subscriber() {
    let _subscriber = registry_noop();
    let provider = meter_provider();
    let tracing_alone = warm(timed_sync);
    assert_eq!(
        warm_recording(&provider, timed_sync),
        tracing_alone,
        "the same as without a provider"
    );
    let tracing_alone = warm(timed_outer);
    assert_eq!(
        warm_recording(&provider, timed_outer),
        tracing_alone,
        "two nested handlers"
    );
}
