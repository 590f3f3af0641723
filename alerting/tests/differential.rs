//! The built-in evaluator against Prometheus's engine: random scenarios
//! (jobs, handlers and dependencies; histograms whose bucket bounds are
//! spelled `0.1`, `0.10` or `1e-1`; counter resets; missed scrapes;
//! instances that start late or stop; thresholds keyed by job and handler,
//! and a thresholds file beside the shipped rules), each evaluated by the
//! built-in evaluator and by `promtool test rules` (the comparison was
//! made against promtool 2.42.0, Debian 12's). At every evaluation step,
//! every recorded series (and threshold input) must have the same value,
//! to a relative 1e-9, and every alert the same state, pending or firing.
//!
//! promtool reads each recorded value through an expression test that
//! expects nothing: its failure report lists what the engine found. The
//! scenarios go in a few test files, one promtool run each, run side by
//! side.
//!
//! A failing scenario is printed as a ready-to-run promtool test file
//! expecting the built-in evaluator's figures (and written beside the
//! batch files). It needs promtool, so it is ignored by default, as the
//! repository's other promtool tests are; CI installs promtool and runs it
//! (`--include-ignored`), and run without promtool it fails and says so.
//!
//! `SELFTIME_DIFFERENTIAL_SEED` replays another seed.

use selftime_alerting::eval::{self, Labels, NAME, Storage, instant_vector};
use selftime_alerting::promtool::{self, millis, number, series_notation, single_quoted};
use selftime_alerting::rules::{Group, RuleFile};
use selftime_alerting::shipped;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Scenarios in all, and the promtool runs (test files) they go in.
const SCENARIOS: usize = 240;
const BATCHES: usize = 4;
const SEED: u64 = 0x5e1f_71e5_d1ff_0001;

/// Rule time: one evaluation a minute.
const STEP_MS: i64 = 60_000;

/// What the comparison reads at each step: every recorded series, every
/// threshold (recorded or input), and the alerts.
const SELECTOR: &str = "ALERTS|job_handler(_dependency)?:.+|selftime:.+";

/// xorshift64*: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n`.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        #[allow(clippy::cast_precision_loss, reason = "a uniform draw")]
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        u < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bucket bounds, seconds, and the other spellings Prometheus may store
/// them under (`le` is a string: `0.1` and `0.10` are two series).
const BOUNDS: [(f64, &[&str]); 9] = [
    (0.005, &["0.005", "5e-3", "0.0050"]),
    (0.01, &["0.01", "0.010", "1e-2"]),
    (0.025, &["0.025", "0.0250", "2.5e-2"]),
    (0.05, &["0.05", "0.050", "5e-2"]),
    (0.1, &["0.1", "0.10", "1e-1"]),
    (0.25, &["0.25", "0.250", "2.5e-1"]),
    (0.5, &["0.5", "0.50", "5e-1"]),
    (1.0, &["1", "1.0", "1e0"]),
    (2.5, &["2.5", "2.50", "25e-1"]),
];

const JOBS: [&str; 3] = ["auth", "gateway", "shop"];
/// The demo's handler names among them, so that the demo's thresholds file
/// applies.
const HANDLERS: [&str; 5] = [
    "login",
    "home",
    "GET /login/{token}",
    "GET /members/{user}",
    "GET /a/{id}",
];
const DEPENDENCIES: [&str; 3] = ["redis", "billing", "session_store"];

/// One input series: its labels and its value at each scrape (`None`: no
/// sample; `Some(None)`: a staleness marker).
type Input = (Labels, Vec<Option<Option<f64>>>);

/// A scenario: its input series, scraped every `scrape_ms`, evaluated for
/// `minutes` minutes.
struct Scenario {
    index: usize,
    scrape_ms: i64,
    minutes: i64,
    inputs: Vec<Input>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A histogram's cumulative bucket counts and its count, one instance.
struct Histogram {
    name: &'static str,
    extra: Vec<(String, String)>,
    /// (bound index, `le` spelling).
    buckets: Vec<(usize, String)>,
    /// Cumulative counts per bucket (the last is `+Inf`), and `_count`.
    counts: Vec<f64>,
    count: f64,
    /// Where observations fall, a bound index (or past the last).
    level: usize,
}

impl Histogram {
    fn observe(&mut self, rng: &mut Rng, n: usize) {
        for _ in 0..n {
            // Around the level: a bucket below, at or above it.
            let spread = [0usize, 1, 1, 1, 2];
            let at = (self.level + rng.pick(&spread)).saturating_sub(1);
            for (i, (bound, _)) in self.buckets.iter().enumerate() {
                if *bound >= at {
                    self.counts[i] += 1.0;
                }
            }
            *self.counts.last_mut().expect("+Inf") += 1.0;
            self.count += 1.0;
        }
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0.0);
        self.count = 0.0;
    }
}

#[allow(clippy::too_many_lines, reason = "one scenario's series, in order")]
fn scenario(index: usize, rng: &mut Rng) -> Scenario {
    let scrape_ms = *rng.pick(&[15_000, 30_000, 60_000]);
    let minutes = 20 + i64::try_from(rng.below(21)).unwrap_or(0);
    let scrapes = usize::try_from(minutes * STEP_MS / scrape_ms).unwrap_or(0) + 1;
    let mut inputs: Vec<Input> = Vec::new();
    let jobs: Vec<&str> = {
        let n = 1 + rng.below(2);
        let mut jobs: Vec<&str> = JOBS.to_vec();
        jobs.truncate(3);
        let start = rng.below(3);
        (0..n).map(|i| jobs[(start + i) % 3]).collect()
    };
    // Which bounds this scenario's exporters use, and how they spell them.
    let first = rng.below(3);
    let bounds: Vec<usize> = (first..BOUNDS.len()).filter(|_| rng.chance(0.7)).collect();
    let bounds = if bounds.is_empty() { vec![4] } else { bounds };
    for &job in &jobs {
        let handlers: Vec<&str> = {
            let n = 1 + rng.below(2);
            let start = rng.below(HANDLERS.len());
            (0..n)
                .map(|i| HANDLERS[(start + i) % HANDLERS.len()])
                .collect()
        };
        for &handler in &handlers {
            let dependencies: Vec<&str> = DEPENDENCIES
                .iter()
                .copied()
                .filter(|_| rng.chance(0.35))
                .collect();
            let instances = 1 + rng.below(2);
            for instance in 0..instances {
                let instance = format!("i{instance}");
                let base = |name: &str| {
                    labels(&[
                        (NAME, name),
                        ("job", job),
                        ("handler", handler),
                        ("instance", &instance),
                    ])
                };
                let spelling: Vec<(usize, String)> = bounds
                    .iter()
                    .map(|&b| {
                        let spellings = BOUNDS[b].1;
                        // Mostly the exporter's own spelling.
                        let s = if rng.chance(0.7) {
                            spellings[0]
                        } else {
                            *rng.pick(spellings)
                        };
                        (b, s.to_owned())
                    })
                    .collect();
                let mut histograms: Vec<Histogram> = Vec::new();
                let mut add = |name: &'static str, extra: Vec<(String, String)>, rng: &mut Rng| {
                    histograms.push(Histogram {
                        name,
                        extra,
                        buckets: spelling.clone(),
                        counts: vec![0.0; spelling.len() + 1],
                        count: 0.0,
                        level: rng.below(BOUNDS.len() + 1),
                    });
                };
                add("selftime_internal_seconds", Vec::new(), rng);
                add("selftime_total_seconds", Vec::new(), rng);
                if !dependencies.is_empty() {
                    add(
                        "selftime_external_seconds",
                        vec![("dependency".into(), "all".into())],
                        rng,
                    );
                }
                for dependency in &dependencies {
                    add(
                        "selftime_external_seconds",
                        vec![("dependency".into(), (*dependency).into())],
                        rng,
                    );
                    // A dependency that reports its own time (Server-Timing).
                    if rng.chance(0.5) {
                        for name in ["selftime_callee_seconds", "selftime_between_seconds"] {
                            add(name, vec![("dependency".into(), (*dependency).into())], rng);
                        }
                    }
                }
                let outcomes = ["ok", "error", "panic", "cancelled"];
                let mut requests = [0.0f64; 4];
                // Every series of this instance, scrape by scrape.
                let mut rows: Vec<(Labels, Vec<Option<Option<f64>>>)> = Vec::new();
                for outcome in outcomes {
                    let mut l = base("selftime_requests_total");
                    l.insert("outcome".into(), outcome.into());
                    rows.push((l, Vec::new()));
                }
                for h in &histograms {
                    for (_, le) in &h.buckets {
                        let mut l = base(&format!("{}_bucket", h.name));
                        l.extend(h.extra.iter().cloned());
                        l.insert("le".into(), le.clone());
                        rows.push((l, Vec::new()));
                    }
                    let mut l = base(&format!("{}_bucket", h.name));
                    l.extend(h.extra.iter().cloned());
                    l.insert("le".into(), "+Inf".into());
                    rows.push((l, Vec::new()));
                    let mut l = base(&format!("{}_count", h.name));
                    l.extend(h.extra.iter().cloned());
                    rows.push((l, Vec::new()));
                }
                let start = if rng.chance(0.3) {
                    rng.below(scrapes / 3 + 1)
                } else {
                    0
                };
                let stop = if rng.chance(0.2) {
                    scrapes / 2 + rng.below(scrapes / 2)
                } else {
                    scrapes
                };
                let mut error_share = *rng.pick(&[0.0, 0.02, 0.1, 0.5]);
                let mut load = 1 + rng.below(30);
                for k in 0..scrapes {
                    if k < start || k > stop {
                        for (_, v) in &mut rows {
                            v.push(None);
                        }
                        continue;
                    }
                    if k == stop {
                        let marker = rng.chance(0.5).then_some(None);
                        for (_, v) in &mut rows {
                            v.push(marker);
                        }
                        continue;
                    }
                    // The regime changes now and then: latency, errors, load.
                    if rng.chance(0.08) {
                        for h in &mut histograms {
                            h.level = rng.below(BOUNDS.len() + 1);
                        }
                    }
                    if rng.chance(0.05) {
                        error_share = *rng.pick(&[0.0, 0.02, 0.1, 0.5]);
                    }
                    if rng.chance(0.05) {
                        load = rng.below(30);
                    }
                    // A restart: every counter of the instance starts over.
                    if k > start && rng.chance(0.03) {
                        requests = [0.0; 4];
                        histograms.iter_mut().for_each(Histogram::reset);
                    }
                    let n = load + rng.below(5);
                    for _ in 0..n {
                        let outcome = if rng.chance(error_share) {
                            1 + rng.below(2)
                        } else if rng.chance(0.05) {
                            3
                        } else {
                            0
                        };
                        requests[outcome] += 1.0;
                    }
                    for h in &mut histograms {
                        h.observe(rng, n);
                    }
                    let mut values: Vec<f64> = requests.to_vec();
                    for h in &histograms {
                        values.extend(&h.counts);
                        values.push(h.count);
                    }
                    // A missed scrape, of the whole instance or one series.
                    let missed = rng.chance(0.05);
                    for ((_, v), value) in rows.iter_mut().zip(values) {
                        let lost = missed || rng.chance(0.01);
                        v.push((!lost).then_some(Some(value)));
                    }
                }
                inputs.extend(rows);
            }
            // Thresholds for this job's handler, as series (a thresholds
            // file's job-less ones come from the batch's file).
            let threshold = |rng: &mut Rng| BOUNDS[*rng.pick(&bounds)].0;
            let constant = |value: f64, rng: &mut Rng| -> Vec<Option<Option<f64>>> {
                let gap = rng.chance(0.2).then(|| rng.below(scrapes));
                (0..scrapes)
                    .map(|k| (gap.is_none_or(|g| k < g || k > g + 30)).then_some(Some(value)))
                    .collect()
            };
            let keyed = |name: &str| labels(&[(NAME, name), ("job", job), ("handler", handler)]);
            if rng.chance(0.5) {
                let v = threshold(rng);
                let values = constant(v, rng);
                inputs.push((keyed("selftime:internal_p99_threshold_seconds"), values));
            }
            if rng.chance(0.5) {
                let bound = *rng.pick(&bounds);
                // Sometimes spelled unlike the buckets, or naming none.
                let le = if rng.chance(0.7) {
                    BOUNDS[bound].1[0].to_owned()
                } else if rng.chance(0.5) {
                    (*rng.pick(BOUNDS[bound].1)).to_owned()
                } else {
                    "0.3".to_owned()
                };
                let mut l = keyed("selftime:internal_objective");
                l.insert("le".into(), le);
                let share = *rng.pick(&[0.5, 0.9, 0.99, 0.999]);
                let values = constant(share, rng);
                inputs.push((l, values));
            }
            // The request rate and the error ratio are sums of four
            // outcomes' rates (per instance), which promtool adds in the
            // order its test loader happened to create the series (a Go
            // map's): a rate exactly at its threshold falls on either side
            // from one promtool run to the next. So each (job, handler)
            // has both thresholds, off the grid of such rates (k / 300,
            // k / 600, ...), where no sum can sit exactly on them.
            let rate = *rng.pick(&[0.0137, 0.0937, 0.1537, 0.4337]);
            inputs.push((
                keyed("selftime:min_request_rate"),
                vec![Some(Some(rate)); scrapes],
            ));
            let share = *rng.pick(&[0.0123, 0.0537, 0.2137]);
            inputs.push((
                keyed("selftime:error_ratio_threshold"),
                vec![Some(Some(share)); scrapes],
            ));
        }
        for dependency in DEPENDENCIES {
            if rng.chance(0.4) {
                let v = threshold_of(rng, &bounds);
                let l = labels(&[
                    (NAME, "selftime:dependency_p99_threshold_seconds"),
                    ("job", job),
                    ("dependency", dependency),
                ]);
                inputs.push((l, (0..scrapes).map(|_| Some(Some(v))).collect()));
            }
            if rng.chance(0.4) {
                let v = threshold_of(rng, &bounds);
                let l = labels(&[
                    (NAME, "selftime:between_p99_threshold_seconds"),
                    ("job", job),
                    ("dependency", dependency),
                ]);
                inputs.push((l, (0..scrapes).map(|_| Some(Some(v))).collect()));
            }
        }
    }
    Scenario {
        index,
        scrape_ms,
        minutes,
        inputs,
    }
}

fn threshold_of(rng: &mut Rng, bounds: &[usize]) -> f64 {
    BOUNDS[*rng.pick(bounds)].0
}

/// A thresholds file of the kind a user loads beside the shipped one:
/// thresholds by handler alone and by dependency alone (the minimum rate
/// and the error ratio's are every scenario's own, by job and handler).
fn thresholds_file(rng: &mut Rng, batch: usize) -> String {
    let mut out = format!("groups:\n  - name: batch-{batch}\n    rules:\n");
    let mut rule = |name: &str, value: f64, labels: &[(&str, String)]| {
        let _ = write!(
            out,
            "      - record: {name}\n        expr: vector({})\n        labels:\n",
            number(value)
        );
        for (k, v) in labels {
            let _ = writeln!(out, "          {k}: \"{v}\"");
        }
    };
    for handler in HANDLERS {
        if rng.chance(0.6) {
            let v = BOUNDS[rng.below(BOUNDS.len())].0;
            rule(
                "selftime:internal_p99_threshold_seconds",
                v,
                &[("handler", handler.to_owned())],
            );
        }
        if rng.chance(0.5) {
            let b = rng.below(BOUNDS.len());
            let le = (*rng.pick(BOUNDS[b].1)).to_owned();
            rule(
                "selftime:internal_objective",
                *rng.pick(&[0.9, 0.99]),
                &[("handler", handler.to_owned()), ("le", le)],
            );
        }
    }
    for dependency in DEPENDENCIES {
        if rng.chance(0.5) {
            let v = BOUNDS[rng.below(BOUNDS.len())].0;
            rule(
                "selftime:dependency_p99_threshold_seconds",
                v,
                &[("dependency", dependency.to_owned())],
            );
        }
        if rng.chance(0.5) {
            let v = BOUNDS[rng.below(BOUNDS.len())].0;
            rule(
                "selftime:between_p99_threshold_seconds",
                v,
                &[("dependency", dependency.to_owned())],
            );
        }
    }
    out
}

/// The query that reads a scenario's figures at a step; the scenario's
/// matcher (no series has that label) tells apart the reports of one file.
fn query(scenario: usize) -> String {
    format!("{{__name__=~\"{SELECTOR}\", scenario!=\"{scenario}\"}}")
}

/// Figures by label set.
type Figures = BTreeMap<Labels, f64>;

/// The built-in evaluator's figures at every step.
fn builtin(groups: &[&Group], scenario: &Scenario) -> Result<Vec<Figures>, String> {
    let mut storage = Storage::default();
    for (l, values) in &scenario.inputs {
        for (k, value) in values.iter().enumerate() {
            let t = i64::try_from(k).unwrap_or(0) * scenario.scrape_ms;
            match value {
                Some(Some(v)) => storage.push(l, t, *v),
                Some(None) => storage.push_stale(l, t),
                None => {}
            }
        }
    }
    let until = scenario.minutes * STEP_MS;
    let timeline = eval::run_groups(groups, &mut storage, until, STEP_MS)
        .map_err(|e| format!("the built-in evaluator: {e}"))?;
    let selector = promql_parser::parser::parse(&query(scenario.index))
        .map_err(|e| format!("the comparison's query: {e}"))?;
    timeline
        .steps
        .iter()
        .map(|step| {
            let mut figures: Figures = instant_vector(&storage, &selector, step.t)
                .map_err(|e| format!("the comparison's query at {} ms: {e}", step.t))?
                .into_iter()
                .map(|s| (s.labels, s.value))
                .collect();
            for (id, state) in &step.alerts {
                let mut l = id.labels.clone();
                l.insert(NAME.into(), "ALERTS".into());
                l.insert("alertname".into(), id.alert.clone());
                l.insert("alertstate".into(), state.as_str().into());
                figures.insert(l, 1.0);
            }
            Ok(figures)
        })
        .collect()
}

/// The groups as both evaluators run them: the shipped thresholds, the
/// batch's own file, selftime's rules.
fn groups_of<'a>(shipped: &'a RuleFile, own: Option<&'a RuleFile>) -> Vec<&'a Group> {
    let mut groups: Vec<&Group> = shipped.groups().iter().take(1).collect();
    if let Some(own) = own {
        groups.extend(own.groups());
    }
    groups.extend(shipped.groups().iter().skip(1));
    groups
}

/// The batch's test file header: rule files and group order.
fn header(files: &[PathBuf], order: &[&str]) -> String {
    let mut out = String::from("rule_files:\n");
    for file in files {
        let _ = writeln!(out, "  - {}", single_quoted(&file.to_string_lossy()));
    }
    out.push_str("\ngroup_eval_order:\n");
    for group in order {
        let _ = writeln!(out, "  - {}", single_quoted(group));
    }
    out.push_str("\nevaluation_interval: 1m\n\ntests:\n");
    out
}

/// A scenario as a promtool test group whose expression tests expect, at
/// each step of `expect`, the figures given (nothing: promtool reports
/// what it found).
fn test_group(scenario: &Scenario, expect: &[(i64, Option<&Figures>)]) -> String {
    let mut out = format!(
        "  # scenario {}\n  - interval: {}\n    input_series:\n",
        scenario.index,
        millis(scenario.scrape_ms)
    );
    for (l, values) in &scenario.inputs {
        if values.iter().all(Option::is_none) {
            continue;
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| match v {
                None => "_".to_owned(),
                Some(None) => "stale".to_owned(),
                Some(Some(x)) => number(*x),
            })
            .collect();
        let _ = writeln!(
            out,
            "      - series: {}\n        values: '{}'",
            single_quoted(&series_notation(l)),
            values.join(" ")
        );
    }
    out.push_str("    promql_expr_test:\n");
    for (t, figures) in expect {
        let _ = write!(
            out,
            "      - expr: {}\n        eval_time: {}\n        exp_samples:",
            single_quoted(&query(scenario.index)),
            millis(*t)
        );
        match figures {
            None => out.push_str(" []\n"),
            Some(figures) => {
                out.push('\n');
                for (l, v) in *figures {
                    let _ = writeln!(
                        out,
                        "          - labels: {}\n            value: {}",
                        single_quoted(&series_notation(l)),
                        yaml_number(*v)
                    );
                }
            }
        }
    }
    out
}

fn yaml_number(x: f64) -> String {
    if x.is_nan() {
        ".nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        number(x)
    }
}

/// Equal, or within a relative 1e-9; NaN equals NaN.
#[allow(clippy::float_cmp, reason = "exactly equal is equal")]
fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// What differs between the two evaluators' figures at one step.
fn differences(builtin: &Figures, promtool: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    for (l, v) in builtin {
        match promtool.get(l) {
            None => out.push(format!(
                "only the built-in evaluator: {} {v}",
                series_notation(l)
            )),
            Some(p) if !close(*v, *p) => out.push(format!(
                "{}: built-in {v}, promtool {p}",
                series_notation(l)
            )),
            Some(_) => {}
        }
    }
    for (l, p) in promtool {
        if !builtin.contains_key(l) {
            out.push(format!("only promtool: {} {p}", series_notation(l)));
        }
    }
    out
}

struct Batch {
    files: Vec<PathBuf>,
    order: Vec<String>,
    groups_text: Option<String>,
    scenarios: Vec<Scenario>,
}

#[test]
#[ignore = "needs promtool on PATH (apt-get install prometheus); CI runs it"]
#[allow(clippy::too_many_lines, reason = "set up, run, compare, report")]
fn the_builtin_evaluator_agrees_with_promtool() {
    let version = promtool::version().expect(
        "promtool is not on the PATH (apt-get install prometheus): nothing to compare with",
    );
    let started = std::time::Instant::now();
    let seed = std::env::var("SELFTIME_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let dir = std::env::temp_dir().join(format!("selftime-differential-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped_path = root.join("runtime/alerts/selftime.rules.yml");
    let demo_path = root.join("docs/incident.rules.yml");
    let shipped = shipped::file().expect("the shipped rules");
    let mut rng = Rng(seed);

    // Batch 0: the shipped file alone; 1: with the incident demo's
    // thresholds file; the others with a random thresholds file each.
    let mut batches: Vec<Batch> = (0..BATCHES)
        .map(|batch| {
            let (file, text) = match batch {
                0 => (None, None),
                1 => (
                    Some(demo_path.clone()),
                    Some(std::fs::read_to_string(&demo_path).expect("the demo's rules")),
                ),
                _ => {
                    let text = thresholds_file(&mut rng, batch);
                    let path = dir.join(format!("thresholds-{batch}.rules.yml"));
                    std::fs::write(&path, &text).expect("writing a thresholds file");
                    (Some(path), Some(text))
                }
            };
            let mut files = vec![std::path::absolute(&shipped_path).expect("a path")];
            files.extend(file);
            Batch {
                files,
                order: Vec::new(),
                groups_text: text,
                scenarios: Vec::new(),
            }
        })
        .collect();
    for index in 0..SCENARIOS {
        let scenario = scenario(index, &mut rng);
        batches[index % BATCHES].scenarios.push(scenario);
    }

    // promtool's runs first, side by side; the built-in evaluator's while
    // they go.
    let owns: Vec<Option<RuleFile>> = batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            batch.groups_text.as_ref().map(|text| {
                RuleFile::parse(&format!("batch {b}"), text).expect("a thresholds file")
            })
        })
        .collect();
    let mut runs = Vec::new();
    for (b, (batch, own)) in batches.iter_mut().zip(&owns).enumerate() {
        batch.order = groups_of(&shipped, own.as_ref())
            .iter()
            .map(|g| g.name.clone())
            .collect();
        let order: Vec<&str> = batch.order.iter().map(String::as_str).collect();
        let mut test = header(&batch.files, &order);
        for scenario in &batch.scenarios {
            let steps: Vec<(i64, Option<&Figures>)> = (0..=scenario.minutes)
                .map(|m| (m * STEP_MS, None))
                .collect();
            test.push_str(&test_group(scenario, &steps));
        }
        let path = dir.join(format!("batch-{b}.test.yml"));
        std::fs::write(&path, test).expect("writing a test file");
        runs.push(std::thread::spawn(move || {
            (promtool::run_file(&path), path)
        }));
    }
    let built = std::time::Instant::now();
    let expected: Vec<Vec<Vec<Figures>>> = batches
        .iter()
        .zip(&owns)
        .map(|(batch, own)| {
            let groups = groups_of(&shipped, own.as_ref());
            batch
                .scenarios
                .iter()
                .map(|scenario| {
                    builtin(&groups, scenario).unwrap_or_else(|e| {
                        panic!("scenario {} (seed {seed:#x}): {e}", scenario.index)
                    })
                })
                .collect()
        })
        .collect();
    let builtin_time = built.elapsed();
    let found: Vec<(promtool::Found, PathBuf)> = runs
        .into_iter()
        .map(|run| {
            let (found, path) = run.join().expect("a promtool run");
            (
                found.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                path,
            )
        })
        .collect();

    let mut failures = Vec::new();
    let mut compared = 0usize;
    for ((batch, figures), (found, path)) in batches.iter().zip(&expected).zip(&found) {
        for (scenario, figures) in batch.scenarios.iter().zip(figures) {
            let mut differing = Vec::new();
            for (m, builtin) in figures.iter().enumerate() {
                let t = i64::try_from(m).unwrap_or(0) * STEP_MS;
                let promtool: Figures = found
                    .get(&(query(scenario.index), millis(t)))
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                compared += builtin.len();
                let diff = differences(builtin, &promtool);
                if !diff.is_empty() {
                    differing.push((t, diff));
                }
            }
            if !differing.is_empty() {
                failures.push((batch, scenario, figures, path.clone(), differing));
            }
        }
    }
    if let Some((batch, scenario, figures, path, differing)) = failures.first() {
        let order: Vec<&str> = batch.order.iter().map(String::as_str).collect();
        let expect: Vec<(i64, Option<&Figures>)> = differing
            .iter()
            .map(|(t, _)| {
                let m = usize::try_from(*t / STEP_MS).unwrap_or(0);
                (*t, Some(&figures[m]))
            })
            .collect();
        let file = format!(
            "{}{}",
            header(&batch.files, &order),
            test_group(scenario, &expect)
        );
        let repro = dir.join(format!("scenario-{}.test.yml", scenario.index));
        std::fs::write(&repro, &file).expect("writing the failing scenario");
        let mut report = String::new();
        for (t, diff) in differing.iter().take(5) {
            let _ = writeln!(report, "at {}:", millis(*t));
            for line in diff.iter().take(10) {
                let _ = writeln!(report, "  {line}");
            }
        }
        panic!(
            "{} of {SCENARIOS} scenarios differ (seed {seed:#x}, {version}); the first, scenario {} \
             of {}:\n{report}\nas a promtool test file expecting the built-in evaluator's figures \
             ({}; run it with `promtool test rules`):\n\n{file}",
            failures.len(),
            scenario.index,
            path.display(),
            repro.display(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{SCENARIOS} scenarios, {compared} figures compared with {version} in {:.1} s \
         (the built-in evaluator: {:.1} s)",
        started.elapsed().as_secs_f64(),
        builtin_time.as_secs_f64()
    );
    // Not a vacuous comparison: alerts fired, in both states, and
    // histograms made quantiles.
    let all: Vec<&Figures> = expected.iter().flatten().flatten().collect();
    for (what, present) in [("a firing alert", "firing"), ("a pending alert", "pending")] {
        assert!(
            all.iter().any(|f| f
                .keys()
                .any(|l| l.get("alertstate").map(String::as_str) == Some(present))),
            "no scenario had {what}"
        );
    }
    for alert in [
        shipped::alerts::INTERNAL_LATENCY,
        shipped::alerts::ERROR_RATIO,
        shipped::alerts::BUDGET_BURN,
        shipped::alerts::DEPENDENCY_LATENCY,
        shipped::alerts::OBJECTIVE_NAMES_NO_BUCKET,
    ] {
        assert!(
            all.iter().any(|f| f
                .keys()
                .any(|l| l.get("alertname").map(String::as_str) == Some(alert))),
            "{alert} never fired or went pending in any scenario"
        );
    }
}
