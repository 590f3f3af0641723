//! What every bench shares: each routine runs under criterion (the
//! absolute figures, in criterion's report), then again in interleaved
//! rounds, from which the ratio lines the targets are stated in are
//! computed.
//!
//! Why a second pass: the targets compare two routines measured in the same
//! run, and on a machine shared with other work the load drifts between
//! criterion's benchmarks, which run one after the other. Interleaving the
//! routines batch by batch, and taking each ratio per round before its
//! median, cancels most of that drift. Batches are short (a quarter of a
//! millisecond, well under a scheduler time slice), so that most of them run
//! without being preempted and the median ignores the ones that were.
//!
//! Environment:
//! - `SELFTIME_ROUNDS` (default 301): interleaved rounds; `0` skips the pass.
//! - `SELFTIME_BATCH_US` (default 250): the length of one batch of one
//!   routine, in microseconds (a routine slower than that runs once a batch).

// Each bench uses its own part of this module.
#![allow(dead_code)]
// Iteration counts and nanoseconds stay far below 2^52, and are positive.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

use criterion::Criterion;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub(crate) mod counting;
pub(crate) mod noop;

/// A routine in criterion's `iter_custom` shape: run `iters` iterations,
/// return the time they took.
pub(crate) type Routine<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// What a ratio is held to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// Reported, not judged.
    Report,
}

/// The routines of one group.
pub(crate) struct Suite<'a> {
    group: &'static str,
    entries: Vec<(&'static str, Routine<'a>)>,
}

impl<'a> Suite<'a> {
    pub(crate) fn new(group: &'static str) -> Self {
        Self {
            group,
            entries: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, name: &'static str, routine: impl FnMut(u64) -> Duration + 'a) {
        self.entries.push((name, Box::new(routine)));
    }

    /// Runs every routine under criterion, then the interleaved pass (when
    /// this is a `cargo bench` run and it is not switched off).
    pub(crate) fn run(mut self, c: &mut Criterion) -> Option<Rounds> {
        {
            let mut group = c.benchmark_group(self.group);
            for (name, routine) in &mut self.entries {
                group.bench_function(*name, |b| b.iter_custom(&mut *routine));
            }
            group.finish();
        }
        let rounds = rounds();
        if rounds == 0 || !is_bench_run() {
            return None;
        }
        Some(self.interleave(rounds))
    }

    fn interleave(&mut self, rounds: usize) -> Rounds {
        let batch = Duration::from_micros(env_or("SELFTIME_BATCH_US", 250));
        let iters: Vec<u64> = self
            .entries
            .iter_mut()
            .map(|(_, routine)| calibrate(routine, batch))
            .collect();
        let count = self.entries.len();
        let mut per_round = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut ns = vec![0.0; count];
            // Rotate the order so that no routine always runs right after
            // the same neighbour (caches, turbo, the other agents' bursts).
            for k in 0..count {
                let i = (round + k) % count;
                let elapsed = (self.entries[i].1)(iters[i]);
                ns[i] = elapsed.as_secs_f64() * 1e9 / iters[i] as f64;
            }
            per_round.push(ns);
        }
        let rounds = Rounds {
            group: self.group,
            names: self.entries.iter().map(|(name, _)| *name).collect(),
            per_round,
        };
        rounds.print_table(batch, &iters);
        rounds
    }
}

/// Finds how many iterations fill one batch: grows the count until a run
/// takes a quarter of a batch, then scales by the fastest of three runs (a
/// run that was preempted reads slow, never fast).
fn calibrate(routine: &mut Routine<'_>, batch: Duration) -> u64 {
    let mut iters = 1u64;
    while iters < 1 << 40 && routine(iters) < batch / 4 {
        iters *= 2;
    }
    let fastest = (0..3).map(|_| routine(iters)).min().unwrap_or(batch);
    let scaled = batch.as_secs_f64() / fastest.as_secs_f64().max(1e-9) * iters as f64;
    (scaled as u64).max(1)
}

/// The interleaved pass's figures: for each round, each routine's ns per
/// iteration.
pub(crate) struct Rounds {
    group: &'static str,
    names: Vec<&'static str>,
    per_round: Vec<Vec<f64>>,
}

/// One round's figures, by routine name.
pub(crate) struct Round<'r> {
    names: &'r [&'static str],
    ns: &'r [f64],
}

impl Round<'_> {
    /// This round's ns per iteration of `name`.
    ///
    /// # Panics
    /// On a name the suite has no routine for: a bug in the bench itself.
    pub(crate) fn ns(&self, name: &str) -> f64 {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no routine named `{name}`"));
        self.ns[i]
    }
}

impl Rounds {
    /// Figures from a bench's own interleaved pass, for one that measures
    /// several figures of each routine per round (`service`: throughput and
    /// latency quantiles): `per_round[round][i]` is the figure named
    /// `names[i]`. Read them back with [`Round::ns`] and [`Rounds::ns`]
    /// whatever their unit.
    pub(crate) fn new(
        group: &'static str,
        names: Vec<&'static str>,
        per_round: Vec<Vec<f64>>,
    ) -> Self {
        Self {
            group,
            names,
            per_round,
        }
    }

    /// The median, 25th and 75th percentiles of `name`'s ns per iteration.
    pub(crate) fn ns(&self, name: &str) -> Spread {
        self.spread(|r| r.ns(name))
    }

    /// `f` taken on every round, then summarised.
    pub(crate) fn spread(&self, f: impl Fn(&Round<'_>) -> f64) -> Spread {
        let values: Vec<f64> = self
            .per_round
            .iter()
            .map(|ns| {
                f(&Round {
                    names: &self.names,
                    ns,
                })
            })
            .collect();
        Spread::of(values)
    }

    /// Prints one ratio line: `f` per round, its median and quartiles, and
    /// whether the median meets `target`. Returns the median.
    pub(crate) fn ratio(&self, label: &str, target: Target, f: impl Fn(&Round<'_>) -> f64) -> f64 {
        let s = self.spread(f);
        let verdict = match target {
            Target::AtMost(t) => format!("target <= {t:.2}: {}", pass(s.median <= t)),
            Target::AtLeast(t) => format!("target >= {t:.2}: {}", pass(s.median >= t)),
            Target::Report => String::from("(reported)"),
        };
        println!(
            "ratio  {}: {label} = {:.3}  [{:.3} .. {:.3}]  {verdict}",
            self.group, s.median, s.p25, s.p75
        );
        s.median
    }

    /// Prints a figure that is not a ratio (an overhead in ns, a size).
    pub(crate) fn figure(&self, label: &str, unit: &str, f: impl Fn(&Round<'_>) -> f64) -> f64 {
        let s = self.spread(f);
        println!(
            "figure {}: {label} = {:.2} {unit}  [{:.2} .. {:.2}]",
            self.group, s.median, s.p25, s.p75
        );
        s.median
    }

    fn print_table(&self, batch: Duration, iters: &[u64]) {
        let mut out = format!(
            "\n== {}: {} interleaved rounds, batches of ~{} us; ns per iteration, median [p25 .. p75], fastest round\n",
            self.group,
            self.per_round.len(),
            batch.as_micros()
        );
        for (name, n) in self.names.iter().zip(iters) {
            let s = self.ns(name);
            let _ = writeln!(
                out,
                "  {name:<40} {:>12.2}  [{:.2} .. {:.2}]  min {:.2}  spread {:.1}%  ({n} iters/batch)",
                s.median,
                s.p25,
                s.p75,
                s.min,
                s.relative_iqr() * 100.0
            );
        }
        print!("{out}");
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "HOLDS" } else { "MISSED" }
}

/// A median with its quartiles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    /// The fastest round: the routine's cost with the least interference.
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) p25: f64,
    pub(crate) p75: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if values.is_empty() {
                return f64::NAN;
            }
            let pos = q * (values.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
        };
        Self {
            min: at(0.0),
            median: at(0.5),
            p25: at(0.25),
            p75: at(0.75),
        }
    }

    /// The interquartile range relative to the median: how noisy the run was.
    pub(crate) fn relative_iqr(&self) -> f64 {
        (self.p75 - self.p25) / self.median.abs().max(f64::MIN_POSITIVE)
    }
}

/// `cargo bench` passes `--bench`; `cargo test --benches` does not, and
/// then criterion runs each routine once as a smoke test and so do we not.
pub(crate) fn is_bench_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list")
}

fn rounds() -> usize {
    env_or("SELFTIME_ROUNDS", 301)
}

pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints the machine the figures come from, once per bench binary.
pub(crate) fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| String::from("unknown"));
    let clocksource =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map_or_else(|_| String::from("unknown"), |s| s.trim().to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!("machine: {cpus} cpus, {cpu}, clocksource {clocksource}, load average {load}");
}

/// Times `iters` runs of `f`, the body of most routines.
#[inline]
pub(crate) fn time(iters: u64, mut f: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    start.elapsed()
}
