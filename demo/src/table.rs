//! The run's summary, as text: figures per phase, the alerts that fired
//! and whom they reached, and the verdict.

use super::chart::points;
use super::load::Sent;
use super::plan::{Plan, RULE_MINUTES_PER_SCRAPE};
use super::scrape::Recording;
use super::teams::{JOBS, Reach};
use super::verdict::{ENDPOINT_ALERT, Verdict, seconds};
use selftime_alerting::eval::Storage;
use selftime_alerting::shipped::recorded;
use std::fmt::Write as _;

/// The phase column: `6 auth regresses (+15 ms of CPU per login)` fits.
const PHASE: usize = 46;

/// The peak p99 (ms) of a recorded series over scrapes `from..=to`.
fn peak(
    evaluated: &Storage,
    name: &str,
    matchers: &[(&str, &str)],
    (from, to): (u64, u64),
) -> Option<f64> {
    #[allow(clippy::cast_precision_loss, reason = "minutes of a short run")]
    let (from, to) = (
        (from * RULE_MINUTES_PER_SCRAPE) as f64,
        (to * RULE_MINUTES_PER_SCRAPE) as f64,
    );
    points(evaluated, name, matchers)
        .into_iter()
        .filter(|&(x, _)| x >= from && x <= to)
        .map(|(_, y)| y)
        .reduce(f64::max)
}

/// One row per phase: the peak p99 the recording rules saw, per service.
pub fn figures(plan: &Plan, evaluated: &Storage, recording: &Recording, sent: &Sent) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:PHASE$}  {:>8}  {:^35}  {:>8}  {:>6}",
        "", "endpoint", "internal p99, peak (ms)", "session", "stall"
    );
    let _ = writeln!(
        text,
        "{:PHASE$}  {:>8}  {:>8} {:>8} {:>8} {:>8}  {:>8}  {:>6}",
        "phase", "p99 (ms)", "gateway", "auth", "proxy", "legacy", "store", "(ms)"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    for (index, phase) in super::plan::PHASES.iter().enumerate() {
        let scrapes = plan.scrapes(index);
        let _ = write!(
            text,
            "{:PHASE$}  {:>8}",
            format!("{} {}", index + 1, phase.title),
            cell(peak(
                evaluated,
                recorded::TOTAL_P99,
                &[("job", "gateway")],
                scrapes
            ))
        );
        let _ = write!(text, " ");
        for (job, _) in JOBS {
            let _ = write!(
                text,
                " {:>8}",
                cell(peak(
                    evaluated,
                    recorded::INTERNAL_P99,
                    &[("job", job)],
                    scrapes
                ))
            );
        }
        let store = peak(
            evaluated,
            recorded::DEPENDENCY_P99,
            &[("job", "auth"), ("dependency", "session_store")],
            scrapes,
        );
        let stall = recording
            .stalls
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let _ = writeln!(text, "  {:>8}  {stall:>6.0}", cell(store));
    }
    let _ = write!(
        text,
        "{} logins sent, {} failed; every p99 read off the recording rules; scrapes over HTTP, at most {:.0} ms late",
        sent.sent,
        sent.failed,
        recording.late.as_secs_f64() * 1e3
    );
    text
}

/// Per phase: the alerts that fired, when, and whom they reached.
pub fn alerts(plan: &Plan, verdict: &Verdict) -> String {
    let mut text = String::from("alerts (first fired, seconds into the run):\n");
    for (index, phase) in verdict.phases.iter().enumerate() {
        let _ = writeln!(text, "{} {}", index + 1, phase.phase.title);
        if let Some(at) = phase.endpoint {
            let _ = writeln!(
                text,
                "    before selftime  {ENDPOINT_ALERT} at {:.1} s -> auth team (page)",
                seconds(plan, at)
            );
        }
        for fired in &phase.alerts {
            let (team, reach) = fired.reaches();
            let labels: Vec<String> = fired
                .id
                .labels
                .iter()
                .filter(|(k, _)| *k != "severity")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                text,
                "    selftime         {}{{{}}} at {:.1} s -> {} ({})",
                fired.id.alert,
                labels.join(", "),
                seconds(plan, fired.first),
                team.name(),
                match reach {
                    Reach::Page => "page",
                    Reach::Notify => "notify",
                }
            );
        }
        if phase.endpoint.is_none() && phase.alerts.is_empty() {
            let _ = writeln!(text, "    nothing fired");
        }
    }
    text
}

/// The verdict, in three lines.
pub fn verdict(verdict: &Verdict) -> String {
    let pages = verdict.endpoint_pages();
    let list: Vec<String> = pages.iter().map(|i| (i + 1).to_string()).collect();
    let false_pages = verdict.endpoint_false_pages();
    let mut text = format!(
        "before selftime: {ENDPOINT_ALERT} paged the auth team in phases {} ({} false + {} true).\n",
        list.join(", "),
        false_pages,
        pages.len() - false_pages
    );
    let reached: Vec<String> = verdict
        .phases
        .iter()
        .filter_map(|p| {
            let (team, reach) = p.owner()?;
            let how = match reach {
                Reach::Page => "paged",
                Reach::Notify => "notified",
            };
            let heard: Vec<String> = p
                .reached()
                .iter()
                .map(|(&(t, r), alerts)| {
                    let verb = if r == Reach::Page { "page" } else { "notify" };
                    format!(
                        "{} ({verb}: {})",
                        t.name(),
                        alerts.iter().cloned().collect::<Vec<_>>().join(" + ")
                    )
                })
                .collect();
            let mark = if p.reached_exactly_its_owner() {
                ""
            } else {
                "  <-- not as expected"
            };
            Some(format!(
                "  {} -> {how} {}: heard by {}{mark}",
                p.phase.fault.key(),
                team.name(),
                if heard.is_empty() {
                    "nobody".to_owned()
                } else {
                    heard.join(", ")
                }
            ))
        })
        .collect();
    let _ = writeln!(text, "with selftime:\n{}", reached.join("\n"));
    if verdict.as_expected() {
        let _ = write!(
            text,
            "verdict: every incident reached exactly its owner, once; {} false pages with selftime, {false_pages} without.",
            verdict.false_pages()
        );
    } else {
        let _ = write!(
            text,
            "verdict: NOT as expected (see the marked lines); {} false pages with selftime.",
            verdict.false_pages()
        );
    }
    text
}
