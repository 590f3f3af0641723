//! The rules file selftime ships, `runtime/alerts/selftime.rules.yml`, and
//! the names in it that are a public contract: the series the rules read,
//! the alerts and the series they record (dashboards and routes use them).
//! A test checks each name against the file.

use crate::rules::{RuleFile, RulesError};

/// `runtime/alerts/selftime.rules.yml`, as it is in the repository.
pub const TEXT: &str = include_str!("../../runtime/alerts/selftime.rules.yml");

/// The file's name in messages.
pub const NAME: &str = "selftime.rules.yml";

/// The shipped rules file, parsed.
///
/// # Errors
///
/// None while the file in the repository is a valid rules file (a test
/// checks it is).
pub fn file() -> Result<RuleFile, RulesError> {
    RuleFile::parse(NAME, TEXT)
}

/// The series selftime's `metrics` feature writes.
pub mod series_names {
    pub const TOTAL: &str = "selftime_total_seconds";
    pub const INTERNAL: &str = "selftime_internal_seconds";
    pub const EXTERNAL: &str = "selftime_external_seconds";
    pub const REQUESTS: &str = "selftime_requests_total";
    /// The `dependency` label value of the union of a request's calls.
    pub const ALL_DEPENDENCIES: &str = "all";
}

/// The alerts, by name.
pub mod alerts {
    pub const INTERNAL_LATENCY: &str = "SelftimeInternalLatencyHigh";
    pub const ERROR_RATIO: &str = "SelftimeErrorRatioHigh";
    pub const BUDGET_BURN: &str = "SelftimeInternalLatencyBudgetBurn";
    pub const DEPENDENCY_LATENCY: &str = "SelftimeDependencyLatencyHigh";
    pub const BETWEEN_LATENCY: &str = "SelftimeBetweenLatencyHigh";
    pub const OBJECTIVE_NAMES_NO_BUCKET: &str = "SelftimeObjectiveNamesNoBucket";
}

/// The threshold series: `:default` in the shipped file, the same name
/// without it in a file of the user's own, labelled with a `handler` (or a
/// `dependency`) for that handler in every job, or with a `job` as well for
/// that job's handler only, which wins.
pub mod thresholds {
    pub const INTERNAL_P99: &str = "selftime:internal_p99_threshold_seconds";
    pub const ERROR_RATIO: &str = "selftime:error_ratio_threshold";
    pub const MIN_RATE: &str = "selftime:min_request_rate";
    pub const OBJECTIVE: &str = "selftime:internal_objective";
    pub const DEPENDENCY_P99: &str = "selftime:dependency_p99_threshold_seconds";
    pub const BETWEEN_P99: &str = "selftime:between_p99_threshold_seconds";
}

/// The recorded series the alerts read (and dashboards may).
pub mod recorded {
    pub const REQUEST_RATE: &str = "job_handler:selftime_requests:rate";
    pub const ERROR_RATIO: &str = "job_handler:selftime_requests:error_ratio";
    pub const INTERNAL_P50: &str = "job_handler:selftime_internal_seconds:p50";
    pub const INTERNAL_P99: &str = "job_handler:selftime_internal_seconds:p99";
    pub const TOTAL_P99: &str = "job_handler:selftime_total_seconds:p99";
    pub const DEPENDENCY_P99: &str = "job_handler_dependency:selftime_external_seconds:p99";
    pub const CALLEE_P99: &str = "job_handler_dependency:selftime_callee_seconds:p99";
    pub const BETWEEN_P99: &str = "job_handler_dependency:selftime_between_seconds:p99";
    pub const BETWEEN_P99_THRESHOLD: &str =
        "job_handler_dependency:selftime_between_p99_threshold_seconds:effective";
    pub const INTERNAL_P99_THRESHOLD: &str =
        "job_handler:selftime_internal_p99_threshold_seconds:effective";
    pub const ERROR_RATIO_THRESHOLD: &str = "job_handler:selftime_error_ratio_threshold:effective";
    pub const MIN_RATE: &str = "job_handler:selftime_min_request_rate:effective";
    pub const DEPENDENCY_P99_THRESHOLD: &str =
        "job_handler_dependency:selftime_external_p99_threshold_seconds:effective";
    pub const OBJECTIVE: &str = "job_handler:selftime_internal_objective:effective";
    pub const WITHIN_FAST_LONG: &str = "job_handler:selftime_internal_within_objective:fast_long";
    pub const WITHIN_FAST_SHORT: &str = "job_handler:selftime_internal_within_objective:fast_short";
    pub const WITHIN_SLOW_LONG: &str = "job_handler:selftime_internal_within_objective:slow_long";
    pub const WITHIN_SLOW_SHORT: &str = "job_handler:selftime_internal_within_objective:slow_short";
    pub const BURN_FAST_LONG: &str = "job_handler:selftime_internal_budget_burn:fast_long";
    pub const BURN_FAST_SHORT: &str = "job_handler:selftime_internal_budget_burn:fast_short";
    pub const BURN_SLOW_LONG: &str = "job_handler:selftime_internal_budget_burn:slow_long";
    pub const BURN_SLOW_SHORT: &str = "job_handler:selftime_internal_budget_burn:slow_short";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Labels, NAME as METRIC, Storage, instant_vector, labels, run_groups};
    use crate::rules::{Group, Kind};
    use std::collections::BTreeMap;

    #[test]
    fn every_public_name_is_in_the_file_and_every_alert_routes_by_job_and_handler() {
        let file = file().expect("the shipped file parses");
        for alert in [
            alerts::INTERNAL_LATENCY,
            alerts::ERROR_RATIO,
            alerts::BUDGET_BURN,
            alerts::DEPENDENCY_LATENCY,
            alerts::OBJECTIVE_NAMES_NO_BUCKET,
        ] {
            let rule = file
                .rule(alert)
                .unwrap_or_else(|| panic!("no alert {alert}"));
            assert_eq!(rule.kind, Kind::Alert);
        }
        for name in [
            recorded::REQUEST_RATE,
            recorded::ERROR_RATIO,
            recorded::INTERNAL_P50,
            recorded::INTERNAL_P99,
            recorded::TOTAL_P99,
            recorded::DEPENDENCY_P99,
            recorded::INTERNAL_P99_THRESHOLD,
            recorded::ERROR_RATIO_THRESHOLD,
            recorded::MIN_RATE,
            recorded::DEPENDENCY_P99_THRESHOLD,
            recorded::OBJECTIVE,
            recorded::WITHIN_FAST_LONG,
            recorded::WITHIN_FAST_SHORT,
            recorded::WITHIN_SLOW_LONG,
            recorded::WITHIN_SLOW_SHORT,
            recorded::BURN_FAST_LONG,
            recorded::BURN_FAST_SHORT,
            recorded::BURN_SLOW_LONG,
            recorded::BURN_SLOW_SHORT,
        ] {
            let rule = file
                .rule(name)
                .unwrap_or_else(|| panic!("no record {name}"));
            assert_eq!(rule.kind, Kind::Record);
        }
        for name in [
            thresholds::INTERNAL_P99,
            thresholds::ERROR_RATIO,
            thresholds::MIN_RATE,
            thresholds::OBJECTIVE,
        ] {
            assert!(file.rule(&format!("{name}:default")).is_some(), "{name}");
        }
        for series in [
            series_names::TOTAL,
            series_names::INTERNAL,
            series_names::EXTERNAL,
            series_names::REQUESTS,
            thresholds::DEPENDENCY_P99,
        ] {
            assert!(TEXT.contains(series), "{series}");
        }
    }

    /// (job, handler, other labels, value).
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], f64);

    /// Ten minutes of one request a second to each (job, handler), each
    /// calling redis.
    fn traffic(calls: &[(&str, &str)]) -> Storage {
        let mut storage = Storage::default();
        for minute in 0..=10 {
            let t = minute * 60_000;
            #[allow(clippy::cast_precision_loss, reason = "a few minutes")]
            let count = (minute * 60) as f64;
            for &(job, handler) in calls {
                let series = |name: &str, extra: &[(&str, &str)]| {
                    let mut l = labels(&[(METRIC, name), ("job", job), ("handler", handler)]);
                    l.extend(labels(extra));
                    l
                };
                let ok = series(series_names::REQUESTS, &[("outcome", "ok")]);
                storage.push(&ok, t, count);
                for le in ["0.025", "0.1", "+Inf"] {
                    let bucket = series(
                        &format!("{}_bucket", series_names::EXTERNAL),
                        &[("dependency", "redis"), ("le", le)],
                    );
                    storage.push(&bucket, t, if le == "0.025" { 0.0 } else { count });
                }
            }
        }
        storage
    }

    /// `name`'s series at `t`, without the name, against `rows`.
    fn check(storage: &Storage, t: i64, name: &str, rows: &[Row<'_>]) {
        let expr = promql_parser::parser::parse(name).expect("a series name");
        let got: BTreeMap<Labels, f64> = instant_vector(storage, &expr, t)
            .expect("a vector")
            .into_iter()
            .map(|s| {
                let mut l = s.labels;
                l.remove(METRIC);
                (l, s.value)
            })
            .collect();
        let expected: BTreeMap<Labels, f64> = rows
            .iter()
            .map(|&(job, handler, extra, value)| {
                let mut l = labels(&[("job", job), ("handler", handler)]);
                l.extend(labels(extra));
                (l, value)
            })
            .collect();
        assert_eq!(got, expected, "{name}");
    }

    /// The shipped file's groups with `own` between them, as Prometheus
    /// is told to run them: thresholds, the user's, then selftime's.
    fn with_own<'a>(shipped: &'a RuleFile, own: &'a RuleFile) -> Vec<&'a Group> {
        let mut groups: Vec<&Group> = shipped.groups().iter().take(1).collect();
        groups.extend(own.groups());
        groups.extend(shipped.groups().iter().skip(1));
        groups
    }

    /// The three tiers of a threshold, run by the built-in evaluator: two
    /// jobs' thresholds for one handler name (and one dependency) each hold
    /// for their own job, one without a `job` for the other jobs, the
    /// default for the rest; none collides with another.
    #[test]
    fn thresholds_keyed_by_job_win_over_those_by_handler_alone() {
        let mut storage = traffic(&[
            ("auth", "login"),
            ("gateway", "login"),
            ("legacy", "login"),
            ("gateway", "home"),
        ]);
        let own = RuleFile::parse(
            "thresholds_by_job.rules.yml",
            include_str!("../testdata/thresholds_by_job.rules.yml"),
        )
        .expect("parses");
        let shipped = file().expect("parses");
        let end = 10 * 60_000;
        run_groups(&with_own(&shipped, &own), &mut storage, end, 60_000).expect("evaluates");

        check(
            &storage,
            end,
            recorded::INTERNAL_P99_THRESHOLD,
            &[
                ("auth", "login", &[], 0.05),
                ("gateway", "login", &[], 1.0),
                ("legacy", "login", &[], 0.1),
                ("gateway", "home", &[], 0.25),
            ],
        );
        check(
            &storage,
            end,
            recorded::OBJECTIVE,
            &[
                ("auth", "login", &[("le", "0.05")], 0.9),
                ("gateway", "login", &[("le", "1")], 0.9),
                ("legacy", "login", &[("le", "0.25")], 0.99),
                ("gateway", "home", &[("le", "0.25")], 0.99),
            ],
        );
        check(
            &storage,
            end,
            recorded::MIN_RATE,
            &[
                ("auth", "login", &[], 0.5),
                ("gateway", "login", &[], 0.5),
                ("legacy", "login", &[], 0.5),
                ("gateway", "home", &[], 0.1),
            ],
        );
        let redis: &[(&str, &str)] = &[("dependency", "redis")];
        check(
            &storage,
            end,
            recorded::DEPENDENCY_P99_THRESHOLD,
            &[
                ("auth", "login", redis, 0.05),
                ("gateway", "login", redis, 1.0),
                ("legacy", "login", redis, 0.1),
                ("gateway", "home", redis, 1.0),
            ],
        );
    }

    /// The built-in evaluator finds the objective that names no bucket, and
    /// measures no burn for it: `search` has the default's 0.25 s bucket,
    /// `export` only `le="1.0"` (Prometheus 3's spelling), not the `1` its
    /// objective names.
    #[test]
    fn an_objective_that_names_no_bucket_notifies_and_burns_nothing() {
        let mut storage = traffic(&[("shop", "search"), ("shop", "export")]);
        for minute in 0..=10 {
            #[allow(clippy::cast_precision_loss, reason = "a few minutes")]
            let count = (minute * 60) as f64;
            for (handler, le) in [("search", "0.25"), ("export", "1.0")] {
                for bound in [le, "+Inf"] {
                    let bucket = labels(&[
                        (METRIC, &format!("{}_bucket", series_names::INTERNAL)),
                        ("job", "shop"),
                        ("handler", handler),
                        ("le", bound),
                    ]);
                    storage.push(&bucket, minute * 60_000, count);
                }
                let total = labels(&[
                    (METRIC, &format!("{}_count", series_names::INTERNAL)),
                    ("job", "shop"),
                    ("handler", handler),
                ]);
                storage.push(&total, minute * 60_000, count);
            }
        }
        let own = RuleFile::parse(
            "objective_le_1.rules.yml",
            include_str!("../testdata/objective_le_1.rules.yml"),
        )
        .expect("parses");
        let shipped = file().expect("parses");
        let end = 10 * 60_000;
        let timeline =
            run_groups(&with_own(&shipped, &own), &mut storage, end, 60_000).expect("evaluates");
        let fired: Vec<(String, Labels)> = timeline
            .fired_between(end, end)
            .into_keys()
            .map(|id| (id.alert, id.labels))
            .collect();
        assert_eq!(
            fired,
            [(
                alerts::OBJECTIVE_NAMES_NO_BUCKET.to_owned(),
                labels(&[
                    ("handler", "export"),
                    ("job", "shop"),
                    ("le", "1"),
                    ("severity", "notify")
                ])
            )]
        );
        check(
            &storage,
            end,
            recorded::BURN_FAST_SHORT,
            &[("shop", "search", &[], 0.0)],
        );
    }
}
