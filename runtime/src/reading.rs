//! What a finished handler hands on to its outputs (the span, the metrics,
//! OpenTelemetry): its figures read off its ledger ([`Reading`]), how it
//! ended ([`Outcome`]) and what is known of its route ([`Route`]).

use crate::handler::State;
use crate::ledger::{DepFigure, Ledger, Totals};
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

/// What a handler knows of the request it serves beyond its name: the
/// `tower` layer's route, which the OpenTelemetry series carry as the
/// semantic conventions' attributes. Every part is borrowed from the
/// handler's (interned) name, so it is as bounded as the name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) enum Route {
    /// Nothing more than the name (`#[timed_handler]`, a layer without a
    /// route function, a route function that found none).
    #[default]
    Unknown,
    /// An HTTP route template: `/users/{id}`.
    Http(&'static str),
    /// A gRPC method, fully qualified: `shop.Cart/Checkout`.
    Grpc(&'static str),
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
        // split unions: |E| <= |P∪E| <= |P∪S∪E| <= total by construction.
        totals.external = totals.external.min(total);
        totals.split = totals.split.map(|(polled, scheduled)| {
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

    /// The external and split figures, clamped.
    pub(crate) fn totals(&self) -> Totals {
        self.totals
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
        let (polled, scheduled) = self.totals.split?;
        Some((polled - self.totals.external, scheduled - polled))
    }

    /// Each dependency, in order of first call, its busy time clamped to the total.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn dependencies(&self) -> impl Iterator<Item = Dependency> + '_ {
        self.dep_figures().map(|figure| Dependency { figure })
    }

    pub(crate) fn dep_figures(&self) -> impl Iterator<Item = DepFigure> + '_ {
        let total = self.total;
        self.ledger.dependencies(self.now).map(move |mut dep| {
            dep.busy = dep.busy.min(total);
            // A sum over calls, which concurrent calls could take past the
            // dependency's union: never more than its time.
            dep.between = dep.between.min(dep.busy);
            dep
        })
    }

    /// The time between the two ends of the calls whose dependency reported
    /// its own time (`Server-Timing`), at most external time; `None` when no
    /// call did.
    pub(crate) fn between_ns(&self) -> Option<u64> {
        let mut between = None::<u64>;
        for dep in self.dep_figures().filter(|dep| dep.reported > 0) {
            between = Some(between.unwrap_or(0).saturating_add(dep.between));
        }
        between.map(|ns| ns.min(self.totals.external))
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

/// One dependency's figures within a [`Snapshot`](crate::Snapshot).
#[derive(Clone, Copy, Debug)]
pub struct Dependency {
    pub(crate) figure: DepFigure,
}

impl Dependency {
    /// The dependency's name, as given to `#[external_call("…")]`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.figure.name
    }

    /// The time in which at least one call to this dependency was in flight
    /// (the union of its calls, as `external.breakdown` reports it).
    #[must_use]
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.figure.busy)
    }

    /// How many calls were made to it.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.figure.calls
    }

    /// The part of [`duration`](Self::duration) spent *between* this
    /// process and the dependency (the network, proxies, load balancers):
    /// each call's time less the time the dependency reported as its own in
    /// a `Server-Timing` header, summed over the calls that carried one.
    /// `None` when none did.
    #[must_use]
    pub fn between(&self) -> Option<Duration> {
        (self.figure.reported > 0).then(|| Duration::from_nanos(self.figure.between))
    }

    /// The dependency's own time, where it reported it: its
    /// [`duration`](Self::duration) less [`between`](Self::between).
    #[must_use]
    pub fn own(&self) -> Option<Duration> {
        (self.figure.reported > 0)
            .then(|| Duration::from_nanos(self.figure.busy.saturating_sub(self.figure.between)))
    }
}

/// `dep=<µs>us/<calls>` for each dependency, joined by `,`; a dependency
/// that reported its own time adds `;between=<µs>us`.
pub(crate) fn write_breakdown(
    f: &mut fmt::Formatter<'_>,
    deps: impl Iterator<Item = DepFigure>,
) -> fmt::Result {
    for (i, dep) in deps.enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{}={}us/{}", dep.name, dep.busy / 1_000, dep.calls)?;
        if dep.reported > 0 {
            write!(f, ";between={}us", dep.between / 1_000)?;
        }
    }
    Ok(())
}
