//! The incident's script: the phases, their faults, the load, and the time
//! scale that fits the shipped rules' windows into a short run.

use selftime_alerting::settings::Settings;
use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one phase breaks. Each fault is healed before the next one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the baseline.
    None,
    /// The API gateway slows in its own work (the talk's incident).
    Gateway(Duration),
    /// The legacy member system answers later.
    Legacy(Duration),
    /// The reverse proxy in front of it adds latency.
    Proxy(Duration),
    /// The session store (Redis, nobody's selftime) answers later.
    SessionStore(Duration),
    /// The auth service's own code takes more CPU per login.
    Own(Duration),
    /// The auth service saturates: a job blocks its workers, in slices of
    /// this length, and logins wait for them.
    OwnSaturation(Duration),
    /// The load balancer between auth and the proxy (nobody's selftime)
    /// holds each answer this long.
    Network(Duration),
}

impl Fault {
    /// The `fault` of `incident.json`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gateway(_) => "gateway",
            Self::Legacy(_) => "legacy",
            Self::Proxy(_) => "proxy",
            Self::SessionStore(_) => "session_store",
            Self::Own(_) => "own",
            Self::OwnSaturation(_) => "own_saturation",
            Self::Network(_) => "network",
        }
    }
}

/// One phase of the replay.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub title: &'static str,
    /// A short label for the chart.
    pub label: &'static str,
    pub fault: Fault,
}

/// The eight phases, in order: a baseline, then the seven incidents.
pub const PHASES: [Phase; 8] = [
    Phase {
        title: "baseline",
        label: "baseline",
        fault: Fault::None,
    },
    Phase {
        title: "API gateway slows (+30 ms of its own work)",
        label: "gateway +30 ms",
        fault: Fault::Gateway(ms(30)),
    },
    Phase {
        title: "legacy member system slows (+50 ms)",
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
        title: "auth regresses (+15 ms of CPU per login)",
        label: "auth CPU +15 ms",
        fault: Fault::Own(ms(15)),
    },
    Phase {
        title: "auth saturates (a job blocks its workers, 30 ms at a time)",
        label: "auth saturated",
        fault: Fault::OwnSaturation(ms(30)),
    },
    Phase {
        title: "the network to the proxy slows (+30 ms at the load balancer)",
        label: "network +30 ms",
        fault: Fault::Network(ms(30)),
    },
];

/// How much rule time one scrape stands for: every scrape of the demo is one
/// minute of Prometheus time, so that the shipped rules' windows and `for:`
/// durations (minutes to hours) play out in seconds.
pub const RULE_MINUTES_PER_SCRAPE: u64 = 1;

/// The load and the pace of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Logins per second, sent at a steady pace whatever the latency.
    pub rate: u32,
    /// Load before the first scrape: connections opened, first-time costs paid.
    pub warmup: Duration,
    /// Real time between two scrapes (one minute of rule time each).
    pub scrape_every: Duration,
    /// Scrapes of the healthy baseline.
    pub baseline: u64,
    /// Scrapes each fault lasts: long enough for the slowest alert to fire
    /// while it lasts.
    pub fault: u64,
    /// Healthy scrapes after each fault: long enough for every alert to
    /// resolve before the next incident begins.
    pub recovery: u64,
}

impl Plan {
    /// The default run: about 1 minute 50 seconds.
    pub fn full() -> Self {
        Self::paced(48, ms(2_000), ms(360))
    }

    /// `--quick`: about 20 seconds.
    pub fn quick() -> Self {
        Self::paced(60, ms(400), ms(68))
    }

    fn paced(rate: u32, warmup: Duration, scrape_every: Duration) -> Self {
        let rules = Settings::shipped().expect("the shipped rules file (its tests check it reads)");
        let minutes = |d: selftime_alerting::duration::Dur| {
            d.as_secs().div_ceil(60 * RULE_MINUTES_PER_SCRAPE)
        };
        let slowest_hold = [
            rules.latency_for,
            rules.dependency_for,
            rules.burn_for,
            rules.error_for,
        ]
        .into_iter()
        .max()
        .unwrap_or(rules.latency_for);
        Self {
            rate,
            warmup,
            scrape_every,
            baseline: minutes(rules.window) + 1,
            // The first scrape after the fault shows it; the alert fires
            // `for` later; one more for good measure.
            fault: minutes(slowest_hold) + 2,
            // Every window that can hold the fault's samples must have let
            // go of them.
            recovery: minutes(rules.longest_memory()) + 1,
        }
    }

    /// The first and last scrape of phase `index` (0-based).
    pub fn scrapes(&self, index: usize) -> (u64, u64) {
        let index = index as u64;
        if index == 0 {
            return (0, self.baseline - 1);
        }
        let start = self.baseline + (index - 1) * (self.fault + self.recovery);
        (start, start + self.fault + self.recovery - 1)
    }

    /// The fault in force between scrape `k` and scrape `k + 1`.
    pub fn fault_after(&self, k: u64) -> Fault {
        PHASES
            .iter()
            .enumerate()
            .skip(1)
            .find(|&(index, _)| {
                let (start, _) = self.scrapes(index);
                k >= start && k < start + self.fault
            })
            .map_or(Fault::None, |(_, phase)| phase.fault)
    }

    /// The last scrape of the run.
    pub fn last_scrape(&self) -> u64 {
        self.scrapes(PHASES.len() - 1).1
    }

    /// Real seconds from the first scrape to scrape `k`.
    #[allow(clippy::cast_precision_loss, reason = "a few hundred scrapes")]
    pub fn seconds(&self, k: u64) -> f64 {
        self.scrape_every.as_secs_f64() * k as f64
    }

    /// The whole run's load time, warm-up included.
    pub fn load_time(&self) -> Duration {
        self.warmup + self.scrape_every * u32::try_from(self.last_scrape()).unwrap_or(u32::MAX)
    }
}
