//! # The incident, replayed
//!
//! ```text
//! cargo run --release --example incident            # about 55 s
//! cargo run --release --example incident -- --quick # about 13 s
//! ```
//!
//! An auth service sits behind an API gateway. Every login reads a session
//! from a session store and asks a legacy member system, through a reverse
//! proxy, for the member's tier; then it seals the session (its own CPU
//! work). The auth team pages on the p99 latency of their login handler.
//!
//! Five phases of steady load replay the week that made them stop:
//!
//! 1. baseline;
//! 2. the legacy system slows down by 50 ms (the legacy team's incident);
//! 3. the reverse proxy adds 30 ms (the platform team's);
//! 4. the session store answers 20 ms later (the session-store team's);
//! 5. a deploy of the auth service raises its own CPU work by 15 ms: the
//!    only incident that was the auth team's.
//!
//! Every part is its own axum server on a loopback port, in this process,
//! talking real HTTP. The login handler is a `#[selftime::timed_handler]`;
//! its two outbound calls are `#[selftime::external_call]`s. All figures
//! come from the six fields selftime records on the handler's span, read by
//! a small tracing layer: the demo measures nothing itself.
//!
//! Two alert rules, built the same way from the baseline, watch p99 over a
//! sliding window: one on total latency, one on internal latency (total
//! minus the time waiting on dependencies). The total alert pages in phases
//! 2 to 5: three false pages and one true. The internal alert pages in
//! phase 5 only. The run prints a table per phase, the pages, a verdict,
//! and writes a chart (SVG); while it runs, it serves selftime's Prometheus
//! metrics on a loopback port.
//!
//! Set `REDIS_URL` to use a real Redis as the session store.

pub(crate) mod analysis;
pub(crate) mod capture;
pub(crate) mod chart;
pub(crate) mod cli;
pub(crate) mod load;
pub(crate) mod plan;
pub(crate) mod services;
pub(crate) mod sessions;
pub(crate) mod table;

use analysis::Report;
use capture::Capture;
use load::Progress;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use plan::{Plan, PHASES};
use services::Knobs;
use sessions::Sessions;
use std::cell::RefCell;
use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::dispatcher::{self, DefaultGuard, Dispatch};
use tracing_subscriber::layer::SubscriberExt as _;

/// The handler whose spans the demo reads.
const HANDLER: &str = "login";

fn main() -> ExitCode {
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
        Ok(outcome) => {
            if let Some(lines) = &outcome.requests_total {
                println!("metrics, scraped at the end of the load:");
                for line in lines {
                    println!("  {line}");
                }
            }
            // The verdict says what went wrong; the status lets a script know.
            if outcome.report.as_expected() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Leaving before any run: `--help` (status 0, on stdout) or a bad command
/// line (status 2, on stderr).
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// The run the command line asks for.
pub(crate) fn configure<I: IntoIterator<Item = String>>(args: I) -> Result<Config, Exit> {
    let options = match cli::parse(args) {
        Ok(cli::Command::Run(options)) => options,
        Ok(cli::Command::Help) => {
            return Err(Exit {
                code: 0,
                message: cli::USAGE.to_owned(),
            })
        }
        Err(error) => {
            return Err(Exit {
                code: 2,
                message: format!("error: {error}\n\n{}", cli::USAGE),
            })
        }
    };
    Ok(Config {
        plan: if options.quick {
            Plan::QUICK
        } else {
            Plan::FULL
        },
        chart: options.out.unwrap_or_else(default_chart),
        progress: Progress::detect(),
        redis_url: std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty()),
    })
}

/// `target/incident.svg` in the workspace (or in `CARGO_TARGET_DIR`).
fn default_chart() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        )
        .join("incident.svg")
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) plan: Plan,
    /// Where to write the chart.
    pub(crate) chart: PathBuf,
    pub(crate) progress: Progress,
    /// A real Redis for the session store, if set.
    pub(crate) redis_url: Option<String>,
}

/// What a run produced besides its printout.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) report: Report,
    /// The `selftime_requests_total` lines of the metrics page, scraped over
    /// HTTP at the end of the load; `None` if metrics were not served.
    pub(crate) requests_total: Option<Vec<String>>,
}

type BoxError = Box<dyn Error + Send + Sync>;

/// Runs the replay, writes the chart, and prints the summary to `out`.
pub(crate) fn run(config: &Config, out: &mut dyn Write) -> Result<Outcome, BoxError> {
    // Fail now rather than after the replay if the chart cannot be written.
    if let Some(parent) = config.chart.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("creating {}: {error}", parent.display()))?;
    }
    std::fs::File::create(&config.chart)
        .map_err(|error| format!("writing {}: {error}", config.chart.display()))?;

    let capture = Capture::new(HANDLER);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(capture.clone()));
    let runtime = runtime(&dispatch)?;
    // `block_on` polls on this thread: it gets the subscriber too.
    let main_thread = dispatcher::set_default(&dispatch);
    let result = runtime.block_on(replay(config, &capture, out));
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(main_thread);
    let (runs, requests_total) = result?;

    let report = Report::new(config.plan, &PHASES, &runs, &capture.take())
        .map_err(|_| "the baseline phase produced no measured logins")?;
    chart::draw(&report, &config.chart)?;

    writeln!(out)?;
    writeln!(out, "{}", table::figures(&report))?;
    writeln!(out, "{}", table::alerts(&report))?;
    writeln!(out, "{}", table::verdict(&report))?;
    writeln!(out)?;
    writeln!(out, "chart: {}", config.chart.display())?;
    out.flush()?;
    Ok(Outcome {
        report,
        requests_total,
    })
}

thread_local! {
    /// Each runtime thread's hold on the demo's subscriber.
    static SUBSCRIBED: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// A runtime whose every thread (workers and blocking pool) reports spans
/// to `dispatch`. No global subscriber is set, so a test can run the demo
/// in its own process without taking the global slot.
fn runtime(dispatch: &Dispatch) -> io::Result<tokio::runtime::Runtime> {
    let dispatch = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("incident")
        .on_thread_start(move || {
            let guard = dispatcher::set_default(&dispatch);
            SUBSCRIBED.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| {
            SUBSCRIBED.with(|slot| drop(slot.borrow_mut().take()));
        })
        .build()
}

/// Starts everything, prints the header, runs the phases.
async fn replay(
    config: &Config,
    capture: &Capture,
    out: &mut dyn Write,
) -> Result<(Vec<load::PhaseRun>, Option<Vec<String>>), BoxError> {
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
        "selftime incident replay: {} phases ({:.0} s in all) at {} logins/s",
        PHASES.len(),
        plan.load_time().as_secs_f64(),
        plan.rate,
    )?;
    writeln!(out, "session store: {}", sessions.describe())?;
    let system = services::start(sessions, knobs).await?;
    let metrics = match serve_metrics().await {
        Ok((url, handle)) => {
            writeln!(
                out,
                "metrics: {url} (Prometheus text format, selftime_* series)"
            )?;
            Some((url, handle))
        }
        Err(error) => {
            writeln!(out, "metrics: not served ({error})")?;
            None
        }
    };
    writeln!(out)?;
    out.flush()?;

    let runs = load::run(&system, capture, plan, &PHASES, config.progress).await?;

    let requests_total = match &metrics {
        Some((url, handle)) => {
            handle.run_upkeep();
            Some(scrape(url).await?)
        }
        None => None,
    };
    Ok((runs, requests_total))
}

/// The process-wide Prometheus recorder, once installed.
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (selftime's histograms get buckets), or
/// reuses the one a previous run in this process installed, and serves its
/// page on a loopback port.
async fn serve_metrics() -> Result<(String, PrometheusHandle), BoxError> {
    let handle = if let Some(handle) = RECORDER.get() {
        handle.clone()
    } else {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Prefix("selftime_".into()),
                &selftime::metrics::BUCKETS,
            )?
            .install_recorder()?;
        selftime::metrics::describe();
        RECORDER.get_or_init(|| handle).clone()
    };
    let page = handle.clone();
    let addr = services::serve(axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let page = page.clone();
            async move { page.render() }
        }),
    ))
    .await?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok((format!("http://{addr}/metrics"), handle))
}

/// Reads the metrics page over HTTP, as Prometheus would, and keeps the
/// request counters.
async fn scrape(url: &str) -> Result<Vec<String>, BoxError> {
    let page = services::client()?
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(page
        .lines()
        .filter(|line| line.starts_with(selftime::metrics::REQUESTS_TOTAL))
        .map(str::to_owned)
        .collect())
}
