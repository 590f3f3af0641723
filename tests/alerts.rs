//! The shipped Prometheus rules (`runtime/alerts/`): valid for `promtool
//! check rules`, their unit tests pass under `promtool test rules`, and they
//! read the series the `metrics` feature writes.
//!
//! The promtool tests are ignored by default (they need the binary); CI runs
//! them with `--include-ignored`, and then a missing promtool is a failure
//! that says what to install, never a silent pass.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NEEDS_PROMTOOL: &str = "needs promtool on PATH (apt-get install prometheus)";

fn alerts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/alerts")
}

fn rules_file() -> PathBuf {
    alerts_dir().join("selftime.rules.yml")
}

/// Runs promtool in `dir`; panics if it cannot be started or does not succeed.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output: Output = match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("{NEEDS_PROMTOOL}: {e}"),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        output.status
    );
    stdout
}

#[test]
#[ignore = "needs promtool on PATH (apt-get install prometheus)"]
fn rules_pass_promtool_check() {
    let out = promtool(
        &alerts_dir(),
        &[
            "check",
            "rules",
            "selftime.rules.yml",
            "tests/overrides.rules.yml",
        ],
    );
    assert_eq!(
        out.matches("SUCCESS").count(),
        2,
        "both files should check:\n{out}"
    );
}

#[test]
#[ignore = "needs promtool on PATH (apt-get install prometheus)"]
fn rules_pass_their_promtool_unit_tests() {
    let dir = alerts_dir().join("tests");
    let mut tests: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.yml"))
        .collect();
    tests.sort();
    // A dependency slowing down, the handler slowing down, error ratios,
    // per-handler thresholds: if a file goes missing, say so.
    assert_eq!(
        tests,
        [
            "error_ratio.test.yml",
            "internal_latency.test.yml",
            "per_handler_thresholds.test.yml"
        ]
    );
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let out = promtool(&dir, &args);
    assert_eq!(
        out.matches("SUCCESS").count(),
        tests.len(),
        "every test file should pass:\n{out}"
    );
}

#[test]
fn rules_read_the_series_the_metrics_feature_writes() {
    let rules = std::fs::read_to_string(rules_file()).expect("the rules file");
    for series in [
        format!("{}_bucket", selftime::metrics::INTERNAL_SECONDS),
        format!("{}_bucket", selftime::metrics::TOTAL_SECONDS),
        selftime::metrics::REQUESTS_TOTAL.to_owned(),
    ] {
        assert!(
            rules.contains(&format!("rate({series}")),
            "the rules do not read `{series}`"
        );
    }
    // Failures are the `error` and `panic` outcomes, spelled as the crate
    // spells them; `cancelled` is not one.
    let failures = format!(
        "{{outcome=~\"{}|{}\"}}",
        selftime::Outcome::Error,
        selftime::Outcome::Panic
    );
    assert!(
        rules.contains(&format!(
            "rate({}{failures}",
            selftime::metrics::REQUESTS_TOTAL
        )),
        "the error ratio does not count `{failures}`"
    );
}

/// The default latency threshold sits on a bucket bound of
/// `selftime::metrics::BUCKETS`, where "p99 over the threshold" is exact.
#[test]
fn default_latency_threshold_is_a_bucket_bound() {
    let rules = std::fs::read_to_string(rules_file()).expect("the rules file");
    let record = "record: selftime:internal_p99_threshold_seconds:default";
    let after = &rules[rules.find(record).expect("the default threshold rule") + record.len()..];
    let expr = after
        .lines()
        .find_map(|line| line.trim().strip_prefix("expr: vector("))
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("the default threshold is `expr: vector(<seconds>)`");
    let threshold: f64 = expr.parse().expect("a number of seconds");
    assert!(
        selftime::metrics::BUCKETS.contains(&threshold),
        "{threshold} is not in {:?}",
        selftime::metrics::BUCKETS
    );
}
