//! The cost of `#[external_call]`, against the floor of two clock reads.
//!
//! `cargo bench -p selftime --bench external`
//!
//! Targets (BENCHMARKS.md), each a ratio against the clock pair measured in
//! the same run:
//! - inside a handler, instrumented minus bare <= 1.0 x two reads of
//!   `tokio::time::Instant::now()` (what timing a call by hand costs), for a
//!   sync and for an async fn;
//! - outside any handler, <= 0.2 x the same pair.
//!
//! Then the growth curves: the cost per call as the distinct dependencies
//! of a handler grow (1 to 16) and as handlers nest (1, 2, 4 deep).
//!
//! No subscriber is installed: an external call never touches tracing.

// The trivial async fns are the subject: they await nothing on purpose.
#![allow(clippy::unused_async)]

mod common;

use common::{Suite, Target};
use criterion::Criterion;
use std::hint::black_box;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{AcqRel, Relaxed},
};
use std::time::Duration;

// The trivial work: one call each, kept out of line so that the bare and
// the instrumented loop both pay a real call, and the difference between
// them is the instrumentation alone.

#[inline(never)]
fn bare_sync(x: u64) -> u64 {
    black_box(x)
}

#[selftime::external_call("dep")]
#[inline(never)]
fn ext_sync(x: u64) -> u64 {
    black_box(x)
}

async fn bare_async(x: u64) -> u64 {
    black_box(x)
}

#[selftime::external_call("dep")]
async fn ext_async(x: u64) -> u64 {
    black_box(x)
}

fn clock_pair(iters: u64) -> Duration {
    common::time(iters, |_| {
        black_box(tokio::time::Instant::now());
        black_box(tokio::time::Instant::now());
    })
}

/// The clock selftime reads in normal builds: two raw reads of the CPU's
/// counter through `quanta`, the second converted to nanoseconds since the
/// first.
fn counter_pair(iters: u64) -> Duration {
    let clock = quanta::Clock::new();
    common::time(iters, |_| {
        let start = clock.raw();
        black_box(clock.delta_as_nanos(start, clock.raw()));
    })
}

/// Nanoseconds from `base` to `t`, saturating: the conversion a ledger
/// needs to keep a clock reading in a `u64`.
#[inline]
fn ns_since(base: tokio::time::Instant, t: tokio::time::Instant) -> u64 {
    let d = t.saturating_duration_since(base);
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// The clock pair, each reading converted to nanoseconds from an origin.
fn clock_pair_ns(iters: u64) -> Duration {
    let base = tokio::time::Instant::now();
    common::time(iters, |_| {
        let start = ns_since(base, tokio::time::Instant::now());
        let end = ns_since(base, tokio::time::Instant::now());
        black_box(end.saturating_sub(start));
    })
}

tokio::task_local! {
    /// A stand-in for the handler in scope: what any design that finds its
    /// ledger through a task-local must look up once a call.
    static LEDGER: AtomicU64;
}

/// The floor of any design that keeps the figures as integers in a ledger
/// found through a task-local, reading tokio's clock: the clock pair
/// converted to nanoseconds and one task-local lookup, with no atomic
/// operation at all.
fn lookup_floor(iters: u64) -> Duration {
    let base = tokio::time::Instant::now();
    LEDGER.sync_scope(AtomicU64::new(0), || {
        common::time(iters, |_| {
            let start = ns_since(base, tokio::time::Instant::now());
            let found = LEDGER.try_with(|ledger| black_box(ptr_of(ledger))).ok();
            let end = ns_since(base, tokio::time::Instant::now());
            black_box((found, end.saturating_sub(start)));
        })
    })
}

/// The address of `value`, for `black_box` to keep a lookup honest.
fn ptr_of<T>(value: &T) -> *const T {
    value
}

/// One step of a union on a bare word: a compare-and-swap of a value that
/// depends on the time, as each open and close of the ledger's unions is.
#[inline]
fn union_step(word: &AtomicU64, now: u64) {
    let s = word.load(Relaxed);
    let _ = black_box(word.compare_exchange(s, s ^ now, AcqRel, Relaxed));
}

/// The floor of the ledger's design with nothing around it: the lookup
/// floor above, and the five atomic read-modify-writes a call makes on its
/// handler's ledger (the dependency's call count, then the open and the
/// close of the handler's union and of the dependency's own, one
/// compare-and-swap each). No slot lookup, no nesting, no call site.
fn design_floor(iters: u64) -> Duration {
    let base = tokio::time::Instant::now();
    let (calls, union, dep) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    LEDGER.sync_scope(AtomicU64::new(0), || {
        common::time(iters, |_| {
            let start = ns_since(base, tokio::time::Instant::now());
            let found = LEDGER.try_with(|ledger| black_box(ptr_of(ledger))).ok();
            calls.fetch_add(1, Relaxed);
            union_step(&union, start);
            union_step(&dep, start);
            let end = ns_since(base, tokio::time::Instant::now());
            union_step(&dep, end);
            union_step(&union, end);
            black_box(found);
        })
    })
}

fn std_clock_pair(iters: u64) -> Duration {
    common::time(iters, |_| {
        black_box(std::time::Instant::now());
        black_box(std::time::Instant::now());
    })
}

fn sync_loop(iters: u64, f: impl Fn(u64) -> u64) -> Duration {
    common::time(iters, |i| {
        black_box(f(black_box(i)));
    })
}

async fn async_bare_loop(iters: u64) -> Duration {
    let start = std::time::Instant::now();
    for i in 0..iters {
        black_box(bare_async(black_box(i)).await);
    }
    start.elapsed()
}

async fn async_ext_loop(iters: u64) -> Duration {
    let start = std::time::Instant::now();
    for i in 0..iters {
        black_box(ext_async(black_box(i)).await);
    }
    start.elapsed()
}

#[selftime::timed_handler]
fn sync_in_handler(iters: u64) -> Duration {
    sync_loop(iters, ext_sync)
}

/// The handler lookup plus one reference count up and down: what an async
/// call pays to keep its handler's ledger alive.
#[selftime::timed_handler]
fn handle_in_handler(iters: u64) -> Duration {
    common::time(iters, |_| {
        black_box(selftime::HandlerContext::capture());
    })
}

/// A snapshot of the handler in scope: the lookup, one clock read and the
/// copy of the ledger's figures that a handler's report also makes.
#[selftime::timed_handler]
fn snapshot_in_handler(iters: u64) -> Duration {
    common::time(iters, |_| {
        black_box(selftime::current());
    })
}

#[selftime::timed_handler]
async fn async_in_handler(iters: u64) -> Duration {
    async_ext_loop(iters).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn calls(c: &mut Criterion) {
    let rt = runtime();
    let mut suite = Suite::new("external");
    suite.add("clock/tokio_instant_pair", clock_pair);
    suite.add("clock/std_instant_pair", std_clock_pair);
    suite.add("clock/counter_pair", counter_pair);
    suite.add("clock/tokio_instant_pair_as_ns", clock_pair_ns);
    suite.add("clock/lookup_floor", lookup_floor);
    suite.add("clock/design_floor", design_floor);
    suite.add("lookup/handle_current_in_handler", handle_in_handler);
    suite.add("lookup/snapshot_current_in_handler", snapshot_in_handler);
    suite.add("sync/bare", |n| sync_loop(n, bare_sync));
    suite.add("sync/in_handler", sync_in_handler);
    suite.add("sync/outside_handler", |n| sync_loop(n, ext_sync));
    suite.add("async/bare", |n| rt.block_on(async_bare_loop(n)));
    suite.add("async/in_handler", |n| rt.block_on(async_in_handler(n)));
    suite.add("async/outside_handler", |n| rt.block_on(async_ext_loop(n)));
    let Some(r) = suite.run(c) else { return };

    let pair = "clock/tokio_instant_pair";
    r.ratio(
        "tokio Instant pair / std Instant pair",
        Target::Report,
        |r| r.ns(pair) / r.ns("clock/std_instant_pair"),
    );
    r.figure("clock pair", "ns", |r| r.ns(pair));
    r.figure("counter pair (selftime's clock)", "ns", |r| {
        r.ns("clock/counter_pair")
    });
    r.ratio("counter pair / clock pair", Target::Report, |r| {
        r.ns("clock/counter_pair") / r.ns(pair)
    });
    r.figure("clock pair converted to u64 ns", "ns", |r| {
        r.ns("clock/tokio_instant_pair_as_ns")
    });
    r.ratio(
        "clock pair converted to u64 ns / clock pair",
        Target::Report,
        |r| r.ns("clock/tokio_instant_pair_as_ns") / r.ns(pair),
    );
    r.ratio(
        "on tokio's clock, any design's floor (converted pair + a task-local lookup) / clock pair",
        Target::Report,
        |r| r.ns("clock/lookup_floor") / r.ns(pair),
    );
    r.ratio(
        "on tokio's clock, this design's floor (converted pair + lookup + five atomics) / clock pair",
        Target::Report,
        |r| r.ns("clock/design_floor") / r.ns(pair),
    );
    r.figure(
        "HandlerContext::capture() in a handler (lookup + Arc clone + drop)",
        "ns",
        |r| r.ns("lookup/handle_current_in_handler"),
    );
    r.figure(
        "selftime::current() in a handler (lookup + clock + snapshot)",
        "ns",
        |r| r.ns("lookup/snapshot_current_in_handler"),
    );
    for kind in ["sync", "async"] {
        let bare = format!("{kind}/bare");
        let inside = format!("{kind}/in_handler");
        let outside = format!("{kind}/outside_handler");
        r.figure(&format!("{kind} overhead in a handler"), "ns", |r| {
            r.ns(&inside) - r.ns(&bare)
        });
        r.ratio(
            &format!("{kind} overhead in a handler / clock pair"),
            Target::AtMost(1.0),
            |r| (r.ns(&inside) - r.ns(&bare)) / r.ns(pair),
        );
        r.figure(
            &format!("{kind} bookkeeping beyond selftime's clock pair"),
            "ns",
            |r| r.ns(&inside) - r.ns(&bare) - r.ns("clock/counter_pair"),
        );
        r.figure(&format!("{kind} overhead outside any handler"), "ns", |r| {
            r.ns(&outside) - r.ns(&bare)
        });
        r.ratio(
            &format!("{kind} overhead outside any handler / clock pair"),
            Target::AtMost(0.2),
            |r| (r.ns(&outside) - r.ns(&bare)) / r.ns(pair),
        );
    }
}

/// Sixteen distinct names (the ledger's named slots); literals, so that each
/// is one `&'static str` like the name an `#[external_call("…")]` passes.
const NAMES: [&str; 16] = [
    "dep00", "dep01", "dep02", "dep03", "dep04", "dep05", "dep06", "dep07", "dep08", "dep09",
    "dep10", "dep11", "dep12", "dep13", "dep14", "dep15",
];

/// Calls cycling through the first `deps` names (a power of two).
fn spread_loop(iters: u64, deps: usize) -> Duration {
    let mask = deps as u64 - 1;
    common::time(iters, |i| {
        let name = NAMES[(i & mask) as usize];
        black_box(selftime::external_sync(black_box(name), || bare_sync(i)));
    })
}

/// The same loop with the names looked up but no call measured.
fn spread_bare_loop(iters: u64, deps: usize) -> Duration {
    let mask = deps as u64 - 1;
    common::time(iters, |i| {
        black_box(NAMES[(i & mask) as usize]);
        black_box(bare_sync(i));
    })
}

#[selftime::timed_handler]
fn spread_in_handler(iters: u64, deps: usize) -> Duration {
    spread_loop(iters, deps)
}

/// `depth` handlers, each called by the one before; the calls are made in
/// the innermost and count toward all of them.
#[selftime::timed_handler]
fn nested(depth: u32, iters: u64) -> Duration {
    if depth > 1 {
        nested(depth - 1, iters)
    } else {
        sync_loop(iters, ext_sync)
    }
}

const DEPS: [(usize, &str, &str); 5] = [
    (1, "deps/1", "deps/bare_1"),
    (2, "deps/2", "deps/bare_2"),
    (4, "deps/4", "deps/bare_4"),
    (8, "deps/8", "deps/bare_8"),
    (16, "deps/16", "deps/bare_16"),
];
const DEPTHS: [(u32, &str); 3] = [(1, "depth/1"), (2, "depth/2"), (4, "depth/4")];

fn growth(c: &mut Criterion) {
    let mut suite = Suite::new("external_growth");
    suite.add("clock/tokio_instant_pair", clock_pair);
    suite.add("sync/bare", |n| sync_loop(n, bare_sync));
    for (deps, name, bare) in DEPS {
        suite.add(name, move |n| spread_in_handler(n, deps));
        suite.add(bare, move |n| spread_bare_loop(n, deps));
    }
    for (depth, name) in DEPTHS {
        suite.add(name, move |n| nested(depth, n));
    }
    let Some(r) = suite.run(c) else { return };

    let pair = "clock/tokio_instant_pair";
    let one = |r: &common::Round<'_>| r.ns("deps/1") - r.ns("deps/bare_1");
    for (deps, name, bare) in DEPS {
        r.figure(&format!("per call, {deps} dependencies"), "ns", |r| {
            r.ns(name) - r.ns(bare)
        });
        r.ratio(
            &format!("per call, {deps} dependencies / clock pair"),
            Target::Report,
            |r| (r.ns(name) - r.ns(bare)) / r.ns(pair),
        );
        r.ratio(
            &format!("per call, {deps} dependencies / 1 dependency"),
            Target::Report,
            |r| (r.ns(name) - r.ns(bare)) / one(r),
        );
    }
    for (depth, name) in DEPTHS {
        r.figure(&format!("per call, {depth} nested handlers"), "ns", |r| {
            r.ns(name) - r.ns("sync/bare")
        });
        r.ratio(
            &format!("per call, {depth} nested handlers / clock pair"),
            Target::Report,
            |r| (r.ns(name) - r.ns("sync/bare")) / r.ns(pair),
        );
        r.ratio(
            &format!("per call, {depth} nested handlers / 1 handler"),
            Target::Report,
            |r| (r.ns(name) - r.ns("sync/bare")) / (r.ns("depth/1") - r.ns("sync/bare")),
        );
    }
}

fn main() {
    common::print_machine();
    let mut c = Criterion::default().configure_from_args();
    calls(&mut c);
    growth(&mut c);
    c.final_summary();
}
