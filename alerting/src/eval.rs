//! The built-in evaluator: rule files run over recorded samples, PromQL's
//! way, for machines without `promtool`.
//!
//! It follows the engine of Prometheus 2.42, whose `promtool` (Debian 12's
//! `prometheus` package) the tests compare it with, step for step where
//! the result depends on it: instant selectors look back 5 minutes,
//! `rate` extrapolates as `extrapolatedRate` does, `histogram_quantile`
//! interpolates as `bucketQuantile` does (coalescing and monotonic fix-up
//! included), `sum` adds in series order, vector matching is one-to-one or
//! `group_left` many-to-one with the same errors, recording rules write
//! staleness markers for series that disappear, and alerts go pending,
//! then firing after their `for:`, as the rule manager's do. Groups and
//! rules are evaluated in file order at each step, as `promtool test
//! rules` does.
//!
//! Three of 2.42's semantics changed in later releases, and this
//! evaluator keeps 2.42's:
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

use crate::duration::Dur;
use crate::promql::{Expr, Matcher, Matching, Op, Selector};
use crate::rules::{Group, Rule, RuleFile};
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
    /// Series ids by metric name, sorted by label set: the order the
    /// engine sees them in, which is the order `sum` adds them in.
    by_name: HashMap<String, Vec<usize>>,
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

    fn matching<'a>(&'a self, selector: &'a Selector) -> impl Iterator<Item = &'a Series> + 'a {
        self.by_name
            .get(&selector.metric)
            .into_iter()
            .flatten()
            .map(|&id| &self.series[id])
            .filter(|s| selector.matchers.iter().all(|m| matches(m, &s.labels)))
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
    let value = |l: &str| labels.get(l).map_or("", String::as_str);
    match matcher {
        Matcher::Eq(l, v) => value(l) == v,
        Matcher::Ne(l, v) => value(l) != v,
        Matcher::OneOf(l, vs) => vs.iter().any(|v| v == value(l)),
    }
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

/// An evaluation the engine refuses, with the engine's reason.
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

/// Evaluates `expr` at `t` ms.
///
/// # Errors
///
/// What the engine refuses: many-to-many matching, duplicate series in a
/// result, a scalar where a vector is needed.
pub fn instant_vector(storage: &Storage, expr: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
    match eval(storage, expr, t)? {
        Value::Vector(v) => Ok(v),
        Value::Scalar(_) => error("expected an instant vector, got a scalar"),
    }
}

fn eval(storage: &Storage, expr: &Expr, t: i64) -> Result<Value, EvalError> {
    Ok(match expr {
        Expr::Number(x) => Value::Scalar(*x),
        Expr::Group(e) => eval(storage, e, t)?,
        Expr::Vector(x) => Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: *x,
        }]),
        Expr::Select(selector) => Value::Vector(
            storage
                .matching(selector)
                .filter_map(|s| {
                    Storage::instant(s, t).map(|value| Sample {
                        labels: s.labels.clone(),
                        value,
                    })
                })
                .collect(),
        ),
        Expr::Rate(selector, window) => {
            let range_ms = window.as_millis();
            Value::Vector(
                storage
                    .matching(selector)
                    .filter_map(|s| {
                        let points = Storage::range(s, t - range_ms, t);
                        extrapolated_rate(&points, t - range_ms, t, window.as_secs()).map(|value| {
                            let mut labels = s.labels.clone();
                            labels.remove(NAME);
                            Sample { labels, value }
                        })
                    })
                    .collect(),
            )
        }
        Expr::SumBy(by, e) => Value::Vector(aggregate(vector(storage, e, t)?, by, |a, b| a + b)),
        Expr::MaxBy(by, e) => Value::Vector(aggregate(vector(storage, e, t)?, by, |max, x| {
            if max < x || max.is_nan() {
                x
            } else {
                max
            }
        })),
        Expr::HistogramQuantile(q, e) => {
            Value::Vector(histogram_quantile(*q, vector(storage, e, t)?))
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            matching,
        } => binary(
            *op,
            eval(storage, lhs, t)?,
            eval(storage, rhs, t)?,
            matching,
        )?,
    })
}

fn vector(storage: &Storage, expr: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
    instant_vector(storage, expr, t)
}

/// Prometheus's `extrapolatedRate` for a counter, as a rate per second.
fn extrapolated_rate(points: &[(i64, f64)], start: i64, end: i64, range_secs: u64) -> Option<f64> {
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
    #[allow(clippy::cast_precision_loss, reason = "a window in seconds")]
    let factor = interval / sampled / range_secs as f64;
    Some(result * factor)
}

/// `sum by` / `max by`: groups in order of first appearance, each folded
/// in input order.
fn aggregate(input: Vec<Sample>, by: &[String], fold: impl Fn(f64, f64) -> f64) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for sample in input {
        let key: Labels = by
            .iter()
            .filter_map(|l| sample.labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect();
        if let Some(&i) = index.get(&key) {
            out[i].value = fold(out[i].value, sample.value);
        } else {
            index.insert(key.clone(), out.len());
            out.push(Sample {
                labels: key,
                value: sample.value,
            });
        }
    }
    out
}

/// `histogram_quantile` over classic buckets, grouped by every label but
/// `le` (and the name).
fn histogram_quantile(q: f64, input: Vec<Sample>) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for sample in input {
        let Some(bound) = sample.labels.get("le").and_then(|le| parse_float(le)) else {
            continue;
        };
        let mut key = sample.labels;
        key.remove("le");
        key.remove(NAME);
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((bound, sample.value));
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            value: bucket_quantile(q, buckets),
        })
        .collect()
}

/// A float as Go's `strconv.ParseFloat` reads it, for `le` values.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
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

fn arithmetic(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        _ => unreachable!("only arithmetic operators reach here"),
    }
}

fn compare(op: Op, a: f64, b: f64) -> bool {
    match op {
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        _ => unreachable!("only comparisons reach here"),
    }
}

fn without_name(labels: &Labels) -> Labels {
    let mut labels = labels.clone();
    labels.remove(NAME);
    labels
}

fn signature(labels: &Labels, matching: &Matching) -> Labels {
    match &matching.on {
        Some(on) => on
            .iter()
            .filter_map(|l| labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect(),
        None => without_name(labels),
    }
}

fn unique(samples: &[Sample], what: &str) -> Result<(), EvalError> {
    let mut seen = BTreeSet::new();
    for s in samples {
        if !seen.insert(&s.labels) {
            return error(format!(
                "{what}: vector cannot contain metrics with the same labelset"
            ));
        }
    }
    Ok(())
}

fn binary(op: Op, lhs: Value, rhs: Value, matching: &Matching) -> Result<Value, EvalError> {
    match (lhs, rhs) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if op.is_arithmetic() {
                Ok(Value::Scalar(arithmetic(op, a, b)))
            } else {
                error("comparisons and set operators between scalars need `bool`")
            }
        }
        (Value::Vector(v), Value::Scalar(x)) => vector_scalar(op, v, x, false),
        (Value::Scalar(x), Value::Vector(v)) => vector_scalar(op, v, x, true),
        (Value::Vector(l), Value::Vector(r)) if op.is_set() => {
            Ok(Value::Vector(set(op, l, &r, matching)))
        }
        (Value::Vector(l), Value::Vector(r)) => {
            vector_vector(op, l, &r, matching).map(Value::Vector)
        }
    }
}

fn vector_scalar(op: Op, v: Vec<Sample>, x: f64, scalar_first: bool) -> Result<Value, EvalError> {
    if op.is_set() {
        return error("set operators need vectors on both sides");
    }
    let mut out = Vec::with_capacity(v.len());
    for mut sample in v {
        let (a, b) = if scalar_first {
            (x, sample.value)
        } else {
            (sample.value, x)
        };
        if op.is_arithmetic() {
            sample.value = arithmetic(op, a, b);
            sample.labels.remove(NAME);
            out.push(sample);
        } else if compare(op, a, b) {
            out.push(sample);
        }
    }
    Ok(Value::Vector(out))
}

fn set(op: Op, lhs: Vec<Sample>, rhs: &[Sample], matching: &Matching) -> Vec<Sample> {
    let right: BTreeSet<Labels> = rhs.iter().map(|s| signature(&s.labels, matching)).collect();
    match op {
        Op::And => lhs
            .into_iter()
            .filter(|s| right.contains(&signature(&s.labels, matching)))
            .collect(),
        Op::Unless => lhs
            .into_iter()
            .filter(|s| !right.contains(&signature(&s.labels, matching)))
            .collect(),
        _ => {
            let left: BTreeSet<Labels> =
                lhs.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = lhs;
            out.extend(
                rhs.iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching)))
                    .cloned(),
            );
            out
        }
    }
}

fn vector_vector(
    op: Op,
    lhs: Vec<Sample>,
    rhs: &[Sample],
    matching: &Matching,
) -> Result<Vec<Sample>, EvalError> {
    let mut right: HashMap<Labels, &Sample> = HashMap::new();
    for sample in rhs {
        if right
            .insert(signature(&sample.labels, matching), sample)
            .is_some()
        {
            return error(if matching.group_left.is_some() {
                "found duplicate series for the match group on the right hand-side of the operation"
            } else {
                "many-to-many matching not allowed: matching labels must be unique on one side"
            });
        }
    }
    let mut matched: BTreeSet<Labels> = BTreeSet::new();
    let mut out = Vec::new();
    for sample in lhs {
        let sig = signature(&sample.labels, matching);
        let Some(other) = right.get(&sig) else {
            continue;
        };
        let value = if op.is_arithmetic() {
            arithmetic(op, sample.value, other.value)
        } else if compare(op, sample.value, other.value) {
            sample.value
        } else {
            continue;
        };
        // After the comparison, as the engine checks: two left-hand series
        // of one match group are refused only when both pass the filter.
        if matching.group_left.is_none() && !matched.insert(sig) {
            return error("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
        }
        let mut labels = sample.labels;
        if op.is_arithmetic() {
            labels.remove(NAME);
        }
        if matching.group_left.is_none() {
            if let Some(on) = &matching.on {
                labels.retain(|k, _| on.contains(k));
            }
        }
        for extra in matching.group_left.iter().flatten() {
            match other.labels.get(extra) {
                Some(v) if !v.is_empty() => {
                    labels.insert(extra.clone(), v.clone());
                }
                _ => {
                    labels.remove(extra);
                }
            }
        }
        out.push(Sample { labels, value });
    }
    if matching.group_left.is_some() {
        unique(&out, "group_left").map_err(|_| {
            EvalError(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            )
        })?;
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

#[derive(Clone, Copy, Debug)]
struct Active {
    since: i64,
    firing: bool,
}

/// The firing alerts at every evaluation step.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// (t ms, the alerts firing after the evaluation at t).
    pub steps: Vec<(i64, BTreeSet<AlertId>)>,
}

impl Timeline {
    /// Each alert that fired in `[from, to]` (ms), with the first and the
    /// last step it was firing at within that range.
    #[must_use]
    pub fn fired_between(&self, from: i64, to: i64) -> BTreeMap<AlertId, (i64, i64)> {
        let mut out: BTreeMap<AlertId, (i64, i64)> = BTreeMap::new();
        for (t, firing) in self.steps.iter().filter(|(t, _)| (from..=to).contains(t)) {
            for alert in firing {
                out.entry(alert.clone())
                    .and_modify(|span| span.1 = *t)
                    .or_insert((*t, *t));
            }
        }
        out
    }
}

/// Evaluates `files` (their groups in file order) at every `step` ms from
/// 0 to `until` inclusive, writing recorded series into `storage`.
///
/// # Errors
///
/// The first evaluation the engine would refuse, with the rule's name.
pub fn run(
    files: &[&RuleFile],
    storage: &mut Storage,
    until: i64,
    step: i64,
) -> Result<Timeline, EvalError> {
    let groups: Vec<&Group> = files.iter().flat_map(|f| &f.groups).collect();
    run_groups(&groups, storage, until, step)
}

/// Evaluates `groups`, in this order, at every `step` ms from 0 to `until`
/// inclusive (promtool's `group_eval_order`), writing recorded series into
/// `storage`.
///
/// # Errors
///
/// The first evaluation the engine would refuse, with the rule's name.
pub fn run_groups(
    groups: &[&Group],
    storage: &mut Storage,
    until: i64,
    step: i64,
) -> Result<Timeline, EvalError> {
    let rules: Vec<&Rule> = groups.iter().flat_map(|g| &g.rules).collect();
    let mut previous: Vec<BTreeSet<Labels>> = vec![BTreeSet::new(); rules.len()];
    let mut active: Vec<BTreeMap<Labels, Active>> = vec![BTreeMap::new(); rules.len()];
    let mut timeline = Timeline::default();
    let mut t = 0;
    while t <= until {
        let mut firing = BTreeSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let context = |e: EvalError| EvalError(format!("{} at {t} ms: {e}", rule.name()));
            match rule {
                Rule::Record(record) => {
                    let result = instant_vector(storage, &record.expr, t).map_err(context)?;
                    let mut now = BTreeSet::new();
                    for sample in result {
                        let mut labels = sample.labels;
                        for (k, v) in &record.labels {
                            labels.insert(k.clone(), v.clone());
                        }
                        labels.insert(NAME.to_owned(), record.name.clone());
                        if !now.insert(labels.clone()) {
                            return Err(context(EvalError("vector contains metrics with the same labelset after applying rule labels".into())));
                        }
                        storage.push(&labels, t, sample.value);
                    }
                    for gone in previous[i].difference(&now) {
                        storage.append(gone, t, None);
                    }
                    previous[i] = now;
                }
                Rule::Alert(alert) => {
                    let result = instant_vector(storage, &alert.expr, t).map_err(context)?;
                    let mut now = BTreeSet::new();
                    for sample in result {
                        let mut labels = without_name(&sample.labels);
                        for (k, v) in &alert.labels {
                            labels.insert(k.clone(), v.clone());
                        }
                        labels.insert("alertname".to_owned(), alert.name.clone());
                        if !now.insert(labels) {
                            return Err(context(EvalError("vector contains metrics with the same labelset after applying alert labels".into())));
                        }
                    }
                    let state = &mut active[i];
                    state.retain(|labels, _| now.contains(labels));
                    let hold = alert.hold.map_or(0, Dur::as_millis);
                    for labels in now {
                        let entry = state.entry(labels.clone()).or_insert(Active {
                            since: t,
                            firing: false,
                        });
                        if !entry.firing && t - entry.since >= hold {
                            entry.firing = true;
                        }
                        if entry.firing {
                            let mut labels = labels;
                            labels.remove("alertname");
                            firing.insert(AlertId {
                                alert: alert.name.clone(),
                                labels,
                            });
                        }
                    }
                }
            }
        }
        timeline.steps.push((t, firing));
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
    use crate::promql::{rate, selector, series, sum_by};

    #[test]
    #[allow(clippy::float_cmp, reason = "exact figures")]
    fn rate_extrapolates_as_prometheus_does() {
        // Aligned samples covering the whole window: no extrapolation.
        assert_eq!(
            extrapolated_rate(
                &[(0, 0.0), (60_000, 60.0), (120_000, 120.0)],
                0,
                120_000,
                120
            ),
            Some(1.0)
        );
        // A counter starting mid-window extrapolates to its zero point at most.
        let r = extrapolated_rate(&[(60_000, 10.0), (120_000, 70.0)], 0, 120_000, 120).unwrap();
        assert!((r - 70.0 / 120.0).abs() < 1e-12, "{r}");
        // A reset adds the value before it: 50, then 5 after the reset, then 15.
        let r = extrapolated_rate(
            &[(0, 50.0), (60_000, 5.0), (120_000, 15.0)],
            0,
            120_000,
            120,
        )
        .unwrap();
        assert!((r - 15.0 / 120.0).abs() < 1e-12, "{r}");
        assert_eq!(extrapolated_rate(&[(0, 1.0)], 0, 60_000, 60), None);
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
    }

    #[test]
    fn recording_rules_go_stale_and_alerts_wait_for_their_hold() {
        let mut storage = Storage::default();
        for k in 0..=20 {
            let v = if (5..=12).contains(&k) { 9.0 } else { 0.0 };
            storage.push(&labels(&[(NAME, "x"), ("job", "a")]), k * 60_000, v);
        }
        let file = RuleFile {
            header: vec![],
            groups: vec![crate::rules::Group {
                name: "g".into(),
                comment: vec![],
                rules: vec![
                    Rule::Record(crate::rules::Record {
                        comment: vec![],
                        name: "high".into(),
                        expr: series("x").op(Op::Gt, crate::promql::num(5.0)),
                        labels: vec![],
                    }),
                    Rule::Alert(crate::rules::Alert {
                        comment: vec![],
                        name: "Hi".into(),
                        expr: series("high"),
                        hold: Some(Dur::mins(3)),
                        labels: vec![("severity".into(), "page".into())],
                        annotations: vec![],
                    }),
                ],
            }],
        };
        let timeline = run(&[&file], &mut storage, 20 * 60_000, 60_000).unwrap();
        let fired = timeline.fired_between(0, 20 * 60_000);
        let id = AlertId {
            alert: "Hi".into(),
            labels: labels(&[("job", "a"), ("severity", "page")]),
        };
        // Pending from minute 5, firing from 8 through 12; `high` went
        // stale at 13, so the alert did not linger for the lookback.
        assert_eq!(fired, BTreeMap::from([(id, (8 * 60_000, 12 * 60_000))]));
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
        let per_job = sum_by(&["job"], rate(selector("n", &[]), Dur::mins(1)));
        let out = instant_vector(&storage, &per_job, 60_000).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, labels(&[("job", "a")]));
        assert!((out[0].value - 1.0).abs() < 1e-12);
        // One-to-one matching on `on` keeps only those labels.
        let ratio = series("n").op_on(Op::Div, &["job"], series("n"));
        let out = instant_vector(&storage, &ratio, 60_000).unwrap();
        assert_eq!(
            out[0],
            Sample {
                labels: labels(&[("job", "a")]),
                value: 1.0
            }
        );
        // Two series on one side of a one-to-one match are refused.
        let many = series("n").op_on(Op::Div, &[], series("n"));
        assert!(instant_vector(&storage, &many, 60_000).is_err());
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
        let over = series("a").op_on(Op::Gt, &["job"], series("b"));
        assert_eq!(
            instant_vector(&storage, &over, 0).unwrap(),
            [Sample {
                labels: labels(&[("job", "j")]),
                value: 3.0
            }]
        );
        // Both pass: the engine's error.
        let under = series("a").op_on(
            Op::Gt,
            &["job"],
            crate::promql::num(0.0).op(Op::Mul, series("b")),
        );
        let error = instant_vector(&storage, &under, 0).unwrap_err();
        assert!(
            error.0.starts_with("multiple matches for labels"),
            "{error}"
        );
    }
}
