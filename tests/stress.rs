//! Stress and faults on the real clock: many handlers at once on a
//! two-worker runtime, each fanning out to up to eight external calls made
//! inline, in carried spawned tasks and in carried blocking tasks; one in ten
//! returns an `Err`, one in ten panics, one in ten is cancelled by a timeout
//! with calls in flight.
//!
//! For every handler, from the fields recorded on its span:
//!
//! - exactly one report, with the outcome its plan called for;
//! - `internal + external == total`, `external <= total`;
//! - `external.calls` and each dependency's call count exactly as planned:
//!   every handler draws its own mix of eight dependencies, so a call that
//!   leaked into another handler's ledger (or out of its own) changes a count;
//! - external time at least the longest planned call (they run side by
//!   side), and each dependency's time at least its longest call: a bound
//!   that holds on any machine, however busy. Upper bounds on a shared
//!   machine are sanity only.
//!
//! And for the run as a whole: no panic other than the planned ones, and,
//! once every task has finished, the heap back to its level before the run,
//! counted by a counting global allocator (live blocks: allocations minus
//! frees). A ledger is one allocation per handler, so a leak of ledgers (a
//! reference cycle, a task holding its scope forever) would leave tens of
//! thousands of blocks behind. The live blocks of a ledger's size (the first
//! allocation of a handler run with no subscriber) must be exactly back where
//! they were, and the heap as a whole within a few blocks of it (the
//! subscriber's slab and the runtime's queues grow in pages).
//!
//! `SELFTIME_STRESS_HANDLERS` sets the number of handlers (default 100,000),
//! `SELFTIME_STRESS_SEED` the plans' seed.

mod common;

use common::counting::{self, Counting, SIZES};
use common::{Capture, Closed};
use futures::FutureExt as _;
use futures::future::{BoxFuture, join_all};
use selftime::{FutureExt as _, timed_handler};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy, Debug)]
struct Heap {
    blocks: isize,
    bytes: isize,
    /// Live blocks of a ledger's size.
    ledgers: isize,
}

fn heap(ledger_size: usize) -> Heap {
    let live = counting::live(ledger_size);
    Heap {
        blocks: live.blocks,
        bytes: live.bytes,
        ledgers: live.of_size,
    }
}

#[timed_handler]
fn probe() {}

/// The size of a ledger: the first thing a handler allocates (its scope,
/// ledger included, is its one allocation of its own; with no subscriber to
/// give its span to, that comes first). Measured on a new thread, whose
/// pool of finished ledgers is still empty.
fn ledger_size() -> usize {
    // The first call registers the span's callsite.
    probe();
    std::thread::spawn(|| {
        counting::forget_first();
        probe();
        counting::first()
    })
    .join()
    .unwrap()
    .expect("a handler allocates its ledger")
}

// --- plans ---------------------------------------------------------------------------

const DEPS: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
/// The call a cancelled handler is waiting on when its timeout fires.
const HANG: &str = "hang";
/// How long a cancelled handler is left to run once all its calls are in flight.
const CANCEL_AFTER: Duration = Duration::from_millis(1);
const PLANNED_PANIC: &str = "planned panic (stress)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// In the handler's own task.
    Inline,
    /// `selftime::spawn`.
    Spawn,
    /// `tokio::spawn(….in_current_handler())`.
    SpawnCarried,
    /// `selftime::spawn_blocking` around `external_sync`.
    Blocking,
    /// `tokio::task::spawn_blocking(selftime::bind(…))` around `external_sync`.
    BlockingBound,
}

#[derive(Clone, Copy, Debug)]
struct PlannedCall {
    dep: &'static str,
    via: Via,
    /// How long the call waits: a tokio sleep, or a thread sleep when blocking.
    wait: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Err,
    Panic,
    Cancel,
}

impl End {
    fn outcome(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Err => "error",
            Self::Panic => "panic",
            Self::Cancel => "cancelled",
        }
    }
}

#[derive(Debug)]
struct Plan {
    id: u64,
    calls: Vec<PlannedCall>,
    end: End,
}

/// `SplitMix64`: plans are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn plan(id: u64, seed: u64) -> Plan {
    let mut rng = Rng(seed ^ id.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let end = match rng.below(10) {
        0 => End::Panic,
        1 => End::Cancel,
        2 => End::Err,
        _ => End::Ok,
    };
    let calls = (0..rng.below(9))
        .map(|_| {
            let dep = DEPS[rng.below(DEPS.len() as u64) as usize];
            let via = match rng.below(8) {
                0 => Via::Spawn,
                1 => Via::SpawnCarried,
                2 => Via::Blocking,
                3 => Via::BlockingBound,
                _ => Via::Inline,
            };
            let wait = if matches!(via, Via::Blocking | Via::BlockingBound) {
                Duration::from_micros(rng.below(300))
            } else {
                Duration::from_millis(rng.below(3))
            };
            PlannedCall { dep, via, wait }
        })
        .collect();
    Plan { id, calls, end }
}

// --- the handler -----------------------------------------------------------------------

#[derive(Debug)]
struct Planned;

/// Counts calls that have begun, so that a cancelled handler is dropped only
/// once all of its calls are in flight (its call count is then exact).
#[derive(Default)]
struct Started {
    calls: AtomicUsize,
    notify: Notify,
}

impl Started {
    fn mark(&self) {
        self.calls.fetch_add(1, Relaxed);
        self.notify.notify_one();
    }
}

/// Spawned tasks and blocking closures still running; each holds one.
static LIVE_TASKS: AtomicUsize = AtomicUsize::new(0);

struct Live;

impl Live {
    fn new() -> Self {
        LIVE_TASKS.fetch_add(1, Relaxed);
        Self
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE_TASKS.fetch_sub(1, Relaxed);
    }
}

fn one_call(call: PlannedCall, started: Arc<Started>) -> BoxFuture<'static, ()> {
    let PlannedCall { dep, via, wait } = call;
    let live = Live::new();
    match via {
        Via::Inline => async move {
            let _live = live;
            selftime::external(dep, async {
                started.mark();
                tokio::time::sleep(wait).await;
            })
            .await;
        }
        .boxed(),
        Via::Spawn | Via::SpawnCarried => async move {
            let task = async move {
                let _live = live;
                selftime::external(dep, async {
                    started.mark();
                    tokio::time::sleep(wait).await;
                })
                .await;
            };
            // Spawned when first polled, which is inside the handler's scope.
            let handle = if via == Via::Spawn {
                selftime::spawn(task)
            } else {
                tokio::spawn(task.in_current_handler())
            };
            handle.await.expect("a spawned call");
        }
        .boxed(),
        Via::Blocking | Via::BlockingBound => async move {
            let work = move || {
                let _live = live;
                selftime::external_sync(dep, || {
                    started.mark();
                    std::thread::sleep(wait);
                });
            };
            let handle = if via == Via::Blocking {
                selftime::spawn_blocking(work)
            } else {
                tokio::task::spawn_blocking(selftime::bind(work))
            };
            handle.await.expect("a blocking call");
        }
        .boxed(),
    }
}

#[timed_handler(name = "stress")]
async fn handler(plan: Arc<Plan>, started: Arc<Started>) -> Result<usize, Planned> {
    let mut calls: Vec<_> = plan
        .calls
        .iter()
        .map(|&call| one_call(call, Arc::clone(&started)))
        .collect();
    if plan.end == End::Cancel {
        let started = Arc::clone(&started);
        calls.push(
            selftime::external(HANG, async move {
                started.mark();
                std::future::pending::<()>().await;
            })
            .boxed(),
        );
    }
    let n = join_all(calls).await.len();
    match plan.end {
        End::Err => Err(Planned),
        End::Panic => panic!("{PLANNED_PANIC}"),
        End::Ok | End::Cancel => Ok(n),
    }
}

/// Runs one planned handler to its planned end.
async fn drive(plan: Arc<Plan>) {
    let started = Arc::new(Started::default());
    let run = handler(Arc::clone(&plan), Arc::clone(&started))
        .instrument(tracing::info_span!("request", id = plan.id));
    match plan.end {
        End::Ok | End::Err => {
            let result = run.await;
            assert_eq!(result.is_err(), plan.end == End::Err);
        }
        // Panics in the task; `main` checks the task's `JoinError`.
        End::Panic => {
            let _ = run.await;
        }
        End::Cancel => {
            let mut run = std::pin::pin!(run);
            let expected = plan.calls.len() + 1;
            while started.calls.load(Relaxed) < expected {
                tokio::select! {
                    _ = &mut run => panic!("handler {} ended while a call hangs", plan.id),
                    () = started.notify.notified() => {}
                }
            }
            let timed_out = tokio::time::timeout(CANCEL_AFTER, run).await;
            assert!(timed_out.is_err(), "handler {} was not cancelled", plan.id);
        }
    }
}

// --- what the spans say ---------------------------------------------------------------

/// The closed `stress` spans by the id of the `request` span each was opened
/// in, and how many were opened outside any request.
fn by_request(closed: Vec<Closed>) -> (HashMap<u64, Vec<Closed>>, usize) {
    let mut by_request: HashMap<u64, Vec<Closed>> = HashMap::new();
    let mut stray = 0;
    for span in closed {
        let request = span
            .parent
            .as_deref()
            .filter(|parent| parent.name == "request")
            .and_then(|parent| parent.field("id")?.parse().ok());
        match request {
            Some(id) => by_request.entry(id).or_default().push(span),
            None => stray += 1,
        }
    }
    (by_request, stray)
}

// --- checks -----------------------------------------------------------------------------

/// `dep=<µs>us/<calls>,…` as dependency -> (µs, calls).
fn breakdown(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, rest) = entry.split_once('=').expect("`dep=`");
            let (us, calls) = rest.split_once("us/").expect("`<µs>us/<calls>`");
            (
                name.to_owned(),
                (us.parse().unwrap(), calls.parse().unwrap()),
            )
        })
        .collect()
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// Checks one handler's report against its plan.
fn check(plan: &Plan, reports: Option<&Vec<Closed>>) -> Result<(), String> {
    let reports = reports.map_or(&[][..], Vec::as_slice);
    let [report] = reports else {
        return Err(format!("{} reports", reports.len()));
    };
    let (total, external, internal) = (
        report.u64("total.duration_us"),
        report.u64("external.duration_us"),
        report.u64("internal.duration_us"),
    );
    let fail = |what: String| Err(format!("{what}: {report:?}"));
    if report.outcome() != plan.end.outcome() {
        return fail(format!("outcome, expected {}", plan.end.outcome()));
    }
    if internal + external != total || external > total {
        return fail("internal + external != total".into());
    }
    // Sanity only: nothing here takes seconds, but the machine may be busy.
    if total > 60_000_000 {
        return fail("a handler took over a minute".into());
    }

    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for call in &plan.calls {
        let entry = want.entry(call.dep.to_owned()).or_default();
        entry.0 = entry.0.max(micros(call.wait));
        entry.1 += 1;
    }
    if plan.end == End::Cancel {
        want.insert(HANG.to_owned(), (micros(CANCEL_AFTER), 1));
    }
    let calls: u64 = want.values().map(|w| w.1).sum();
    if report.u64("external.calls") != calls {
        return fail(format!("external.calls, expected {calls}"));
    }
    let got = breakdown(report.breakdown());
    let counts = |m: &BTreeMap<String, (u64, u64)>| -> Vec<(String, u64)> {
        m.iter().map(|(k, v)| (k.clone(), v.1)).collect()
    };
    if counts(&got) != counts(&want) {
        return fail(format!("per-dependency calls, expected {want:?}"));
    }
    // A cancelled handler's calls other than the hang may be cut short.
    let floors = want
        .iter()
        .filter(|(dep, _)| plan.end != End::Cancel || dep.as_str() == HANG);
    let mut longest = 0;
    for (dep, &(floor, _)) in floors {
        let busy = got[dep].0;
        if busy < floor || busy > total {
            return fail(format!("{dep} busy {busy}us, at least {floor}us"));
        }
        longest = longest.max(floor);
    }
    if external < longest {
        return fail(format!("external {external}us, at least {longest}us"));
    }
    Ok(())
}

/// Panics that are not planned ones: from the crate, or from this test.
static UNPLANNED_PANICS: AtomicU64 = AtomicU64::new(0);

fn count_unplanned_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let planned = payload
            .downcast_ref::<String>()
            .is_some_and(|m| m == PLANNED_PANIC);
        if !planned {
            UNPLANNED_PANICS.fetch_add(1, Relaxed);
            default(info);
        }
    }));
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs handlers `ids` to their ends, at most `in_flight` at once, and
/// returns once every task they started has finished.
fn run(rt: &tokio::runtime::Runtime, ids: std::ops::Range<u64>, seed: u64) -> Vec<Arc<Plan>> {
    const IN_FLIGHT: usize = 512;
    let plans: Vec<Arc<Plan>> = ids.map(|id| Arc::new(plan(id, seed))).collect();
    rt.block_on(async {
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::with_capacity(plans.len());
        for plan in &plans {
            PEAK_LEDGERS.fetch_max(counting::live(LEDGER_SIZE.load(Relaxed)).of_size, Relaxed);
            let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
            let plan = Arc::clone(plan);
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                drive(plan).await;
            }));
        }
        for (plan, task) in plans.iter().zip(tasks) {
            match task.await {
                Ok(()) => assert_ne!(plan.end, End::Panic, "handler {} did not panic", plan.id),
                Err(e) => {
                    assert_eq!(plan.end, End::Panic, "handler {}: {e}", plan.id);
                    let payload = e.into_panic();
                    let message = payload.downcast_ref::<String>().map(String::as_str);
                    assert_eq!(message, Some(PLANNED_PANIC), "handler {}", plan.id);
                }
            }
        }
        // Carried tasks of cancelled handlers finish on their own.
        let deadline = Instant::now() + Duration::from_secs(30);
        while LIVE_TASKS.load(Relaxed) > 0 {
            assert!(Instant::now() < deadline, "spawned calls never finished");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    plans
}

/// The ledger's size (its class in the counts by size), and the most blocks of it seen
/// live during a run: proof that it is the size of something per handler.
static LEDGER_SIZE: AtomicUsize = AtomicUsize::new(SIZES);
static PEAK_LEDGERS: AtomicIsize = AtomicIsize::new(0);

/// Blocks the heap may have grown by over the run: the subscriber's slab and
/// the runtime's queues grow in pages, each page one block, and a page may
/// be added when a run reaches a new high-water mark. A leak of ledgers, or
/// of anything per handler, is tens of thousands of blocks.
const HEAP_SLACK: isize = 32;

/// Finished ledgers the threads may keep for reuse: up to 16 per thread
/// that ended a handler (runtime/src/scope.rs), here the two workers. A
/// pool not yet full before the run may be after it: that is at most this
/// many more ledgers, and the same many more blocks.
const POOLED: isize = 16 * 2;

#[test]
fn many_handlers_on_two_workers_with_panics_and_cancellations() {
    let handlers = env("SELFTIME_STRESS_HANDLERS", 100_000);
    let seed = env("SELFTIME_STRESS_SEED", 0x5e1f_7173);
    let began = Instant::now();
    // Before any subscriber: a handler whose span nobody wants allocates its
    // ledger only, which tells the ledger's size.
    let ledger_size = ledger_size();
    LEDGER_SIZE.store(ledger_size.min(SIZES), Relaxed);
    count_unplanned_panics();
    let capture = Capture::keeping("stress");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .expect("the only subscriber of this test binary");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // A fixed pool that outlives the test, so that the heap is compared
        // with the same threads alive before and after.
        .max_blocking_threads(8)
        .thread_keep_alive(Duration::from_secs(3_600))
        .enable_all()
        .build()
        .unwrap();

    // Warm up: callsites, the registry's slab pages, the blocking threads,
    // the runtime's queues all reach their working size here.
    let warm = 5_000.min(handlers);
    run(&rt, 0..warm, seed);
    drop(capture.take());
    let before = heap(ledger_size);
    PEAK_LEDGERS.store(0, Relaxed);

    let plans = run(&rt, warm..warm + handlers, seed);
    let (closed, stray) = by_request(capture.take());
    let mut failures = Vec::new();
    for plan in &plans {
        if let Err(e) = check(plan, closed.get(&plan.id)) {
            failures.push(format!("handler {} ({plan:?}): {e}", plan.id));
        }
    }
    let reported: usize = closed.values().map(Vec::len).sum();
    assert!(
        failures.is_empty(),
        "{} of {handlers} handlers wrong (seed {seed:#x}); first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    assert_eq!(reported, plans.len(), "reports for handlers never run");
    assert_eq!(stray, 0, "reports outside a request");
    assert_eq!(UNPLANNED_PANICS.load(Relaxed), 0, "unplanned panics");

    drop((plans, closed, failures));
    // Freed memory may lag the tasks' ends by a moment (a worker dropping a
    // finished task's cell).
    let settled = |now: Heap| {
        now.ledgers <= before.ledgers + POOLED && now.blocks <= before.blocks + HEAP_SLACK + POOLED
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = heap(ledger_size);
        if settled(now) || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "stress: {handlers} handlers in {:.1?}; ledgers are {ledger_size} bytes, {} live at \
         the peak; heap before {before:?}, after {after:?}",
        began.elapsed(),
        PEAK_LEDGERS.load(Relaxed) - before.ledgers
    );
    // With hundreds of handlers in flight, hundreds of ledgers were live.
    let peak = PEAK_LEDGERS.load(Relaxed) - before.ledgers;
    assert!(
        peak >= 100 || handlers < 1_000,
        "only {peak} more blocks of {ledger_size} bytes at the peak: not the ledger's size"
    );
    assert!(
        after.ledgers <= before.ledgers + POOLED,
        "{} more blocks of a ledger's size ({ledger_size} bytes) live after {handlers} \
         handlers, beyond the {POOLED} the threads may keep for reuse: ledgers leak",
        after.ledgers - before.ledgers
    );
    assert!(
        after.blocks <= before.blocks + HEAP_SLACK + POOLED,
        "{} more blocks ({} bytes) live after {handlers} handlers: a leak",
        after.blocks - before.blocks,
        after.bytes - before.bytes
    );
}
