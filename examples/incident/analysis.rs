//! From samples to what an on-call would see: per-phase percentiles, the
//! two alert rules evaluated over a sliding window, and the verdict.

use super::capture::{Sample, WARMUP};
use super::load::PhaseRun;
use super::plan::{Phase, Plan};
use std::time::{Duration, Instant};

/// Which latency an alert rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The handler's wall time: what a latency alert usually watches.
    Total = 0,
    /// Total minus external: the auth service's own time.
    Internal = 1,
}

impl Signal {
    pub(crate) const BOTH: [Self; 2] = [Self::Total, Self::Internal];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Internal => "internal",
        }
    }

    fn of(self, sample: &Sample) -> f64 {
        ms(match self {
            Self::Total => sample.total_us,
            Self::Internal => sample.internal_us,
        })
    }
}

/// An alert rule: `p99 > threshold` on `for_evaluations` evaluations in a row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    pub(crate) signal: Signal,
    /// The baseline's typical window p99, ms.
    pub(crate) baseline: f64,
    /// `baseline` + the plan's margin, ms.
    pub(crate) threshold: f64,
}

/// p50 and p99 of a set of figures, in ms.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Quantiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
}

/// One evaluation of both rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evaluation {
    /// Seconds since the run started.
    pub(crate) at: f64,
    /// The window's p99 per signal (ms), `None` for an empty window.
    pub(crate) p99: [Option<f64>; 2],
}

/// One phase, summed up.
#[derive(Clone, Debug)]
pub(crate) struct PhaseReport {
    pub(crate) phase: Phase,
    /// Seconds since the run started.
    pub(crate) start: f64,
    pub(crate) end: f64,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    /// The longest this process waited for a CPU during the phase.
    pub(crate) stall: Duration,
    /// Handlers measured (spans closed).
    pub(crate) measured: usize,
    /// Of those, how many did not end `ok`.
    pub(crate) not_ok: usize,
    pub(crate) figures: [Quantiles; 2],
    /// p99 busy time per dependency (ms), in the order of
    /// [`Report::dependencies`]; `None` if no request called it.
    pub(crate) dependency_p99: Vec<Option<f64>>,
    pub(crate) evaluations: Vec<Evaluation>,
    /// When each rule fired (seconds since the run started), if it did.
    pub(crate) fired: [Option<f64>; 2],
}

/// The whole run, summed up.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) plan: Plan,
    pub(crate) rules: [Rule; 2],
    /// Every dependency called, in order of first call.
    pub(crate) dependencies: Vec<String>,
    pub(crate) phases: Vec<PhaseReport>,
    /// Handlers measured during the warm-up, which no figure includes.
    pub(crate) warmup_measured: usize,
}

/// Why a run cannot be summed up.
#[derive(Debug)]
pub(crate) struct NoBaseline;

impl Report {
    /// Evaluates `samples` (from every phase) against the phases as run.
    pub(crate) fn new(
        plan: Plan,
        phases: &[Phase],
        runs: &[PhaseRun],
        samples: &[Sample],
    ) -> Result<Self, NoBaseline> {
        let warmup_measured = samples.iter().filter(|s| s.phase == WARMUP).count();
        let origin = runs.first().map_or_else(Instant::now, |run| run.started);
        let mut dependencies: Vec<String> = Vec::new();
        for sample in samples.iter().filter(|s| s.phase != WARMUP) {
            for (name, _, _) in &sample.dependencies {
                if !dependencies.contains(name) {
                    dependencies.push(name.clone());
                }
            }
        }
        let windows: Vec<Vec<Window>> = runs
            .iter()
            .enumerate()
            .map(|(index, run)| windows(&plan, run, origin, phase_samples(samples, index)))
            .collect();
        // The threshold comes from the baseline alone: the p99 the rule
        // typically sees on a healthy day (the median over the baseline's
        // windows, so a hiccup does not move it), plus the same margin for
        // both rules.
        let rules = Signal::BOTH.map(|signal| {
            let mut healthy: Vec<f64> = windows
                .first()
                .into_iter()
                .flatten()
                .filter_map(|window| window.p99[signal as usize])
                .collect();
            healthy.sort_by(f64::total_cmp);
            let baseline = quantile(&healthy, 0.5);
            baseline.map(|baseline| Rule {
                signal,
                baseline,
                threshold: baseline + plan.margin.as_secs_f64() * 1e3,
            })
        });
        let [Some(total), Some(internal)] = rules else {
            return Err(NoBaseline);
        };
        let rules = [total, internal];
        let phases = phases
            .iter()
            .zip(runs)
            .zip(windows)
            .enumerate()
            .map(|(index, ((phase, run), windows))| {
                let own: Vec<&Sample> = phase_samples(samples, index).collect();
                let figures = Signal::BOTH.map(|signal| {
                    let mut values: Vec<f64> = own.iter().map(|s| signal.of(s)).collect();
                    values.sort_by(f64::total_cmp);
                    Quantiles {
                        p50: quantile(&values, 0.5).unwrap_or(0.0),
                        p99: quantile(&values, 0.99).unwrap_or(0.0),
                    }
                });
                let dependency_p99 = dependencies
                    .iter()
                    .map(|dependency| {
                        let mut busy: Vec<f64> = own
                            .iter()
                            .flat_map(|s| &s.dependencies)
                            .filter(|(name, _, _)| name == dependency)
                            .map(|&(_, busy, _)| ms(busy))
                            .collect();
                        busy.sort_by(f64::total_cmp);
                        quantile(&busy, 0.99)
                    })
                    .collect();
                let (evaluations, fired) = evaluate(&plan, &rules, &windows);
                PhaseReport {
                    phase: *phase,
                    start: seconds(origin, run.started),
                    end: seconds(origin, run.stopped),
                    sent: run.sent,
                    failed: run.failed,
                    stall: run.stall,
                    measured: own.len(),
                    not_ok: own.iter().filter(|s| s.outcome != "ok").count(),
                    figures,
                    dependency_p99,
                    evaluations,
                    fired,
                }
            })
            .collect();
        Ok(Self {
            plan,
            rules,
            dependencies,
            phases,
            warmup_measured,
        })
    }

    /// The phases (0-based) in which `signal`'s rule fired.
    pub(crate) fn pages(&self, signal: Signal) -> Vec<usize> {
        self.phases
            .iter()
            .enumerate()
            .filter(|(_, phase)| phase.fired[signal as usize].is_some())
            .map(|(index, _)| index)
            .collect()
    }

    /// The phases (0-based) in which a rule on `signal` should page, by the
    /// script: a total-latency rule pages on every slowdown, whoever caused
    /// it (that is its flaw); an internal-latency rule only on our own.
    pub(crate) fn expected_pages(&self, signal: Signal) -> Vec<usize> {
        self.phases
            .iter()
            .enumerate()
            .filter(|(_, phase)| match signal {
                Signal::Total => phase.phase.fault.owner().is_some(),
                Signal::Internal => phase.phase.fault.is_ours(),
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// Pages of `signal`'s rule for an incident that was not ours.
    pub(crate) fn false_pages(&self, signal: Signal) -> usize {
        self.pages(signal)
            .into_iter()
            .filter(|&index| !self.phases[index].phase.fault.is_ours())
            .count()
    }

    /// Pages of `signal`'s rule for our own incident.
    pub(crate) fn true_pages(&self, signal: Signal) -> usize {
        self.pages(signal).len() - self.false_pages(signal)
    }

    /// The run showed what the script sets out to show.
    pub(crate) fn as_expected(&self) -> bool {
        Signal::BOTH
            .iter()
            .all(|&signal| self.pages(signal) == self.expected_pages(signal))
    }

    /// The longest this process waited for a CPU in any phase.
    pub(crate) fn stall(&self) -> Duration {
        self.phases
            .iter()
            .map(|phase| phase.stall)
            .max()
            .unwrap_or_default()
    }

    /// Other work on the machine kept this process from running for longer
    /// than the alerts' margin: a stall that long moves the p99 of every
    /// request in flight across it by more than the margin, so a wrong
    /// verdict says more about the machine than about the alerts.
    pub(crate) fn noisy(&self) -> bool {
        self.stall() > self.plan.margin
    }

    /// Seconds from the first phase's start to the last phase's end.
    pub(crate) fn duration(&self) -> f64 {
        self.phases.last().map_or(0.0, |phase| phase.end)
    }
}

fn phase_samples(samples: &[Sample], index: usize) -> impl Iterator<Item = &Sample> {
    samples.iter().filter(move |s| s.phase == index)
}

/// The requests that ended in one window, as the rules see them.
#[derive(Debug)]
struct Window {
    at: f64,
    p99: [Option<f64>; 2],
}

/// A phase's windows: each ends `step` after the one before; the first ends
/// a whole window into the phase, the last no later than its load's end.
/// Windows never reach back into the phase before, so each phase is judged
/// on its own figures.
fn windows<'a>(
    plan: &Plan,
    run: &PhaseRun,
    origin: Instant,
    samples: impl Iterator<Item = &'a Sample>,
) -> Vec<Window> {
    // (seconds into the phase, [total, internal] in ms), by end time.
    let mut ended: Vec<(f64, [f64; 2])> = samples
        .filter_map(|s| {
            let at = seconds(run.started, s.ended?);
            Some((at, Signal::BOTH.map(|signal| signal.of(s))))
        })
        .collect();
    ended.sort_by(|a, b| a.0.total_cmp(&b.0));
    let length = run.stopped.saturating_duration_since(run.started);
    let count = match length.checked_sub(plan.window) {
        Some(room) => room.as_nanos() / plan.step.as_nanos() + 1,
        None => 0,
    };
    let window = plan.window.as_secs_f64();
    let offset = seconds(origin, run.started);
    (0..u32::try_from(count).unwrap_or(u32::MAX))
        .map(|k| (plan.window + plan.step * k).as_secs_f64())
        .map(|end| {
            let from = ended.partition_point(|&(at, _)| at <= end - window);
            let to = ended.partition_point(|&(at, _)| at <= end);
            let p99 = Signal::BOTH.map(|signal| {
                let mut values: Vec<f64> = ended[from..to]
                    .iter()
                    .map(|&(_, figures)| figures[signal as usize])
                    .collect();
                values.sort_by(f64::total_cmp);
                quantile(&values, 0.99)
            });
            Window {
                at: offset + end,
                p99,
            }
        })
        .collect()
}

/// Runs both rules over a phase's windows: the evaluations, and when each
/// rule first fired.
fn evaluate(
    plan: &Plan,
    rules: &[Rule; 2],
    windows: &[Window],
) -> (Vec<Evaluation>, [Option<f64>; 2]) {
    let mut streak = [0_usize; 2];
    let mut fired = [None; 2];
    let evaluations = windows
        .iter()
        .map(|window| {
            for rule in rules {
                let i = rule.signal as usize;
                let breach = window.p99[i].is_some_and(|p99| p99 > rule.threshold);
                streak[i] = if breach { streak[i] + 1 } else { 0 };
                if streak[i] >= plan.for_evaluations && fired[i].is_none() {
                    fired[i] = Some(window.at);
                }
            }
            Evaluation {
                at: window.at,
                p99: window.p99,
            }
        })
        .collect();
    (evaluations, fired)
}

/// The `q` quantile of sorted `values`, interpolated linearly between the
/// two nearest ranks; `None` for no values.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "ranks are small non-negative integers, exact in an f64"
)]
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = q.clamp(0.0, 1.0) * last as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    Some(sorted[below] + (sorted[above] - sorted[below]) * (rank - below as f64))
}

#[allow(
    clippy::cast_precision_loss,
    reason = "a latency in µs is far below 2^52, exact in an f64"
)]
fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn seconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}
