//! The per-request ledger: plain data, lock-free, no allocation per call.
//!
//! It knows nothing about tokio or tracing. Time is a `u64` of nanoseconds
//! from an origin the caller chooses (the root handler's start); the caller
//! reads the clock once per event and hands the same reading to every ledger
//! of a chain of nested handlers.
//!
//! # The union of busy intervals
//!
//! Each [`Interval`] is one `AtomicU64`: an in-flight counter and a 50-bit
//! time, whose meaning depends on the counter.
//!
//! ```text
//!  63                                      14 13             0
//! +------------------------------------------+----------------+
//! | time (50 b): busy, or anchor             | in flight (14b)|
//! +------------------------------------------+----------------+
//! ```
//!
//! With no call in flight the time is the busy time so far. A call that
//! takes the count from 0 to 1 opens an interval at its start `s` and stores
//! the *anchor* `s - busy` in its place; while the interval is open the busy
//! time at `now` is `now - anchor` (the closed time plus the open part). The
//! call that takes the count from 1 to 0 at `e` stores `e - anchor`, the new
//! busy time. Concurrent calls therefore count once (the union), never
//! twice, and every step is one compare-and-swap of one word: a reader loads
//! that word once and has a consistent figure, and no writer waits for
//! another.
//!
//! The arithmetic wraps modulo 2^50, so an anchor may be negative: a call
//! that read its start, then lost the race to calls that began and ended
//! after it, opens with a start before busy time already counted, and its
//! close still adds exactly `e - s`. The figure is the one a start and a
//! separate busy word would give (`busy + (t - s)`), with one difference: a
//! time before the interval's start is not clamped to it, so the result is
//! clamped to zero instead, as a whole. That matters only in two cases:
//!
//! - a close that reads a time before its interval's start takes time back.
//!   The callers never pass a call's end earlier than its own start (a
//!   clock that looked backwards counts the call as no time), and with a
//!   monotonic clock the interval's start, set before the call joined it,
//!   is no later than that;
//! - a reading taken at `now` that loads the word after a call opened at a
//!   later `s` (the reading's clock was read first, the call started between
//!   that and the load) comes out short by `s - now`, the time between the
//!   two: a few nanoseconds unless the reader was descheduled in between.

use crate::names::DepId;
use crate::sync::{AtomicU16, AtomicU64};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// How many distinct dependencies a ledger names; further ones share
/// `other`.
pub(crate) const DEP_SLOTS: usize = 16;

use crate::names::OTHER_DEPENDENCY;

const COUNT_MASK: u64 = (1 << 14) - 1;
const TIME_SHIFT: u32 = 14;
/// Times are kept modulo 2^50 (the word's upper 50 bits); a difference of
/// two of them reads as negative from 2^49 up.
const TIME_MASK: u64 = (1 << 50) - 1;
const NEGATIVE: u64 = 1 << 49;
/// The latest time an interval keeps (about 6.5 days from the origin);
/// later ones saturate to it.
const MAX_TIME: u64 = NEGATIVE - 1;

/// `a - b` in the word's 50-bit time, through wrapping: exact while the true
/// difference lies within ±2^49.
#[inline]
fn sub_time(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b) & TIME_MASK
}

/// A busy time from [`sub_time`]: a negative one (only a clock that looked
/// backwards makes one) reads as zero.
#[inline]
fn non_negative(time: u64) -> u64 {
    if time >= NEGATIVE { 0 } else { time }
}

/// A union of busy intervals, updated by any number of threads.
///
/// One atomic word holds the in-flight count and one 50-bit time: while no
/// call is in flight, the busy time so far; while one is, the busy time's
/// *anchor*, the interval's start minus the busy time before it, so that
/// the busy time at `now` is `now - anchor` (see the module docs).
#[derive(Debug)]
pub(crate) struct Interval {
    state: AtomicU64,
}

impl Interval {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
        }
    }

    /// Back to no call ever made (the caller owns the interval).
    fn reset(&mut self) {
        self.state.store(0, Relaxed);
    }

    /// Counts one more call in flight from `now`. Returns `false` when the
    /// counter is full (16,383 calls in flight at once): that call is then
    /// inside an interval that is already open, and must not close it.
    pub(crate) fn open(&self, now: u64) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            let count = s & COUNT_MASK;
            if count == COUNT_MASK {
                return false;
            }
            let new = if count == 0 {
                // The anchor: negative (wrapped) when this call's start reads
                // before busy time already closed (it read the clock, then
                // lost the race to calls that began and ended after it).
                let busy = s >> TIME_SHIFT;
                (sub_time(now.min(MAX_TIME), busy) << TIME_SHIFT) | 1
            } else {
                s + 1
            };
            match self.state.compare_exchange_weak(s, new, AcqRel, Relaxed) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// Counts one call fewer in flight at `now`; the last one out closes the
    /// interval. Must pair with an `open` that returned `true`.
    pub(crate) fn close(&self, now: u64) {
        let mut s = self.state.load(Relaxed);
        loop {
            let count = s & COUNT_MASK;
            if count == 0 {
                // Unpaired close: nothing is open, so there is nothing to add.
                return;
            }
            let new = if count == 1 {
                let anchor = s >> TIME_SHIFT;
                non_negative(sub_time(now.min(MAX_TIME), anchor)) << TIME_SHIFT
            } else {
                s - 1
            };
            match self.state.compare_exchange_weak(s, new, AcqRel, Relaxed) {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    /// The busy time up to `now`, an interval still open counted up to `now`.
    pub(crate) fn busy_at(&self, now: u64) -> u64 {
        let s = self.state.load(Acquire);
        let time = s >> TIME_SHIFT;
        if s & COUNT_MASK == 0 {
            time
        } else {
            non_negative(sub_time(now.min(MAX_TIME), time))
        }
    }
}

/// One dependency's share of a ledger: its own union and call count, and
/// what the calls that reported the dependency's own time (`Server-Timing`)
/// spent between the two ends.
#[derive(Debug)]
struct DepCounters {
    interval: Interval,
    calls: AtomicU64,
    /// The sum, over the calls that reported it, of each call's time less
    /// the dependency's own.
    between: AtomicU64,
    /// How many calls reported the dependency's own time.
    reported: AtomicU64,
}

impl DepCounters {
    fn new() -> Self {
        Self {
            interval: Interval::new(),
            calls: AtomicU64::new(0),
            between: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }

    fn reset(&mut self) {
        self.interval.reset();
        self.calls.store(0, Relaxed);
        self.between.store(0, Relaxed);
        self.reported.store(0, Relaxed);
    }
}

/// Which of a ledger's intervals a call opened, so that its end closes the
/// same (an interval whose counter was full did not count the call).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ticket(u8);

const T_UNION: u8 = 1;
const T_SLOT: u8 = 2;
const T_POLLS: u8 = 4;
const T_SCHEDULED: u8 = 8;

/// How many bits a [`Ticket`] takes.
pub(crate) const TICKET_BITS: u32 = 4;

impl Ticket {
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    pub(crate) fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    fn set(&mut self, bit: u8, admitted: bool) {
        if admitted {
            self.0 |= bit;
        }
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The figures of one ledger at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Figures {
    /// The union of external calls' busy intervals: `E`.
    pub(crate) external: u64,
    pub(crate) calls: u64,
    pub(crate) deps: [DepFigure; DEP_SLOTS + 1],
    pub(crate) dep_count: usize,
    /// With split tracking: `|P ∪ E|` and `|P ∪ S ∪ E|` (see [`Split`]).
    pub(crate) split: Option<(u64, u64)>,
}

/// A ledger's figures but the breakdown: see [`Ledger::totals`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Totals {
    pub(crate) external: u64,
    pub(crate) calls: u64,
    pub(crate) split: Option<(u64, u64)>,
}

/// One dependency's figures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DepFigure {
    pub(crate) name: &'static str,
    pub(crate) busy: u64,
    pub(crate) calls: u64,
    /// The time between the two ends of the calls that reported the
    /// dependency's own time, and how many did.
    pub(crate) between: u64,
    pub(crate) reported: u64,
}

impl DepFigure {
    pub(crate) const NONE: Self = Self {
        name: "",
        busy: 0,
        calls: 0,
        between: 0,
        reported: 0,
    };
}

/// The optional split of internal time. Three unions are kept, so that each
/// part is exact however the intervals overlap:
///
/// - `E`, external calls in flight (the ledger's own union);
/// - `P ∪ E`, adding the intervals in which the handler's future was being
///   polled;
/// - `P ∪ S ∪ E`, adding the intervals between a dependency waking the
///   handler and the handler being polled (calls in wake mode).
///
/// busy = `|P∪E| - |E|`, scheduled = `|P∪S∪E| - |P∪E|`, and waiting (timers,
/// locks, channels, other scheduler delay) = total - `|P∪S∪E|`.
#[derive(Debug)]
struct Split {
    polled: Interval,
    scheduled: Interval,
}

/// One handler invocation's account of its external calls.
///
/// The total call count is not kept on its own: it is the sum of the
/// dependencies' counts, read when the figures are (one atomic less a call).
#[derive(Debug)]
pub(crate) struct Ledger {
    union: Interval,
    /// The dependencies' ids, in order of first call (0: not named yet):
    /// slot `i` names `deps[i]`.
    names: [AtomicU16; DEP_SLOTS],
    deps: [DepCounters; DEP_SLOTS],
    other: DepCounters,
    split: Option<Split>,
}

impl Ledger {
    pub(crate) fn new() -> Self {
        Self {
            union: Interval::new(),
            names: std::array::from_fn(|_| AtomicU16::new(0)),
            deps: std::array::from_fn(|_| DepCounters::new()),
            other: DepCounters::new(),
            split: None,
        }
    }

    /// A ledger that also splits internal time into busy, scheduled and
    /// waiting (see [`Split`]): two more intervals to keep per call.
    pub(crate) fn with_split() -> Self {
        Self {
            split: Some(Split {
                polled: Interval::new(),
                scheduled: Interval::new(),
            }),
            ..Self::new()
        }
    }

    /// Records that a call to `dep` started at `now`.
    pub(crate) fn begin(&self, dep: impl Into<DepId>, now: u64) -> Ticket {
        let slot = self.slot(dep.into());
        slot.calls.fetch_add(1, Relaxed);
        self.reopen(slot, now)
    }

    /// Records that the call to `dep` behind `ticket` ended at `now`.
    ///
    /// The slot is looked up again rather than carried in the ticket: `begin`
    /// named it, so the lookup only compares, and a call that counts toward
    /// several nested ledgers needs no per-ledger state.
    pub(crate) fn end(&self, dep: impl Into<DepId>, ticket: Ticket, now: u64) {
        self.close(self.slot(dep.into()), ticket, now);
    }

    /// Records that a call to `dep` (begun through [`Ledger::begin`]) spent
    /// `between` nanoseconds between the two ends: its time less the time
    /// the dependency reported as its own.
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn between(&self, dep: impl Into<DepId>, between: u64) {
        let slot = self.slot(dep.into());
        slot.between.fetch_add(between, Relaxed);
        slot.reported.fetch_add(1, Release);
    }

    /// Reopens the intervals of a call to `dep` that is in flight again
    /// (wake mode: polled after its dependency woke it), without counting a
    /// new call.
    pub(crate) fn resume(&self, dep: DepId, now: u64) -> Ticket {
        self.reopen(self.slot(dep), now)
    }

    fn reopen(&self, slot: &DepCounters, now: u64) -> Ticket {
        let mut ticket = Ticket::default();
        ticket.set(T_UNION, self.union.open(now));
        ticket.set(T_SLOT, slot.interval.open(now));
        if let Some(split) = &self.split {
            ticket.set(T_POLLS, split.polled.open(now));
            ticket.set(T_SCHEDULED, split.scheduled.open(now));
        }
        ticket
    }

    fn close(&self, slot: &DepCounters, ticket: Ticket, now: u64) {
        if ticket.has(T_SLOT) {
            slot.interval.close(now);
        }
        if ticket.has(T_UNION) {
            self.union.close(now);
        }
        if let Some(split) = &self.split {
            if ticket.has(T_POLLS) {
                split.polled.close(now);
            }
            if ticket.has(T_SCHEDULED) {
                split.scheduled.close(now);
            }
        }
    }

    /// Whether this ledger splits internal time.
    pub(crate) fn tracks_split(&self) -> bool {
        self.split.is_some()
    }

    /// The handler's future is being polled from `now` (split only).
    pub(crate) fn poll_begin(&self, now: u64) -> Ticket {
        let mut ticket = Ticket::default();
        if let Some(split) = &self.split {
            ticket.set(T_POLLS, split.polled.open(now));
            ticket.set(T_SCHEDULED, split.scheduled.open(now));
        }
        ticket
    }

    /// The poll behind `ticket` ended at `now`.
    pub(crate) fn poll_end(&self, ticket: Ticket, now: u64) {
        if let Some(split) = &self.split {
            if ticket.has(T_POLLS) {
                split.polled.close(now);
            }
            if ticket.has(T_SCHEDULED) {
                split.scheduled.close(now);
            }
        }
    }

    /// A dependency woke the handler at `now`; it waits to be polled.
    pub(crate) fn wait_begin(&self, now: u64) -> Ticket {
        let mut ticket = Ticket::default();
        if let Some(split) = &self.split {
            ticket.set(T_SCHEDULED, split.scheduled.open(now));
        }
        ticket
    }

    /// The wait behind `ticket` ended at `now`: the handler is polled.
    pub(crate) fn wait_end(&self, ticket: Ticket, now: u64) {
        if let (Some(split), true) = (&self.split, ticket.has(T_SCHEDULED)) {
            split.scheduled.close(now);
        }
    }

    /// The figures up to `now`; calls still in flight count up to `now`.
    /// (The runtime reads [`Ledger::totals`] and [`Ledger::dependencies`];
    /// this is their sum, for the model checks and tests.)
    #[cfg(any(test, loom))]
    pub(crate) fn figures(&self, now: u64) -> Figures {
        let mut figures = Figures {
            external: self.union.busy_at(now),
            calls: 0,
            deps: [DepFigure::NONE; DEP_SLOTS + 1],
            dep_count: 0,
            split: self.split_at(now),
        };
        for dep in self.dependencies(now) {
            figures.calls += dep.calls;
            figures.deps[figures.dep_count] = dep;
            figures.dep_count += 1;
        }
        figures
    }

    /// The figures up to `now` but the per-dependency breakdown, which
    /// [`Ledger::dependencies`] reads on demand (a report formats it straight
    /// from the ledger rather than copying it first).
    pub(crate) fn totals(&self, now: u64) -> Totals {
        Totals {
            external: self.union.busy_at(now),
            calls: self.used_slots().map(|(_, s)| s.calls.load(Acquire)).sum(),
            split: self.split_at(now),
        }
    }

    /// The external union's busy time up to `now`.
    pub(crate) fn external_at(&self, now: u64) -> u64 {
        self.union.busy_at(now)
    }

    fn split_at(&self, now: u64) -> Option<(u64, u64)> {
        self.split
            .as_ref()
            .map(|a| (a.polled.busy_at(now), a.scheduled.busy_at(now)))
    }

    /// Each dependency's figures up to `now`, in order of first call,
    /// `other` last.
    pub(crate) fn dependencies(&self, now: u64) -> impl Iterator<Item = DepFigure> + '_ {
        self.used_slots().map(move |(name, slot)| DepFigure {
            name,
            busy: slot.interval.busy_at(now),
            calls: slot.calls.load(Acquire),
            between: slot.between.load(Acquire),
            reported: slot.reported.load(Acquire),
        })
    }

    /// The named slots, then `other` if any call went there.
    fn used_slots(&self) -> impl Iterator<Item = (&'static str, &DepCounters)> + '_ {
        let named = self.named().map(|(i, dep)| (dep.name(), &self.deps[i]));
        let other =
            Some((OTHER_DEPENDENCY, &self.other)).filter(|(_, slot)| slot.calls.load(Acquire) > 0);
        named.chain(other)
    }

    /// Makes a finished ledger new again, for the next handler, touching only
    /// the slots it used. The caller owns it: nothing else can see it.
    pub(crate) fn reset(&mut self, split: bool) {
        self.union.reset();
        for (index, name) in self.names.iter().enumerate() {
            if name.load(Relaxed) == 0 {
                break;
            }
            name.store(0, Relaxed);
            self.deps[index].reset();
        }
        self.other.reset();
        self.split = split.then(|| Split {
            polled: Interval::new(),
            scheduled: Interval::new(),
        });
    }

    /// The named slots, in order, with their dependency.
    fn named(&self) -> impl Iterator<Item = (usize, DepId)> + '_ {
        self.names
            .iter()
            .map_while(|name| DepId::from_raw(name.load(Acquire)))
            .enumerate()
    }

    /// `dep`'s counters: slots fill in order of first call, which is the
    /// breakdown's order (a slot is claimed by exchanging its 0 for the id);
    /// past the last slot, calls share `other`.
    #[inline]
    fn slot(&self, dep: DepId) -> &DepCounters {
        if dep != DepId::OTHER {
            for (name, counters) in self.names.iter().zip(&self.deps) {
                match name.load(Acquire) {
                    held if held == dep.raw() => return counters,
                    0 => match name.compare_exchange(0, dep.raw(), AcqRel, Acquire) {
                        Ok(_) => return counters,
                        Err(held) if held == dep.raw() => return counters,
                        Err(_) => {}
                    },
                    _ => {}
                }
            }
        }
        &self.other
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn union_of(calls: &[(u64, u64)], at: u64) -> u64 {
        let ledger = Ledger::new();
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (i, &(s, e)) in calls.iter().enumerate() {
            events.push((s, true, i));
            events.push((e, false, i));
        }
        events.sort_by_key(|&(t, open, _)| (t, !open));
        let mut tickets = vec![None; calls.len()];
        for (t, open, i) in events {
            if open {
                tickets[i] = Some(ledger.begin("dep", t));
            } else {
                ledger.end("dep", tickets[i].take().unwrap(), t);
            }
        }
        ledger.figures(at).external
    }

    #[test]
    fn the_design_picture() {
        // A 10..30 and B 20..40 overlap into 10..40 (30), C 45..55 adds 10.
        assert_eq!(union_of(&[(10, 30), (20, 40), (45, 55)], 60), 40);
    }

    #[test]
    fn nested_and_disjoint() {
        assert_eq!(union_of(&[(0, 100), (10, 20), (30, 40)], 100), 100);
        assert_eq!(union_of(&[(0, 10), (20, 30)], 100), 20);
        assert_eq!(union_of(&[], 100), 0);
    }

    #[test]
    fn open_calls_count_up_to_the_reading() {
        let ledger = Ledger::new();
        let _open = ledger.begin("redis", 10);
        assert_eq!(ledger.figures(25).external, 15);
        assert_eq!(ledger.figures(25).deps[0].busy, 15);
        assert_eq!(ledger.figures(25).calls, 1);
    }

    #[test]
    fn dependencies_in_order_of_first_call_and_overflow_to_other() {
        const NAMES: [&str; 18] = [
            "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13",
            "d14", "d15", "d16", "d17",
        ];
        let ledger = Ledger::new();
        for (i, &name) in NAMES.iter().enumerate() {
            let t = ledger.begin(name, i as u64 * 10);
            ledger.end(name, t, i as u64 * 10 + 5);
        }
        let again = ledger.begin("d3", 500);
        ledger.end("d3", again, 501);
        let f = ledger.figures(1000);
        assert_eq!(f.dep_count, 17);
        assert_eq!(f.calls, 19);
        assert_eq!(f.deps[3].name, "d3");
        assert_eq!((f.deps[3].busy, f.deps[3].calls), (6, 2));
        assert_eq!(f.deps[16].name, OTHER_DEPENDENCY);
        assert_eq!((f.deps[16].busy, f.deps[16].calls), (10, 2));
    }

    #[test]
    fn calls_named_other_share_the_overflow_entry() {
        const NAMES: [&str; 17] = [
            "o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9", "o10", "o11", "o12", "o13",
            "o14", "o15", "o16",
        ];
        let ledger = Ledger::new();
        // Named `other` before the slots are full: still the overflow entry.
        let named = ledger.begin(OTHER_DEPENDENCY, 0);
        ledger.end(OTHER_DEPENDENCY, named, 3);
        for (i, &name) in NAMES.iter().enumerate() {
            let t = ledger.begin(name, 10 + i as u64 * 10);
            ledger.end(name, t, 10 + i as u64 * 10 + 5);
        }
        let owned: &'static str = String::from(OTHER_DEPENDENCY).leak();
        let again = ledger.begin(owned, 500);
        ledger.end(owned, again, 502);
        let f = ledger.figures(1000);
        let others: Vec<_> = f.deps[..f.dep_count]
            .iter()
            .filter(|dep| dep.name == OTHER_DEPENDENCY)
            .collect();
        // o16 overflowed: 5, plus the two calls named `other`: 3 and 2.
        assert_eq!(others.len(), 1, "{f:?}");
        assert_eq!((others[0].busy, others[0].calls), (10, 3));
        assert_eq!(f.dep_count, 17);
        assert_eq!(f.deps[16].name, OTHER_DEPENDENCY);
    }

    #[test]
    fn names_compare_by_content_not_address() {
        let ledger = Ledger::new();
        let owned: &'static str = String::from("redis").leak();
        let a = ledger.begin("redis", 0);
        let b = ledger.begin(owned, 0);
        ledger.end("redis", a, 5);
        ledger.end(owned, b, 7);
        let f = ledger.figures(10);
        assert_eq!(f.dep_count, 1);
        assert_eq!((f.deps[0].busy, f.deps[0].calls), (7, 2));
    }

    #[test]
    fn clocks_that_look_backwards_never_go_negative() {
        let ledger = Ledger::new();
        let t = ledger.begin("x", 50);
        ledger.end("x", t, 40);
        assert_eq!(ledger.figures(30).external, 0);
    }

    #[test]
    fn one_word_carries_the_busy_time_across_intervals() {
        let iv = Interval::new();
        assert!(iv.open(0));
        iv.close(20);
        assert_eq!(iv.busy_at(30), 20);
        assert!(iv.open(50));
        assert!(iv.open(55));
        // Open: the closed 20 plus the open part up to the reading.
        assert_eq!(iv.busy_at(60), 30);
        iv.close(65);
        assert_eq!(iv.busy_at(68), 38);
        iv.close(70);
        assert_eq!(iv.busy_at(100), 40);
        // An interval opened and closed at one instant adds nothing.
        assert!(iv.open(100));
        iv.close(100);
        assert_eq!(iv.busy_at(200), 40);
    }

    #[test]
    fn a_start_read_before_busy_time_already_counted_still_adds_its_length() {
        // A call read 5, then lost the race to a call that ran 10..30: its
        // anchor wraps below zero, and its close still adds exactly 25.
        let iv = Interval::new();
        assert!(iv.open(10));
        iv.close(30);
        assert!(iv.open(5));
        assert_eq!(iv.busy_at(20), 35);
        iv.close(30);
        assert_eq!(iv.busy_at(99), 45);
    }

    #[test]
    fn times_out_of_order_follow_the_documented_rule_and_never_go_negative() {
        let iv = Interval::new();
        assert!(iv.open(0));
        iv.close(20);
        assert!(iv.open(50));
        // A reading whose clock was read before the open: 20 + (40 - 50).
        assert_eq!(iv.busy_at(40), 10);
        // Never below zero, however early the reading.
        assert_eq!(iv.busy_at(0), 0);
        // A close before its interval's start takes the difference back (the
        // callers never pass one: `Call` clamps its end to its start).
        iv.close(40);
        assert_eq!(iv.busy_at(99), 10);
        assert!(iv.open(100));
        iv.close(0);
        assert_eq!(iv.busy_at(200), 0);
    }

    #[test]
    fn times_beyond_the_word_saturate() {
        let iv = Interval::new();
        assert!(iv.open(MAX_TIME - 10));
        iv.close(MAX_TIME + 1_000);
        assert_eq!(iv.busy_at(u64::MAX), 10);
        assert!(iv.open(u64::MAX));
        assert_eq!(iv.busy_at(u64::MAX), 10);
        iv.close(u64::MAX);
        assert_eq!(iv.busy_at(0), 10);
    }

    #[test]
    fn a_full_counter_never_unbalances_the_union() {
        let iv = Interval::new();
        let mut admitted = 0;
        for _ in 0..COUNT_MASK + 5 {
            if iv.open(1) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, COUNT_MASK);
        for _ in 0..admitted {
            iv.close(9);
        }
        assert_eq!(iv.busy_at(100), 8);
    }
}
