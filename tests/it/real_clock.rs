//! The real clock: sync handlers, blocking calls, several OS threads and a
//! multi-thread runtime. Bounds are generous: these machines are shared.

use crate::common::{Capture, ms};
use selftime::{external_call, timed_handler};
use std::thread::sleep as block;
use std::time::Duration;

/// Upper bound for anything that should take about `n` ms here.
const fn generous(n: u64) -> u64 {
    (n + 2_000) * 1_000
}

#[external_call("blocking_db")]
fn blocking_query(d: Duration) -> u32 {
    block(d);
    1
}

#[timed_handler]
fn sync_handler(work: Duration, wait: Duration) -> u32 {
    block(work);
    blocking_query(wait)
}

#[test]
fn a_sync_handler_with_a_blocking_call() {
    let (capture, _g) = Capture::install();
    assert_eq!(sync_handler(ms(20), ms(40)), 1);
    let span = capture.only("sync_handler");
    let (total, external, internal) = span.figures();
    assert!(external >= 40_000 && external < generous(40), "{external}");
    assert!(internal >= 20_000 && internal < generous(20), "{internal}");
    assert_eq!(total, external + internal);
    assert_eq!(span.breakdown().split('=').next(), Some("blocking_db"));
}

#[timed_handler]
async fn async_handler_blocking_call() -> u32 {
    // A blocking client called straight from async code: still external
    // (and still blocking the worker, which is the caller's business).
    let n = selftime::external_sync("legacy_sdk", || blocking_query(ms(30)));
    tokio::time::sleep(ms(10)).await;
    n
}

#[tokio::test]
async fn a_blocking_call_inside_an_async_handler() {
    let (capture, _g) = Capture::install();
    assert_eq!(async_handler_blocking_call().await, 1);
    let span = capture.only("async_handler_blocking_call");
    let (_, external, internal) = span.figures();
    assert!(external >= 30_000 && external < generous(30), "{external}");
    assert!(internal >= 10_000 && internal < generous(10), "{internal}");
    // Nested: the sdk call and the query inside it, one union.
    assert_eq!(span.u64("external.calls"), 2);
    assert!(
        span.breakdown().starts_with("legacy_sdk="),
        "{}",
        span.breakdown()
    );
}

#[test]
fn handlers_on_several_os_threads_at_once() {
    let capture = Capture::default();
    let threads: Vec<_> = (1..=4u64)
        .map(|i| {
            let capture = capture.clone();
            std::thread::spawn(move || {
                use tracing_subscriber::layer::SubscriberExt as _;
                let subscriber = tracing_subscriber::registry().with(capture);
                tracing::subscriber::with_default(subscriber, || {
                    for _ in 0..3 {
                        sync_handler(ms(5), ms(10 * i));
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let spans = capture.named("sync_handler");
    assert_eq!(spans.len(), 12);
    for span in spans {
        let (total, external, internal) = span.figures();
        assert_eq!(total, external + internal);
        assert!(external >= 10_000 && external < generous(40), "{external}");
        assert!(internal >= 5_000 && internal < generous(5), "{internal}");
        assert_eq!(span.u64("external.calls"), 1);
    }
}

#[external_call("cache")]
async fn cache(d: Duration) {
    tokio::time::sleep(d).await;
}

#[timed_handler]
async fn fan_out() -> u64 {
    use selftime::FutureExt as _;
    let tasks: Vec<_> = (0..4)
        .map(|_| tokio::spawn(cache(ms(30)).in_current_handler()))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let blocking = tokio::task::spawn_blocking(selftime::bind(|| blocking_query(ms(20))));
    blocking.await.unwrap();
    selftime::current().unwrap().calls()
}

#[test]
fn spawned_and_blocking_work_on_a_multi_thread_runtime() {
    // No subscriber: the figures come from the ledger, read by the handler.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let calls = rt.block_on(async {
        let handlers: Vec<_> = (0..8).map(|_| tokio::spawn(fan_out())).collect();
        let mut calls = Vec::new();
        for h in handlers {
            calls.push(h.await.unwrap());
        }
        calls
    });
    // Four carried tasks and one blocking call each, on either worker.
    assert_eq!(calls, [5; 8]);
}
