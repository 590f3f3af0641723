//! The scraper: every `scrape_every`, each service's `/metrics` over HTTP,
//! as Prometheus would, into one store of samples; scrape `k` is minute `k`
//! of rule time. Between scrapes it turns the knobs the plan says.

use super::load::Load;
use super::plan::{PHASES, Plan, RULE_MINUTES_PER_SCRAPE};
use super::services::System;
use selftime_alerting::eval::{NAME, Storage};
use selftime_alerting::exposition;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal as _, Write as _};
use std::time::{Duration, Instant};
use tokio::time::{sleep_until, timeout};

/// How the run shows its progress (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// One line, rewritten in place.
    Terminal,
    /// One line per phase.
    Lines,
    /// Nothing.
    #[allow(dead_code, reason = "tests/demo.rs runs the demo quietly")]
    Quiet,
}

impl Progress {
    /// `Terminal` when stderr is one, else `Lines`.
    pub fn detect() -> Self {
        if io::stderr().is_terminal() {
            Self::Terminal
        } else {
            Self::Lines
        }
    }
}

/// Everything the scrapes recorded.
#[derive(Debug)]
pub struct Recording {
    /// Every scraped sample, with `job` and `instance` labels, at
    /// `k` minutes for scrape `k`.
    pub samples: Storage,
    /// Per phase, the longest the machine kept this process from running.
    pub stalls: Vec<Duration>,
    /// The latest any scrape started after its time.
    pub late: Duration,
}

/// The sample time of scrape `k`, ms of rule time.
pub fn rule_ms(k: u64) -> i64 {
    i64::try_from(k * RULE_MINUTES_PER_SCRAPE * 60_000).unwrap_or(i64::MAX)
}

/// Runs the plan's scrapes against `system` while `load` runs.
pub async fn run(
    system: &System,
    load: &Load,
    plan: &Plan,
    progress: Progress,
) -> io::Result<Recording> {
    let client = super::services::client()?;
    let mut samples = Storage::default();
    let mut stalls = vec![Duration::ZERO; PHASES.len()];
    let mut late = Duration::ZERO;
    let origin = tokio::time::Instant::now();
    let mut phase = 0;
    let mut shown = Instant::now();
    for k in 0..=plan.last_scrape() {
        let due = origin + plan.scrape_every * u32::try_from(k).unwrap_or(u32::MAX);
        sleep_until(due).await;
        late = late.max(due.elapsed());
        let pages = scrape_all(system, &client).await;
        for (service, page) in system.services.iter().zip(pages) {
            let page = page.map_err(|e| {
                io::Error::other(format!("scraping {}: {e}", service.metrics_url()))
            })?;
            let parsed = exposition::parse(&page)
                .map_err(|e| io::Error::other(format!("{}: {e}", service.metrics_url())))?;
            for (mut labels, value) in parsed {
                labels.insert("job".to_owned(), service.job.to_owned());
                labels.insert("instance".to_owned(), service.addr.to_string());
                samples.push(&labels, rule_ms(k), value);
            }
        }
        system.knobs.apply(plan.fault_after(k));
        let now_phase = (0..PHASES.len())
            .find(|&i| plan.scrapes(i).1 >= k)
            .unwrap_or(PHASES.len() - 1);
        stalls[now_phase] = stalls[now_phase].max(load.take_stall());
        let phase_ended = k == plan.scrapes(phase).1;
        if progress == Progress::Terminal
            && (shown.elapsed() >= Duration::from_millis(100) || phase_ended)
        {
            shown = Instant::now();
            show(progress, plan, k, phase, load);
        } else if progress == Progress::Lines && phase_ended {
            show(progress, plan, k, phase, load);
        }
        if phase_ended {
            phase += 1;
        }
    }
    if progress == Progress::Terminal {
        eprintln!();
    }
    Ok(Recording {
        samples,
        stalls,
        late,
    })
}

/// Scrapes every service at once.
async fn scrape_all(system: &System, client: &reqwest::Client) -> Vec<Result<String, String>> {
    let scrapes = system.services.iter().map(|service| {
        let request = client.get(service.metrics_url());
        async move {
            let response = timeout(Duration::from_secs(5), request.send())
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            response
                .error_for_status()
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())
        }
    });
    let handles: Vec<_> = scrapes.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// The progress line: phase, rule time, logins sent.
fn show(progress: Progress, plan: &Plan, k: u64, phase: usize, load: &Load) {
    let line = format!(
        "phase {}/{} {:<44} minute {:>3}/{}  {:>5} logins ",
        phase + 1,
        PHASES.len(),
        PHASES[phase].title,
        k * RULE_MINUTES_PER_SCRAPE,
        plan.last_scrape() * RULE_MINUTES_PER_SCRAPE,
        load.sent(),
    );
    let mut stderr = io::stderr().lock();
    // Progress is best effort: a closed stderr must not stop the run.
    let _ = match progress {
        Progress::Terminal => write!(stderr, "\r{line}"),
        _ => writeln!(stderr, "{line}"),
    };
    let _ = stderr.flush();
}

/// One more scrape of every service: each job's `selftime_requests_total`
/// by outcome.
pub async fn requests(system: &System) -> io::Result<BTreeMap<(String, String), f64>> {
    let client = super::services::client()?;
    let mut out = BTreeMap::new();
    for (service, page) in system
        .services
        .iter()
        .zip(scrape_all(system, &client).await)
    {
        let page = page.map_err(io::Error::other)?;
        for (labels, value) in exposition::parse(&page).map_err(io::Error::other)? {
            if labels.get(NAME).map(String::as_str) == Some("selftime_requests_total") {
                let outcome = labels.get("outcome").cloned().unwrap_or_default();
                *out.entry((service.job.to_owned(), outcome)).or_insert(0.0) += value;
            }
        }
    }
    Ok(out)
}
