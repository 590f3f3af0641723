//! The shipped Prometheus rules (`runtime/alerts/`): the file is the rules
//! generator's default output, every window and `for:` is one its flags
//! rewrite, the rules read the series the `metrics` feature writes, they pass
//! `promtool check rules` and their `promtool test rules` unit tests, and
//! the Alertmanager routing example passes `amtool check-config` and routes
//! every alert of the incident demo where the demo says it goes.
//!
//! The promtool and amtool tests are ignored by default (they need the
//! binaries); CI runs them with `--include-ignored`, and then a missing
//! binary is a failure that says what to install, never a silent pass.

#[allow(dead_code)]
#[path = "../examples/rules.rs"]
mod generator;
use incident::teams;

use selftime_alerting::duration::Dur;
use selftime_alerting::eval::Labels;
use selftime_alerting::rules::RuleFile;
use selftime_alerting::settings::Settings;
use selftime_alerting::shipped::{self, alerts};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

fn alerts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/alerts")
}

fn shipped_file() -> String {
    std::fs::read_to_string(alerts_dir().join("selftime.rules.yml")).expect("the rules file")
}

/// Runs `tool` in `dir`; panics if it cannot be started or does not succeed.
fn run(tool: &str, install: &str, dir: &Path, args: &[&str]) -> String {
    let output = match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("needs {tool} on PATH (apt-get install {install}): {e}")
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{tool} {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        output.status
    );
    stdout
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    run("promtool", "prometheus", dir, args)
}

#[test]
fn the_shipped_file_is_the_generators_default_output() {
    let flags = generator::parse(Vec::<String>::new())
        .expect("no flags")
        .expect("not help");
    assert_eq!(flags, generator::Flags::default());
    let generated = generator::generate(&flags).expect("the generator runs");
    assert!(
        shipped_file() == generated,
        "`cargo run --example rules` does not print runtime/alerts/selftime.rules.yml byte for byte"
    );
    // The file the crate embeds is the one on disk.
    assert_eq!(shipped::TEXT, shipped_file());
    // The help names the file's own values as the defaults.
    let s = Settings::shipped().expect("the shipped file's settings");
    for (flag, default) in [
        ("--window", s.window.to_string()),
        ("--latency-for", s.latency_for.to_string()),
        ("--error-for", s.error_for.to_string()),
        ("--dependency-for", s.dependency_for.to_string()),
        ("--burn-for", s.burn_for.to_string()),
        (
            "--fast-burn",
            format!("{},{}", s.fast_burn.0, s.fast_burn.1),
        ),
        (
            "--slow-burn",
            format!("{},{}", s.slow_burn.0, s.slow_burn.1),
        ),
        ("--internal-p99", s.internal_p99.to_string()),
        ("--error-ratio", s.error_ratio.to_string()),
        ("--min-rate", s.min_rate.to_string()),
        ("--objective", s.objective.to_string()),
        ("--objective-le", s.objective_threshold.to_string()),
    ] {
        let at = generator::USAGE
            .find(&format!("  {flag} "))
            .unwrap_or_else(|| panic!("no {flag} in the help"));
        let help = &generator::USAGE[at + 2..];
        let help = &help[..help.find("\n  -").unwrap_or(help.len())];
        assert!(
            help.contains(&format!("({default})")),
            "{flag}'s help does not name the shipped default ({default}): {help}"
        );
    }
}

#[test]
fn every_window_and_for_duration_comes_from_the_generators_flags() {
    let flags = [
        "--window",
        "3m",
        "--latency-for",
        "7m",
        "--error-for",
        "4m",
        "--dependency-for",
        "11m",
        "--burn-for",
        "9m",
        "--fast-burn",
        "2h,20m",
        "--slow-burn=12h,40m",
    ];
    let flags = generator::parse(flags.iter().map(|&f| f.to_owned()))
        .expect("good flags")
        .expect("not help");
    assert_eq!(flags.window, Some(Dur::mins(3)));
    assert_eq!(flags.slow_burn, Some((Dur::hours(12), Dur::mins(40))));
    let yaml = generator::generate(&flags).expect("the generator runs");
    let default = shipped_file();
    // Every duration the default file writes is gone (none of the new ones
    // contains one): none was written in a name or a text.
    for gone in ["5m", "10m", "2m", "1h", "6h", "30m"] {
        assert!(default.contains(gone), "the default file uses `{gone}`");
        assert!(
            !yaml.contains(gone),
            "`{gone}` still in the generated file:\n{yaml}"
        );
    }
    for present in [
        "[3m]", "for: 7m", "for: 4m", "for: 11m", "for: 9m", "[2h]", "[20m]", "[12h]", "[40m]",
    ] {
        assert!(yaml.contains(present), "`{present}` missing:\n{yaml}");
    }
    // Only the durations changed: the same lines, each as long or with
    // its duration respelled.
    assert_eq!(yaml.lines().count(), default.lines().count());
    let settings = Settings::of(&RuleFile::parse("generated", &yaml).expect("parses"))
        .expect("one value for each setting");
    assert_eq!(
        (settings.window, settings.latency_for, settings.burn_for),
        (Dur::mins(3), Dur::mins(7), Dur::mins(9))
    );
    for (bad, message) in [
        (vec!["--window", "5"], "--window: `5` is not a duration"),
        (
            vec!["--fast-burn", "5m,1h"],
            "--fast-burn: the short window must be shorter than the long one",
        ),
        (
            vec!["--objective", "1.5"],
            "--objective: `1.5` is not a number between 0 and 1",
        ),
        (vec!["--bogus"], "unknown option `--bogus`"),
        (vec!["--window"], "option `--window` needs a value"),
    ] {
        let error = generator::parse(bad.iter().map(|&f| f.to_owned())).expect_err("a bad flag");
        assert!(error.starts_with(message), "{bad:?}: {error}");
    }
    assert_eq!(generator::parse(["--help".to_owned()]), Ok(None));
}

/// The default thresholds' flags rewrite the `vector(…)` of each default
/// and the objective's `le`, and nothing else.
#[test]
fn the_generators_threshold_flags_rewrite_the_defaults() {
    let flags = generator::parse(
        [
            "--internal-p99",
            "0.5",
            "--error-ratio=0.01",
            "--min-rate",
            "2",
            "--objective",
            "0.999",
            "--objective-le",
            "0.1",
        ]
        .iter()
        .map(|&f| f.to_owned()),
    )
    .expect("good flags")
    .expect("not help");
    let yaml = generator::generate(&flags).expect("the generator runs");
    let settings = Settings::of(&RuleFile::parse("generated", &yaml).expect("parses"))
        .expect("one value for each setting");
    assert_eq!(
        (
            settings.internal_p99,
            settings.error_ratio,
            settings.min_rate,
            settings.objective,
            settings.objective_threshold
        ),
        (0.5, 0.01, 2.0, 0.999, 0.1)
    );
    assert!(yaml.contains("expr: vector(0.999)\n        labels:\n          le: \"0.1\"\n"));
    let default = shipped_file();
    let changed: Vec<(&str, &str)> = default
        .lines()
        .zip(yaml.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 5, "{changed:#?}");
}

#[test]
fn rules_read_the_series_the_metrics_feature_writes() {
    let rules = shipped_file();
    for series in [
        format!("{}_bucket", selftime::metrics::INTERNAL_SECONDS),
        format!("{}_count", selftime::metrics::INTERNAL_SECONDS),
        format!("{}_bucket", selftime::metrics::TOTAL_SECONDS),
        format!("{}_bucket", selftime::metrics::EXTERNAL_SECONDS),
        selftime::metrics::REQUESTS_TOTAL.to_owned(),
    ] {
        assert!(
            rules.contains(&format!("rate({series}")),
            "the rules do not read `{series}`"
        );
    }
    // The per-dependency p99 leaves out the union.
    assert!(rules.contains(&format!(
        "{{dependency!=\"{}\"}}",
        selftime::ALL_DEPENDENCIES
    )));
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
    // The public alert names, each with the labels routes depend on.
    for (alert, severity) in [
        (alerts::INTERNAL_LATENCY, "page"),
        (alerts::ERROR_RATIO, "page"),
        (alerts::BUDGET_BURN, "page"),
        (alerts::DEPENDENCY_LATENCY, "notify"),
        (alerts::BETWEEN_LATENCY, "notify"),
        (alerts::OBJECTIVE_NAMES_NO_BUCKET, "notify"),
    ] {
        let at = rules
            .find(&format!("- alert: {alert}\n"))
            .unwrap_or_else(|| panic!("no alert {alert}"));
        let rule = &rules[at..];
        let rule = &rule[..rule[1..].find("- alert:").map_or(rule.len(), |end| end + 1)];
        assert!(rule.contains(&format!("severity: {severity}")), "{rule}");
        assert!(
            rule.contains("and on (job, handler)"),
            "{alert} is not gated per (job, handler): {rule}"
        );
    }
}

/// The default latency thresholds sit on bucket bounds of
/// `selftime::metrics::BUCKETS`, where "p99 over the threshold" is exact
/// and the objective's `le` names a bucket.
#[test]
fn default_latency_thresholds_are_bucket_bounds() {
    let settings = Settings::shipped().expect("the shipped file's settings");
    for threshold in [settings.internal_p99, settings.objective_threshold] {
        assert!(
            selftime::metrics::BUCKETS.contains(&threshold),
            "{threshold} is not in {:?}",
            selftime::metrics::BUCKETS
        );
    }
    // The objective's `le` is written as the exporter writes bucket bounds.
    assert!(shipped_file().contains(&format!(
        "expr: vector({})\n        labels:\n          le: \"{}\"\n",
        settings.objective, settings.objective_threshold
    )));
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
            "tests/per_job.rules.yml",
        ],
    );
    assert_eq!(
        out.matches("SUCCESS").count(),
        3,
        "every file should check:\n{out}"
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
    // The way between slowing down, a dependency slowing down, the handler
    // slowing down, the budget burn,
    // error ratios, per-handler and per-job thresholds: if a file goes
    // missing, say so.
    assert_eq!(
        tests,
        [
            "between_latency.test.yml",
            "budget_burn.test.yml",
            "dependency_latency.test.yml",
            "error_ratio.test.yml",
            "internal_latency.test.yml",
            "per_handler_thresholds.test.yml",
            "per_job_thresholds.test.yml"
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
#[ignore = "needs amtool on PATH (apt-get install prometheus-alertmanager)"]
fn the_routing_example_checks_and_routes_each_alert_to_its_owner() {
    let dir = alerts_dir();
    let out = run(
        "amtool",
        "prometheus-alertmanager",
        &dir,
        &["check-config", "alertmanager.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let mut cases: Vec<Labels> = Vec::new();
    for (job, _) in teams::JOBS {
        for alert in [
            alerts::INTERNAL_LATENCY,
            alerts::BUDGET_BURN,
            alerts::ERROR_RATIO,
        ] {
            cases.push(labels(&[
                ("alertname", alert),
                ("severity", "page"),
                ("job", job),
                ("handler", "h"),
            ]));
        }
        cases.push(labels(&[
            ("alertname", alerts::OBJECTIVE_NAMES_NO_BUCKET),
            ("severity", "notify"),
            ("job", job),
            ("handler", "h"),
            ("le", "1"),
        ]));
        for (dependency, _) in teams::DEPENDENCIES
            .iter()
            .chain(&[("another_dependency", teams::Team::Nobody)])
        {
            for alert in [alerts::DEPENDENCY_LATENCY, alerts::BETWEEN_LATENCY] {
                cases.push(labels(&[
                    ("alertname", alert),
                    ("severity", "notify"),
                    ("job", job),
                    ("handler", "h"),
                    ("dependency", dependency),
                ]));
            }
        }
    }
    cases.push(labels(&[
        ("alertname", alerts::INTERNAL_LATENCY),
        ("severity", "page"),
        ("job", "unknown"),
        ("handler", "h"),
    ]));
    for case in cases {
        let (receiver, _, _) = teams::route(&case);
        let mut args = vec![
            "config".to_owned(),
            "routes".to_owned(),
            "test".to_owned(),
            "--config.file=alertmanager.yml".to_owned(),
            format!("--verify.receivers={receiver}"),
        ];
        args.extend(case.iter().map(|(k, v)| format!("{k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run("amtool", "prometheus-alertmanager", &dir, &args);
        assert_eq!(out.trim(), receiver, "{case:?}");
    }
}

/// Notifications about a dependency go out one per dependency, however
/// many handlers it is slow for; about the way between a job and a
/// dependency, one per job and dependency; rules mistakes one per job;
/// pages one per handler: each route's `group_by` in the routing example is the one the
/// incident demo counts notifications by.
#[test]
fn the_routing_example_groups_each_route_as_the_demo_counts() {
    let config =
        std::fs::read_to_string(alerts_dir().join("alertmanager.yml")).expect("alertmanager.yml");
    // The route's own lines: from its `- matchers:` to the next route or
    // the end of the tree.
    let route = |matchers: &str| -> &str {
        let start = config
            .find(&format!("- matchers: {matchers}\n"))
            .unwrap_or_else(|| panic!("no route {matchers}"));
        let rest = &config[start + 1..];
        let end = rest
            .find("\n    - ")
            .or_else(|| rest.find("\n\n"))
            .unwrap_or(rest.len());
        &rest[..end]
    };
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    for (lines, alert) in [
        (
            route("['severity=\"notify\"']"),
            labels(&[
                ("alertname", alerts::DEPENDENCY_LATENCY),
                ("severity", "notify"),
            ]),
        ),
        (
            route(&format!("['alertname=\"{}\"']", alerts::BETWEEN_LATENCY)),
            labels(&[
                ("alertname", alerts::BETWEEN_LATENCY),
                ("severity", "notify"),
            ]),
        ),
        (
            route(&format!(
                "['alertname=\"{}\"']",
                alerts::OBJECTIVE_NAMES_NO_BUCKET
            )),
            labels(&[
                ("alertname", alerts::OBJECTIVE_NAMES_NO_BUCKET),
                ("severity", "notify"),
            ]),
        ),
    ] {
        let group_by = format!("group_by: [{}]", teams::group_by(&alert).join(", "));
        assert!(lines.contains(&group_by), "{group_by} not in:\n{lines}");
    }
    // Pages keep the tree's own.
    let page = labels(&[
        ("alertname", alerts::INTERNAL_LATENCY),
        ("severity", "page"),
    ]);
    let group_by = format!("  group_by: [{}]\n", teams::group_by(&page).join(", "));
    assert!(config.contains(&group_by), "{group_by}");
    assert_eq!(config.matches("group_by:").count(), 4, "{config}");
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("the README")
}

/// The README's yaml block that starts with `first_line`.
fn readme_yaml(first_line: &str) -> String {
    let readme = readme();
    let start = readme
        .find(&format!("```yaml\n{first_line}\n"))
        .unwrap_or_else(|| panic!("no yaml block `{first_line}`"));
    let block = &readme[start + "```yaml\n".len()..];
    block[..block.find("```").expect("the block ends")].to_owned()
}

/// "From zero to a page" shows `examples/service.rs` whole (which CI
/// compiles), and names the versions the workspace builds it with.
#[test]
fn the_readme_shows_the_service_ci_compiles_with_the_versions_it_uses() {
    let readme = readme();
    let service =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/service.rs"))
            .expect("examples/service.rs");
    assert_eq!(
        readme.matches(&format!("```rust\n{service}```\n")).count(),
        1,
        "README.md does not show examples/service.rs once, as it is"
    );
    assert_eq!(
        readme.matches(service.as_str()).count(),
        1,
        "examples/service.rs appears twice"
    );
    let fences = readme
        .lines()
        .filter(|line| line.starts_with("```"))
        .count();
    assert_eq!(fences % 2, 0, "README.md has an unclosed code fence");
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("Cargo.toml");
    for (krate, version) in [
        ("axum", "0.8"),
        ("reqwest", "0.13"),
        ("reqwest-middleware", "0.5"),
        ("metrics-exporter-prometheus", "0.18"),
        ("tracing-subscriber", "0.3"),
    ] {
        assert!(
            readme.contains(&format!("\n{krate} = ")),
            "the README's dependencies lack {krate}"
        );
        let line = manifest
            .lines()
            .find(|line| line.starts_with(&format!("{krate} = ")))
            .unwrap_or_else(|| panic!("Cargo.toml has no {krate}"));
        assert!(
            line.contains(&format!("\"{version}")),
            "{krate}: the workspace uses `{line}`, the README says {version}"
        );
    }
}

#[test]
#[ignore = "needs promtool on PATH (apt-get install prometheus)"]
fn the_readmes_thresholds_file_checks_beside_the_shipped_rules() {
    let dir = std::env::temp_dir().join(format!("selftime-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("checkout-thresholds.rules.yml");
    std::fs::write(
        &file,
        readme_yaml("# checkout-thresholds.rules.yml: the defaults are in selftime.rules.yml"),
    )
    .expect("writing the thresholds file");
    let shipped = alerts_dir().join("selftime.rules.yml");
    let out = promtool(
        &dir,
        &[
            "check",
            "rules",
            &shipped.to_string_lossy(),
            &file.to_string_lossy(),
        ],
    );
    assert_eq!(out.matches("SUCCESS").count(), 2, "{out}");
    // The Prometheus configuration checks with both rules files beside it,
    // scrapes often enough for a 2-minute window (four scrapes), and sends
    // its alerts to an Alertmanager.
    let config = readme_yaml("# prometheus.yml");
    std::fs::write(dir.join("prometheus.yml"), &config).expect("writing prometheus.yml");
    std::fs::copy(&shipped, dir.join("selftime.rules.yml")).expect("copying the rules");
    let out = promtool(&dir, &["check", "config", "prometheus.yml"]);
    let _ = std::fs::remove_dir_all(&dir);
    // The file, its rule files found, and each of them.
    assert_eq!(out.matches("SUCCESS").count(), 4, "{out}");
    assert!(config.contains("job_name: checkout"));
    assert!(config.contains("  scrape_interval: 15s\n"));
    assert!(config.contains("alerting:\n  alertmanagers:\n"));
    assert!(readme().contains("--window 2m "));
}

/// The README's routes and receivers, added to the routing example where it
/// says: checkout's pages reach its team, billing's notifications its
/// owners; checkout's other alerts go where everyone's do.
#[test]
#[ignore = "needs amtool on PATH (apt-get install prometheus-alertmanager)"]
fn the_readmes_routes_reach_the_job_team_and_the_dependency_owner() {
    let example =
        std::fs::read_to_string(alerts_dir().join("alertmanager.yml")).expect("alertmanager.yml");
    let route =
        readme_yaml("    # alertmanager.yml, at the end of route: routes: checkout's pages");
    let owners = readme_yaml(
        "        # alertmanager.yml, under the severity=\"notify\" route's routes: billing's owners",
    );
    let receiver = readme_yaml(
        "  # alertmanager.yml, at the end of receivers: the checkout team's pager and billing's owners",
    );
    // `routes:` under `route:` is the tree's last key, `receivers:` the
    // file's; the notify route's own `routes:` comes right after its
    // `group_by: [dependency]`.
    let notify = "      group_by: [dependency]\n      routes:\n";
    let at = example.find(notify).expect("the notify route's routes") + notify.len();
    let example = format!("{}{owners}{}", &example[..at], &example[at..]);
    let at = example.find("\nreceivers:\n").expect("receivers");
    let edited = format!("{}\n{route}{}{receiver}", &example[..at], &example[at..]);
    let dir = std::env::temp_dir().join(format!("selftime-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(dir.join("alertmanager.yml"), &edited).expect("writing alertmanager.yml");
    let amtool = |args: &[&str]| run("amtool", "prometheus-alertmanager", &dir, args);
    let checked = amtool(&["check-config", "alertmanager.yml"]);
    let mut routed = Vec::new();
    for (alert, severity, extra, receiver) in [
        (alerts::INTERNAL_LATENCY, "page", "", "checkout-team-pager"),
        (alerts::BUDGET_BURN, "page", "", "checkout-team-pager"),
        (
            alerts::DEPENDENCY_LATENCY,
            "notify",
            "dependency=billing",
            "billing-owners-chat",
        ),
        (
            alerts::DEPENDENCY_LATENCY,
            "notify",
            "dependency=payments",
            "unowned-dependencies-chat",
        ),
        (
            alerts::OBJECTIVE_NAMES_NO_BUCKET,
            "notify",
            "le=1",
            "rules-keepers-chat",
        ),
    ] {
        let mut args = vec![
            "config".to_owned(),
            "routes".to_owned(),
            "test".to_owned(),
            "--config.file=alertmanager.yml".to_owned(),
            format!("--verify.receivers={receiver}"),
            format!("alertname={alert}"),
            format!("severity={severity}"),
            "job=checkout".to_owned(),
            "handler=GET /checkout/{cart}".to_owned(),
        ];
        args.extend((!extra.is_empty()).then(|| extra.to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        routed.push((amtool(&args).trim().to_owned(), receiver));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    for (got, receiver) in routed {
        assert_eq!(got, receiver);
    }
}
