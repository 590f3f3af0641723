//! The checks. Each test runs its closure under `loom::model`, once per
//! interleaving, with fixed timestamps, and compares what the ledger returns
//! with the ledger's *sequential specification*: the figures one thread would
//! get doing the same operations one at a time, in some order that keeps each
//! thread's own order.
//!
//! A concurrent reading is right when some such order explains it. Each part
//! of a ledger (the union, each dependency's own interval, each counter) is
//! one atomic object and is checked on its own: a call's `begin` updates them
//! one after another, so a reading taken in the middle of one may see the
//! union opened and the dependency not yet, which is allowed. Where a
//! scenario makes every order agree (a call held open by the main thread
//! around the others, calls ending at the same instant) the tests assert the
//! one exact figure.
//!
//! A test whose figures depend on the interleaving also collects the
//! outcomes it saw across interleavings, and checks at the end that loom did
//! explore the schedules behind each of them (a read before the close *and*
//! one after it): a model that ran one schedule only would pass the per-run
//! checks without proving anything.

use crate::ledger::{Figures, Ledger, Ticket};
use loom::sync::Arc;
use loom::thread::spawn;
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

/// Runs `f` under loom and returns the preemption bound it ran with.
/// `LOOM_MAX_PREEMPTIONS` (and loom's other variables) apply; without it the
/// bound is 3, which explores every outcome of every scenario here and keeps
/// the whole suite to a few minutes in a release build.
fn check(f: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(3);
    builder.check(f);
    bound
}

// --- the sequential specification ------------------------------------------

/// One event on one of the ledger's intervals, at a fixed time.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// A call starts.
    Open(u64),
    /// A call ends.
    Close(u64),
    /// A reading of the busy time at this time.
    Read(u64),
}

/// A union of busy intervals, done the obvious way, one event at a time: the
/// last call out adds `end - start` to the busy time; a reading adds the
/// open part. Times that run backwards across events (the schedules below
/// apply fixed times in every order) follow the ledger's documented rule: a
/// figure is `busy + (t - start)` as a whole, clamped to zero, rather than
/// each part clamped (`runtime/src/ledger.rs`, module docs).
#[derive(Clone, Copy, Debug, Default)]
struct Spec {
    in_flight: u64,
    start: u64,
    busy: u64,
}

impl Spec {
    fn apply(&mut self, ev: Ev) -> Option<u64> {
        match ev {
            Ev::Open(t) => {
                if self.in_flight == 0 {
                    self.start = t;
                }
                self.in_flight += 1;
                None
            }
            Ev::Close(t) => {
                self.in_flight -= 1;
                if self.in_flight == 0 {
                    self.busy = self.with_open_part(t);
                }
                None
            }
            Ev::Read(t) => Some(self.at(t)),
        }
    }

    fn with_open_part(&self, t: u64) -> u64 {
        let sum = i128::from(self.busy) + i128::from(t) - i128::from(self.start);
        u64::try_from(sum.max(0)).unwrap()
    }

    fn at(&self, t: u64) -> u64 {
        if self.in_flight > 0 {
            self.with_open_part(t)
        } else {
            self.busy
        }
    }
}

/// Every outcome the specification allows: `before` runs alone, then the
/// threads' events interleave in every way that keeps each thread's order,
/// then a final reading at `end`. An outcome is the values of the reads, in
/// thread order, followed by that final reading.
fn allowed(before: &[Ev], threads: &[&[Ev]], end: u64) -> BTreeSet<Vec<u64>> {
    fn walk(
        threads: &[&[Ev]],
        next: &mut Vec<usize>,
        spec: Spec,
        reads: &mut Vec<Option<u64>>,
        end: u64,
        out: &mut BTreeSet<Vec<u64>>,
    ) {
        let mut done = true;
        for i in 0..threads.len() {
            let Some(&ev) = threads[i].get(next[i]) else {
                continue;
            };
            done = false;
            let slot: usize = threads[..i].iter().map(|t| t.len()).sum::<usize>() + next[i];
            let mut spec = spec;
            let value = spec.apply(ev);
            let saved = reads[slot];
            reads[slot] = value;
            next[i] += 1;
            walk(threads, next, spec, reads, end, out);
            next[i] -= 1;
            reads[slot] = saved;
        }
        if done {
            let mut outcome: Vec<u64> = reads.iter().flatten().copied().collect();
            outcome.push(spec.at(end));
            out.insert(outcome);
        }
    }
    let mut spec = Spec::default();
    for &ev in before {
        assert!(
            spec.apply(ev).is_none(),
            "`before` runs alone and reads nothing"
        );
    }
    let events = threads.iter().map(|t| t.len()).sum();
    let mut out = BTreeSet::new();
    walk(
        threads,
        &mut vec![0; threads.len()],
        spec,
        &mut vec![None; events],
        end,
        &mut out,
    );
    out
}

/// Outcomes seen across the interleavings of one test.
struct Seen(Mutex<BTreeSet<Vec<u64>>>);

impl Seen {
    const fn new() -> Self {
        Self(Mutex::new(BTreeSet::new()))
    }

    fn insert(&self, outcome: Vec<u64>) {
        self.0.lock().unwrap().insert(outcome);
    }

    /// Checks `outcome` against the specification and remembers it.
    fn record(&self, what: &str, outcome: Vec<u64>, allowed: &BTreeSet<Vec<u64>>) {
        assert!(
            allowed.contains(&outcome),
            "{what}: the ledger returned {outcome:?}, which no sequential order of the same \
             operations gives; allowed: {allowed:?}"
        );
        self.insert(outcome);
    }

    /// Checks that loom explored the schedules behind every outcome in
    /// `expected`. Each needs at most three preemptions, so a lower bound
    /// (a quick local run) is only held to seeing more than one.
    fn explored(&self, expected: &BTreeSet<Vec<u64>>, bound: usize) {
        let seen = self.0.lock().unwrap().clone();
        if bound >= 3 {
            assert_eq!(&seen, expected, "outcomes seen, and those expected");
        } else {
            assert!(seen.len() > 1 && seen.is_subset(expected), "seen: {seen:?}");
        }
    }
}

// --- reading a ledger --------------------------------------------------------

/// A dependency's figures: name, busy time, calls.
type Dep = (&'static str, u64, u64);

fn deps(f: &Figures) -> Vec<Dep> {
    f.deps[..f.dep_count]
        .iter()
        .map(|d| (d.name, d.busy, d.calls))
        .collect()
}

/// A dependency's busy time in `f`; a dependency not named yet has none.
fn busy_of(f: &Figures, name: &str) -> u64 {
    deps(f).iter().find(|d| d.0 == name).map_or(0, |d| d.1)
}

fn call(ledger: &Ledger, dep: &'static str, start: u64, end: u64) {
    let ticket = ledger.begin(dep, start);
    ledger.end(dep, ticket, end);
}

// --- two and three concurrent calls -------------------------------------------

/// Two threads call different dependencies while the main thread holds a
/// call open around both: the union is exactly the outer call, each
/// dependency is exactly its one call, and the two new slots are named in
/// either order.
#[test]
fn two_calls_to_different_dependencies_inside_an_open_call() {
    static ORDERS: Seen = Seen::new();
    let bound = check(|| {
        let ledger = Arc::new(Ledger::new());
        let outer = ledger.begin("outer", 0);
        let a = {
            let ledger = Arc::clone(&ledger);
            spawn(move || call(&ledger, "a", 10, 30))
        };
        let b = {
            let ledger = Arc::clone(&ledger);
            spawn(move || call(&ledger, "b", 20, 45))
        };
        a.join().unwrap();
        b.join().unwrap();
        ledger.end("outer", outer, 50);

        let f = ledger.figures(60);
        assert_eq!(f.external, 50);
        assert_eq!(f.calls, 3);
        let deps = deps(&f);
        assert_eq!(deps.len(), 3, "{deps:?}");
        assert_eq!(deps[0], ("outer", 50, 1));
        let mut rest = deps[1..].to_vec();
        let order = u64::from(rest[0].0 == "b");
        rest.sort_unstable();
        assert_eq!(rest, [("a", 20, 1), ("b", 25, 1)]);
        ORDERS.insert(vec![order]);
    });
    // Both threads got to name their slot first in some interleaving.
    ORDERS.explored(&BTreeSet::from([vec![0], vec![1]]), bound);
}

/// Two overlapping calls to one dependency, each begun and ended on its own
/// thread: the union and the dependency's interval are each what some order
/// of the four events gives, the count is exact, and there is one slot.
#[test]
fn two_overlapping_calls_to_one_dependency() {
    let t1 = [Ev::Open(10), Ev::Close(30)];
    let t2 = [Ev::Open(20), Ev::Close(40)];
    let allowed = allowed(&[], &[&t1, &t2], 50);
    static UNION: Seen = Seen::new();
    let bound = {
        let allowed = allowed.clone();
        check(move || {
            let ledger = Arc::new(Ledger::new());
            let other = {
                let ledger = Arc::clone(&ledger);
                spawn(move || call(&ledger, "a", 20, 40))
            };
            call(&ledger, "a", 10, 30);
            other.join().unwrap();

            let f = ledger.figures(50);
            UNION.record("union", vec![f.external], &allowed);
            assert!(allowed.contains(&vec![busy_of(&f, "a")]), "{f:?}");
            assert_eq!(f.calls, 2);
            assert_eq!(deps(&f).len(), 1);
            assert_eq!(deps(&f)[0].2, 2);
        })
    };
    UNION.explored(&allowed, bound);
}

/// Three threads: two calls and the end of a call the main thread began (a
/// carried task ending its handler's call), plus the same dependency from
/// two sides. Every part of the ledger is what some order gives.
#[test]
fn three_threads_calling_and_closing() {
    // main: begins "a" at 0. t1: "a" 10..40. t2: "b" 20..50. t3: ends main's "a" at 60.
    let union = allowed(
        &[Ev::Open(0)],
        &[
            &[Ev::Open(10), Ev::Close(40)],
            &[Ev::Open(20), Ev::Close(50)],
            &[Ev::Close(60)],
        ],
        70,
    );
    let a = allowed(
        &[Ev::Open(0)],
        &[&[Ev::Open(10), Ev::Close(40)], &[Ev::Close(60)]],
        70,
    );
    static UNION: Seen = Seen::new();
    let bound = {
        let (union, a) = (union.clone(), a.clone());
        check(move || {
            let ledger = Arc::new(Ledger::new());
            let held = ledger.begin("a", 0);
            let threads = [
                {
                    let ledger = Arc::clone(&ledger);
                    spawn(move || call(&ledger, "a", 10, 40))
                },
                {
                    let ledger = Arc::clone(&ledger);
                    spawn(move || call(&ledger, "b", 20, 50))
                },
                {
                    let ledger = Arc::clone(&ledger);
                    spawn(move || ledger.end("a", held, 60))
                },
            ];
            for t in threads {
                t.join().unwrap();
            }

            let f = ledger.figures(70);
            UNION.record("union", vec![f.external], &union);
            assert!(a.contains(&vec![busy_of(&f, "a")]), "{f:?}");
            assert_eq!(f.calls, 3);
            let names: Vec<_> = deps(&f).iter().map(|d| (d.0, d.2)).collect();
            assert_eq!(names, [("a", 2), ("b", 1)]);
            assert_eq!(busy_of(&f, "b"), 30);
        })
    };
    UNION.explored(&union, bound);
}

/// Three calls open at once, all ended at the same instant on three threads:
/// the last one out closes the union whichever it is, so the figures are
/// exact. The closes race on the interval's one word.
#[test]
fn three_calls_ending_at_once() {
    let _ = check(|| {
        let ledger = Arc::new(Ledger::new());
        let tickets: [(&'static str, Ticket); 3] = [
            ("a", ledger.begin("a", 0)),
            ("a", ledger.begin("a", 10)),
            ("b", ledger.begin("b", 20)),
        ];
        let threads = tickets.map(|(dep, ticket)| {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.end(dep, ticket, 40))
        });
        for t in threads {
            t.join().unwrap();
        }
        let f = ledger.figures(100);
        assert_eq!(f.external, 40);
        assert_eq!(f.calls, 3);
        assert_eq!(deps(&f), [("a", 40, 2), ("b", 20, 1)]);
    });
}

/// A close, a new call and a reader at once: the new call may reopen the
/// interval right after the close (its anchor then carries the busy time the
/// close stored) and close it again; the reader, whenever it loads the word,
/// sees one consistent figure.
#[test]
fn a_call_that_reopens_an_interval_just_closed_while_a_reading_races() {
    let allowed = allowed(
        &[Ev::Open(0)],
        &[
            &[Ev::Close(30)],
            &[Ev::Open(30), Ev::Close(45)],
            &[Ev::Read(50)],
        ],
        60,
    );
    static SEEN: Seen = Seen::new();
    let bound = {
        let allowed = allowed.clone();
        check(move || {
            let ledger = Arc::new(Ledger::new());
            let held = ledger.begin("a", 0);
            let closer = {
                let ledger = Arc::clone(&ledger);
                spawn(move || ledger.end("a", held, 30))
            };
            let caller = {
                let ledger = Arc::clone(&ledger);
                spawn(move || call(&ledger, "a", 30, 45))
            };
            // A hint to loom's bounded search, as above.
            loom::thread::yield_now();
            let read = ledger.figures(50);
            closer.join().unwrap();
            caller.join().unwrap();
            let end = ledger.figures(60);
            SEEN.record("union", vec![read.external, end.external], &allowed);
            assert!(
                allowed.contains(&vec![busy_of(&read, "a"), busy_of(&end, "a")]),
                "{read:?} {end:?}"
            );
        })
    };
    SEEN.explored(&allowed, bound);
}

// --- a reader against a closing call -----------------------------------------

/// A call that closes while another thread reads: the reading sees the call
/// either closed (10..30) or still open and counted up to the reading
/// (10..50), never both (60) and never neither (0).
#[test]
fn a_read_during_a_close_sees_the_closed_or_the_open_interval() {
    static SEEN: Seen = Seen::new();
    let allowed = allowed(&[Ev::Open(10)], &[&[Ev::Close(30)], &[Ev::Read(50)]], 60);
    assert_eq!(allowed, BTreeSet::from([vec![20, 20], vec![40, 20]]));
    let bound = {
        let allowed = allowed.clone();
        check(move || {
            let ledger = Arc::new(Ledger::new());
            let ticket = ledger.begin("a", 10);
            let closer = {
                let ledger = Arc::clone(&ledger);
                spawn(move || ledger.end("a", ticket, 30))
            };
            let reader = {
                let ledger = Arc::clone(&ledger);
                spawn(move || ledger.figures(50))
            };
            closer.join().unwrap();
            let read = reader.join().unwrap();
            let end = ledger.figures(60);

            assert!(matches!(read.external, 20 | 40), "{read:?}");
            assert!(matches!(busy_of(&read, "a"), 20 | 40), "{read:?}");
            assert_eq!(read.calls, 1);
            assert_eq!((end.external, busy_of(&end, "a")), (20, 20));
            SEEN.record("union", vec![read.external, end.external], &allowed);
        })
    };
    // Both sides of the race were explored.
    SEEN.explored(&allowed, bound);
}

/// A reader racing a whole call, from before its start to after its end:
/// nothing yet (0), open (40) or closed (20).
#[test]
fn a_read_during_a_whole_call() {
    static SEEN: Seen = Seen::new();
    let allowed = allowed(&[], &[&[Ev::Open(10), Ev::Close(30)], &[Ev::Read(50)]], 60);
    assert_eq!(
        allowed,
        BTreeSet::from([vec![0, 20], vec![20, 20], vec![40, 20]])
    );
    let bound = {
        let allowed = allowed.clone();
        check(move || {
            let ledger = Arc::new(Ledger::new());
            let caller = {
                let ledger = Arc::clone(&ledger);
                spawn(move || call(&ledger, "a", 10, 30))
            };
            // A hint to loom's bounded search (see
            // `a_reading_sees_a_slot_only_once_it_is_named`): without it, no
            // explored schedule ran any of the call before this reading.
            loom::thread::yield_now();
            let read = ledger.figures(50);
            caller.join().unwrap();
            let end = ledger.figures(60);
            SEEN.record("union", vec![read.external, end.external], &allowed);
            let dep = vec![busy_of(&read, "a"), busy_of(&end, "a")];
            assert!(allowed.contains(&dep), "{read:?} {end:?}");
            assert!(read.calls <= 1);
            assert_eq!(end.calls, 1);
        })
    };
    SEEN.explored(&allowed, bound);
}

// --- naming slots on first call --------------------------------------------

/// The same name, spelled by two different `&'static str`s (names compare by
/// content), claimed by two threads at once: one slot, both calls in it.
#[test]
fn two_first_calls_to_one_dependency_share_a_slot() {
    static OTHER_X: OnceLock<&'static str> = OnceLock::new();
    let other_x: &'static str = OTHER_X.get_or_init(|| String::from("x").leak());
    assert!(!std::ptr::eq(other_x, "x"));
    let _ = check(move || {
        let ledger = Arc::new(Ledger::new());
        let first = {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.begin("x", 10))
        };
        let second = {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.begin(other_x, 10))
        };
        let first = first.join().unwrap();
        let second = second.join().unwrap();
        ledger.end("x", first, 30);
        ledger.end(other_x, second, 40);

        let f = ledger.figures(50);
        assert_eq!(deps(&f), [("x", 30, 2)]);
        assert_eq!((f.external, f.calls), (30, 2));
    });
}

/// Two names claimed by two threads at once: two slots, in the order the
/// names were first claimed, each with its own figures.
#[test]
fn first_calls_to_two_dependencies_take_two_slots() {
    static ORDERS: Seen = Seen::new();
    let bound = check(|| {
        let ledger = Arc::new(Ledger::new());
        let x = {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.begin("x", 10))
        };
        let y = {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.begin("y", 10))
        };
        let (x, y) = (x.join().unwrap(), y.join().unwrap());
        ledger.end("x", x, 30);
        ledger.end("y", y, 45);

        let f = ledger.figures(60);
        let deps = deps(&f);
        let order = u64::from(deps[0].0 == "y");
        let mut sorted = deps.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [("x", 20, 1), ("y", 35, 1)], "{deps:?}");
        assert_eq!((f.external, f.calls), (35, 2));
        ORDERS.insert(vec![order]);
    });
    ORDERS.explored(&BTreeSet::from([vec![0], vec![1]]), bound);
}

/// A reading while a slot is being named: the name is read only once it is
/// published, which loom checks on every access to the name's cell (it
/// fails the test on a read that races the write).
#[test]
fn a_reading_sees_a_slot_only_once_it_is_named() {
    static SEEN: Seen = Seen::new();
    let bound = check(|| {
        let ledger = Arc::new(Ledger::new());
        let caller = {
            let ledger = Arc::clone(&ledger);
            spawn(move || ledger.begin("x", 10))
        };
        // A hint to loom's bounded search, which starts other threads at the
        // points where their accesses conflict: without it, no explored
        // schedule ran the caller's naming before this reading's first load.
        loom::thread::yield_now();
        let during = ledger.figures(30);
        let named: Vec<_> = deps(&during).iter().map(|d| d.0).collect();
        assert!(named.is_empty() || named == ["x"], "{during:?}");
        let ticket = caller.join().unwrap();
        ledger.end("x", ticket, 40);
        assert_eq!(deps(&ledger.figures(50)), [("x", 30, 1)]);
        SEEN.insert(vec![named.len() as u64]);
    });
    SEEN.explored(&BTreeSet::from([vec![0], vec![1]]), bound);
}

// --- the split of internal time ----------------------------------------------

/// With the internal-time split on, a call, a poll of the handler and a
/// wake race on three threads. Each of the three unions (`E`, `P ∪ E`,
/// `P ∪ S ∪ E`) is what some order of its own events gives.
#[test]
fn split_unions_under_a_call_a_poll_and_a_wake() {
    // main polls 0..20, a call runs 10..30 on one thread, a wake waits 25..35
    // on another.
    let poll: &[Ev] = &[Ev::Open(0), Ev::Close(20)];
    let call_events: &[Ev] = &[Ev::Open(10), Ev::Close(30)];
    let wake: &[Ev] = &[Ev::Open(25), Ev::Close(35)];
    let polled = allowed(&[], &[poll, call_events], 40);
    let scheduled = allowed(&[], &[poll, call_events, wake], 40);
    static SEEN: Seen = Seen::new();
    let bound = {
        let (polled, scheduled) = (polled.clone(), scheduled.clone());
        check(move || {
            let ledger = Arc::new(Ledger::with_split());
            let caller = {
                let ledger = Arc::clone(&ledger);
                spawn(move || call(&ledger, "a", 10, 30))
            };
            let waker = {
                let ledger = Arc::clone(&ledger);
                spawn(move || {
                    let ticket = ledger.wait_begin(25);
                    ledger.wait_end(ticket, 35);
                })
            };
            let ticket = ledger.poll_begin(0);
            ledger.poll_end(ticket, 20);
            caller.join().unwrap();
            waker.join().unwrap();

            let f = ledger.figures(40);
            assert_eq!((f.external, f.calls), (20, 1));
            let (p, s) = f.split.expect("a ledger with split");
            SEEN.record("P ∪ E", vec![p], &polled);
            assert!(
                scheduled.contains(&vec![s]),
                "P ∪ S ∪ E = {s}: {scheduled:?}"
            );
        })
    };
    SEEN.explored(&polled, bound);
}
