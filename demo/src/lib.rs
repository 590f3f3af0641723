//! # The incident, replayed: who gets paged
//!
//! ```text
//! cargo run --release --example incident            # about 2 minutes
//! cargo run --release --example incident -- --quick # about 20 seconds
//! ```
//!
//! The demo's code is this library, compiled once: `examples/incident.rs`
//! runs it, and `tests/demo.rs` replays it in-process. Its items are public
//! for those two, not an API.
//!
//! An auth service sits behind an API gateway. Every login reads a session
//! from a session store (Redis) and asks a legacy member system, through a
//! reverse proxy, for the member's tier; then it seals the session (its own
//! CPU work). Gateway, auth, proxy and legacy system are Rust services,
//! each timed with selftime by its team and scraped as its own Prometheus
//! job; the session store is Redis, nobody's to instrument, and so is the
//! load balancer (a TCP forwarder) between auth and the proxy.
//!
//! Eight phases of steady load: a baseline, then seven incidents, each
//! healed before the next begins (every alert has resolved in between):
//!
//! 1. baseline;
//! 2. the gateway slows in its own work (the gateway team's incident);
//! 3. the legacy system slows (the legacy team's);
//! 4. the reverse proxy slows (the platform team's);
//! 5. the session store slows (the session-store team's);
//! 6. a deploy of the auth service raises its own CPU work (the auth
//!    team's);
//! 7. a job blocks the auth service's workers and logins queue (the auth
//!    team's);
//! 8. the load balancer slows: the platform team's, which the proxy's
//!    `Server-Timing` tells apart from the proxy's own time.
//!
//! The demo scrapes every service's `/metrics` at a fixed pace, and one
//! scrape stands for one minute of Prometheus time, so the shipped rules
//! (`runtime/alerts/selftime.rules.yml`: 5-minute windows, `for:` clauses,
//! hour-long burn-rate windows) play out in seconds. The rules are
//! evaluated, unchanged, with the demo's thresholds in a rules file of its
//! own beside them, by `promtool test rules` when `promtool` is on the PATH
//! (Prometheus's own engine), else by a built-in evaluator of the same
//! expressions. Beside them runs the alert the auth team had before
//! selftime: p99 latency at the gateway's login endpoint.
//!
//! The verdict: the endpoint alert pages the auth team for all seven
//! incidents, five of them someone else's; the shipped rules page (or, for
//! Redis and the load balancer, notify) exactly the incident's owner, once,
//! and nobody else. The
//! run prints a table per phase, writes a chart (SVG) marking when each
//! alert fired, and `incident.json` beside it.
//!
//! Set `REDIS_URL` to use a real Redis as the session store.

// Public for `examples/incident.rs` and `tests/demo.rs` only: not an API
// to document for callers.
#![allow(clippy::must_use_candidate, clippy::missing_errors_doc)]

pub mod chart;
pub mod cli;
pub mod load;
pub mod plan;
pub mod relay;
pub mod scrape;
pub mod services;
pub mod sessions;
pub mod table;
pub mod teams;
pub mod verdict;

use load::{Load, Sent};
use plan::Plan;
use scrape::{Progress, Recording};
use selftime_alerting::eval::Storage;
use services::Knobs;
use sessions::Sessions;
use std::collections::BTreeMap;
use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use verdict::{Evaluator, PromtoolFiles, Rules, Verdict};

/// The demo's `main`: runs the replay the command line asks for; the status
/// says whether the verdict was the expected one.
pub fn main() -> ExitCode {
    let config = match configure(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(exit) => {
            if exit.code == 0 {
                println!("{}", exit.message);
            } else {
                eprintln!("{}", exit.message);
            }
            return ExitCode::from(exit.code);
        }
    };
    match run(&config, &mut io::stdout().lock()) {
        // The verdict says what went wrong; the status lets a script know.
        Ok(outcome) if outcome.verdict.as_expected() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Leaving before any run: `--help` (status 0, on stdout) or a bad command
/// line (status 2, on stderr).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// Which evaluator decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// promtool when it is on the PATH, else the built-in one.
    Auto,
    Builtin,
    Promtool,
}

/// The run the command line asks for.
pub fn configure<I: IntoIterator<Item = String>>(args: I) -> Result<Config, Exit> {
    let options = match cli::parse(args) {
        Ok(cli::Command::Run(options)) => options,
        Ok(cli::Command::Help) => {
            return Err(Exit {
                code: 0,
                message: cli::USAGE.to_owned(),
            });
        }
        Err(error) => {
            return Err(Exit {
                code: 2,
                message: format!("error: {error}\n\n{}", cli::USAGE),
            });
        }
    };
    Ok(Config {
        plan: if options.quick {
            Plan::quick()
        } else {
            Plan::full()
        },
        chart: options.out.unwrap_or_else(default_chart),
        progress: Progress::detect(),
        redis_url: std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty()),
        evaluator: options.evaluator,
    })
}

/// The workspace's root: this package's parent directory.
fn workspace() -> &'static Path {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR"));
    demo.parent().unwrap_or(demo)
}

/// `target/incident.svg` in the workspace (or in `CARGO_TARGET_DIR`).
fn default_chart() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("incident.svg")
}

/// The shipped rules file.
pub fn shipped_rules() -> PathBuf {
    workspace().join("runtime/alerts/selftime.rules.yml")
}

/// What to run.
#[derive(Debug)]
pub struct Config {
    pub plan: Plan,
    /// Where to write the chart; `incident.json` and the demo's rules go
    /// beside it.
    pub chart: PathBuf,
    pub progress: Progress,
    /// A real Redis for the session store, if set.
    pub redis_url: Option<String>,
    pub evaluator: Choice,
}

/// What a run produced besides its printout.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "tests/demo.rs, which runs the demo in-process, reads it all"
)]
pub struct Outcome {
    /// The deciding evaluator's verdict.
    pub verdict: Verdict,
    /// The built-in evaluator's verdict (the same as `verdict` when it decided).
    pub builtin: Verdict,
    pub recording: Recording,
    /// The samples with the built-in evaluator's recorded series added.
    pub evaluated: Storage,
    pub sent: Sent,
    /// After the load: each job's `selftime_requests_total` by outcome.
    pub requests: BTreeMap<(String, String), f64>,
    pub json: PathBuf,
}

type BoxError = Box<dyn Error + Send + Sync>;

/// Runs the replay, evaluates the rules, writes the chart and the report,
/// and prints the summary to `out`.
pub fn run(config: &Config, out: &mut dyn Write) -> Result<Outcome, BoxError> {
    let dir = config
        .chart
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("creating {}: {error}", dir.display()))?;
    // promtool reads the rule files its test file names relative to that
    // file: name them absolutely.
    let dir = std::path::absolute(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    // Fail now rather than after the replay if the chart cannot be written.
    std::fs::File::create(&config.chart)
        .map_err(|error| format!("writing {}: {error}", config.chart.display()))?;
    let json = dir.join("incident.json");

    let rules = Rules::new()?;
    let promtool = match config.evaluator {
        Choice::Builtin => None,
        Choice::Auto => selftime_alerting::promtool::version(),
        Choice::Promtool => Some(selftime_alerting::promtool::version().ok_or(
            "--evaluator promtool: promtool is not on the PATH (apt-get install prometheus)",
        )?),
    };

    let world = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("incident")
        .build()?;
    let replayed = world.block_on(replay(config, out));
    world.shutdown_timeout(Duration::from_secs(1));
    let (recording, sent, requests) = replayed?;

    let mut evaluated = recording.samples.clone();
    let builtin = verdict::builtin(&rules, &config.plan, &mut evaluated)?;
    let verdict = match promtool {
        Some(version) => {
            let files = PromtoolFiles {
                shipped: shipped_rules(),
                demo: dir.join("incident.rules.yml"),
                dir: dir.clone(),
            };
            if !verdict::shipped_file_matches(&rules, &files.shipped) {
                writeln!(
                    out,
                    "note: {} differs from the file this demo was built with: promtool reads the file",
                    files.shipped.display()
                )?;
            }
            verdict::promtool(&rules, &config.plan, &recording.samples, &files, version)?
        }
        None => builtin.clone(),
    };
    chart::draw(&config.plan, &verdict, &evaluated, &config.chart)?;
    std::fs::write(&json, verdict::json(&verdict, &config.plan))
        .map_err(|error| format!("writing {}: {error}", json.display()))?;

    writeln!(out)?;
    writeln!(
        out,
        "{}",
        table::figures(&config.plan, &evaluated, &recording, &sent)
    )?;
    writeln!(out, "{}", table::alerts(&config.plan, &verdict))?;
    writeln!(out, "{}", table::verdict(&verdict))?;
    writeln!(out)?;
    match &verdict.evaluator {
        Evaluator::Promtool(version) => writeln!(
            out,
            "decided by: promtool test rules ({version}), on the scraped samples, one scrape = one minute"
        )?,
        Evaluator::Builtin => writeln!(
            out,
            "decided by: the built-in evaluator of the shipped rules (no promtool on the PATH: apt-get install prometheus)"
        )?,
    }
    writeln!(out, "chart: {}", config.chart.display())?;
    writeln!(out, "report:")?;
    writeln!(out, "{}", json.display())?;
    out.flush()?;
    Ok(Outcome {
        verdict,
        builtin,
        recording,
        evaluated,
        sent,
        requests,
        json,
    })
}

/// Starts everything, prints the header, runs the load and the scrapes.
async fn replay(
    config: &Config,
    out: &mut dyn Write,
) -> Result<(Recording, Sent, BTreeMap<(String, String), f64>), BoxError> {
    let plan = &config.plan;
    let knobs = Arc::new(Knobs::default());
    let sessions = match &config.redis_url {
        Some(url) => Sessions::redis(url, Arc::clone(&knobs))
            .await
            .map_err(|error| format!("session store at REDIS_URL: {error}"))?,
        None => Sessions::stand_in(Arc::clone(&knobs)).await?,
    };
    writeln!(
        out,
        "selftime incident replay: {} phases, {} scrapes {:.0} ms apart (one scrape = {} minute of rule time), {} logins/s for {:.0} s",
        plan::PHASES.len(),
        plan.last_scrape() + 1,
        plan.scrape_every.as_secs_f64() * 1e3,
        plan::RULE_MINUTES_PER_SCRAPE,
        plan.rate,
        plan.load_time().as_secs_f64(),
    )?;
    writeln!(out, "session store: {}", sessions.describe())?;
    let system = services::start(sessions, knobs)?;
    for service in &system.services {
        writeln!(out, "job {:<8} {}", service.job, service.metrics_url())?;
    }
    writeln!(out)?;
    out.flush()?;

    let load = Load::start(system.gateway.clone(), plan.rate)?;
    tokio::time::sleep(plan.warmup).await;
    let recording = scrape::run(&system, &load, plan, config.progress).await;
    let sent = load.stop().await;
    let requests = match &recording {
        Ok(_) => scrape::requests(&system).await,
        Err(_) => Ok(BTreeMap::new()),
    };
    system.shutdown();
    Ok((recording?, sent, requests?))
}
