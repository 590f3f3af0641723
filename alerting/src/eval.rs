//! The built-in evaluator: rules files, as parsed by `promql-parser`, run
//! over recorded samples the way Prometheus 2.42 runs them, for machines
//! without `promtool`.
//!
//! It evaluates the PromQL selftime's rules (and a thresholds file beside
//! them) are written in, and refuses anything else with an error naming
//! the construct, before evaluating anything:
//!
//! - instant selectors, with `=`, `!=`, `=~` and `!~` matchers (no
//!   `offset`, no `@`), looking back 5 minutes for a sample;
//! - `rate(selector[range])`, extrapolated as 2.42's `extrapolatedRate`
//!   does;
//! - `histogram_quantile(q, v)` over classic buckets, as `bucketQuantile`
//!   does (bounds read as Go's `ParseFloat` reads them, equal bounds
//!   coalesced, counts forced monotonic, series without a readable `le`
//!   skipped), and `vector(s)`;
//! - `sum` and `max`, alone or `by (…)`;
//! - `+ - * /`, the comparisons `== != > >= < <=` (no `bool`), and `and`,
//!   `or`, `unless`, between vectors and scalars, matched on all labels,
//!   `on (…)` or `ignoring (…)`, one-to-one or `group_left (…)`, with
//!   2.42's errors for many-to-many matches and duplicate series;
//! - number literals and parentheses.
//!
//! Rules run as the rule manager runs them: groups in the order given,
//! the rules of a group in file order, each rule's output written before
//! the next rule reads it; recording rules write staleness markers for the
//! series they stop producing; alerts are pending, then firing once their
//! `for:` has passed, and forgotten when their condition clears. Group
//! `interval:` and `limit:`, an alert's `keep_firing_for:` and templates
//! in alert labels are refused.
//!
//! Three of 2.42's semantics changed in later releases, and this
//! evaluator keeps 2.42's (`tests/differential.rs` compares it with
//! promtool 2.42.0):
//!
//! - Range selectors and the instant lookback are closed at both ends,
//!   `[t - range, t]`: a sample exactly at `t - range` (or `t - 5m`)
//!   counts. Prometheus 3.0 made them left-open, `(t - range, t]`, so with
//!   samples aligned on the window's start a 3.x `rate` reads one sample
//!   fewer.
//! - `rate` first clamps the distance to the range's start at the
//!   counter's extrapolated zero point, then extrapolates that distance if
//!   it is under 1.1 average sample intervals, else half an interval.
//!   Prometheus 2.51 and later make that choice first and clamp after, so
//!   the half interval is clamped too.
//! - `histogram_quantile` forces bucket counts monotonic exactly;
//!   Prometheus 2.49 and later first ignore differences smaller than
//!   1e-12 of a count.
//!
//! `sum` adds its terms in the order of their series' label sets.
//! Prometheus adds them in the order the series were created, which
//! `promtool test rules` leaves to a Go map (it changes from run to run):
//! a sum of three or more terms may differ in its last bit, and a sum
//! exactly at a threshold can fall on either side of it, in promtool
//! itself from one run to the next.

use crate::rules::{Group, Kind, Rule};
use promql_parser::label::Matcher;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality, VectorSelector,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A label set; the metric name is the label `__name__`.
pub type Labels = BTreeMap<String, String>;

/// The label that holds the metric name.
pub const NAME: &str = "__name__";

/// How far back an instant selector looks for a sample, ms.
const LOOKBACK_MS: i64 = 5 * 60 * 1_000;

/// Samples by series, in time order. A `None` value is a staleness marker.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    series: Vec<Series>,
    ids: HashMap<Labels, usize>,
    /// Series ids by metric name, each list sorted by label set. (promtool
    /// creates its input series in no fixed order, and `sum` adds in the
    /// order of creation: the last bit of a sum of three or more terms is
    /// not one to match.)
    by_name: BTreeMap<String, Vec<usize>>,
}

#[derive(Clone, Debug)]
struct Series {
    labels: Labels,
    points: Vec<(i64, Option<f64>)>,
}

impl Storage {
    /// Adds a sample at `t` ms. Samples of one series come in time order;
    /// one at or before the series' last is ignored, as Prometheus's
    /// appender refuses it.
    pub fn push(&mut self, labels: &Labels, t: i64, value: f64) {
        self.append(labels, t, Some(value));
    }

    /// Adds a staleness marker at `t` ms.
    pub fn push_stale(&mut self, labels: &Labels, t: i64) {
        self.append(labels, t, None);
    }

    fn append(&mut self, labels: &Labels, t: i64, value: Option<f64>) {
        let id = if let Some(&id) = self.ids.get(labels) {
            id
        } else {
            let id = self.series.len();
            self.series.push(Series {
                labels: labels.clone(),
                points: Vec::new(),
            });
            self.ids.insert(labels.clone(), id);
            let name = labels.get(NAME).cloned().unwrap_or_default();
            let list = self.by_name.entry(name).or_default();
            let at = list.partition_point(|&other| self.series[other].labels < *labels);
            list.insert(at, id);
            id
        };
        let points = &mut self.series[id].points;
        if points.last().is_none_or(|&(last, _)| last < t) {
            points.push((t, value));
        }
    }

    /// Every series, with its samples (`None`: a staleness marker).
    pub fn series(&self) -> impl Iterator<Item = (&Labels, &[(i64, Option<f64>)])> {
        self.series.iter().map(|s| (&s.labels, s.points.as_slice()))
    }

    /// The series `selector` selects, sorted by label set (by name first
    /// when it names none).
    fn matching<'a>(&'a self, selector: &'a VectorSelector) -> Vec<&'a Series> {
        let keep = |s: &&Series| {
            selector
                .matchers
                .matchers
                .iter()
                .all(|m| matches(m, &s.labels))
        };
        let series = |ids: &'a Vec<usize>| ids.iter().map(|&id| &self.series[id]);
        match &selector.name {
            Some(name) => self
                .by_name
                .get(name)
                .into_iter()
                .flat_map(series)
                .filter(keep)
                .collect(),
            None => self
                .by_name
                .values()
                .flat_map(series)
                .filter(keep)
                .collect(),
        }
    }

    /// The latest sample at or before `t`, no older than the lookback, if
    /// it is not a staleness marker.
    fn instant(series: &Series, t: i64) -> Option<f64> {
        let at = series.points.partition_point(|&(pt, _)| pt <= t);
        let &(pt, value) = series.points.get(at.checked_sub(1)?)?;
        if pt < t - LOOKBACK_MS {
            return None;
        }
        value
    }

    /// The samples in `[from, to]`, staleness markers left out.
    fn range(series: &Series, from: i64, to: i64) -> Vec<(i64, f64)> {
        let start = series.points.partition_point(|&(pt, _)| pt < from);
        series.points[start..]
            .iter()
            .take_while(|&&(pt, _)| pt <= to)
            .filter_map(|&(pt, v)| v.map(|v| (pt, v)))
            .collect()
    }
}

fn matches(matcher: &Matcher, labels: &Labels) -> bool {
    matcher.is_match(labels.get(&matcher.name).map_or("", String::as_str))
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// What an expression evaluates to.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Scalar(f64),
    Vector(Vec<Sample>),
}

/// An evaluation the engine refuses, or PromQL this evaluator does not
/// run, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

fn error<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

fn unsupported<T>(construct: impl fmt::Display) -> Result<T, EvalError> {
    error(format!(
        "the built-in evaluator does not run {construct} (only the PromQL selftime's rules use)"
    ))
}

/// Checks that `expr` uses only the PromQL this evaluator runs.
///
/// # Errors
///
/// The first construct it does not run, named.
pub fn check(expr: &Expr) -> Result<(), EvalError> {
    match expr {
        Expr::NumberLiteral(_) => Ok(()),
        Expr::Paren(p) => check(&p.expr),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(m) => {
            unsupported(format_args!("the range selector `{m}` outside `rate(…)`"))
        }
        Expr::StringLiteral(s) => unsupported(format_args!("the string literal \"{}\"", s.val)),
        Expr::Unary(u) => unsupported(format_args!("unary minus (`-{}`)", u.expr)),
        Expr::Subquery(s) => unsupported(format_args!("the subquery `{s}`")),
        Expr::Extension(_) => unsupported("an extension expression"),
        Expr::Call(call) => check_call(call),
        Expr::Aggregate(a) => check_aggregate(a),
        Expr::Binary(b) => check_binary(b),
    }
}

fn check_selector(vs: &VectorSelector) -> Result<(), EvalError> {
    if vs.offset.is_some() {
        return unsupported(format_args!("`offset` (in `{vs}`)"));
    }
    if vs.at.is_some() {
        return unsupported(format_args!("the `@` modifier (in `{vs}`)"));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return unsupported(format_args!("`or` between matchers (in `{vs}`)"));
    }
    Ok(())
}

fn check_call(call: &Call) -> Result<(), EvalError> {
    let args: Vec<&Expr> = call.args.args.iter().map(AsRef::as_ref).collect();
    match (call.func.name, args.as_slice()) {
        ("rate", [Expr::MatrixSelector(m)]) => check_selector(&m.vs),
        // A subquery, say: named as what it is.
        ("rate", [other @ Expr::Subquery(_)]) => check(other),
        ("histogram_quantile", [q, v]) => check(q).and(check(v)),
        ("vector", [s]) => check(s),
        (name, _) => unsupported(format_args!("the function `{name}` (in `{call}`)")),
    }
}

fn check_aggregate(a: &AggregateExpr) -> Result<(), EvalError> {
    let op = a.op.to_string();
    if !matches!(op.as_str(), "sum" | "max") {
        return unsupported(format_args!("the aggregation `{op}`"));
    }
    if let Some(LabelModifier::Exclude(_)) = a.modifier {
        return unsupported(format_args!("`{op} without (…)`"));
    }
    check(&a.expr)
}

fn check_binary(b: &BinaryExpr) -> Result<(), EvalError> {
    let op = b.op.to_string();
    if !matches!(
        op.as_str(),
        "+" | "-" | "*" | "/" | "==" | "!=" | ">" | ">=" | "<" | "<=" | "and" | "or" | "unless"
    ) {
        return unsupported(format_args!("the operator `{op}`"));
    }
    if let Some(modifier) = &b.modifier {
        if modifier.return_bool {
            return unsupported(format_args!("`{op} bool`"));
        }
        if let VectorMatchCardinality::OneToMany(_) = modifier.card {
            return unsupported("`group_right`");
        }
        if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
            return unsupported("fill values in vector matching (not in Prometheus 2.42)");
        }
    }
    check(&b.lhs).and(check(&b.rhs))
}

/// Evaluates `expr` at `t` ms. Run [`check`] first: an expression it
/// refuses evaluates to the same error here.
///
/// # Errors
///
/// What the engine refuses: many-to-many matching, duplicate series in a
/// result, a scalar where a vector is needed; or PromQL this evaluator
/// does not run.
pub fn instant_vector(storage: &Storage, expr: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
    match eval(storage, expr, t)? {
        Value::Vector(v) => Ok(v),
        Value::Scalar(_) => error("expected an instant vector, got a scalar"),
    }
}

fn eval(storage: &Storage, expr: &Expr, t: i64) -> Result<Value, EvalError> {
    let value = match expr {
        Expr::NumberLiteral(n) => Value::Scalar(n.val),
        Expr::Paren(p) => eval(storage, &p.expr, t)?,
        Expr::VectorSelector(vs) => {
            check_selector(vs)?;
            Value::Vector(
                storage
                    .matching(vs)
                    .into_iter()
                    .filter_map(|s| {
                        Storage::instant(s, t).map(|value| Sample {
                            labels: s.labels.clone(),
                            value,
                        })
                    })
                    .collect(),
            )
        }
        Expr::Call(call) => unique(call_value(storage, call, t)?)?,
        Expr::Aggregate(a) => unique(aggregate(storage, a, t)?)?,
        Expr::Binary(b) => unique(binary(
            b,
            eval(storage, &b.lhs, t)?,
            eval(storage, &b.rhs, t)?,
        )?)?,
        other => return check(other).and_then(|()| unsupported(other)),
    };
    Ok(value)
}

/// 2.42 refuses a function's, an aggregation's or an operator's result
/// holding one label set twice.
fn unique(value: Value) -> Result<Value, EvalError> {
    if let Value::Vector(samples) = &value {
        let mut seen = BTreeSet::new();
        if !samples.iter().all(|s| seen.insert(&s.labels)) {
            return error("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(value)
}

fn scalar(storage: &Storage, expr: &Expr, t: i64) -> Result<f64, EvalError> {
    match eval(storage, expr, t)? {
        Value::Scalar(x) => Ok(x),
        Value::Vector(_) => error(format!("expected a scalar, got an instant vector: {expr}")),
    }
}

fn vector(storage: &Storage, expr: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
    instant_vector(storage, expr, t)
}

fn call_value(storage: &Storage, call: &Call, t: i64) -> Result<Value, EvalError> {
    check_call(call)?;
    let args: Vec<&Expr> = call.args.args.iter().map(AsRef::as_ref).collect();
    Ok(match (call.func.name, args.as_slice()) {
        ("rate", [Expr::MatrixSelector(m)]) => {
            let range_ms = i64::try_from(m.range.as_millis())
                .map_err(|_| EvalError(format!("the range of `{m}` is too long")))?;
            Value::Vector(
                storage
                    .matching(&m.vs)
                    .into_iter()
                    .filter_map(|s| {
                        let points = Storage::range(s, t - range_ms, t);
                        extrapolated_rate(&points, t - range_ms, t, range_ms).map(|value| {
                            let mut labels = s.labels.clone();
                            labels.remove(NAME);
                            Sample { labels, value }
                        })
                    })
                    .collect(),
            )
        }
        ("histogram_quantile", [q, v]) => {
            let q = scalar(storage, q, t)?;
            Value::Vector(histogram_quantile(q, vector(storage, v, t)?)?)
        }
        ("vector", [s]) => Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: scalar(storage, s, t)?,
        }]),
        _ => return unsupported(call),
    })
}

/// Prometheus's `extrapolatedRate` for a counter, as a rate per second.
fn extrapolated_rate(points: &[(i64, f64)], start: i64, end: i64, range_ms: i64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first_t, first_v) = points[0];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = last_v - first_v;
    let mut previous = first_v;
    for &(_, v) in &points[1..] {
        if v < previous {
            result += previous;
        }
        previous = v;
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "millisecond spans, exact in an f64"
    )]
    let secs = |ms: i64| ms as f64 / 1_000.0;
    let mut to_start = secs(first_t - start);
    let to_end = secs(end - last_t);
    let sampled = secs(last_t - first_t);
    #[allow(clippy::cast_precision_loss, reason = "a handful of samples")]
    let average = sampled / (points.len() - 1) as f64;
    if result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    // 2.42's order of operations, which the last bit of a rate (and so a
    // comparison at a threshold) depends on: the factor first.
    let factor = interval / sampled / secs(range_ms);
    Some(result * factor)
}

/// `sum` / `max`, `by (…)` or over everything: groups in order of first
/// appearance, each folded in input order.
fn aggregate(storage: &Storage, a: &AggregateExpr, t: i64) -> Result<Value, EvalError> {
    check_aggregate(a)?;
    let input = vector(storage, &a.expr, t)?;
    let by: &[String] = match &a.modifier {
        Some(LabelModifier::Include(labels)) => &labels.labels,
        _ => &[],
    };
    let max = a.op.to_string() == "max";
    let mut out: Vec<Sample> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for sample in input {
        let key: Labels = by
            .iter()
            .filter_map(|l| sample.labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect();
        if let Some(&i) = index.get(&key) {
            let so_far = &mut out[i].value;
            if !max {
                *so_far += sample.value;
            } else if *so_far < sample.value || so_far.is_nan() {
                *so_far = sample.value;
            }
        } else {
            index.insert(key.clone(), out.len());
            out.push(Sample {
                labels: key,
                value: sample.value,
            });
        }
    }
    Ok(Value::Vector(out))
}

/// `histogram_quantile` over classic buckets: grouped by every label but
/// `le`, and by the metric name (which the result drops).
fn histogram_quantile(q: f64, input: Vec<Sample>) -> Result<Vec<Sample>, EvalError> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for sample in input {
        let Some(Some(bound)) = sample
            .labels
            .get("le")
            .map(|le| parse_go_float(le))
            .transpose()?
        else {
            continue;
        };
        let mut key = sample.labels;
        key.remove("le");
        let mut labels = key.clone();
        labels.remove(NAME);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((labels, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((bound, sample.value));
    }
    Ok(groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            value: bucket_quantile(q, buckets),
        })
        .collect())
}

/// A float as Go's `strconv.ParseFloat` reads an `le` value; `None` for
/// text it refuses (the engine skips that series).
///
/// # Errors
///
/// Hexadecimal floats, which Go reads and this does not.
fn parse_go_float(text: &str) -> Result<Option<f64>, EvalError> {
    let unsigned = text.trim_start_matches(['+', '-']);
    let negative = text.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    if text.len() - unsigned.len() > 1 {
        return Ok(None);
    }
    if lower == "inf" || lower == "infinity" {
        return Ok(Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }));
    }
    if lower == "nan" {
        return Ok(Some(f64::NAN));
    }
    if lower.starts_with("0x") {
        return unsupported(format_args!("the hexadecimal bucket bound le=\"{text}\""));
    }
    // Rust reads what Go reads of decimal floats, and no more once the
    // spellings of infinity and NaN are out of the way.
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Ok(None);
    }
    Ok(text.parse().ok())
}

/// Prometheus's `bucketQuantile`.
#[allow(
    clippy::float_cmp,
    reason = "the engine compares bucket bounds and counts exactly"
)]
fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce equal bounds, then make the counts monotonic.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (bound, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => merged.push((bound, count)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for bucket in &mut merged {
        if bucket.1 > max {
            max = bucket.1;
        } else if bucket.1 < max {
            bucket.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|&(_, count)| count < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// An operator, as the engine applies it to two numbers: the value, and
/// whether a comparison keeps it.
#[allow(clippy::float_cmp, reason = "PromQL's `==` and `!=` are exact")]
fn apply(op: &str, a: f64, b: f64) -> (f64, bool) {
    match op {
        "+" => (a + b, true),
        "-" => (a - b, true),
        "*" => (a * b, true),
        "/" => (a / b, true),
        "==" => (a, a == b),
        "!=" => (a, a != b),
        ">" => (a, a > b),
        ">=" => (a, a >= b),
        "<" => (a, a < b),
        "<=" => (a, a <= b),
        _ => (f64::NAN, false),
    }
}

fn is_arithmetic(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/")
}

fn is_set(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

/// How two vectors' samples are matched.
struct Matching<'a> {
    /// `on (…)`: these labels; `ignoring (…)` (or nothing): all labels but
    /// these and the name.
    on: bool,
    labels: &'a [String],
    /// `group_left (…)`: the labels copied from the right-hand side.
    group_left: Option<&'a [String]>,
}

impl Matching<'_> {
    fn of(b: &BinaryExpr) -> Matching<'_> {
        let modifier = b.modifier.as_ref();
        let (on, labels): (bool, &[String]) = match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, &l.labels),
            Some(LabelModifier::Exclude(l)) => (false, &l.labels),
            None => (false, &[]),
        };
        let group_left = match modifier.map(|m| &m.card) {
            Some(VectorMatchCardinality::ManyToOne(l)) => Some(l.labels.as_slice()),
            _ => None,
        };
        Matching {
            on,
            labels,
            group_left,
        }
    }

    fn signature(&self, labels: &Labels) -> Labels {
        labels
            .iter()
            .filter(|(k, _)| {
                if self.on {
                    self.labels.contains(k)
                } else {
                    *k != NAME && !self.labels.contains(k)
                }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn binary(b: &BinaryExpr, lhs: Value, rhs: Value) -> Result<Value, EvalError> {
    check_binary(b)?;
    let op = b.op.to_string();
    match (lhs, rhs) {
        (Value::Scalar(a), Value::Scalar(c)) => {
            if is_arithmetic(&op) {
                Ok(Value::Scalar(apply(&op, a, c).0))
            } else {
                error(format!("`{op}` between two scalars needs `bool`"))
            }
        }
        (Value::Vector(v), Value::Scalar(x)) => vector_scalar(&op, v, x, false),
        (Value::Scalar(x), Value::Vector(v)) => vector_scalar(&op, v, x, true),
        (Value::Vector(l), Value::Vector(r)) if is_set(&op) => {
            Ok(Value::Vector(set(&op, l, &r, &Matching::of(b))))
        }
        (Value::Vector(l), Value::Vector(r)) => {
            vector_vector(&op, l, &r, &Matching::of(b)).map(Value::Vector)
        }
    }
}

fn vector_scalar(op: &str, v: Vec<Sample>, x: f64, scalar_first: bool) -> Result<Value, EvalError> {
    if is_set(op) {
        return error(format!("`{op}` needs vectors on both sides"));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut sample in v {
        let (a, b) = if scalar_first {
            (x, sample.value)
        } else {
            (sample.value, x)
        };
        let (value, keep) = apply(op, a, b);
        if !keep {
            continue;
        }
        if is_arithmetic(op) {
            sample.value = value;
            sample.labels.remove(NAME);
        }
        // A comparison keeps the vector's value, whichever side it is on.
        out.push(sample);
    }
    Ok(Value::Vector(out))
}

fn set(op: &str, lhs: Vec<Sample>, rhs: &[Sample], matching: &Matching<'_>) -> Vec<Sample> {
    let right: BTreeSet<Labels> = rhs.iter().map(|s| matching.signature(&s.labels)).collect();
    match op {
        "and" => lhs
            .into_iter()
            .filter(|s| right.contains(&matching.signature(&s.labels)))
            .collect(),
        "unless" => lhs
            .into_iter()
            .filter(|s| !right.contains(&matching.signature(&s.labels)))
            .collect(),
        _ => {
            let left: BTreeSet<Labels> =
                lhs.iter().map(|s| matching.signature(&s.labels)).collect();
            let mut out = lhs;
            out.extend(
                rhs.iter()
                    .filter(|s| !left.contains(&matching.signature(&s.labels)))
                    .cloned(),
            );
            out
        }
    }
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: &[Sample],
    matching: &Matching<'_>,
) -> Result<Vec<Sample>, EvalError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let mut right: HashMap<Labels, &Sample> = HashMap::new();
    for sample in rhs {
        if right
            .insert(matching.signature(&sample.labels), sample)
            .is_some()
        {
            return error(
                "found duplicate series for the match group on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
            );
        }
    }
    // One-to-one: the match groups seen; many-to-one: the result label
    // sets seen.
    let mut matched: BTreeSet<Labels> = BTreeSet::new();
    let mut out = Vec::new();
    for sample in lhs {
        let sig = matching.signature(&sample.labels);
        let Some(other) = right.get(&sig) else {
            continue;
        };
        let (value, keep) = apply(op, sample.value, other.value);
        if !keep {
            continue;
        }
        let mut labels = sample.labels;
        if is_arithmetic(op) {
            labels.remove(NAME);
        }
        match matching.group_left {
            None => {
                if matching.on {
                    labels.retain(|k, _| matching.labels.contains(k));
                } else {
                    labels.retain(|k, _| !matching.labels.contains(k));
                }
            }
            Some(extra) => {
                for name in extra {
                    match other.labels.get(name) {
                        Some(v) if !v.is_empty() => {
                            labels.insert(name.clone(), v.clone());
                        }
                        _ => {
                            labels.remove(name);
                        }
                    }
                }
            }
        }
        // After the comparison, as the engine checks: two left-hand series
        // of one match group are refused only when both pass the filter.
        let seen = if matching.group_left.is_none() {
            sig
        } else {
            labels.clone()
        };
        if !matched.insert(seen) {
            return error(if matching.group_left.is_none() {
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            } else {
                "multiple matches for labels: grouping labels must ensure unique matches"
            });
        }
        out.push(Sample { labels, value });
    }
    Ok(out)
}

/// An alert as `ALERTS` names it: the alert's name and its labels (the
/// result's, without the metric name, then the rule's own).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertId {
    pub alert: String,
    pub labels: Labels,
}

/// An active alert's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Its condition holds, not yet for its `for:`.
    Pending,
    Firing,
}

impl State {
    /// `ALERTS`'s `alertstate`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }
}

/// One evaluation: when, and the active alerts after it.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// ms.
    pub t: i64,
    pub alerts: BTreeMap<AlertId, State>,
}

/// The active alerts at every evaluation step.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub steps: Vec<Step>,
}

impl Timeline {
    /// Each alert that fired in `[from, to]` (ms), with the first and the
    /// last step it was firing at within that range.
    #[must_use]
    pub fn fired_between(&self, from: i64, to: i64) -> BTreeMap<AlertId, (i64, i64)> {
        let mut out: BTreeMap<AlertId, (i64, i64)> = BTreeMap::new();
        for step in self.steps.iter().filter(|s| (from..=to).contains(&s.t)) {
            for (alert, state) in &step.alerts {
                if *state == State::Firing {
                    out.entry(alert.clone())
                        .and_modify(|span| span.1 = step.t)
                        .or_insert((step.t, step.t));
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct Active {
    since: i64,
    firing: bool,
}

/// Checks that every rule of `groups` is one this evaluator runs.
///
/// # Errors
///
/// The first rule it would not run faithfully, naming the rule and the
/// construct.
pub fn check_groups(groups: &[&Group]) -> Result<(), EvalError> {
    for group in groups {
        if group.interval.is_some() {
            return unsupported(format_args!(
                "group `{}`'s own `interval:` (every group runs at the one step given)",
                group.name
            ));
        }
        if group.limit.is_some() {
            return unsupported(format_args!("group `{}`'s `limit:`", group.name));
        }
        for rule in &group.rules {
            let context = |e: EvalError| EvalError(format!("{}: {e}", rule.name));
            if rule.keep_firing_for.is_some() {
                return Err(context(EvalError(
                    "the built-in evaluator does not run `keep_firing_for:`".into(),
                )));
            }
            if rule.kind == Kind::Alert {
                if let Some((k, _)) = rule.labels.iter().find(|(_, v)| v.contains("{{")) {
                    return Err(context(EvalError(format!(
                        "the built-in evaluator does not expand templates in labels (`{k}`)"
                    ))));
                }
            }
            check(&rule.expr).map_err(context)?;
        }
    }
    Ok(())
}

/// Evaluates `groups`, in this order, at every `step` ms from 0 to `until`
/// inclusive (promtool's `group_eval_order`), writing recorded series into
/// `storage`.
///
/// # Errors
///
/// A rule [`check_groups`] refuses, before anything is evaluated; else the
/// first evaluation the engine would refuse, with the rule's name and the
/// time.
pub fn run_groups(
    groups: &[&Group],
    storage: &mut Storage,
    until: i64,
    step: i64,
) -> Result<Timeline, EvalError> {
    check_groups(groups)?;
    if step <= 0 {
        return error("the evaluation step must be positive");
    }
    let rules: Vec<&Rule> = groups.iter().flat_map(|g| &g.rules).collect();
    let mut previous: Vec<BTreeSet<Labels>> = vec![BTreeSet::new(); rules.len()];
    let mut active: Vec<BTreeMap<Labels, Active>> = vec![BTreeMap::new(); rules.len()];
    let mut timeline = Timeline::default();
    let mut t = 0;
    while t <= until {
        let mut alerts = BTreeMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let context = |e: EvalError| EvalError(format!("{} at {t} ms: {e}", rule.name));
            // A rule's scalar is a sample without labels, as the rule
            // manager's query function makes it.
            let result = match eval(storage, &rule.expr, t).map_err(context)? {
                Value::Vector(v) => v,
                Value::Scalar(value) => vec![Sample {
                    labels: Labels::new(),
                    value,
                }],
            };
            let mut now = BTreeSet::new();
            for sample in result {
                let mut labels = sample.labels;
                if rule.kind == Kind::Alert {
                    labels.remove(NAME);
                }
                for (k, v) in &rule.labels {
                    if v.is_empty() {
                        labels.remove(k);
                    } else {
                        labels.insert(k.clone(), v.clone());
                    }
                }
                match rule.kind {
                    Kind::Record => labels.insert(NAME.to_owned(), rule.name.clone()),
                    Kind::Alert => labels.insert("alertname".to_owned(), rule.name.clone()),
                };
                if !now.insert(labels.clone()) {
                    return Err(context(EvalError(format!(
                        "vector contains metrics with the same labelset after applying {} labels",
                        if rule.kind == Kind::Record {
                            "rule"
                        } else {
                            "alert"
                        }
                    ))));
                }
                if rule.kind == Kind::Record {
                    storage.push(&labels, t, sample.value);
                }
            }
            match rule.kind {
                Kind::Record => {
                    for gone in previous[i].difference(&now) {
                        storage.push_stale(gone, t);
                    }
                    previous[i] = now;
                }
                Kind::Alert => {
                    let state = &mut active[i];
                    state.retain(|labels, _| now.contains(labels));
                    let hold = rule.hold.map_or(0, crate::duration::Dur::as_millis);
                    for labels in now {
                        let entry = state.entry(labels.clone()).or_insert(Active {
                            since: t,
                            firing: false,
                        });
                        if !entry.firing && t - entry.since >= hold {
                            entry.firing = true;
                        }
                        let mut labels = labels;
                        labels.remove("alertname");
                        let id = AlertId {
                            alert: rule.name.clone(),
                            labels,
                        };
                        let state = if entry.firing {
                            State::Firing
                        } else {
                            State::Pending
                        };
                        alerts.insert(id, state);
                    }
                }
            }
        }
        timeline.steps.push(Step { t, alerts });
        t += step;
    }
    Ok(timeline)
}

/// A label set from `(name, value)` pairs, for the tests here and in
/// `shipped`.
#[cfg(test)]
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleFile;

    fn parse(expr: &str) -> Expr {
        promql_parser::parser::parse(expr).unwrap()
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "exact figures")]
    fn rate_extrapolates_as_prometheus_does() {
        // Aligned samples covering the whole window: no extrapolation.
        assert_eq!(
            extrapolated_rate(
                &[(0, 0.0), (60_000, 60.0), (120_000, 120.0)],
                0,
                120_000,
                120_000
            ),
            Some(1.0)
        );
        // A counter starting mid-window extrapolates to its zero point at most.
        let r = extrapolated_rate(&[(60_000, 10.0), (120_000, 70.0)], 0, 120_000, 120_000).unwrap();
        assert!((r - 70.0 / 120.0).abs() < 1e-12, "{r}");
        // A reset adds the value before it: 50, then 5 after the reset, then 15.
        let r = extrapolated_rate(
            &[(0, 50.0), (60_000, 5.0), (120_000, 15.0)],
            0,
            120_000,
            120_000,
        )
        .unwrap();
        assert!((r - 15.0 / 120.0).abs() < 1e-12, "{r}");
        assert_eq!(extrapolated_rate(&[(0, 1.0)], 0, 60_000, 60_000), None);
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "exact figures")]
    fn quantiles_interpolate_within_a_bucket() {
        let b = |pairs: &[(f64, f64)]| pairs.to_vec();
        assert!(
            (bucket_quantile(
                0.99,
                b(&[(0.01, 0.0), (0.025, 60.0), (f64::INFINITY, 60.0)])
            ) - 0.02485)
                .abs()
                < 1e-12
        );
        assert_eq!(
            bucket_quantile(0.5, b(&[(1.0, 0.0), (f64::INFINITY, 10.0)])),
            1.0
        );
        assert!(bucket_quantile(0.5, b(&[(1.0, 0.0), (f64::INFINITY, 0.0)])).is_nan());
        assert!(bucket_quantile(0.5, b(&[(1.0, 3.0)])).is_nan());
        for (text, value) in [
            ("0.1", Some(0.1)),
            ("1e-1", Some(0.1)),
            ("+Inf", Some(f64::INFINITY)),
            ("inf", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            (".5", Some(0.5)),
            ("x", None),
            ("", None),
            ("--1", None),
        ] {
            assert_eq!(parse_go_float(text).unwrap(), value, "{text}");
        }
        assert!(parse_go_float("0x1p-2").is_err());
    }

    #[test]
    fn recording_rules_go_stale_and_alerts_wait_for_their_hold() {
        let mut storage = Storage::default();
        for k in 0..=20 {
            let v = if (5..=12).contains(&k) { 9.0 } else { 0.0 };
            storage.push(&labels(&[(NAME, "x"), ("job", "a")]), k * 60_000, v);
        }
        let file = RuleFile::parse(
            "f",
            "groups:\n  - name: g\n    rules:\n      - record: high\n        expr: x > 5\n      - alert: Hi\n        expr: high\n        for: 3m\n        labels:\n          severity: page\n",
        )
        .unwrap();
        let groups: Vec<&Group> = file.groups().iter().collect();
        let timeline = run_groups(&groups, &mut storage, 20 * 60_000, 60_000).unwrap();
        let fired = timeline.fired_between(0, 20 * 60_000);
        let id = AlertId {
            alert: "Hi".into(),
            labels: labels(&[("job", "a"), ("severity", "page")]),
        };
        // A scalar recorded is a series of the rule's name alone.
        let file = RuleFile::parse(
            "f",
            "groups:\n  - name: g\n    rules:\n      - record: one\n        expr: 2 * 0.5\n",
        )
        .unwrap();
        let groups: Vec<&Group> = file.groups().iter().collect();
        let mut scalars = Storage::default();
        run_groups(&groups, &mut scalars, 0, 60_000).unwrap();
        assert_eq!(
            instant_vector(&scalars, &parse("one"), 0).unwrap(),
            [Sample {
                labels: labels(&[(NAME, "one")]),
                value: 1.0
            }]
        );
        // Pending from minute 5, firing from 8 through 12; `high` went
        // stale at 13, so the alert did not linger for the lookback.
        assert_eq!(
            fired,
            BTreeMap::from([(id.clone(), (8 * 60_000, 12 * 60_000))])
        );
        assert_eq!(timeline.steps[5].alerts[&id], State::Pending);
    }

    #[test]
    fn matching_follows_the_engine() {
        let mut storage = Storage::default();
        for (job, v) in [("a", 1.0), ("b", 2.0)] {
            storage.push(
                &labels(&[(NAME, "n"), ("job", job), ("instance", "i")]),
                0,
                v,
            );
            storage.push(
                &labels(&[(NAME, "n"), ("job", job), ("instance", "i")]),
                60_000,
                v * 61.0,
            );
        }
        let out = instant_vector(&storage, &parse("sum by (job) (rate(n[1m]))"), 60_000).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, labels(&[("job", "a")]));
        assert!((out[0].value - 1.0).abs() < 1e-12);
        // One-to-one matching on `on` keeps only those labels.
        let out = instant_vector(&storage, &parse("n / on (job) n"), 60_000).unwrap();
        assert_eq!(
            out[0],
            Sample {
                labels: labels(&[("job", "a")]),
                value: 1.0
            }
        );
        // `ignoring` drops what it names, and keeps the name of a comparison.
        let out = instant_vector(&storage, &parse("n >= ignoring (instance) n"), 60_000).unwrap();
        assert_eq!(out[0].labels, labels(&[(NAME, "n"), ("job", "a")]));
        // Two series on one side of a one-to-one match are refused.
        assert!(instant_vector(&storage, &parse("n / on () n"), 60_000).is_err());
    }

    /// A comparison filters before the one-to-one duplicate check, as the
    /// engine's `VectorBinop` does: `a > on (job) b` with two `a` series of
    /// one job is an error only when both pass.
    #[test]
    fn one_to_one_duplicates_are_checked_after_the_comparison() {
        let mut storage = Storage::default();
        for (instance, v) in [("x", 1.0), ("y", 3.0)] {
            storage.push(
                &labels(&[(NAME, "a"), ("job", "j"), ("instance", instance)]),
                0,
                v,
            );
        }
        storage.push(&labels(&[(NAME, "b"), ("job", "j")]), 0, 2.0);
        assert_eq!(
            instant_vector(&storage, &parse("a > on (job) b"), 0).unwrap(),
            [Sample {
                labels: labels(&[("job", "j")]),
                value: 3.0
            }]
        );
        // Both pass: the engine's error.
        let error = instant_vector(&storage, &parse("a > on (job) 0 * b"), 0).unwrap_err();
        assert!(
            error.0.starts_with("multiple matches for labels"),
            "{error}"
        );
    }

    /// PromQL beyond what the rules use is an error naming it, before any
    /// evaluation, never a result.
    #[test]
    fn what_it_does_not_run_is_an_error_naming_it() {
        for (expr, named) in [
            ("absent(x)", "the function `absent`"),
            ("avg by (job) (x)", "the aggregation `avg`"),
            ("sum without (job) (x)", "`sum without (…)`"),
            ("x offset 5m", "`offset`"),
            ("x @ 100", "the `@` modifier"),
            ("x > bool 1", "`> bool`"),
            ("x % 2", "the operator `%`"),
            ("x ^ 2", "the operator `^`"),
            ("x * on (job) group_right () y", "`group_right`"),
            ("rate(x[5m:1m])", "the subquery"),
            ("max_over_time(x[5m])", "the function `max_over_time`"),
            ("-x", "unary minus"),
            (
                "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")",
                "the function `label_replace`",
            ),
        ] {
            let error = check(&parse(expr)).expect_err(expr).0;
            assert!(
                error.starts_with("the built-in evaluator does not run ") && error.contains(named),
                "{expr}: {error}"
            );
            let storage = Storage::default();
            assert!(instant_vector(&storage, &parse(expr), 0).is_err(), "{expr}");
        }
        let file = RuleFile::parse(
            "f",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: absent(up)\n",
        )
        .unwrap();
        let groups: Vec<&Group> = file.groups().iter().collect();
        let error = run_groups(&groups, &mut Storage::default(), 0, 60_000).unwrap_err();
        assert!(
            error
                .0
                .starts_with("A: the built-in evaluator does not run the function `absent`"),
            "{error}"
        );
        let file = RuleFile::parse(
            "f",
            "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - record: r\n        expr: vector(1)\n",
        )
        .unwrap();
        let groups: Vec<&Group> = file.groups().iter().collect();
        let error = run_groups(&groups, &mut Storage::default(), 0, 60_000).unwrap_err();
        assert!(error.0.contains("`interval:`"), "{error}");
    }
}
