//! # The rules generator
//!
//! ```text
//! cargo run --example rules                       # the shipped file, as it is
//! cargo run --example rules -- --window 2m --latency-for 5m > my.rules.yml
//! ```
//!
//! Prints selftime's Prometheus rules (`runtime/alerts/selftime.rules.yml`)
//! with the windows, `for:` durations and default thresholds the flags
//! give. It reads the shipped file and rewrites only what the flags name,
//! where it stands (a range, a `for:`, a number); without flags the output
//! is the shipped file byte for byte (a test checks it). Which rules each
//! flag reaches is `selftime_alerting::settings`'s to say.

use selftime_alerting::duration::Dur;
use selftime_alerting::settings::Settings;
use selftime_alerting::shipped;
use std::process::ExitCode;

/// The help; the defaults it names are the shipped file's (a test checks).
pub(crate) const USAGE: &str = "\
usage: cargo run --example rules -- [options] > selftime.rules.yml

Prints selftime's Prometheus rules. Without options: the shipped file.

windows and `for:` durations (30s, 5m, 1h30m, 6h, ...):
  --window D            window of every rate behind a quantile or a ratio (5m),
                        at least 4 times the scrape interval
  --latency-for D       for: of SelftimeInternalLatencyHigh, and of any alert
                        no other flag names (10m)
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
        Ok(Some(flags)) => match generate(&flags) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
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

/// What the flags set; `None` where they leave the shipped file's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Flags {
    pub(crate) window: Option<Dur>,
    pub(crate) latency_for: Option<Dur>,
    pub(crate) error_for: Option<Dur>,
    pub(crate) dependency_for: Option<Dur>,
    pub(crate) burn_for: Option<Dur>,
    pub(crate) fast_burn: Option<(Dur, Dur)>,
    pub(crate) slow_burn: Option<(Dur, Dur)>,
    pub(crate) internal_p99: Option<f64>,
    pub(crate) error_ratio: Option<f64>,
    pub(crate) min_rate: Option<f64>,
    pub(crate) objective: Option<f64>,
    pub(crate) objective_threshold: Option<f64>,
}

impl Flags {
    /// `settings` with what the flags set.
    pub(crate) fn apply(&self, settings: &Settings) -> Settings {
        let mut s = settings.clone();
        let set = |to: &mut Dur, from: Option<Dur>| *to = from.unwrap_or(*to);
        set(&mut s.window, self.window);
        set(&mut s.latency_for, self.latency_for);
        set(&mut s.error_for, self.error_for);
        set(&mut s.dependency_for, self.dependency_for);
        set(&mut s.burn_for, self.burn_for);
        s.fast_burn = self.fast_burn.unwrap_or(s.fast_burn);
        s.slow_burn = self.slow_burn.unwrap_or(s.slow_burn);
        let set = |to: &mut f64, from: Option<f64>| *to = from.unwrap_or(*to);
        set(&mut s.internal_p99, self.internal_p99);
        set(&mut s.error_ratio, self.error_ratio);
        set(&mut s.min_rate, self.min_rate);
        set(&mut s.objective, self.objective);
        set(&mut s.objective_threshold, self.objective_threshold);
        s
    }
}

/// The shipped file with what `flags` set written in.
pub(crate) fn generate(flags: &Flags) -> Result<String, String> {
    let file = shipped::file().map_err(|e| e.to_string())?;
    let settings = Settings::of(&file).map_err(|e| e.to_string())?;
    flags
        .apply(&settings)
        .write_into(&file)
        .map_err(|e| e.to_string())
}

/// What the arguments set; `None` for `--help`.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Flags>, String> {
    let mut flags = Flags::default();
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
            "--window" => flags.window = Some(duration(value()?)?),
            "--latency-for" => flags.latency_for = Some(duration(value()?)?),
            "--error-for" => flags.error_for = Some(duration(value()?)?),
            "--dependency-for" => flags.dependency_for = Some(duration(value()?)?),
            "--burn-for" => flags.burn_for = Some(duration(value()?)?),
            "--fast-burn" => flags.fast_burn = Some(pair(value()?)?),
            "--slow-burn" => flags.slow_burn = Some(pair(value()?)?),
            "--internal-p99" => flags.internal_p99 = Some(number(value()?, 0.0, f64::INFINITY)?),
            "--error-ratio" => flags.error_ratio = Some(number(value()?, 0.0, 1.0)?),
            "--min-rate" => {
                flags.min_rate = Some(number(value()?, -f64::MIN_POSITIVE, f64::INFINITY)?);
            }
            "--objective" => flags.objective = Some(number(value()?, 0.0, 1.0)?),
            "--objective-le" => {
                flags.objective_threshold = Some(number(value()?, 0.0, f64::INFINITY)?);
            }
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    Ok(Some(flags))
}
