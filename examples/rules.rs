//! # The rules generator
//!
//! ```text
//! cargo run --example rules                       # the shipped file, as it is
//! cargo run --example rules -- --window 2m --latency-for 5m > my.rules.yml
//! ```
//!
//! Prints selftime's Prometheus rules (`runtime/alerts/selftime.rules.yml`)
//! with the windows, `for:` durations and default thresholds the flags
//! give. Without flags the output is the shipped file byte for byte (a test
//! checks it), so every window and duration has one place: these flags.

use selftime_alerting::duration::Dur;
use selftime_alerting::shipped::{shipped, Settings};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo run --example rules -- [options] > selftime.rules.yml

Prints selftime's Prometheus rules. Without options: the shipped file.

windows and `for:` durations (30s, 5m, 1h30m, 6h, ...):
  --window D            window of every rate behind a quantile or a ratio (5m),
                        at least 4 times the scrape interval
  --latency-for D       for: of SelftimeInternalLatencyHigh (10m)
  --error-for D         for: of SelftimeErrorRatioHigh (5m)
  --dependency-for D    for: of SelftimeDependencyLatencyHigh (10m)
  --burn-for D          for: of SelftimeInternalLatencyBudgetBurn and
                        SelftimeObjectiveNamesNoBucket (2m)
  --fast-burn LONG,SHORT  the fast burn-rate window pair (1h,5m)
  --slow-burn LONG,SHORT  the slow burn-rate window pair (6h,30m)
                        Neither changes the burn alert's factors, 14.4 (fast)
                        and 6 (slow): the SRE workbook's for the default
                        windows of a 30-day objective (2% of the budget spent
                        in 1h, 5% in 6h). Over a long window W, a factor F
                        pages once F x W / 30d of the budget is spent.

default thresholds (per-handler ones go in a rules file of your own):
  --internal-p99 S      p99 internal latency that pages, seconds (0.25)
  --error-ratio R       share of error and panic outcomes that pages (0.05)
  --min-rate R          requests per second below which nothing fires (0.1)
  --objective R         share of requests within the objective (0.99)
  --objective-le S      the objective's threshold, seconds, a bucket bound (0.25),
                        written in `le` as Rust prints it (1, 2.5): Prometheus 3
                        stores whole-number bounds as 1.0, so there pick a
                        fractional one

  -h, --help            print this help";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(Some(settings)) => {
            print!("{}", shipped(&settings).to_yaml());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The settings the arguments ask for; `None` for `--help`.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Settings>, String> {
    let mut settings = Settings::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("option `{flag}` needs a value"))
        };
        let duration = |text: String| text.parse::<Dur>().map_err(|e| format!("{flag}: {e}"));
        let pair = |text: String| -> Result<(Dur, Dur), String> {
            let (long, short) = text.split_once(',').ok_or_else(|| {
                format!("{flag}: write the long window, a comma, the short one: `1h,5m`")
            })?;
            let (long, short) = (duration(long.to_owned())?, duration(short.to_owned())?);
            if short >= long {
                return Err(format!(
                    "{flag}: the short window must be shorter than the long one"
                ));
            }
            Ok((long, short))
        };
        let number = |text: String, low: f64, high: f64| -> Result<f64, String> {
            match text.parse::<f64>() {
                Ok(x) if x > low && x < high => Ok(x),
                _ => Err(format!(
                    "{flag}: `{text}` is not a number between {low} and {high}"
                )),
            }
        };
        match flag.as_str() {
            "--window" => settings.window = duration(value()?)?,
            "--latency-for" => settings.latency_for = duration(value()?)?,
            "--error-for" => settings.error_for = duration(value()?)?,
            "--dependency-for" => settings.dependency_for = duration(value()?)?,
            "--burn-for" => settings.burn_for = duration(value()?)?,
            "--fast-burn" => settings.fast_burn = pair(value()?)?,
            "--slow-burn" => settings.slow_burn = pair(value()?)?,
            "--internal-p99" => settings.internal_p99 = number(value()?, 0.0, f64::INFINITY)?,
            "--error-ratio" => settings.error_ratio = number(value()?, 0.0, 1.0)?,
            "--min-rate" => {
                settings.min_rate = number(value()?, -f64::MIN_POSITIVE, f64::INFINITY)?;
            }
            "--objective" => settings.objective = number(value()?, 0.0, 1.0)?,
            "--objective-le" => {
                settings.objective_threshold = number(value()?, 0.0, f64::INFINITY)?;
            }
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    Ok(Some(settings))
}
