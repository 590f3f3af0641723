//! Throughput of many concurrent handlers, and the memory each one holds.
//!
//! `cargo bench -p selftime --bench concurrency`
//!
//! One wave: 10,000 handlers spawned at once on a 2-worker multi-thread
//! runtime, each making 8 concurrent external calls to a cheap in-process
//! dependency (a `yield_now`), the whole wave awaited. Target
//! (BENCHMARKS.md): instrumented throughput >= 0.95 x the same wave
//! uninstrumented, measured side by side; with no subscriber, and again
//! under `registry().with(<no-op layer>)` installed globally (so the
//! workers see it).
//!
//! Before the waves, the memory of an in-flight handler: 10,000 handlers
//! parked inside their 8 calls, the heap they hold counted by a counting
//! allocator (switched on only for that measurement), beside the size of
//! each handler future.

mod common;

use common::{Noop, Suite, Target};
use criterion::Criterion;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

const HANDLERS: usize = 10_000;
const CALLS: usize = 8;

/// Counts live heap bytes and allocations while `COUNTING` is on; otherwise
/// one relaxed load of a flag nobody writes, on top of the system allocator.
///
/// Not the counting allocator of the repository's `tests/common`: a bench of
/// this package cannot include files from outside it (the package is
/// published, and the suite's tests live in another package), and a bench's
/// allocator must cost nothing while it is not counting.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_ALLOCS: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to `System` unchanged; the counters have no effect on
// the memory handed out.
// A `Layout`'s size never exceeds `isize::MAX`, so it fits an i64.
#[allow(clippy::cast_possible_wrap)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
            LIVE_ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as i64, Relaxed);
            LIVE_ALLOCS.fetch_sub(1, Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn dep_bare() {
    tokio::task::yield_now().await;
}

#[selftime::external_call("dep")]
async fn dep_timed() {
    tokio::task::yield_now().await;
}

async fn handler_bare() {
    tokio::join!(
        dep_bare(),
        dep_bare(),
        dep_bare(),
        dep_bare(),
        dep_bare(),
        dep_bare(),
        dep_bare(),
        dep_bare()
    );
}

#[selftime::timed_handler]
async fn handler_timed() {
    tokio::join!(
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed()
    );
}

/// Attribution: the handler alone (its calls uninstrumented) ...
#[selftime::timed_handler]
async fn handler_timed_bare_calls() {
    handler_bare().await;
}

/// ... and the calls alone, outside any handler (orphan calls).
async fn handler_bare_timed_calls() {
    tokio::join!(
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed(),
        dep_timed()
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a 2-worker runtime")
}

/// `waves` waves of `HANDLERS` handlers made by `handler`, spawned from a
/// task on the workers (as a server's accept loop would) and all awaited.
fn waves<F>(rt: &tokio::runtime::Runtime, waves: u64, handler: fn() -> F) -> Duration
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            let mut tasks = Vec::with_capacity(HANDLERS);
            for _ in 0..waves {
                tasks.extend((0..HANDLERS).map(|_| tokio::spawn(handler())));
                for task in tasks.drain(..) {
                    task.await.expect("handlers do not panic");
                }
            }
            start.elapsed()
        })
        .await
        .expect("the driver does not panic")
    })
}

fn throughput(c: &mut Criterion, rt: &tokio::runtime::Runtime, group: &'static str) {
    let mut suite = Suite::new(group);
    suite.add("wave_uninstrumented", |n| waves(rt, n, handler_bare));
    suite.add("wave_timed_handler", |n| waves(rt, n, handler_timed));
    suite.add("wave_handler_only", |n| {
        waves(rt, n, handler_timed_bare_calls)
    });
    suite.add("wave_orphan_calls_only", |n| {
        waves(rt, n, handler_bare_timed_calls)
    });
    let Some(r) = suite.run(c) else { return };
    r.ratio(
        "throughput instrumented / uninstrumented",
        Target::AtLeast(0.95),
        |r| r.ns("wave_uninstrumented") / r.ns("wave_timed_handler"),
    );
    #[allow(clippy::cast_precision_loss)] // 10,000
    let per_wave = HANDLERS as f64;
    r.figure("handlers per second, uninstrumented", "/s", |r| {
        per_wave * 1e9 / r.ns("wave_uninstrumented")
    });
    r.figure("handlers per second, instrumented", "/s", |r| {
        per_wave * 1e9 / r.ns("wave_timed_handler")
    });
    r.figure("added cost per handler (8 calls)", "ns", |r| {
        (r.ns("wave_timed_handler") - r.ns("wave_uninstrumented")) / per_wave
    });
    r.figure("of which the handler alone (calls bare)", "ns", |r| {
        (r.ns("wave_handler_only") - r.ns("wave_uninstrumented")) / per_wave
    });
    r.figure("8 calls alone, outside any handler", "ns", |r| {
        (r.ns("wave_orphan_calls_only") - r.ns("wave_uninstrumented")) / per_wave
    });
}

// The parked variant, for the memory figures: each call waits on a gate
// the measurement opens once every call of every handler has started.

async fn park(gate: Arc<tokio::sync::RwLock<()>>, started: Arc<AtomicUsize>) {
    started.fetch_add(1, Relaxed);
    drop(gate.read().await);
}

#[selftime::external_call("dep")]
async fn park_timed(gate: Arc<tokio::sync::RwLock<()>>, started: Arc<AtomicUsize>) {
    park(gate, started).await;
}

async fn parked_bare(gate: Arc<tokio::sync::RwLock<()>>, started: Arc<AtomicUsize>) {
    let (g, s) = (&gate, &started);
    tokio::join!(
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone()),
        park(g.clone(), s.clone())
    );
}

#[selftime::timed_handler]
async fn parked_timed(gate: Arc<tokio::sync::RwLock<()>>, started: Arc<AtomicUsize>) {
    let (g, s) = (&gate, &started);
    tokio::join!(
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone()),
        park_timed(g.clone(), s.clone())
    );
}

/// Heap bytes and allocations held per in-flight handler made by `handler`.
fn in_flight<F>(
    rt: &tokio::runtime::Runtime,
    handler: fn(Arc<tokio::sync::RwLock<()>>, Arc<AtomicUsize>) -> F,
) -> (f64, f64)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let started = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(HANDLERS);
        let closed = gate.write().await;
        COUNTING.store(true, Relaxed);
        let (bytes0, allocs0) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
        for _ in 0..HANDLERS {
            tasks.push(tokio::spawn(handler(gate.clone(), started.clone())));
        }
        while started.load(Relaxed) < HANDLERS * CALLS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let bytes = LIVE_BYTES.load(Relaxed) - bytes0;
        let allocs = LIVE_ALLOCS.load(Relaxed) - allocs0;
        COUNTING.store(false, Relaxed);
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

fn memory(rt: &tokio::runtime::Runtime) {
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let started = Arc::new(AtomicUsize::new(0));
    println!(
        "\n== memory: handler futures (bytes)\n  \
         wave handler, uninstrumented   {}\n  \
         wave handler, #[timed_handler] {}\n  \
         parked handler, uninstrumented   {}\n  \
         parked handler, #[timed_handler] {}",
        std::mem::size_of_val(&handler_bare()),
        std::mem::size_of_val(&handler_timed()),
        std::mem::size_of_val(&parked_bare(gate.clone(), started.clone())),
        std::mem::size_of_val(&parked_timed(gate, started)),
    );
    // Once unmeasured, so that lazily built runtime state is not counted.
    in_flight(rt, parked_bare);
    in_flight(rt, parked_timed);
    let (bare_bytes, bare_allocs) = in_flight(rt, parked_bare);
    let (timed_bytes, timed_allocs) = in_flight(rt, parked_timed);
    println!(
        "== memory: heap held per in-flight handler ({HANDLERS} parked in {CALLS} calls each; \
         the spawned task included)\n  \
         uninstrumented   {bare_bytes:.1} bytes in {bare_allocs:.2} allocations\n  \
         #[timed_handler] {timed_bytes:.1} bytes in {timed_allocs:.2} allocations\n  \
         difference       {:.1} bytes in {:.2} allocations",
        timed_bytes - bare_bytes,
        timed_allocs - bare_allocs,
    );
}

fn main() {
    common::print_machine();
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let rt = runtime();
    memory(&rt);
    throughput(&mut c, &rt, "concurrency_no_subscriber");
    // The workers are other threads: the subscriber must be the global one.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Noop))
        .expect("no subscriber was installed before");
    throughput(&mut c, &rt, "concurrency_registry_noop");
    c.final_summary();
}
