//! Random schedules of external calls, replayed on tokio's paused clock
//! through the public API (`#[timed_handler]`, `#[external_call]`,
//! `selftime::external`, `selftime::spawn`, `in_current_handler`), against a
//! reference that computes the same figures the obvious way: sort the
//! intervals, merge them, add up.
//!
//! A schedule is a handler running *branches* of calls side by side. A
//! branch is a sequence of calls with gaps between them; a call may make
//! calls of its own, concurrently, while it is in flight (a proxy in front of
//! a backend). A branch runs inline in the handler, in a carried task the
//! handler awaits, in a carried task it never awaits (which may still be
//! calling, or start calling, after the handler has ended), or in a task
//! spawned *without* carrying the handler (which counts for nothing). The
//! handler returns `Ok`, returns `Err`, panics, or is cancelled by a timeout.
//!
//! Every figure recorded on the span must agree exactly with the reference:
//! total, external, internal, calls, the breakdown and the outcome.
//!
//! Exactness needs the schedule to say what happens at each instant, so
//! times are drawn in steps of 4 ms and shifted apart by kind: the handler's
//! events fall on multiples of 4 ms, the never-awaited branches' on 4k + 1,
//! a cancellation on 4k + 2. A call therefore never starts at the very
//! instant the handler ends, where which of the two comes first would be up
//! to the scheduler. (Two dependencies first called at the same instant may
//! appear in either order; the breakdown check allows exactly that.)
//!
//! `PROPTEST_CASES` sets the number of cases (default 3,000 for the
//! schedules, 1,000 for the long chains).

use crate::common::{Capture, ms};
use futures::FutureExt as _;
use futures::future::{BoxFuture, join_all};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use selftime::{FutureExt as _, external_call, timed_handler};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use tokio::task::JoinHandle;
use tokio::time::sleep;

/// The dependencies schedules call. The first is called through an
/// `#[external_call]` fn, the others through `selftime::external`.
const DEPS: [&str; 5] = ["redis", "legacy", "auth", "search", "billing"];

/// More dependencies than a ledger names (16), for the long chains.
const MANY: [&str; 22] = [
    "d00", "d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10", "d11", "d12",
    "d13", "d14", "d15", "d16", "d17", "d18", "d19", "d20", "d21",
];

/// The panic message of a planned panic: the hook keeps it off stderr.
const PLANNED_PANIC: &str = "planned panic (proptest_ledger)";

// --- schedules -----------------------------------------------------------------

/// One external call: its dependency, how long it waits itself, and the
/// calls it makes while in flight, each `offset` ms after it starts. It ends
/// when its own wait and all of its calls have ended.
#[derive(Clone, Debug)]
struct Call {
    dep: &'static str,
    wait: u64,
    inner: Vec<(u64, Call)>,
}

/// Where a branch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In the handler's own future.
    Inline,
    /// In `selftime::spawn`, awaited by the handler.
    Awaited,
    /// In `tokio::spawn(….in_current_handler())`, never awaited: it may run
    /// past the handler's end.
    Detached,
    /// In a plain `tokio::spawn`: counts toward no handler.
    Uncarried,
}

#[derive(Clone, Debug)]
struct Branch {
    mode: Mode,
    /// Calls one after another, each after a gap.
    steps: Vec<(u64, Call)>,
}

#[derive(Clone, Copy, Debug)]
enum End {
    Ok,
    Err,
    Panic,
    /// A timeout dropping the handler at this time (if it is still running).
    Cancel(u64),
}

#[derive(Clone, Debug)]
struct Plan {
    branches: Vec<Branch>,
    /// The handler's own work, side by side with its branches.
    own: u64,
    end: End,
}

/// Times are drawn in units of 4 ms.
fn units(max: u64) -> impl Strategy<Value = u64> {
    (0..=max).prop_map(|n| n * 4)
}

fn call(depth: u32) -> BoxedStrategy<Call> {
    let dep = prop::sample::select(&DEPS[..]);
    if depth == 0 {
        (dep, units(6))
            .prop_map(|(dep, wait)| Call {
                dep,
                wait,
                inner: Vec::new(),
            })
            .boxed()
    } else {
        (
            dep,
            units(6),
            prop::collection::vec((units(4), call(depth - 1)), 0..=2),
        )
            .prop_map(|(dep, wait, inner)| Call { dep, wait, inner })
            .boxed()
    }
}

fn branch() -> impl Strategy<Value = Branch> {
    let mode = prop_oneof![
        3 => Just(Mode::Inline),
        1 => Just(Mode::Awaited),
        2 => Just(Mode::Detached),
        1 => Just(Mode::Uncarried),
    ];
    (mode, prop::collection::vec((units(4), call(2)), 1..=3))
        .prop_map(|(mode, steps)| Branch { mode, steps })
}

fn plan() -> impl Strategy<Value = Plan> {
    let end = prop_oneof![
        2 => Just(End::Ok),
        1 => Just(End::Err),
        1 => Just(End::Panic),
        2 => units(20).prop_map(|t| End::Cancel(t + 2)),
    ];
    (prop::collection::vec(branch(), 0..=5), units(15), end).prop_map(|(branches, own, end)| Plan {
        branches,
        own,
        end,
    })
}

// --- the reference ---------------------------------------------------------------

/// One call as it happens: dependency, start, end, and whether it counts
/// toward the handler at all.
#[derive(Clone, Copy, Debug)]
struct Happened {
    dep: &'static str,
    start: u64,
    end: u64,
    carried: bool,
}

/// The calls of `call` started at `start`, appended to `out`; returns its end.
fn unfold(call: &Call, start: u64, carried: bool, out: &mut Vec<Happened>) -> u64 {
    let index = out.len();
    out.push(Happened {
        dep: call.dep,
        start,
        end: 0,
        carried,
    });
    let mut end = start + call.wait;
    for (offset, inner) in &call.inner {
        end = end.max(unfold(inner, start + offset, carried, out));
    }
    out[index].end = end;
    end
}

/// The figures the handler must record, in ms.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    total: u64,
    external: u64,
    calls: u64,
    /// Per dependency: (first call's start, busy, calls).
    deps: BTreeMap<&'static str, (u64, u64, u64)>,
    outcome: &'static str,
}

/// The length of the union of `intervals`.
fn union(mut intervals: Vec<(u64, u64)>) -> u64 {
    intervals.sort_unstable();
    let mut total = 0;
    let mut open: Option<(u64, u64)> = None;
    for (s, e) in intervals {
        open = match open {
            Some((os, oe)) if s <= oe => Some((os, oe.max(e))),
            Some((os, oe)) => {
                total += oe - os;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + open.map_or(0, |(s, e)| e - s)
}

fn expected(plan: &Plan) -> Expected {
    let mut happened = Vec::new();
    // The handler ends when its own work, its inline branches and the
    // branches it awaits have ended.
    let mut natural = plan.own;
    for branch in &plan.branches {
        let carried = branch.mode != Mode::Uncarried;
        let mut t = u64::from(branch.mode == Mode::Detached);
        for (gap, call) in &branch.steps {
            t = unfold(call, t + gap, carried, &mut happened);
        }
        if matches!(branch.mode, Mode::Inline | Mode::Awaited) {
            natural = natural.max(t);
        }
    }
    let (end, outcome) = match plan.end {
        End::Cancel(at) if at < natural => (at, "cancelled"),
        End::Ok | End::Cancel(_) => (natural, "ok"),
        End::Err => (natural, "error"),
        End::Panic => (natural, "panic"),
    };
    // What the ledger saw: carried calls started by the end, cut off at it.
    // (Only the handler's own calls can start at the very instant it ends,
    // and they do so inside it: the last call of an inline branch, say.)
    let counted: Vec<_> = happened
        .iter()
        .filter(|h| h.carried && h.start <= end)
        .map(|h| (h.dep, h.start, h.end.min(end)))
        .collect();
    let mut deps = BTreeMap::new();
    for &(dep, start, _) in &counted {
        let entry = deps.entry(dep).or_insert((start, 0, 0));
        entry.0 = entry.0.min(start);
        entry.2 += 1;
    }
    for (dep, entry) in &mut deps {
        entry.1 = union(
            counted
                .iter()
                .filter(|c| c.0 == *dep)
                .map(|c| (c.1, c.2))
                .collect(),
        );
    }
    Expected {
        total: end,
        external: union(counted.iter().map(|c| (c.1, c.2)).collect()),
        calls: counted.len() as u64,
        deps,
        outcome,
    }
}

// --- running a schedule ---------------------------------------------------------

#[derive(Debug)]
struct Planned;

#[external_call("redis")]
async fn redis(body: BoxFuture<'static, ()>) {
    body.await;
}

fn run_call(call: Call) -> BoxFuture<'static, ()> {
    let Call { dep, wait, inner } = call;
    let body = async move {
        let inner = inner.into_iter().map(|(offset, call)| async move {
            sleep(ms(offset)).await;
            run_call(call).await;
        });
        tokio::join!(sleep(ms(wait)), join_all(inner));
    }
    .boxed();
    if dep == DEPS[0] {
        redis(body).boxed()
    } else {
        selftime::external(dep, body).boxed()
    }
}

async fn run_branch(first: u64, steps: Vec<(u64, Call)>) {
    sleep(ms(first)).await;
    for (gap, call) in steps {
        sleep(ms(gap)).await;
        run_call(call).await;
    }
}

type Tasks = Arc<Mutex<Vec<JoinHandle<()>>>>;

#[timed_handler]
async fn handler(plan: Arc<Plan>, tasks: Tasks) -> Result<(), Planned> {
    let mut inline = Vec::new();
    let mut awaited = Vec::new();
    for branch in &plan.branches {
        let steps = branch.steps.clone();
        match branch.mode {
            Mode::Inline => inline.push(run_branch(0, steps)),
            Mode::Awaited => awaited.push(selftime::spawn(run_branch(0, steps))),
            Mode::Detached => {
                let task = tokio::spawn(run_branch(1, steps).in_current_handler());
                tasks.lock().unwrap().push(task);
            }
            Mode::Uncarried => {
                let task = tokio::spawn(run_branch(0, steps));
                tasks.lock().unwrap().push(task);
            }
        }
    }
    let awaited = async {
        for task in awaited {
            task.await.expect("an awaited branch");
        }
    };
    tokio::join!(join_all(inline), awaited, sleep(ms(plan.own)));
    match plan.end {
        End::Err => Err(Planned),
        End::Panic => panic!("{PLANNED_PANIC}"),
        End::Ok | End::Cancel(_) => Ok(()),
    }
}

/// Keeps planned panics off stderr; anything else goes to the default hook.
fn quiet_planned_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m == PLANNED_PANIC);
            if !planned {
                default(info);
            }
        }));
    });
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

/// Runs `plan` and returns the one span the handler closed.
fn replay(plan: &Plan) -> crate::common::Closed {
    let (capture, _guard) = Capture::install();
    let plan = Arc::new(plan.clone());
    paused_runtime().block_on(async {
        let tasks = Tasks::default();
        let run = handler(Arc::clone(&plan), Arc::clone(&tasks));
        match plan.end {
            End::Cancel(at) => {
                let _ = tokio::time::timeout(ms(at), run).await;
            }
            End::Panic => {
                let caught = AssertUnwindSafe(run).catch_unwind().await;
                assert!(caught.is_err(), "the planned panic");
            }
            End::Ok | End::Err => {
                let _ = run.await;
            }
        }
        // Every task runs to its end, late calls against a ledger that has
        // reported included; none of them may panic.
        let tasks = std::mem::take(&mut *tasks.lock().unwrap());
        for task in tasks {
            task.await.expect("a spawned branch");
        }
    });
    capture.only("handler")
}

/// `dep=<µs>us/<calls>,…` as (name, µs, calls).
fn parse_breakdown(text: &str) -> Vec<(String, u64, u64)> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',')
        .map(|entry| {
            let (name, rest) = entry.split_once('=').expect("`dep=`");
            let (us, calls) = rest.split_once("us/").expect("`<µs>us/<calls>`");
            (name.to_owned(), us.parse().unwrap(), calls.parse().unwrap())
        })
        .collect()
}

fn check(plan: &Plan) -> Result<(), TestCaseError> {
    let want = expected(plan);
    let span = replay(plan);
    let (total, external, internal) = span.figures();
    prop_assert_eq!(span.outcome(), want.outcome);
    prop_assert_eq!(total, want.total * 1_000, "total");
    prop_assert_eq!(external, want.external * 1_000, "external");
    prop_assert_eq!(internal, (want.total - want.external) * 1_000, "internal");
    prop_assert_eq!(span.u64("external.calls"), want.calls, "calls");

    let breakdown = parse_breakdown(span.breakdown());
    let got: BTreeMap<&str, (u64, u64)> = breakdown
        .iter()
        .map(|(name, us, calls)| (name.as_str(), (*us, *calls)))
        .collect();
    let wanted: BTreeMap<&str, (u64, u64)> = want
        .deps
        .iter()
        .map(|(&name, &(_, busy, calls))| (name, (busy * 1_000, calls)))
        .collect();
    prop_assert_eq!(got.len(), breakdown.len(), "a dependency listed twice");
    prop_assert_eq!(got, wanted, "breakdown {}", span.breakdown());
    // In order of first call; dependencies first called at the same instant
    // may come in either order.
    let firsts: Vec<u64> = breakdown
        .iter()
        .map(|(name, _, _)| want.deps[name.as_str()].0)
        .collect();
    prop_assert!(
        firsts.windows(2).all(|w| w[0] <= w[1]),
        "breakdown {} is not in order of first call ({firsts:?})",
        span.breakdown()
    );
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        // Failures are shrunk and printed; no regression files in the tree.
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn random_schedules_agree_with_the_reference() {
    quiet_planned_panics();
    runner(cases(3_000))
        .run(&plan(), |plan| check(&plan))
        .unwrap();
}

/// The reference itself, on the contract's picture (A 10..30, B 20..40,
/// C 45..55, handler 0..60) and on the edge cases of the schedule.
#[test]
fn the_reference_on_known_schedules() {
    let leaf = |dep, wait| Call {
        dep,
        wait,
        inner: Vec::new(),
    };
    let inline = |steps| Branch {
        mode: Mode::Inline,
        steps,
    };
    let picture = Plan {
        branches: vec![
            inline(vec![(10, leaf("a", 20))]),
            inline(vec![(20, leaf("b", 20))]),
            inline(vec![(45, leaf("c", 10))]),
        ],
        own: 60,
        end: End::Ok,
    };
    let want = expected(&picture);
    assert_eq!((want.total, want.external, want.calls), (60, 40, 3));
    assert_eq!(want.deps["a"], (10, 20, 1));

    // A detached branch calling past the end is cut off at it; one starting
    // after the end is not counted; an uncarried one never is.
    let late = Plan {
        branches: vec![
            Branch {
                mode: Mode::Detached,
                steps: vec![(0, leaf("a", 20)), (8, leaf("b", 4))],
            },
            Branch {
                mode: Mode::Uncarried,
                steps: vec![(0, leaf("c", 8))],
            },
        ],
        own: 12,
        end: End::Ok,
    };
    let want = expected(&late);
    assert_eq!((want.total, want.external, want.calls), (12, 11, 1));

    // A cancellation cuts everything at the drop, nested calls included.
    let cancelled = Plan {
        branches: vec![inline(vec![(
            0,
            Call {
                dep: "proxy",
                wait: 4,
                inner: vec![(0, leaf("backend", 40))],
            },
        )])],
        own: 0,
        end: End::Cancel(22),
    };
    let want = expected(&cancelled);
    assert_eq!((want.total, want.external, want.calls), (22, 22, 2));
    assert_eq!(want.deps["proxy"], (0, 22, 1));
    assert_eq!(want.outcome, "cancelled");
}

// --- long chains: more dependencies than a ledger names -------------------------

#[timed_handler]
async fn chain(steps: Vec<(u64, usize, u64)>) {
    for (gap, dep, wait) in steps {
        sleep(ms(gap)).await;
        selftime::external(MANY[dep], sleep(ms(wait))).await;
    }
}

/// Calls one after another to up to 22 dependencies: the first 16 named in
/// order of first call, the rest together under `other`, last; no time lost.
#[test]
fn long_chains_name_sixteen_dependencies_then_other() {
    let steps = prop::collection::vec((0..=2u64, 0..MANY.len(), 0..=3u64), 0..=40);
    runner(cases(1_000))
        .run(&steps, |steps| {
            let (capture, _guard) = Capture::install();
            paused_runtime().block_on(chain(steps.clone()));
            let span = capture.only("chain");

            let mut order: Vec<&str> = Vec::new();
            let mut figures: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            let (mut t, mut external) = (0, 0);
            for &(gap, dep, wait) in &steps {
                t += gap;
                let name = MANY[dep];
                if !order.contains(&name) && order.len() < 16 {
                    order.push(name);
                }
                let slot = if order.contains(&name) { name } else { "other" };
                // Sequential calls: their unions are plain sums.
                let entry = figures.entry(slot).or_default();
                entry.0 += wait;
                entry.1 += 1;
                external += wait;
                t += wait;
            }
            if figures.contains_key("other") {
                order.push("other");
            }
            let want: Vec<String> = order
                .iter()
                .map(|name| {
                    let (busy, calls) = figures[name];
                    format!("{name}={}us/{calls}", busy * 1_000)
                })
                .collect();
            prop_assert_eq!(span.breakdown(), want.join(","));
            prop_assert_eq!(
                span.figures(),
                (t * 1_000, external * 1_000, (t - external) * 1_000)
            );
            prop_assert_eq!(span.u64("external.calls"), steps.len() as u64);
            Ok(())
        })
        .unwrap();
}
