//! The run's summary, as text: figures per phase, the alert rules, which
//! fired where, and the verdict.

use super::analysis::{Report, Signal};
use std::fmt::Write as _;

/// The phase column: `5 auth regresses (+15 ms CPU)` fits.
const PHASE: usize = 32;

/// Renders the figures table: one row per phase.
pub(crate) fn figures(report: &Report) -> String {
    let mut text = String::new();
    let deps = &report.dependencies;
    let dep_width = deps.iter().map(String::len).max().unwrap_or(0).max(8);
    let _ = writeln!(
        text,
        "{:PHASE$} {:>6}  {:^15}  {:^15}  {:>6}  external p99 per dependency (ms)",
        "", "", "total (ms)", "internal (ms)", "stall",
    );
    let _ = write!(
        text,
        "{:PHASE$} {:>6}  {:>7} {:>7}  {:>7} {:>7}  {:>6}",
        "phase", "logins", "p50", "p99", "p50", "p99", "(ms)",
    );
    for dep in deps {
        let _ = write!(text, "  {dep:>dep_width$}");
    }
    text.push('\n');
    for (index, phase) in report.phases.iter().enumerate() {
        let [total, internal] = phase.figures;
        let _ = write!(
            text,
            "{:PHASE$} {:>6}  {:>7.1} {:>7.1}  {:>7.1} {:>7.1}  {:>6.0}",
            format!("{} {}", index + 1, phase.phase.title),
            phase.measured,
            total.p50,
            total.p99,
            internal.p50,
            internal.p99,
            phase.stall.as_secs_f64() * 1e3,
        );
        for p99 in &phase.dependency_p99 {
            match p99 {
                Some(p99) => {
                    let _ = write!(text, "  {p99:>dep_width$.1}");
                }
                None => {
                    let _ = write!(text, "  {:>dep_width$}", "-");
                }
            }
        }
        text.push('\n');
    }
    let sent: u64 = report.phases.iter().map(|p| p.sent).sum();
    let failed: u64 = report.phases.iter().map(|p| p.failed).sum();
    let measured: usize = report.phases.iter().map(|p| p.measured).sum();
    let not_ok: usize = report.phases.iter().map(|p| p.not_ok).sum();
    let _ = writeln!(
        text,
        "{sent} logins sent, {measured} measured by selftime (after {} warm-up logins, not \
         counted); {failed} failed at the gateway, {not_ok} handlers ended other than `ok`",
        report.warmup_measured,
    );
    let _ = writeln!(
        text,
        "stall: the longest this process waited for a CPU in the phase; past the alerts' {} ms \
         margin, other work on the machine is moving the p99s",
        report.plan.margin.as_millis(),
    );
    text
}

/// Renders the alert rules, which fired in each phase, and the verdict.
pub(crate) fn alerts(report: &Report) -> String {
    let plan = &report.plan;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "alert rules: p99 over the last {:.1} s, evaluated every {:.2} s, paging after {} breaches \
         in a row",
        plan.window.as_secs_f64(),
        plan.step.as_secs_f64(),
        plan.for_evaluations,
    );
    let _ = writeln!(
        text,
        "(threshold = the baseline's typical window p99 + {} ms; one slow request can never page \
         alone)",
        plan.margin.as_millis(),
    );
    for rule in &report.rules {
        let _ = writeln!(
            text,
            "  {:<8} latency alert: p99 > {:5.1} ms  (baseline {:.1} ms)",
            rule.signal.name(),
            rule.threshold,
            rule.baseline,
        );
    }
    text.push('\n');
    let _ = writeln!(
        text,
        "{:PHASE$} {:<22} {:<22} whose incident",
        "phase", "total latency alert", "internal latency alert",
    );
    for (index, phase) in report.phases.iter().enumerate() {
        let cell = |signal: Signal| match phase.fired[signal as usize] {
            None => "-".to_owned(),
            Some(at) if phase.phase.fault.is_ours() => format!("PAGE {at:5.1} s (true)"),
            Some(at) => format!("PAGE {at:5.1} s (false)"),
        };
        let _ = writeln!(
            text,
            "{:PHASE$} {:<22} {:<22} {}",
            format!("{} {}", index + 1, phase.phase.title),
            cell(Signal::Total),
            cell(Signal::Internal),
            phase.phase.fault.owner().unwrap_or("-"),
        );
    }
    text
}

/// The one-line verdict.
pub(crate) fn verdict(report: &Report) -> String {
    let count = |signal: Signal| {
        format!(
            "{} false + {} true",
            report.false_pages(signal),
            report.true_pages(signal)
        )
    };
    let phases = |list: Vec<usize>| {
        let numbers: Vec<String> = list.iter().map(|i| (i + 1).to_string()).collect();
        match numbers.len() {
            0 => "no phase".to_owned(),
            1 => format!("phase {}", numbers[0]),
            _ => format!("phases {}", numbers.join(", ")),
        }
    };
    let summary = format!(
        "total-latency alert paged in {} ({}); internal-latency alert paged in {} ({})",
        phases(report.pages(Signal::Total)),
        count(Signal::Total),
        phases(report.pages(Signal::Internal)),
        count(Signal::Internal),
    );
    if report.as_expected() {
        format!(
            "verdict: {summary}. Paging on internal latency woke the auth on-call once, for the one \
             incident that was theirs."
        )
    } else {
        let why = if report.noisy() {
            format!(
                "other work on this machine stalled the replay for up to {} ms, more than the \
                 alerts' {} ms margin; run it again on a quieter machine",
                report.stall().as_millis(),
                report.plan.margin.as_millis(),
            )
        } else {
            "the figures above show why".to_owned()
        };
        format!(
            "verdict (NOT the expected split: total in {}, internal in {} only): {summary}; {why}.",
            phases(report.expected_pages(Signal::Total)),
            phases(report.expected_pages(Signal::Internal)),
        )
    }
}
