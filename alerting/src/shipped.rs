//! selftime's rules: the shipped file is `shipped(&Settings::default())`,
//! and every window and `for:` in it comes from [`Settings`].

use crate::duration::Dur;
use crate::promql::{
    eq, histogram_quantile, max_by, ne, num, one_of, rate, select, selector, series, sum_by,
    vector, Expr, Matcher, Op,
};
use crate::rules::{Alert, Group, Record, Rule, RuleFile};

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
}

/// The recorded series the alerts read (and dashboards may).
pub mod recorded {
    pub const REQUEST_RATE: &str = "job_handler:selftime_requests:rate";
    pub const ERROR_RATIO: &str = "job_handler:selftime_requests:error_ratio";
    pub const INTERNAL_P50: &str = "job_handler:selftime_internal_seconds:p50";
    pub const INTERNAL_P99: &str = "job_handler:selftime_internal_seconds:p99";
    pub const TOTAL_P99: &str = "job_handler:selftime_total_seconds:p99";
    pub const DEPENDENCY_P99: &str = "job_handler_dependency:selftime_external_seconds:p99";
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

/// How fast the budget may burn over each window pair before the burn
/// alert pages: the SRE workbook's factors for a 30-day objective and the
/// default windows, 2% of the budget in the fast pair's long window (1 h),
/// 5% in the slow pair's (6 h). They do not follow
/// [`Settings::fast_burn`] and [`Settings::slow_burn`]: a factor `f` over a
/// long window `w` pages once `f × w / 30 d` of the budget is spent.
pub const FAST_BURN: f64 = 14.4;
/// See [`FAST_BURN`].
pub const SLOW_BURN: f64 = 6.0;

/// Everything in the rules that a user may want to change: the windows,
/// the `for:` durations, and the default thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The window of every `rate` behind a quantile or a ratio.
    pub window: Dur,
    /// `for:` of `SelftimeInternalLatencyHigh`.
    pub latency_for: Dur,
    /// `for:` of `SelftimeErrorRatioHigh`.
    pub error_for: Dur,
    /// `for:` of `SelftimeDependencyLatencyHigh`.
    pub dependency_for: Dur,
    /// `for:` of `SelftimeInternalLatencyBudgetBurn`.
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

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: Dur::mins(5),
            latency_for: Dur::mins(10),
            error_for: Dur::mins(5),
            dependency_for: Dur::mins(10),
            burn_for: Dur::mins(2),
            fast_burn: (Dur::hours(1), Dur::mins(5)),
            slow_burn: (Dur::hours(6), Dur::mins(30)),
            internal_p99: 0.25,
            error_ratio: 0.05,
            min_rate: 0.1,
            objective: 0.99,
            objective_threshold: 0.25,
        }
    }
}

impl Settings {
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
}

/// An `le` label value: a bucket bound written the way Rust prints it
/// (`0.25`, `0.01`, `10`), which is how `metrics-exporter-prometheus` writes
/// its buckets and how Prometheus 2 stores them. Prometheus 3 stores a
/// whole-number bound with a `.0` (`le="10.0"`), which this does not write.
#[must_use]
pub fn le(seconds: f64) -> String {
    format!("{seconds}")
}

const BY_HANDLER: [&str; 2] = ["job", "handler"];

fn record(name: &str, expr: Expr, comment: &[&str]) -> Rule {
    labelled(name, expr, &[], comment)
}

fn labelled(name: &str, expr: Expr, labels: &[(&str, &str)], comment: &[&str]) -> Rule {
    Rule::Record(Record {
        comment: comment.iter().map(|&l| l.to_owned()).collect(),
        name: name.to_owned(),
        expr,
        labels: labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    })
}

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|&l| l.to_owned()).collect()
}

/// A threshold for every series of `over` (whose labels are `per`), in
/// three tiers, the first that has one:
///
/// ```text
/// 0 * over + on (job, key) group_left (extra) name{job!=""}
/// or on (per…) 0 * over + on (key) group_left (extra) name{job=""}
/// or on (per…) 0 * over + on () group_left (extra) name:default
/// ```
///
/// the one recorded for its job and `key`, else the one recorded for its
/// `key` alone, else the default. Two jobs may share a `key` value (a
/// handler name): each tier holds one threshold per match group, so their
/// thresholds never collide.
fn effective(over: &str, per: &[&str], key: &str, name: &str, extra: &[&str]) -> Expr {
    let zero = || num(0.0).op(Op::Mul, series(over));
    let per_job = zero().op_group_left(
        Op::Add,
        &["job", key],
        extra,
        select(name, &[ne("job", "")]),
    );
    let everywhere = zero().op_group_left(Op::Add, &[key], extra, select(name, &[eq("job", "")]));
    let default = zero().op_group_left(Op::Add, &[], extra, series(&format!("{name}:default")));
    // Matched on the series' own labels: an extra label (`le`) that differs
    // between two tiers must not let a later one in beside an earlier one.
    per_job
        .op_on(Op::Or, per, everywhere)
        .op_on(Op::Or, per, default)
}

const BY_DEPENDENCY: [&str; 3] = ["job", "handler", "dependency"];

/// `… and on (job, handler) rate >= min rate`: no alert on a handful of requests.
fn busy_enough(condition: Expr) -> Expr {
    condition.op_on(
        Op::And,
        &BY_HANDLER,
        series(recorded::REQUEST_RATE).op(Op::Ge, series(recorded::MIN_RATE)),
    )
}

/// `histogram_quantile(q, sum by (by…, le) (rate(metric_bucket{matchers}[window])))`.
fn quantile(q: f64, metric: &str, by: &[&str], window: Dur, matchers: &[Matcher]) -> Expr {
    let mut by = by.to_vec();
    by.push("le");
    histogram_quantile(
        q,
        sum_by(
            &by,
            rate(selector(&format!("{metric}_bucket"), matchers), window),
        ),
    )
}

fn p99(metric: &str, by: &[&str], window: Dur, matchers: &[Matcher]) -> Expr {
    quantile(0.99, metric, by, window, matchers)
}

/// The share of requests within the objective's threshold over `window`;
/// none for a handler whose objective names no bucket (an alert of its own
/// says so).
fn within_objective(window: Dur) -> Expr {
    let count = sum_by(
        &BY_HANDLER,
        rate(
            selector(&format!("{}_count", series_names::INTERNAL), &[]),
            window,
        ),
    );
    let within = sum_by(
        &BY_HANDLER,
        rate(
            selector(&format!("{}_bucket", series_names::INTERNAL), &[]),
            window,
        )
        .op_on(
            Op::And,
            &["job", "handler", "le"],
            series(recorded::OBJECTIVE),
        ),
    );
    within.op(Op::Div, count)
}

/// The burn rate from a share within the objective: the share over it, as
/// a multiple of the share the objective allows.
fn burn(within: &str) -> Expr {
    Expr::Group(Box::new(num(1.0).op(Op::Sub, series(within)))).op_on(
        Op::Div,
        &BY_HANDLER,
        Expr::Group(Box::new(num(1.0).op(Op::Sub, series(recorded::OBJECTIVE)))),
    )
}

/// The rules file selftime ships, for `settings`.
#[must_use]
#[allow(
    clippy::too_many_lines,
    reason = "one rule after another, in file order"
)]
pub fn shipped(settings: &Settings) -> RuleFile {
    let s = settings;
    let thresholds = Group {
        name: "selftime-thresholds".into(),
        comment: lines(&[
            "==========================================================================",
            "THRESHOLDS: the defaults, for every handler.",
            "",
            "Give a handler (or a dependency) its own threshold with a rule of the",
            "same name without `:default`, labelled with its `handler` (or",
            "`dependency`), in a rules file of your own loaded beside this one:",
            "",
            "  - record: selftime:internal_p99_threshold_seconds",
            "    expr: vector(1)",
            "    labels: {handler: export_report}",
            "  - record: selftime:dependency_p99_threshold_seconds",
            "    expr: vector(0.05)",
            "    labels: {dependency: redis}",
            "  - record: selftime:internal_objective",
            "    expr: vector(0.999)",
            "    labels: {handler: checkout, le: \"0.05\"}",
            "",
            "A threshold labelled with `handler` alone holds for that handler in",
            "every job. Two services may share a handler name: label a threshold",
            "with the `job` too, and it holds for that job's handler only, ahead of",
            "one without a `job`. Each job may have its own:",
            "",
            "  - record: selftime:internal_p99_threshold_seconds",
            "    expr: vector(0.05)",
            "    labels: {job: auth, handler: login}",
            "  - record: selftime:internal_p99_threshold_seconds",
            "    expr: vector(1)",
            "    labels: {job: gateway, handler: login}",
            "",
            "Dependencies' thresholds go the same way, by `job` and `dependency`.",
            "",
            "Latency thresholds belong on bucket bounds (selftime::metrics::BUCKETS):",
            "then \"p99 over the threshold\" means exactly \"more than 1% of requests",
            "took longer\", whatever the interpolation within a bucket.",
            "",
            "Dependencies have no default threshold. Set one for each dependency that",
            "does not run selftime itself (a managed Redis, a third-party API): one",
            "that does pages its owners through its own internal-latency alert.",
            "==========================================================================",
        ]),
        rules: vec![
            record(
                &format!("{}:default", thresholds::INTERNAL_P99),
                vector(s.internal_p99),
                &["p99 internal latency above which a handler pages, in seconds."],
            ),
            record(
                &format!("{}:default", thresholds::ERROR_RATIO),
                vector(s.error_ratio),
                &[
                    "Share of requests ending in `error` or `panic` above which a handler",
                    "pages. `cancelled` (a client that hung up, a timeout) does not count.",
                ],
            ),
            record(
                &format!("{}:default", thresholds::MIN_RATE),
                vector(s.min_rate),
                &[
                    "Requests per second below which no alert fires: the p99 or the error",
                    "ratio of a handful of requests is noise.",
                ],
            ),
            labelled(
                &format!("{}:default", thresholds::OBJECTIVE),
                vector(s.objective),
                &[("le", &le(s.objective_threshold))],
                &[
                    "The internal-latency objective of the budget-burn alert: this share of",
                    "requests takes at most `le` seconds of internal time. `le` names a",
                    "bucket bound exactly as Prometheus stores it: Prometheus 2 as the",
                    "exporter writes it (`0.25`, `1`, `2.5`), Prometheus 3 with whole",
                    "numbers as floats (`0.25`, `1.0`, `2.5`). An objective that names no",
                    "bucket cannot be measured: SelftimeObjectiveNamesNoBucket says so.",
                ],
            ),
        ],
    };

    let recording = Group {
        name: "selftime".into(),
        comment: lines(&[
            "Recording rules, then the alerts that read them: one group, evaluated in",
            "order, so that every alert reads this evaluation's figures.",
        ]),
        rules: vec![
            record(
                recorded::REQUEST_RATE,
                sum_by(
                    &BY_HANDLER,
                    rate(selector(series_names::REQUESTS, &[]), s.window),
                ),
                &[],
            ),
            record(
                recorded::ERROR_RATIO,
                Expr::Group(Box::new(
                    sum_by(
                        &BY_HANDLER,
                        rate(
                            selector(
                                series_names::REQUESTS,
                                &[one_of("outcome", &["error", "panic"])],
                            ),
                            s.window,
                        ),
                    )
                    .op(Op::Or, num(0.0).op(Op::Mul, series(recorded::REQUEST_RATE))),
                ))
                .op(Op::Div, series(recorded::REQUEST_RATE)),
                &["0 (not absent) for a handler that has never failed."],
            ),
            record(
                recorded::INTERNAL_P50,
                quantile(0.5, series_names::INTERNAL, &BY_HANDLER, s.window, &[]),
                &[],
            ),
            record(
                recorded::INTERNAL_P99,
                p99(series_names::INTERNAL, &BY_HANDLER, s.window, &[]),
                &[],
            ),
            record(
                recorded::TOTAL_P99,
                p99(series_names::TOTAL, &BY_HANDLER, s.window, &[]),
                &["For dashboards: what the users see, dependencies included."],
            ),
            record(
                recorded::DEPENDENCY_P99,
                p99(
                    series_names::EXTERNAL,
                    &BY_DEPENDENCY,
                    s.window,
                    &[ne("dependency", series_names::ALL_DEPENDENCIES)],
                ),
                &["Each dependency's own busy time per request."],
            ),
            record(
                recorded::INTERNAL_P99_THRESHOLD,
                effective(
                    recorded::REQUEST_RATE,
                    &BY_HANDLER,
                    "handler",
                    thresholds::INTERNAL_P99,
                    &[],
                ),
                &[
                    "Each handler's thresholds: the one recorded for its job and handler,",
                    "else the one recorded for its handler with no `job`, else the default",
                    "(a dependency's: by job and dependency, then dependency alone).",
                ],
            ),
            record(
                recorded::ERROR_RATIO_THRESHOLD,
                effective(
                    recorded::REQUEST_RATE,
                    &BY_HANDLER,
                    "handler",
                    thresholds::ERROR_RATIO,
                    &[],
                ),
                &[],
            ),
            record(
                recorded::MIN_RATE,
                effective(
                    recorded::REQUEST_RATE,
                    &BY_HANDLER,
                    "handler",
                    thresholds::MIN_RATE,
                    &[],
                ),
                &[],
            ),
            record(
                recorded::OBJECTIVE,
                effective(
                    recorded::REQUEST_RATE,
                    &BY_HANDLER,
                    "handler",
                    thresholds::OBJECTIVE,
                    &["le"],
                ),
                &[],
            ),
            record(
                recorded::DEPENDENCY_P99_THRESHOLD,
                effective(
                    recorded::DEPENDENCY_P99,
                    &BY_DEPENDENCY,
                    "dependency",
                    thresholds::DEPENDENCY_P99,
                    &[],
                ),
                &[],
            ),
            record(
                recorded::WITHIN_FAST_LONG,
                within_objective(s.fast_burn.0),
                &[
                    "The share of each handler's requests within its objective, over the",
                    "long and the short window of the fast and the slow burn-rate pair.",
                ],
            ),
            record(
                recorded::WITHIN_FAST_SHORT,
                within_objective(s.fast_burn.1),
                &[],
            ),
            record(
                recorded::WITHIN_SLOW_LONG,
                within_objective(s.slow_burn.0),
                &[],
            ),
            record(
                recorded::WITHIN_SLOW_SHORT,
                within_objective(s.slow_burn.1),
                &[],
            ),
            record(
                recorded::BURN_FAST_LONG,
                burn(recorded::WITHIN_FAST_LONG),
                &[
                    "How fast each handler burns its internal-latency error budget over",
                    "each of those windows: 1 is exactly as fast as the objective allows.",
                ],
            ),
            record(
                recorded::BURN_FAST_SHORT,
                burn(recorded::WITHIN_FAST_SHORT),
                &[],
            ),
            record(
                recorded::BURN_SLOW_LONG,
                burn(recorded::WITHIN_SLOW_LONG),
                &[],
            ),
            record(
                recorded::BURN_SLOW_SHORT,
                burn(recorded::WITHIN_SLOW_SHORT),
                &[],
            ),
        ],
    };

    let page = || vec![("severity".to_owned(), "page".to_owned())];
    let pair = |long: &str, short: &str, factor: f64| {
        Expr::Group(Box::new(
            series(long)
                .op(Op::Gt, num(factor))
                .op(Op::And, series(short).op(Op::Gt, num(factor))),
        ))
    };
    let alerts = Group {
        name: String::new(),
        comment: vec![],
        rules: vec![
            Rule::Alert(Alert {
                comment: vec![],
                name: alerts::INTERNAL_LATENCY.into(),
                expr: busy_enough(
                    series(recorded::INTERNAL_P99).op(Op::Gt, series(recorded::INTERNAL_P99_THRESHOLD)),
                ),
                hold: Some(s.latency_for),
                labels: page(),
                annotations: vec![
                    (
                        "summary".into(),
                        "{{ $labels.job }}/{{ $labels.handler }}: p99 internal latency is {{ $value | humanizeDuration }}".into(),
                    ),
                    (
                        "description".into(),
                        "The 99th percentile of the time {{ $labels.handler }} spends on its own work (total minus the time waiting on dependencies) has stayed over its threshold. Dependencies are not the cause: their time is not counted.".into(),
                    ),
                ],
            }),
            Rule::Alert(Alert {
                comment: lines(&[
                    "The factors are the SRE workbook's for a 30-day objective and the",
                    "generator's default windows: 2% of the budget spent over the fast",
                    "pair's long window, 5% over the slow pair's. They stay the same when",
                    "`--fast-burn` or `--slow-burn` change the windows: a factor F over a",
                    "long window W then pages once F x W / 30 days of the budget is spent.",
                ]),
                name: alerts::BUDGET_BURN.into(),
                expr: busy_enough(max_by(
                    &BY_HANDLER,
                    pair(recorded::BURN_FAST_LONG, recorded::BURN_FAST_SHORT, FAST_BURN).op(
                        Op::Or,
                        pair(recorded::BURN_SLOW_LONG, recorded::BURN_SLOW_SHORT, SLOW_BURN),
                    ),
                )),
                hold: Some(s.burn_for),
                labels: page(),
                annotations: vec![
                    (
                        "summary".into(),
                        "{{ $labels.job }}/{{ $labels.handler }}: the internal-latency error budget burns {{ $value | printf \"%.1f\" }} times too fast".into(),
                    ),
                    (
                        "description".into(),
                        "More of {{ $labels.handler }}'s requests than its objective allows take longer than the objective's threshold in their own work, in both windows of a burn-rate pair. Dependencies are not the cause: their time is not counted.".into(),
                    ),
                ],
            }),
            Rule::Alert(Alert {
                comment: vec![],
                name: alerts::ERROR_RATIO.into(),
                expr: busy_enough(
                    series(recorded::ERROR_RATIO).op(Op::Gt, series(recorded::ERROR_RATIO_THRESHOLD)),
                ),
                hold: Some(s.error_for),
                labels: page(),
                annotations: vec![
                    (
                        "summary".into(),
                        "{{ $labels.job }}/{{ $labels.handler }}: {{ $value | humanizePercentage }} of requests fail".into(),
                    ),
                    (
                        "description".into(),
                        "More of {{ $labels.handler }}'s requests than its threshold allows have ended in an error or a panic (cancelled requests are not counted).".into(),
                    ),
                ],
            }),
            Rule::Alert(Alert {
                comment: lines(&[
                    "Tells a dependency's owner (severity `notify`), pages nobody: the",
                    "handler's own latency is what pages, and a slow dependency leaves it",
                    "unchanged.",
                ]),
                name: alerts::DEPENDENCY_LATENCY.into(),
                expr: busy_enough(
                    series(recorded::DEPENDENCY_P99)
                        .op(Op::Gt, series(recorded::DEPENDENCY_P99_THRESHOLD)),
                ),
                hold: Some(s.dependency_for),
                labels: vec![("severity".to_owned(), "notify".to_owned())],
                annotations: vec![
                    (
                        "summary".into(),
                        "{{ $labels.dependency }} is slow for {{ $labels.job }}/{{ $labels.handler }}: p99 {{ $value | humanizeDuration }}".into(),
                    ),
                    (
                        "description".into(),
                        "Calls from {{ $labels.handler }} to {{ $labels.dependency }} take longer than that dependency's threshold. This is for the dependency's owner; {{ $labels.job }}'s own internal latency does not include it.".into(),
                    ),
                ],
            }),
        ],
    };

    let mut alerts = alerts;
    alerts.rules.push(Rule::Alert(Alert {
        comment: lines(&[
            "A mistake in the thresholds, not an incident (severity `notify`): a",
            "handler's objective names an `le` that none of its buckets has, so its",
            "budget burn cannot be measured and the burn alert stays silent for it.",
        ]),
        name: alerts::OBJECTIVE_NAMES_NO_BUCKET.into(),
        expr: busy_enough(series(recorded::OBJECTIVE).op_on(
            Op::Unless,
            &["job", "handler", "le"],
            series(&format!("{}_bucket", series_names::INTERNAL)),
        )),
        hold: Some(s.burn_for),
        labels: vec![("severity".to_owned(), "notify".to_owned())],
        annotations: vec![
            (
                "summary".into(),
                "{{ $labels.job }}/{{ $labels.handler }}: its objective names le {{ $labels.le }}, which no bucket has".into(),
            ),
            (
                "description".into(),
                "The internal-latency objective of {{ $labels.handler }} counts the requests within the bucket le {{ $labels.le }}, and none of its selftime_internal_seconds buckets has that bound (or it has none: the exporter was given no buckets), so its error budget burn cannot be measured and SelftimeInternalLatencyBudgetBurn stays silent for it. Spell le as Prometheus stores bucket bounds (Prometheus 3 writes whole numbers as 1.0, 5.0, 10.0; Prometheus 2 as the exporter does, 1, 5, 10), on a bound of selftime::metrics::BUCKETS.".into(),
            ),
        ],
    }));

    RuleFile {
        header: lines(&[
            "selftime: Prometheus recording and alerting rules for *internal* latency.",
            "",
            "Page on the time your handlers spend on their own work, not on the time",
            "they wait for dependencies owned by someone else. The series come from",
            "selftime's `metrics` feature:",
            "",
            "  selftime_internal_seconds{handler}             histogram",
            "  selftime_total_seconds{handler}                histogram",
            "  selftime_external_seconds{handler,dependency}  histogram (dependency=\"all\": the union)",
            "  selftime_requests_total{handler,outcome}       counter (ok, error, panic, cancelled)",
            "",
            "The histograms must be exported with buckets: with metrics-exporter-prometheus,",
            "",
            "  PrometheusBuilder::new()",
            "      .set_buckets_for_metric(Matcher::Prefix(\"selftime_\".into()), &selftime::metrics::BUCKETS)?",
            "",
            "Series are aggregated by (job, handler): every instance of a service adds",
            "up, and two services may share a handler name.",
            "",
            "Thresholds: the `selftime-thresholds` group below, or a rules file of your",
            "own loaded beside this one. Windows and `for:` durations: this file is the",
            "output of `cargo run --example rules` in selftime's repository, whose flags",
            "set them all at once (`-- --help` lists them); no rule name or text states one.",
            "Every window should hold at least four scrapes: 4 times the scrape interval.",
            "",
            "Check and test: promtool check rules selftime.rules.yml",
            "                promtool test rules tests/*.test.yml",
        ]),
        groups: vec![thresholds, {
            let mut group = recording;
            group.rules.extend(alerts.rules);
            group
        }],
    }
}

/// Per-handler and per-dependency thresholds, as a rules file of a user's
/// own loaded beside the shipped one.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    rules: Vec<Rule>,
}

impl Overrides {
    fn push(&mut self, name: &str, value: f64, labels: &[(&str, &str)]) -> &mut Self {
        self.rules.push(labelled(name, vector(value), labels, &[]));
        self
    }

    /// `handler`'s p99 internal latency threshold, seconds.
    pub fn internal_p99(&mut self, handler: &str, seconds: f64) -> &mut Self {
        self.push(thresholds::INTERNAL_P99, seconds, &[("handler", handler)])
    }

    /// `handler`'s minimum request rate, per second.
    pub fn min_rate(&mut self, handler: &str, per_second: f64) -> &mut Self {
        self.push(thresholds::MIN_RATE, per_second, &[("handler", handler)])
    }

    /// `handler`'s objective: `share` of requests within `seconds`.
    pub fn objective(&mut self, handler: &str, share: f64, seconds: f64) -> &mut Self {
        self.push(
            thresholds::OBJECTIVE,
            share,
            &[("handler", handler), ("le", &le(seconds))],
        )
    }

    /// `dependency`'s p99 latency threshold, seconds.
    pub fn dependency_p99(&mut self, dependency: &str, seconds: f64) -> &mut Self {
        self.push(
            thresholds::DEPENDENCY_P99,
            seconds,
            &[("dependency", dependency)],
        )
    }

    /// An alert of the user's own, evaluated with the rest.
    pub fn alert(&mut self, alert: Alert) -> &mut Self {
        self.rules.push(Rule::Alert(alert));
        self
    }

    /// The rules file, one group named `group`.
    #[must_use]
    pub fn file(&self, group: &str, header: &[&str]) -> RuleFile {
        RuleFile {
            header: lines(header),
            groups: vec![Group {
                name: group.to_owned(),
                comment: vec![],
                rules: self.rules.clone(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{instant_vector, labels, run_groups, Labels, Storage, NAME};
    use std::collections::BTreeMap;

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
                    let mut l = labels(&[(NAME, name), ("job", job), ("handler", handler)]);
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
        let got: BTreeMap<Labels, f64> = instant_vector(storage, &series(name), t)
            .expect("a vector")
            .into_iter()
            .map(|s| {
                let mut l = s.labels;
                l.remove(NAME);
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
        let mut own = Overrides::default();
        for (value, job) in [(0.05, "auth"), (1.0, "gateway")] {
            let handler = [("job", job), ("handler", "login")];
            own.push(thresholds::INTERNAL_P99, value, &handler);
            own.push(
                thresholds::OBJECTIVE,
                0.9,
                &[handler[0], handler[1], ("le", &le(value))],
            );
            own.push(
                thresholds::DEPENDENCY_P99,
                value,
                &[("job", job), ("dependency", "redis")],
            );
        }
        own.internal_p99("login", 0.1)
            .dependency_p99("redis", 0.1)
            .min_rate("login", 0.5);
        let own = own.file("mine", &[]);
        let shipped = shipped(&Settings::default());
        let groups = [&shipped.groups[0], &own.groups[0], &shipped.groups[1]];
        let end = 10 * 60_000;
        run_groups(&groups, &mut storage, end, 60_000).expect("evaluates");

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
                        (NAME, &format!("{}_bucket", series_names::INTERNAL)),
                        ("job", "shop"),
                        ("handler", handler),
                        ("le", bound),
                    ]);
                    storage.push(&bucket, minute * 60_000, count);
                }
                let total = labels(&[
                    (NAME, &format!("{}_count", series_names::INTERNAL)),
                    ("job", "shop"),
                    ("handler", handler),
                ]);
                storage.push(&total, minute * 60_000, count);
            }
        }
        let mut own = Overrides::default();
        own.objective("export", 0.9, 1.0);
        let own = own.file("mine", &[]);
        let shipped = shipped(&Settings::default());
        let groups = [&shipped.groups[0], &own.groups[0], &shipped.groups[1]];
        let end = 10 * 60_000;
        let timeline = run_groups(&groups, &mut storage, end, 60_000).expect("evaluates");
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
