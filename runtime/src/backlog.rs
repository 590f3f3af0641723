//! Backlog: the part of a handler's internal time in which this process, not
//! a dependency, held things up. Plain data; [`crate::handler::State`] keeps
//! one per handler, behind a lock that only wake-mode steps take.
//!
//! A dependency's answer reaches this process (selftime's I/O thread reads
//! it and wakes the handler's task) before the handler is next polled: on a
//! busy runtime the task waits in the run queue. Each such wait runs from the
//! wake to the poll. Waits of concurrent calls overlap, and a wait may
//! overlap another call still in flight, which is external time, not
//! internal: the backlog is the union of the waits *less* external time,
//! `|W \ E|`.
//!
//! It is kept per stretch of overlapping waits: when the first wait of a
//! stretch opens at `a`, the external union's busy time then, `E(a)`, is
//! noted; when the last one closes at `b`, the stretch adds
//! `(b - a) - (E(b) - E(a))`: its length less the external time that grew
//! inside it. External time only grows, and grows by exactly the time in
//! which a call was in flight, so that is `|[a, b] \ E|`.

/// The waits of one handler's ledger; times in the chain's nanoseconds.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Waits open now.
    open: u32,
    /// When the open stretch began, and the external busy time then.
    since: u64,
    external_then: u64,
    /// The closed stretches' backlog.
    closed: u64,
}

impl Backlog {
    /// A wait opens at `now`, when external busy time is `external`.
    pub(crate) fn open(&mut self, now: u64, external: u64) {
        if self.open == 0 {
            self.since = now;
            self.external_then = external;
        }
        self.open = self.open.saturating_add(1);
    }

    /// A wait closes at `now`, when external busy time is `external`. A close
    /// with no wait open (which the callers never make) changes nothing.
    pub(crate) fn close(&mut self, now: u64, external: u64) {
        if self.open == 0 {
            return;
        }
        self.open -= 1;
        if self.open == 0 {
            self.closed = self.closed.saturating_add(self.stretch(now, external));
        }
    }

    /// The backlog up to `now`, the open stretch included.
    pub(crate) fn at(&self, now: u64, external: u64) -> u64 {
        if self.open == 0 {
            self.closed
        } else {
            self.closed.saturating_add(self.stretch(now, external))
        }
    }

    /// The open stretch's backlog at `now`: clocks that look backwards read
    /// as no time, never as negative.
    fn stretch(&self, now: u64, external: u64) -> u64 {
        let length = now.saturating_sub(self.since);
        length.saturating_sub(external.saturating_sub(self.external_then))
    }

    /// Empty again, for a handler taken from the pool.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn one_wait_is_its_length() {
        let mut b = Backlog::default();
        b.open(10, 0);
        assert_eq!(b.at(14, 0), 4);
        b.close(25, 0);
        assert_eq!(b.at(100, 0), 15);
    }

    /// Two calls answered at 10 and 12, both waiting for one poll at 30: the
    /// backlog is 20, not 38.
    #[test]
    fn overlapping_waits_count_once() {
        let mut b = Backlog::default();
        b.open(10, 5);
        b.open(12, 5);
        b.close(30, 5);
        b.close(30, 5);
        assert_eq!(b.at(40, 5), 20);
    }

    /// A call answered at 10 waits for a poll at 30, while another call is in
    /// flight from before 10 until 22: only 22..30 is backlog.
    #[test]
    fn a_wait_under_another_call_is_external() {
        let mut b = Backlog::default();
        b.open(10, 100);
        // External busy time grew by 12 (10..22) by the close at 30.
        b.close(30, 112);
        assert_eq!(b.at(30, 112), 8);
    }

    #[test]
    fn stray_closes_and_backward_clocks_never_go_negative() {
        let mut b = Backlog::default();
        b.close(5, 0);
        assert_eq!(b.at(5, 0), 0);
        b.open(10, 0);
        b.close(3, 0);
        assert_eq!(b.at(3, 0), 0);
        b.open(10, 0);
        b.close(20, 50);
        assert_eq!(b.at(20, 50), 0);
        b.reset();
        assert_eq!(b.at(1_000, 0), 0);
    }
}
