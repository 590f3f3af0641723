//! What the rules generator's flags set in the shipped rules file, read
//! from the file and written back into it where it stands.
//!
//! Each setting has its places, found by rule names, never by a value:
//!
//! - the fast and slow burn-rate windows: the range of every recording rule
//!   whose name ends in `:fast_long`, `:fast_short`, `:slow_long` or
//!   `:slow_short`;
//! - the window: every other range in the file;
//! - the `for:` of `SelftimeErrorRatioHigh`, of
//!   `SelftimeDependencyLatencyHigh`, and of the burn alerts
//!   (`SelftimeInternalLatencyBudgetBurn`, `SelftimeObjectiveNamesNoBucket`);
//!   the latency `for:` is that of every other alert
//!   (`SelftimeInternalLatencyHigh` and any alert added beside it) that
//!   has one;
//! - the default thresholds: the `vector(x)` of each `…:default` rule, and
//!   the `le` label of `selftime:internal_objective:default`.
//!
//! All the places of one setting must agree: a file whose windows differ
//! from one another has no single window to read.

use crate::duration::Dur;
use crate::rules::{Edit, Kind, RuleFile, RulesError};
use crate::shipped::{alerts, thresholds};
use std::time::Duration;

/// Everything in the rules that a user may want to change at once: the
/// windows, the `for:` durations and the default thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The window of every `rate` behind a quantile or a ratio.
    pub window: Dur,
    /// `for:` of `SelftimeInternalLatencyHigh` (and any alert no other
    /// setting names).
    pub latency_for: Dur,
    /// `for:` of `SelftimeErrorRatioHigh`.
    pub error_for: Dur,
    /// `for:` of `SelftimeDependencyLatencyHigh`.
    pub dependency_for: Dur,
    /// `for:` of `SelftimeInternalLatencyBudgetBurn` and
    /// `SelftimeObjectiveNamesNoBucket`.
    pub burn_for: Dur,
    /// The fast burn-rate pair: (long, short) windows.
    pub fast_burn: (Dur, Dur),
    /// The slow burn-rate pair: (long, short) windows.
    pub slow_burn: (Dur, Dur),
    /// Default p99 internal latency above which a handler pages, seconds.
    pub internal_p99: f64,
    /// Default share of `error` and `panic` outcomes above which a handler pages.
    pub error_ratio: f64,
    /// Requests per second below which no alert fires.
    pub min_rate: f64,
    /// Default objective: this share of requests...
    pub objective: f64,
    /// ...takes at most this much internal time, seconds (a bucket bound).
    pub objective_threshold: f64,
}

/// The alerts whose `for:` is the error ratio's, the dependency's, the
/// burn's; every other alert's is the latency one.
const ERROR_FOR: &[&str] = &[alerts::ERROR_RATIO];
const DEPENDENCY_FOR: &[&str] = &[alerts::DEPENDENCY_LATENCY, alerts::BETWEEN_LATENCY];
const BURN_FOR: &[&str] = &[alerts::BUDGET_BURN, alerts::OBJECTIVE_NAMES_NO_BUCKET];

/// The suffixes of the burn-rate recording rules, in the order of
/// (fast long, fast short, slow long, slow short).
const BURN_WINDOWS: [&str; 4] = [":fast_long", ":fast_short", ":slow_long", ":slow_short"];

/// One setting's value at each of its places: (where in the text, the
/// value there, the rule's name).
type Places<T> = Vec<((usize, usize), T, String)>;

/// Every place of every setting in `file`.
struct Found {
    window: Places<Dur>,
    burn: [Places<Dur>; 4],
    latency_for: Places<Dur>,
    error_for: Places<Dur>,
    dependency_for: Places<Dur>,
    burn_for: Places<Dur>,
    /// internal p99, error ratio, min rate, objective.
    numbers: [Places<f64>; 4],
    objective_le: Places<f64>,
}

fn dur(file: &RuleFile, rule: &str, range: Duration) -> Result<Dur, RulesError> {
    if range.subsec_nanos() != 0 {
        return Err(file.error(
            0,
            format!("{rule}: a range of a fraction of a second is no window the generator sets"),
        ));
    }
    Ok(Dur::secs(range.as_secs()))
}

fn find(file: &RuleFile) -> Result<Found, RulesError> {
    let mut found = Found {
        window: Vec::new(),
        burn: Default::default(),
        latency_for: Vec::new(),
        error_for: Vec::new(),
        dependency_for: Vec::new(),
        burn_for: Vec::new(),
        numbers: Default::default(),
        objective_le: Vec::new(),
    };
    let defaults = [
        thresholds::INTERNAL_P99,
        thresholds::ERROR_RATIO,
        thresholds::MIN_RATE,
        thresholds::OBJECTIVE,
    ];
    for rule in file.rules() {
        let burn = BURN_WINDOWS
            .iter()
            .position(|suffix| rule.kind == Kind::Record && rule.name.ends_with(suffix));
        for (range, at) in rule.ranges(file)? {
            let value = dur(file, &rule.name, range)?;
            let places = match burn {
                Some(i) => &mut found.burn[i],
                None => &mut found.window,
            };
            places.push((at, value, rule.name.clone()));
        }
        if rule.kind == Kind::Alert {
            let name = rule.name.as_str();
            let places = if ERROR_FOR.contains(&name) {
                &mut found.error_for
            } else if DEPENDENCY_FOR.contains(&name) {
                &mut found.dependency_for
            } else if BURN_FOR.contains(&name) {
                &mut found.burn_for
            } else {
                &mut found.latency_for
            };
            // An alert without `for:` fires at once: it has nothing to set.
            if let (Some(hold), Some(at)) = (rule.hold, rule.hold_bytes()) {
                places.push((at, hold, rule.name.clone()));
            }
        }
        if let Some(i) = defaults
            .iter()
            .position(|d| rule.name.strip_suffix(":default") == Some(*d))
        {
            let (value, at) = rule.vector_number(file)?;
            found.numbers[i].push((at, value, rule.name.clone()));
            if defaults[i] == thresholds::OBJECTIVE {
                let (scalar, le) = rule.label_place("le").ok_or_else(|| {
                    file.error(rule.line(), format!("{}: no `le` label", rule.name))
                })?;
                let value: f64 = le.parse().map_err(|_| {
                    file.error(
                        scalar.at.line + 1,
                        format!("{}: `le: {le}` is not a number", rule.name),
                    )
                })?;
                found
                    .objective_le
                    .push((scalar.bytes, value, rule.name.clone()));
            }
        }
    }
    Ok(found)
}

/// The one value all of a setting's places hold.
fn one<T: PartialEq + Copy + std::fmt::Debug>(
    file: &RuleFile,
    what: &str,
    places: &Places<T>,
) -> Result<T, RulesError> {
    let Some((_, first, first_rule)) = places.first() else {
        return Err(file.error(0, format!("nothing in the file holds the {what}")));
    };
    for (_, value, rule) in places {
        if value != first {
            return Err(file.error(
                0,
                format!(
                    "the {what} differs between {first_rule} ({first:?}) and {rule} ({value:?}): \
                     the generator sets one value for them all"
                ),
            ));
        }
    }
    Ok(*first)
}

impl Settings {
    /// The settings `file` holds.
    ///
    /// # Errors
    ///
    /// A setting with no place in the file, or places that disagree.
    pub fn of(file: &RuleFile) -> Result<Self, RulesError> {
        let found = find(file)?;
        let d = |what: &str, places: &Places<Dur>| one(file, what, places);
        let x = |what: &str, places: &Places<f64>| one(file, what, places);
        Ok(Self {
            window: d("window", &found.window)?,
            latency_for: d("latency alerts' `for:`", &found.latency_for)?,
            error_for: d("error ratio alert's `for:`", &found.error_for)?,
            dependency_for: d("dependency alert's `for:`", &found.dependency_for)?,
            burn_for: d("burn alerts' `for:`", &found.burn_for)?,
            fast_burn: (
                d("fast burn's long window", &found.burn[0])?,
                d("fast burn's short window", &found.burn[1])?,
            ),
            slow_burn: (
                d("slow burn's long window", &found.burn[2])?,
                d("slow burn's short window", &found.burn[3])?,
            ),
            internal_p99: x("default p99 threshold", &found.numbers[0])?,
            error_ratio: x("default error ratio threshold", &found.numbers[1])?,
            min_rate: x("default minimum request rate", &found.numbers[2])?,
            objective: x("default objective", &found.numbers[3])?,
            objective_threshold: x("default objective's `le`", &found.objective_le)?,
        })
    }

    /// The settings of the shipped rules file.
    ///
    /// # Errors
    ///
    /// None while the shipped file is valid (a test checks it is).
    pub fn shipped() -> Result<Self, RulesError> {
        Self::of(&crate::shipped::file()?)
    }

    /// The longest time any alert can go on firing after its cause is gone:
    /// the longest window a firing condition reads. A demo that wants each
    /// incident resolved before the next waits this long between them.
    #[must_use]
    pub fn longest_memory(&self) -> Dur {
        // The burn alert needs both windows of a pair: it clears when the
        // short one does.
        [self.window, self.fast_burn.1, self.slow_burn.1]
            .into_iter()
            .max()
            .unwrap_or(self.window)
    }

    /// `file`'s text with these settings written in: each place whose
    /// value differs rewritten where it stands (a range, a `for:`, a
    /// number, an `le`), every other byte as it was.
    ///
    /// # Errors
    ///
    /// What [`Settings::of`] refuses in `file`, or an edit whose result
    /// would not read back as these settings.
    pub fn write_into(&self, file: &RuleFile) -> Result<String, RulesError> {
        let found = find(file)?;
        let mut edits = Vec::new();
        let mut durations = |places: &Places<Dur>, to: Dur| {
            for (at, value, _) in places {
                if *value != to {
                    edits.push(Edit {
                        bytes: *at,
                        text: to.to_string(),
                    });
                }
            }
        };
        durations(&found.window, self.window);
        durations(&found.burn[0], self.fast_burn.0);
        durations(&found.burn[1], self.fast_burn.1);
        durations(&found.burn[2], self.slow_burn.0);
        durations(&found.burn[3], self.slow_burn.1);
        durations(&found.latency_for, self.latency_for);
        durations(&found.error_for, self.error_for);
        durations(&found.dependency_for, self.dependency_for);
        durations(&found.burn_for, self.burn_for);
        let numbers = [
            (&found.numbers[0], self.internal_p99),
            (&found.numbers[1], self.error_ratio),
            (&found.numbers[2], self.min_rate),
            (&found.numbers[3], self.objective),
            (&found.objective_le, self.objective_threshold),
        ];
        for (places, to) in numbers {
            if !to.is_finite() {
                return Err(file.error(0, format!("{to} is not a threshold")));
            }
            for (at, value, _) in places {
                #[allow(clippy::float_cmp, reason = "rewritten only when it changes")]
                if *value != to {
                    // Rust's shortest round-trip spelling, which PromQL
                    // and Go read back exactly.
                    edits.push(Edit {
                        bytes: *at,
                        text: format!("{to}"),
                    });
                }
            }
        }
        let text = file.edited(edits)?;
        let written = RuleFile::parse(file.name(), &text)?;
        let names = |f: &RuleFile| f.rules().map(|r| r.name.clone()).collect::<Vec<_>>();
        if Self::of(&written)? != *self || names(&written) != names(file) {
            return Err(file.error(
                0,
                "the edited file does not read back as the settings asked for".into(),
            ));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_holds_one_value_for_each_setting() {
        let settings = Settings::shipped().expect("the shipped file's settings");
        assert_eq!(settings.window, Dur::mins(5));
        assert_eq!(settings.fast_burn, (Dur::hours(1), Dur::mins(5)));
        assert_eq!(settings.slow_burn, (Dur::hours(6), Dur::mins(30)));
        assert_eq!(
            (
                settings.latency_for,
                settings.error_for,
                settings.dependency_for,
                settings.burn_for
            ),
            (Dur::mins(10), Dur::mins(5), Dur::mins(10), Dur::mins(2))
        );
        assert_eq!(settings.longest_memory(), Dur::mins(30));
        let file = crate::shipped::file().expect("parses");
        assert_eq!(
            settings.write_into(&file).expect("unchanged"),
            crate::shipped::TEXT,
            "unchanged settings change no byte"
        );
    }

    /// An alert added to the file, YAML only, follows the window and the
    /// latency `for:` like the rest; the time-between alert follows the
    /// dependency's `for:`.
    #[test]
    fn an_added_alert_follows_the_flags() {
        let added = format!(
            "{}\n      - alert: MyQueueLatencyHigh\n        expr: |\n          \
             histogram_quantile(0.99, sum by (job, handler, le) (rate(my_queue_seconds_bucket[5m])))\n          \
             > 1\n        for: 10m\n        labels:\n          severity: notify\n",
            crate::shipped::TEXT.trim_end()
        );
        let file = RuleFile::parse("f", &added).expect("parses");
        let mut settings = Settings::of(&file).expect("one value for each setting");
        settings.window = Dur::mins(2);
        settings.latency_for = Dur::mins(7);
        let text = settings.write_into(&file).expect("rewrites");
        let alert = &text[text.find("MyQueueLatencyHigh").expect("the alert")..];
        assert!(
            alert.contains("bucket[2m]") && alert.contains("for: 7m"),
            "{alert}"
        );
        let mut settings = Settings::shipped().expect("the shipped settings");
        settings.dependency_for = Dur::mins(3);
        let text = settings.write_into(&file).expect("rewrites");
        for alert in [
            "SelftimeDependencyLatencyHigh",
            "SelftimeBetweenLatencyHigh",
        ] {
            let rule = &text[text.find(&format!("alert: {alert}")).expect("the alert")..];
            let rule = &rule[..rule.find("annotations:").expect("annotations")];
            assert!(rule.contains("for: 3m"), "{rule}");
        }
    }

    #[test]
    fn places_that_disagree_are_refused() {
        let text = crate::shipped::TEXT.replacen("[5m]", "[7m]", 1);
        let file = RuleFile::parse("f", &text).expect("parses");
        let error = Settings::of(&file).unwrap_err().to_string();
        assert!(error.contains("the window differs between"), "{error}");
    }
}
