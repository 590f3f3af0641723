//! The public view of a running handler's figures: [`Snapshot`] and
//! [`current`].

use crate::handler::State;
use crate::ledger::{DepFigure, Figures};
use crate::reading::{Dependency, Reading, write_breakdown};
use crate::scope;
use std::fmt;
use std::time::Duration;

/// A handler's figures at one moment: see [`current`].
///
/// `external() + internal() == total()` always holds, and no figure is ever
/// negative: external time is clamped to the total (it could only exceed it
/// through a clock that looked backwards).
#[derive(Clone, Copy)]
pub struct Snapshot {
    total: u64,
    backlog: u64,
    figures: Figures,
}

impl Snapshot {
    pub(crate) fn read(state: &State, now: u64) -> Self {
        let reading = Reading::new(state, now);
        let mut figures = Figures {
            external: reading.totals().external,
            calls: reading.totals().calls,
            deps: [DepFigure::NONE; crate::ledger::DEP_SLOTS + 1],
            dep_count: 0,
            split: reading.totals().split,
        };
        for dep in reading.dep_figures() {
            figures.deps[figures.dep_count] = dep;
            figures.dep_count += 1;
        }
        Self {
            total: reading.total_ns(),
            backlog: reading.backlog_ns(),
            figures,
        }
    }

    /// Wall time since the handler started.
    #[must_use]
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.total)
    }

    /// The union of the intervals in which at least one external call was in
    /// flight; a call still in flight counts up to this snapshot.
    #[must_use]
    pub fn external(&self) -> Duration {
        Duration::from_nanos(self.figures.external)
    }

    /// `total() - external()`: the handler's own time.
    #[must_use]
    pub fn internal(&self) -> Duration {
        Duration::from_nanos(self.total - self.figures.external)
    }

    /// The part of internal time in which this process, not a dependency,
    /// held the request up: a dependency's answer waiting to be noticed
    /// after it arrived (calls measured [until their answer](crate#backlog-when-the-service-itself-is-the-bottleneck)),
    /// and, behind `HandlerLayer` with arrival times, the request waiting
    /// before its handler started. Never more than [`internal`](Self::internal).
    #[must_use]
    pub fn backlog(&self) -> Duration {
        Duration::from_nanos(self.backlog)
    }

    /// With `#[timed_handler(split)]`: the part of internal time in which the
    /// handler's future was being polled (its own CPU work), outside external
    /// calls. `None` for handlers that do not split internal time.
    #[must_use]
    pub fn busy(&self) -> Option<Duration> {
        let (polled, _) = self.figures.split?;
        Some(Duration::from_nanos(polled - self.figures.external))
    }

    /// With `#[timed_handler(split)]`: the part of internal time between a
    /// dependency waking the handler (calls in wake mode) and the handler
    /// being polled again, outside polls and external calls.
    #[must_use]
    pub fn scheduled(&self) -> Option<Duration> {
        let (polled, scheduled) = self.figures.split?;
        Some(Duration::from_nanos(scheduled - polled))
    }

    /// With `#[timed_handler(split)]`: the rest of internal time, in which
    /// the handler was neither polled, nor waiting on a call, nor scheduled
    /// after a wake-mode call: timers, locks, channels, the run queue.
    /// `busy + scheduled + waiting == internal`.
    #[must_use]
    pub fn waiting(&self) -> Option<Duration> {
        let (_, scheduled) = self.figures.split?;
        Some(Duration::from_nanos(self.total - scheduled))
    }

    /// The part of external time spent between this process and the
    /// dependencies that reported their own time in a `Server-Timing`
    /// header (see [`Dependency::between`]); `None` when none did.
    #[must_use]
    pub fn between(&self) -> Option<Duration> {
        let mut reported = self.figures.deps[..self.figures.dep_count]
            .iter()
            .filter(|dep| dep.reported > 0)
            .peekable();
        reported.peek()?;
        let sum = reported.fold(0u64, |sum, dep| sum.saturating_add(dep.between));
        Some(Duration::from_nanos(sum.min(self.figures.external)))
    }

    /// How many external calls the handler has started.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.figures.calls
    }

    /// Each dependency called, in order of first call. After 16 distinct
    /// names, further dependencies are counted together as `other`.
    #[must_use]
    pub fn dependencies(&self) -> impl ExactSizeIterator<Item = Dependency> + '_ {
        self.figures.deps[..self.figures.dep_count]
            .iter()
            .map(|&figure| Dependency { figure })
    }

    /// The `external.breakdown` field's text: `dep=<µs>us/<calls>` joined by
    /// `,`, written without allocating.
    pub(crate) fn breakdown(&self) -> Breakdown<'_> {
        Breakdown(&self.figures.deps[..self.figures.dep_count])
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("total", &self.total())
            .field("external", &self.external())
            .field("internal", &self.internal())
            .field("backlog", &self.backlog())
            .field("calls", &self.calls())
            .field("dependencies", &self.breakdown().to_string())
            .finish()
    }
}

/// Formats a breakdown lazily, so that recording it costs no allocation.
#[derive(Clone, Copy)]
pub(crate) struct Breakdown<'a>(&'a [DepFigure]);

impl fmt::Display for Breakdown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_breakdown(f, self.0.iter().copied())
    }
}

impl fmt::Debug for Breakdown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The figures so far of the handler in scope, or `None` outside any handler.
///
/// Inside a nested handler this is the innermost handler's figures.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::timed_handler]
/// async fn handler() -> std::time::Duration {
///     let so_far = selftime::current().expect("inside a handler");
///     so_far.external()
/// }
///
/// assert!(selftime::current().is_none());
/// assert_eq!(handler().await, std::time::Duration::ZERO);
/// # }
/// ```
#[must_use]
pub fn current() -> Option<Snapshot> {
    scope::with_current(|handler| {
        let state = handler.state();
        Snapshot::read(state, state.now())
    })
}
