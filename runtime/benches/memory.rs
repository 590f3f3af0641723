//! The memory an in-flight handler holds.
//!
//! `cargo bench -p selftime --bench memory`
//!
//! 10,000 handlers, each parked inside 8 concurrent external calls, the
//! heap they hold counted by a counting allocator (the live heap before and
//! after they are parked), against the same program without the attributes: the same
//! functions, the same calls, `#[timed_handler]` and `#[external_call]`
//! removed. The difference is what selftime adds to a handler in flight.
//! Target: at most 1 KiB per handler. Measured with no subscriber, then
//! again under a registry (`registry().with(<no-op layer>)`), where the
//! handler's span is recorded too.
//!
//! Memory is counted, not timed: the figures are exact and do not depend on
//! the machine's load.

mod common;

use common::counting::{self, Counting};
use common::noop::Noop;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

const HANDLERS: usize = 10_000;
const CALLS: usize = 8;
/// Bytes a handler in flight may hold beyond the uninstrumented one.
const TARGET_BYTES: f64 = 1024.0;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Gate = Arc<tokio::sync::RwLock<()>>;

// Each call waits on a gate the measurement opens once every call of every
// handler has started.
async fn park(gate: Gate, started: Arc<AtomicUsize>) {
    started.fetch_add(1, Relaxed);
    drop(gate.read().await);
}

async fn call_bare(gate: Gate, started: Arc<AtomicUsize>) {
    park(gate, started).await;
}

#[selftime::external_call("dep")]
async fn call_timed(gate: Gate, started: Arc<AtomicUsize>) {
    park(gate, started).await;
}

async fn handler_bare(gate: Gate, started: Arc<AtomicUsize>) {
    let (g, s) = (&gate, &started);
    tokio::join!(
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone()),
        call_bare(g.clone(), s.clone())
    );
}

#[selftime::timed_handler]
async fn handler_timed(gate: Gate, started: Arc<AtomicUsize>) {
    let (g, s) = (&gate, &started);
    tokio::join!(
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone()),
        call_timed(g.clone(), s.clone())
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a 2-worker runtime")
}

/// Heap bytes and allocations held per in-flight handler made by `handler`,
/// the spawned task included.
fn in_flight<F>(
    rt: &tokio::runtime::Runtime,
    handler: fn(Gate, Arc<AtomicUsize>) -> F,
) -> (f64, f64)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let started = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(HANDLERS);
        let closed = gate.write().await;
        let before = counting::live(0);
        for _ in 0..HANDLERS {
            tasks.push(tokio::spawn(handler(gate.clone(), started.clone())));
        }
        while started.load(Relaxed) < HANDLERS * CALLS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let after = counting::live(0);
        let (bytes, allocs) = (after.bytes - before.bytes, after.blocks - before.blocks);
        drop(closed);
        for task in tasks {
            task.await.expect("handlers do not panic");
        }
        #[allow(clippy::cast_precision_loss)] // far below 2^52
        (
            bytes as f64 / HANDLERS as f64,
            allocs as f64 / HANDLERS as f64,
        )
    })
}

fn measure(rt: &tokio::runtime::Runtime, group: &str) {
    // Once unmeasured, so that lazily built runtime state is not counted.
    in_flight(rt, handler_bare);
    in_flight(rt, handler_timed);
    let (bare_bytes, bare_allocs) = in_flight(rt, handler_bare);
    let (timed_bytes, timed_allocs) = in_flight(rt, handler_timed);
    let extra = timed_bytes - bare_bytes;
    let verdict = if extra <= TARGET_BYTES {
        "HOLDS"
    } else {
        "MISSED"
    };
    println!(
        "\n== memory, {group}: heap held per in-flight handler \
         ({HANDLERS} parked in {CALLS} calls each; the spawned task included)\n  \
         uninstrumented   {bare_bytes:.1} bytes in {bare_allocs:.2} allocations\n  \
         #[timed_handler] {timed_bytes:.1} bytes in {timed_allocs:.2} allocations\n\
         figure {group}: added per in-flight handler = {extra:.1} bytes in {:.2} allocations  \
         target <= {TARGET_BYTES:.0}: {verdict}",
        timed_allocs - bare_allocs,
    );
}

fn main() {
    common::print_machine();
    let (gate, started) = (
        Arc::new(tokio::sync::RwLock::new(())),
        Arc::new(AtomicUsize::new(0)),
    );
    println!(
        "\n== memory: handler futures (bytes)\n  \
         uninstrumented   {}\n  \
         #[timed_handler] {}",
        std::mem::size_of_val(&handler_bare(gate.clone(), started.clone())),
        std::mem::size_of_val(&handler_timed(gate, started)),
    );
    let rt = runtime();
    measure(&rt, "no subscriber");
    // The workers are other threads: the subscriber must be the global one.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Noop))
        .expect("no subscriber was installed before");
    measure(&rt, "registry");
}
