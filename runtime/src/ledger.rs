//! The per-request ledger: plain data, lock-free, no allocation per call.
//!
//! It knows nothing about tokio or tracing. Time is a `u64` of nanoseconds
//! from an origin the caller chooses (the root handler's start); the caller
//! reads the clock once per event and hands the same reading to every ledger
//! of a chain of nested handlers.
//!
//! # The union of busy intervals
//!
//! Each [`Interval`] is an in-flight counter packed with the start of the
//! current busy interval in one `AtomicU64`:
//!
//! ```text
//!  63                                16 15  14 13             0
//! +------------------------------------+------+----------------+
//! | start of the open interval (48 b)  | pend | in flight (14b)|
//! +------------------------------------+------+----------------+
//! ```
//!
//! A call that takes the count from 0 to 1 opens an interval at its start
//! time; the call that takes it from 1 to 0 closes it and adds its length to
//! `busy`. Concurrent calls therefore count once (the union), never twice.
//!
//! Closing is two steps (swap the state word, then add to `busy`), so a
//! closer marks itself *pending* in the state word between the two; a reader
//! waits out the few instructions of a pending close and re-reads until the
//! state word is unchanged around its read of `busy`, which makes the read
//! consistent without making any writer wait.

use crate::sync::{pause, AtomicU64, AtomicU8, Cell};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// How many distinct dependencies a ledger names; further ones share
/// [`OTHER`]. Sixteen keeps a ledger under one kilobyte.
pub(crate) const DEP_SLOTS: usize = 16;

/// The name under which dependencies beyond [`DEP_SLOTS`] are counted.
pub const OTHER_DEPENDENCY: &str = "other";

const COUNT_MASK: u64 = (1 << 14) - 1;
const PENDING_ONE: u64 = 1 << 14;
const PENDING_MASK: u64 = 0b11 << 14;
const START_SHIFT: u32 = 16;
const MAX_START: u64 = (1 << 48) - 1;

/// A union of busy intervals, updated by any number of threads.
#[derive(Debug)]
pub(crate) struct Interval {
    state: AtomicU64,
    busy: AtomicU64,
}

impl Interval {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
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
                // Keep a closer's pending mark: its add to `busy` may still be in flight.
                (now.min(MAX_START) << START_SHIFT) | (s & PENDING_MASK) | 1
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
            if count == 1 && s & PENDING_MASK == PENDING_MASK {
                // Three closes are mid-add already; ours must wait for a free mark.
                pause();
                s = self.state.load(Relaxed);
                continue;
            }
            let new = if count == 1 {
                (s & PENDING_MASK) + PENDING_ONE
            } else {
                s - 1
            };
            match self.state.compare_exchange_weak(s, new, AcqRel, Relaxed) {
                Ok(_) => {
                    if count == 1 {
                        let start = s >> START_SHIFT;
                        self.busy.fetch_add(now.saturating_sub(start), Release);
                        // Cannot underflow: our own mark is still counted in the field.
                        self.state.fetch_sub(PENDING_ONE, Release);
                    }
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// The busy time up to `now`, an interval still open counted up to `now`.
    pub(crate) fn busy_at(&self, now: u64) -> u64 {
        loop {
            let before = self.state.load(Acquire);
            if before & PENDING_MASK != 0 {
                pause();
                continue;
            }
            let busy = self.busy.load(Acquire);
            let after = self.state.load(Acquire);
            if before == after {
                let open = if before & COUNT_MASK == 0 {
                    0
                } else {
                    now.saturating_sub(before >> START_SHIFT)
                };
                return busy.saturating_add(open);
            }
            pause();
        }
    }
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// One dependency's share of a ledger: its own union and call count.
#[derive(Debug)]
pub(crate) struct DepSlot {
    name_state: AtomicU8,
    /// Written once, by the thread that moved `name_state` from `EMPTY` to
    /// `WRITING`; read only after `name_state` is seen `READY`.
    name: Cell<&'static str>,
    interval: Interval,
    calls: AtomicU64,
}

impl DepSlot {
    fn new(name: &'static str, state: u8) -> Self {
        Self {
            name_state: AtomicU8::new(state),
            name: Cell::new(name),
            interval: Interval::new(),
            calls: AtomicU64::new(0),
        }
    }

    fn name_if_ready(&self) -> Option<&'static str> {
        if self.name_state.load(Acquire) == READY {
            // SAFETY: the name is written before `READY` is stored (Release)
            // and never again; the Acquire load above orders this read after it.
            Some(unsafe { self.name.get() })
        } else {
            None
        }
    }
}

/// Which parts of a ledger a call opened, so that its end closes the same
/// (an interval whose counter was full did not count the call).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    union: bool,
    slot: bool,
}

impl Ticket {
    pub(crate) fn bits(self) -> u8 {
        u8::from(self.union) | (u8::from(self.slot) << 1)
    }

    pub(crate) fn from_bits(bits: u8) -> Self {
        Self {
            union: bits & 1 != 0,
            slot: bits & 2 != 0,
        }
    }
}

/// The figures of one ledger at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Figures {
    pub(crate) external: u64,
    pub(crate) calls: u64,
    pub(crate) deps: [DepFigure; DEP_SLOTS + 1],
    pub(crate) dep_count: usize,
}

/// One dependency's figures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DepFigure {
    pub(crate) name: &'static str,
    pub(crate) busy: u64,
    pub(crate) calls: u64,
}

impl DepFigure {
    const NONE: Self = Self {
        name: "",
        busy: 0,
        calls: 0,
    };
}

/// One handler invocation's account of its external calls.
#[derive(Debug)]
pub(crate) struct Ledger {
    union: Interval,
    calls: AtomicU64,
    deps: [DepSlot; DEP_SLOTS],
    other: DepSlot,
}

// SAFETY: the only non-atomic state is each slot's name, which is written by
// exactly one thread (the winner of the `EMPTY -> WRITING` exchange) before it
// publishes `READY`, and read by others only after observing `READY`.
unsafe impl Sync for Ledger {}
// SAFETY: `&'static str` and the atomics are all `Send`.
unsafe impl Send for Ledger {}

impl Ledger {
    pub(crate) fn new() -> Self {
        Self {
            union: Interval::new(),
            calls: AtomicU64::new(0),
            deps: std::array::from_fn(|_| DepSlot::new("", EMPTY)),
            other: DepSlot::new(OTHER_DEPENDENCY, READY),
        }
    }

    /// Records that a call to `dep` started at `now`.
    pub(crate) fn begin(&self, dep: &'static str, now: u64) -> Ticket {
        let slot = self.slot_index(dep);
        let union = self.union.open(now);
        self.calls.fetch_add(1, Relaxed);
        let slot = self.slot(slot);
        slot.calls.fetch_add(1, Relaxed);
        Ticket {
            union,
            slot: slot.interval.open(now),
        }
    }

    /// Records that the call to `dep` behind `ticket` ended at `now`.
    ///
    /// The slot is looked up again rather than carried in the ticket: `begin`
    /// named it, so the lookup only compares, and a call that counts toward
    /// several nested ledgers needs no per-ledger state.
    pub(crate) fn end(&self, dep: &'static str, ticket: Ticket, now: u64) {
        if ticket.slot {
            self.slot(self.slot_index(dep)).interval.close(now);
        }
        if ticket.union {
            self.union.close(now);
        }
    }

    /// The figures up to `now`; calls still in flight count up to `now`.
    pub(crate) fn figures(&self, now: u64) -> Figures {
        let mut figures = Figures {
            external: self.union.busy_at(now),
            calls: self.calls.load(Acquire),
            deps: [DepFigure::NONE; DEP_SLOTS + 1],
            dep_count: 0,
        };
        let named = self
            .deps
            .iter()
            .map_while(|slot| slot.name_if_ready().map(|name| (name, slot)));
        let other = Some((OTHER_DEPENDENCY, &self.other))
            .filter(|(_, slot)| slot.calls.load(Acquire) > 0);
        for (name, slot) in named.chain(other) {
            figures.deps[figures.dep_count] = DepFigure {
                name,
                busy: slot.interval.busy_at(now),
                calls: slot.calls.load(Acquire),
            };
            figures.dep_count += 1;
        }
        figures
    }

    fn slot(&self, index: u8) -> &DepSlot {
        self.deps.get(usize::from(index)).unwrap_or(&self.other)
    }

    /// Finds `dep`'s slot, claiming the first free one on its first call.
    /// Slots fill in order of first call, which is the breakdown's order.
    fn slot_index(&self, dep: &'static str) -> u8 {
        for (index, slot) in self.deps.iter().enumerate() {
            let mut state = slot.name_state.load(Acquire);
            loop {
                match state {
                    READY => {
                        // SAFETY: `READY` was observed with Acquire (see `name_if_ready`).
                        let name = unsafe { slot.name.get() };
                        if std::ptr::eq(name, dep) || name == dep {
                            return index as u8;
                        }
                        break;
                    }
                    EMPTY => match slot.name_state.compare_exchange(
                        EMPTY, WRITING, Acquire, Acquire,
                    ) {
                        Ok(_) => {
                            // SAFETY: winning `EMPTY -> WRITING` makes us the only writer,
                            // and nobody reads the name before `READY` is published.
                            unsafe { slot.name.set(dep) };
                            slot.name_state.store(READY, Release);
                            return index as u8;
                        }
                        Err(actual) => state = actual,
                    },
                    _ => {
                        // Another call is naming this slot: it may be naming it `dep`.
                        pause();
                        state = slot.name_state.load(Acquire);
                    }
                }
            }
        }
        DEP_SLOTS as u8
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
        // (DESIGN.md's caption says "20 + 10 = 30"; the intervals it draws make 40.)
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
            "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12",
            "d13", "d14", "d15", "d16", "d17",
        ];
        let ledger = Ledger::new();
        for (i, name) in NAMES.iter().enumerate() {
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
