//! The load generator: logins at a steady pace through the gateway, phase
//! after phase, with a progress line.

use super::capture::{Capture, WARMUP};
use super::plan::{Fault, Phase, Plan};
use super::services::System;
use super::sessions;
use std::io::{self, IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::time::{interval, timeout, MissedTickBehavior};

/// At most this many logins in flight: a bound, never reached when healthy.
const MAX_IN_FLIGHT: u32 = 512;
/// How often the stall probe wakes up.
const PROBE: Duration = Duration::from_millis(5);
/// How long a phase's last logins may take to finish before the next phase.
const DRAIN: Duration = Duration::from_secs(6);

/// How the run shows its progress (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// One line, rewritten in place.
    Terminal,
    /// One line per phase.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Terminal` when stderr is one, else `Lines`.
    pub(crate) fn detect() -> Self {
        if io::stderr().is_terminal() {
            Self::Terminal
        } else {
            Self::Lines
        }
    }
}

/// What the load generator saw of one phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PhaseRun {
    /// When the phase's first login was sent.
    pub(crate) started: Instant,
    /// When its last login was sent.
    pub(crate) stopped: Instant,
    pub(crate) sent: u64,
    /// Logins that got no successful answer from the gateway.
    pub(crate) failed: u64,
    /// The longest this process was kept from running during the phase, as
    /// a probe timer saw it: how busy the rest of the machine was.
    pub(crate) stall: Duration,
}

/// Warms the system up, then runs the phases in order; each starts with
/// the system healed, then broken the phase's way, and ends once its logins
/// have all finished.
pub(crate) async fn run(
    system: &System,
    capture: &Capture,
    plan: &Plan,
    phases: &[Phase],
    progress: Progress,
) -> io::Result<Vec<PhaseRun>> {
    let stall = Arc::new(AtomicU64::new(0));
    let probe = tokio::spawn(probe(Arc::clone(&stall)));
    let mut load = Load {
        system,
        client: super::services::client()?,
        rate: plan.rate,
        slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
        failed: Arc::new(AtomicU64::new(0)),
        stall,
        sent: 0,
    };
    let origin = Instant::now();
    system.knobs.apply(Fault::None);
    capture.set_phase(WARMUP);
    if progress == Progress::Terminal {
        eprint!(
            "\rwarming up: {:.1} s of logins, not measured",
            plan.warmup.as_secs_f64()
        );
    }
    load.send_for(plan.warmup, || {}).await;
    let mut runs = Vec::with_capacity(phases.len());
    for (index, phase) in phases.iter().enumerate() {
        system.knobs.apply(phase.fault);
        capture.set_phase(index);
        let mut shown = Instant::now();
        let run = load
            .send_for(plan.length(index), || {
                if progress == Progress::Terminal && shown.elapsed() >= Duration::from_millis(100) {
                    shown = Instant::now();
                    show(progress, origin, index, phases, capture);
                }
            })
            .await;
        runs.push(run);
        show(progress, origin, index, phases, capture);
    }
    probe.abort();
    if progress == Progress::Terminal {
        eprintln!();
    }
    Ok(runs)
}

/// Sends logins at a steady pace.
struct Load<'a> {
    system: &'a System,
    client: reqwest::Client,
    rate: u32,
    slots: Arc<Semaphore>,
    failed: Arc<AtomicU64>,
    /// The probe's longest stall (µs) since the phase started.
    stall: Arc<AtomicU64>,
    /// Logins sent so far, in all phases: picks each login's session.
    sent: u64,
}

impl Load<'_> {
    /// Sends logins for `length`, calling `tick` after each; then waits for
    /// them to finish, so that the next phase's figures are its own.
    async fn send_for(&mut self, length: Duration, mut tick: impl FnMut()) -> PhaseRun {
        let failed_before = self.failed.load(Ordering::Relaxed);
        self.stall.store(0, Ordering::Relaxed);
        let mut ticks = interval(Duration::from_secs(1) / self.rate);
        // A stalled generator skips the logins it missed rather than
        // sending them in a burst: the pace stays steady.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let started = Instant::now();
        let mut sent = 0_u64;
        while started.elapsed() < length {
            ticks.tick().await;
            sent += 1;
            self.sent += 1;
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                // Over the in-flight bound: count it as failed, do not queue.
                self.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let request = self.client.get(format!(
                "{}/login/{}",
                self.system.gateway,
                sessions::token(self.sent)
            ));
            let failed = Arc::clone(&self.failed);
            tokio::spawn(async move {
                let ok = match request.send().await {
                    Ok(response) => response.status().is_success() && response.text().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                drop(slot);
            });
            tick();
        }
        let stopped = Instant::now();
        let _ = timeout(DRAIN, self.slots.acquire_many(MAX_IN_FLIGHT)).await;
        PhaseRun {
            started,
            stopped,
            sent,
            failed: self.failed.load(Ordering::Relaxed) - failed_before,
            stall: Duration::from_micros(self.stall.load(Ordering::Relaxed)),
        }
    }
}

/// Sleeps `PROBE` again and again, keeping in `stall` the longest it woke
/// up late (µs). Tokio's timer wheel ticks every millisecond, so about 1 ms
/// of lateness is the floor; anything well above it is time this process
/// spent waiting for a CPU.
async fn probe(stall: Arc<AtomicU64>) {
    loop {
        let before = Instant::now();
        tokio::time::sleep(PROBE).await;
        let late = before.elapsed().saturating_sub(PROBE);
        stall.fetch_max(
            u64::try_from(late.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The progress line: phase, time since the replay started, logins done.
fn show(progress: Progress, origin: Instant, index: usize, phases: &[Phase], capture: &Capture) {
    if progress == Progress::Quiet {
        return;
    }
    let line = format!(
        "phase {}/{} {:<30} {:>5.1} s  {:>5} logins measured ",
        index + 1,
        phases.len(),
        phases[index].title,
        origin.elapsed().as_secs_f64(),
        capture.measured(),
    );
    let mut stderr = io::stderr().lock();
    // Progress is best effort: a closed stderr must not stop the run.
    let _ = match progress {
        Progress::Terminal => write!(stderr, "\r{line}"),
        _ => writeln!(stderr, "{line}"),
    };
    let _ = stderr.flush();
}
