//! The incident's script: five phases, the load, and the alert rules.

use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one phase breaks. Each phase starts from a healthy system: the fault
/// of the phase before is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Nothing: the baseline.
    None,
    /// The legacy member system answers `extra` later.
    Legacy(Duration),
    /// The reverse proxy in front of it adds `extra`.
    Proxy(Duration),
    /// The session store answers `extra` later.
    SessionStore(Duration),
    /// The auth service's own code takes `extra` more CPU per login.
    Auth(Duration),
}

impl Fault {
    /// Whose fault it is: `None` for the baseline, else the team to page.
    pub(crate) const fn owner(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Legacy(_) => Some("legacy team"),
            Self::Proxy(_) => Some("platform team (proxy)"),
            Self::SessionStore(_) => Some("session-store team"),
            Self::Auth(_) => Some("auth team (us)"),
        }
    }

    /// A page for this fault is a true page: it is our own service's.
    pub(crate) const fn is_ours(self) -> bool {
        matches!(self, Self::Auth(_))
    }
}

/// One phase of the replay.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phase {
    pub(crate) title: &'static str,
    /// A short label for the chart.
    pub(crate) label: &'static str,
    pub(crate) fault: Fault,
}

/// The five phases, in order.
pub(crate) const PHASES: [Phase; 5] = [
    Phase {
        title: "baseline",
        label: "baseline",
        fault: Fault::None,
    },
    Phase {
        title: "legacy system slows (+50 ms)",
        label: "legacy +50 ms",
        fault: Fault::Legacy(ms(50)),
    },
    Phase {
        title: "reverse proxy slows (+30 ms)",
        label: "proxy +30 ms",
        fault: Fault::Proxy(ms(30)),
    },
    Phase {
        title: "session store slows (+20 ms)",
        label: "session store +20 ms",
        fault: Fault::SessionStore(ms(20)),
    },
    Phase {
        title: "auth regresses (+15 ms CPU)",
        label: "auth CPU +15 ms",
        fault: Fault::Auth(ms(15)),
    },
];

/// The load and the alert rules of a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Logins per second, sent at a steady pace whatever the latency.
    pub(crate) rate: u32,
    /// Load before the baseline, not measured: connections are opened and
    /// first-time costs paid, as on any system that has been up a while.
    pub(crate) warmup: Duration,
    /// How long the baseline phase sends load. Longer than the others: the
    /// thresholds come from it, so it needs enough windows for a hiccup not
    /// to move them.
    pub(crate) baseline: Duration,
    /// How long each later phase sends load.
    pub(crate) phase: Duration,
    /// The alert rules' window: p99 over the requests that ended in the
    /// last `window`.
    pub(crate) window: Duration,
    /// How often the rules are evaluated.
    pub(crate) step: Duration,
    /// How many consecutive breaching evaluations fire an alert.
    pub(crate) for_evaluations: usize,
    /// Threshold = the baseline's typical window p99 + `margin`.
    pub(crate) margin: Duration,
}

impl Plan {
    /// The default run: about 53 s.
    pub(crate) const FULL: Self = Self {
        warmup: ms(2_000),
        baseline: ms(10_000),
        phase: ms(10_000),
        ..Self::rules(ms(2_000), ms(250))
    };

    /// `--quick`: about 13 s.
    pub(crate) const QUICK: Self = Self {
        warmup: ms(500),
        baseline: ms(3_200),
        phase: ms(2_300),
        ..Self::rules(ms(1_000), ms(200))
    };

    /// The load, and alert rules over `window` evaluated every `step`.
    const fn rules(window: Duration, step: Duration) -> Self {
        // A slow request stays in the window for window/step evaluations;
        // asking for one more breach than that means no single slow request
        // can page on its own, however slow: it takes a sustained shift.
        let in_window = (window.as_millis() / step.as_millis()) as usize;
        Self {
            rate: 40,
            warmup: Duration::ZERO,
            baseline: Duration::ZERO,
            phase: Duration::ZERO,
            window,
            step,
            for_evaluations: in_window + 1,
            margin: ms(10),
        }
    }

    /// How long phase `index` (0-based) sends load.
    pub(crate) const fn length(&self, index: usize) -> Duration {
        if index == 0 {
            self.baseline
        } else {
            self.phase
        }
    }

    /// The whole replay's load time, warm-up included.
    pub(crate) fn load_time(&self) -> Duration {
        self.warmup + self.baseline + self.phase * (PHASES.len() as u32 - 1)
    }
}
