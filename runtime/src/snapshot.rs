//! Figures read off a handler's ledger: [`Snapshot`], [`Dependency`], [`Outcome`].

use crate::handler::State;
use crate::ledger::{DepFigure, Figures, Ledger, Totals};
use crate::scope;
use std::fmt;
use std::time::Duration;

/// How a handler ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It returned, and its value was not an `Err`.
    Ok,
    /// It returned an `Err` (decided by the return type, so `Result` aliases
    /// such as `anyhow::Result<T>` count too).
    Error,
    /// It panicked.
    Panic,
    /// Its future was dropped before it completed: a client that hung up, a
    /// `tokio::time::timeout`, the losing branch of a `select!`.
    Cancelled,
}

impl Outcome {
    /// The value recorded in the span's `outcome` field and the metrics'
    /// `outcome` label: `ok`, `error`, `panic` or `cancelled`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
            external: reading.totals.external,
            calls: reading.totals.calls,
            deps: [DepFigure::NONE; crate::ledger::DEP_SLOTS + 1],
            dep_count: 0,
            activity: reading.totals.activity,
        };
        for dep in reading.dep_figures() {
            figures.deps[figures.dep_count] = dep;
            figures.dep_count += 1;
        }
        Self {
            total: reading.total,
            backlog: reading.backlog,
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

    /// With `#[timed_handler(polls)]`: the part of internal time in which the
    /// handler's future was being polled (its own CPU work), outside external
    /// calls. `None` for handlers that do not split internal time.
    #[must_use]
    pub fn busy(&self) -> Option<Duration> {
        let (polled, _) = self.figures.activity?;
        Some(Duration::from_nanos(polled - self.figures.external))
    }

    /// With `#[timed_handler(polls)]`: the part of internal time between a
    /// dependency waking the handler (calls in wake mode) and the handler
    /// being polled again, outside polls and external calls.
    #[must_use]
    pub fn scheduled(&self) -> Option<Duration> {
        let (polled, scheduled) = self.figures.activity?;
        Some(Duration::from_nanos(scheduled - polled))
    }

    /// With `#[timed_handler(polls)]`: the rest of internal time, in which
    /// the handler was neither polled, nor waiting on a call, nor scheduled
    /// after a wake-mode call: timers, locks, channels, the run queue.
    /// `busy + scheduled + waiting == internal`.
    #[must_use]
    pub fn waiting(&self) -> Option<Duration> {
        let (_, scheduled) = self.figures.activity?;
        Some(Duration::from_nanos(self.total - scheduled))
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

/// A handler's figures read in place, for its report: the scalar figures
/// are read (and clamped) at once, the breakdown off the ledger each time it
/// is walked, so that a report copies no dependency table. Every figure is
/// up to the same `now`.
pub(crate) struct Reading<'a> {
    ledger: &'a Ledger,
    now: u64,
    total: u64,
    backlog: u64,
    /// Behind the `tower` layer: the time the client kept the response
    /// waiting, at most `total - external`.
    client: Option<u64>,
    totals: Totals,
}

impl<'a> Reading<'a> {
    pub(crate) fn new(state: &'a State, now: u64) -> Self {
        let total = now
            .saturating_sub(state.start())
            .saturating_add(state.waited());
        let mut totals = state.ledger().totals(now);
        // External time is clamped to the total (it could exceed it only
        // through clock readings that raced each other), and so are the
        // activity unions: |E| <= |P∪E| <= |P∪S∪E| <= total by construction.
        totals.external = totals.external.min(total);
        totals.activity = totals.activity.map(|(polled, scheduled)| {
            let polled = polled.clamp(totals.external, total);
            (polled, scheduled.clamp(polled, total))
        });
        // The backlog is part of internal time: clamped to it.
        let backlog = state
            .waited()
            .saturating_add(state.backlog(now))
            .min(total - totals.external);
        Self {
            ledger: state.ledger(),
            now,
            total,
            backlog,
            client: None,
            totals,
        }
    }

    /// With the time the client kept the response waiting (the `tower`
    /// layer's handlers): taken out of internal time, and out of the
    /// backlog where the two would overlap.
    pub(crate) fn with_client(mut self, client: Option<u64>) -> Self {
        let Some(client) = client else {
            return self;
        };
        let client = client.min(self.total - self.totals.external);
        self.client = Some(client);
        self.backlog = self.backlog.min(self.total - self.totals.external - client);
        self
    }

    /// The time the client kept the response waiting, when it is known.
    pub(crate) fn client_ns(&self) -> Option<u64> {
        self.client
    }

    /// Total less external time, less the client's: the handler's own time.
    #[cfg_attr(
        not(any(feature = "metrics", feature = "opentelemetry")),
        allow(dead_code)
    )]
    pub(crate) fn internal_ns(&self) -> u64 {
        self.total - self.totals.external - self.client.unwrap_or(0)
    }

    pub(crate) fn total_ns(&self) -> u64 {
        self.total
    }

    pub(crate) fn external_ns(&self) -> u64 {
        self.totals.external
    }

    pub(crate) fn calls(&self) -> u64 {
        self.totals.calls
    }

    pub(crate) fn backlog_ns(&self) -> u64 {
        self.backlog
    }

    /// `(busy, scheduled)` in nanoseconds, for handlers that split internal time.
    pub(crate) fn split_ns(&self) -> Option<(u64, u64)> {
        let (polled, scheduled) = self.totals.activity?;
        Some((polled - self.totals.external, scheduled - polled))
    }

    /// Each dependency, in order of first call, its busy time clamped to the total.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn dependencies(&self) -> impl Iterator<Item = Dependency> + '_ {
        self.dep_figures().map(|figure| Dependency { figure })
    }

    fn dep_figures(&self) -> impl Iterator<Item = DepFigure> + '_ {
        let total = self.total;
        self.ledger.dependencies(self.now).map(move |mut dep| {
            dep.busy = dep.busy.min(total);
            dep
        })
    }

    /// The `external.breakdown` field's text, formatted off the ledger.
    pub(crate) fn breakdown(&self) -> ReadingBreakdown<'_, 'a> {
        ReadingBreakdown(self)
    }
}

/// [`Reading::breakdown`]: the dependencies are read as they are written.
pub(crate) struct ReadingBreakdown<'r, 'a>(&'r Reading<'a>);

impl fmt::Display for ReadingBreakdown<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_breakdown(f, self.0.dep_figures())
    }
}

impl fmt::Debug for ReadingBreakdown<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One dependency's figures within a [`Snapshot`].
#[derive(Clone, Copy, Debug)]
pub struct Dependency {
    figure: DepFigure,
}

impl Dependency {
    /// The dependency's name, as given to `#[external_call("…")]`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.figure.name
    }

    /// The union of this dependency's own calls' busy intervals.
    #[must_use]
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.figure.busy)
    }

    /// How many calls were made to it.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.figure.calls
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

/// `dep=<µs>us/<calls>` for each dependency, joined by `,`.
fn write_breakdown(
    f: &mut fmt::Formatter<'_>,
    deps: impl Iterator<Item = DepFigure>,
) -> fmt::Result {
    for (i, dep) in deps.enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{}={}us/{}", dep.name, dep.busy / 1_000, dep.calls)?;
    }
    Ok(())
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
