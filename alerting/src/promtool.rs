//! `promtool test rules` as an evaluator: recorded samples become a test's
//! input series, and each question ("which alerts fired between these two
//! steps, and when first") becomes a PromQL expression test expecting
//! nothing, whose failure report lists what promtool's engine found.

use crate::duration::Dur;
use crate::eval::{Labels, NAME, Storage};
use crate::exposition::{float, label_pairs};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One PromQL question, evaluated after all the rules have run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub expr: String,
    /// When, in ms from the first sample.
    pub at: i64,
}

/// What went wrong running promtool.
#[derive(Debug)]
pub enum Error {
    /// It could not be started (not installed: `io::ErrorKind::NotFound`).
    Start(io::Error),
    /// It ran and reported something other than expression results.
    Failed(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Start(e) => write!(f, "cannot run promtool: {e}"),
            Self::Failed(output) => write!(f, "promtool test rules failed:\n{output}"),
        }
    }
}

impl std::error::Error for Error {}

/// `promtool --version`'s first line, or `None` when it is not on the PATH.
#[must_use]
pub fn version() -> Option<String> {
    let output = Command::new("promtool").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().next().map(str::to_owned)
}

/// A `promtool test rules` file: `rule_files`, their groups evaluated in
/// `group_order` (promtool otherwise picks an order at random at each
/// step), the samples of `input` as input series sampled every `step`, and
/// one expression test per query.
#[must_use]
pub fn test_file(
    rule_files: &[PathBuf],
    group_order: &[&str],
    input: &Storage,
    step: Dur,
    queries: &[Query],
) -> String {
    let step_ms = step.as_millis();
    let mut out = String::from("rule_files:\n");
    for file in rule_files {
        let _ = writeln!(out, "  - {}", single_quoted(&file.to_string_lossy()));
    }
    out.push_str("\ngroup_eval_order:\n");
    for group in group_order {
        let _ = writeln!(out, "  - {}", single_quoted(group));
    }
    let _ = writeln!(
        out,
        "\nevaluation_interval: {step}\n\ntests:\n  - interval: {step}\n    input_series:"
    );
    for (labels, points) in input.series() {
        let Some(&(last, _)) = points.last() else {
            continue;
        };
        let mut values: Vec<String> =
            vec!["_".to_owned(); usize::try_from(last / step_ms + 1).unwrap_or(0)];
        for &(t, v) in points {
            if t % step_ms == 0 {
                if let (Ok(i), Some(v)) = (usize::try_from(t / step_ms), v) {
                    values[i] = number(v);
                }
            }
        }
        let _ = writeln!(
            out,
            "      - series: {}\n        values: '{}'",
            single_quoted(&series_notation(labels)),
            values.join(" ")
        );
    }
    out.push_str("    promql_expr_test:\n");
    for query in queries {
        let _ = writeln!(
            out,
            "      - expr: {}\n        eval_time: {}\n        exp_samples: []",
            single_quoted(&query.expr),
            millis(query.at)
        );
    }
    out
}

/// `ms` as promtool prints an evaluation time (`14m`).
#[must_use]
pub fn millis(ms: i64) -> String {
    Dur::secs(u64::try_from(ms / 1_000).unwrap_or(0)).to_string()
}

/// A number as PromQL and promtool read it back exactly: Rust's shortest
/// round-trip form, or promtool's spelling of infinities and NaN.
#[must_use]
pub fn number(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if x.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{x}")
    }
}

/// A string literal in double quotes, escaped the way PromQL reads it.
#[must_use]
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` in YAML's single quotes.
#[must_use]
pub fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `name{k="v", …}`, as promtool reads a series.
#[must_use]
pub fn series_notation(labels: &Labels) -> String {
    let name = labels.get(NAME).map_or("", String::as_str);
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != NAME)
        .map(|(k, v)| format!("{k}={}", quoted(v)))
        .collect();
    format!("{name}{{{}}}", pairs.join(", "))
}

/// Runs `promtool test rules` on `test_file` (written into `dir`) and
/// returns each query's result, in query order.
///
/// # Errors
///
/// promtool missing, or reporting anything but the queries' results.
pub fn run(dir: &Path, test: &str, queries: &[Query]) -> Result<Vec<Vec<(Labels, f64)>>, Error> {
    let path = dir.join("replay.test.yml");
    std::fs::write(&path, test).map_err(Error::Start)?;
    let found = run_file(&path)?;
    Ok(queries
        .iter()
        .map(|q| {
            found
                .get(&(q.expr.clone(), millis(q.at)))
                .cloned()
                .unwrap_or_default()
        })
        .collect())
}

/// Runs `promtool test rules` on the test file at `path`, whose
/// expression tests all expect nothing, and returns what each found, by
/// (expression, evaluation time as promtool prints it, such as `14m`).
///
/// # Errors
///
/// promtool missing, or reporting anything but expression results.
pub fn run_file(path: &Path) -> Result<Found, Error> {
    let output = Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(path)
        .output()
        .map_err(Error::Start)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!("{stdout}{stderr}");
    let found = parse_report(&report).ok_or_else(|| Error::Failed(report.clone()))?;
    // Success means every query found nothing; a failure must be made of
    // query results only.
    if output.status.success() != found.is_empty() {
        return Err(Error::Failed(report));
    }
    Ok(found)
}

/// Samples by (expression, evaluation time).
pub type Found = BTreeMap<(String, String), Vec<(Labels, f64)>>;

/// The expression failures of a promtool report: (expr, time) → samples.
/// `None` when the report holds anything else that failed.
#[must_use]
pub fn parse_report(report: &str) -> Option<Found> {
    let mut found = BTreeMap::new();
    let mut lines = report.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if line.is_empty()
            || line.starts_with("Unit Testing:")
            || line == "FAILED:"
            || line == "SUCCESS"
        {
            continue;
        }
        let rest = line.strip_prefix("expr: ")?;
        let (expr, after) = go_quoted(rest)?;
        let time = after
            .strip_prefix(", time: ")?
            .trim_end_matches(',')
            .to_owned();
        let _exp = lines.next().filter(|l| l.starts_with("exp:"))?;
        let got = lines.next()?.strip_prefix("got:")?.trim();
        found.insert((expr, time), samples(got)?);
    }
    Some(found)
}

/// A Go `%q` string at the start of `text`, and what follows it.
fn go_quoted(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = inner.char_indices();
    loop {
        let (i, c) = chars.next()?;
        match c {
            '"' => return Some((value, &inner[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
}

/// `{k="v", …} 1.5E+00, {…} 2E+00` (or `nil`).
fn samples(mut text: &str) -> Option<Vec<(Labels, f64)>> {
    let mut out = Vec::new();
    if text == "nil" {
        return Some(out);
    }
    while !text.is_empty() {
        let (pairs, after) = label_pairs(text.strip_prefix('{')?)?;
        let after = after.trim_start();
        let end = after.find(", {").unwrap_or(after.len());
        let value = float(after[..end].trim())?;
        out.push((pairs.into_iter().collect(), value));
        text = after[end..].trim_start_matches(", ");
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact figures")]
mod tests {
    use super::*;

    #[test]
    fn reads_what_promtool_got() {
        let report = "Unit Testing:  replay.test.yml\n  FAILED:\n    expr: \"min_over_time(timestamp(ALERTS{alertstate=\\\"firing\\\"})[20m:1m])\", time: 14m,\n        exp: nil\n        got: {alertname=\"Hi\", handler=\"we,ird\\\"q\", job=\"b\"} 1.2E+02, {alertname=\"Hi\", job=\"a\"} 2.4E+02\n";
        let found = parse_report(report).unwrap();
        let got = &found[&(
            "min_over_time(timestamp(ALERTS{alertstate=\"firing\"})[20m:1m])".to_owned(),
            "14m".to_owned(),
        )];
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0["handler"], "we,ird\"q");
        assert_eq!(got[0].1, 120.0);
        assert_eq!(got[1].0["job"], "a");
        assert_eq!(got[1].1, 240.0);
        assert!(parse_report("  FAILED:\n    alertname: X, time: 10m,\n").is_none());
    }

    #[test]
    fn input_series_are_dense_with_gaps_marked() {
        let mut storage = Storage::default();
        let labels: Labels = [
            (NAME.to_owned(), "m".to_owned()),
            ("a".to_owned(), "x'y".to_owned()),
        ]
        .into();
        storage.push(&labels, 60_000, 1.5);
        storage.push(&labels, 180_000, 2.0);
        let file = test_file(
            &[PathBuf::from("r.yml")],
            &["g"],
            &storage,
            Dur::mins(1),
            &[Query {
                expr: "m".into(),
                at: 180_000,
            }],
        );
        assert!(
            file.starts_with("rule_files:\n  - 'r.yml'\n\ngroup_eval_order:\n  - 'g'\n\nevaluation_interval: 1m\n"),
            "{file}"
        );
        assert!(
            file.contains("      - series: 'm{a=\"x''y\"}'\n        values: '_ 1.5 _ 2'\n"),
            "{file}"
        );
        assert!(
            file.contains("      - expr: 'm'\n        eval_time: 3m\n        exp_samples: []\n"),
            "{file}"
        );
    }
}
