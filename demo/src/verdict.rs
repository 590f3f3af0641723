//! From recorded samples to who was paged: the shipped rules (and the
//! demo's thresholds beside them) evaluated by promtool or by the built-in
//! evaluator, the alerts that fired in each phase, where Alertmanager
//! routes them, and the verdict.

use super::plan::{Fault, PHASES, Phase, Plan};
use super::scrape::rule_ms;
use super::services::{AUTH_HANDLER, GATEWAY_HANDLER, LEGACY_HANDLER, PROXY_HANDLER};
use super::teams::{Reach, Team, group_by, route};
use selftime_alerting::duration::Dur;
use selftime_alerting::eval::{self, AlertId, Labels, Storage};
use selftime_alerting::promtool::{self, Query};
use selftime_alerting::rules::{Group, RuleFile};
use selftime_alerting::shipped;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The alert the auth team had before selftime: p99 latency at the
/// gateway's login endpoint, written the way the shipped latency alert is
/// (in the demo's rules file).
pub const ENDPOINT_ALERT: &str = "LoginEndpointLatencyHigh";
/// Its threshold, seconds: above the healthy p99 at the gateway, on a
/// bucket bound. The chart draws it; the rules file holds it.
pub const ENDPOINT_THRESHOLD: f64 = 0.025;

/// The demo's thresholds, as the rules file sets them for each handler's
/// p99 internal latency and objective (the chart draws them).
pub const THRESHOLDS: [(&str, f64); 4] = [
    (GATEWAY_HANDLER, 0.01),
    (AUTH_HANDLER, 0.01),
    (PROXY_HANDLER, 0.01),
    // The legacy system's own work is most of a login: 5 ms.
    (LEGACY_HANDLER, 0.025),
];
/// The session store's p99 threshold, seconds, as the rules file sets it.
pub const SESSION_STORE_THRESHOLD: f64 = 0.01;
/// The p99 threshold of the time between auth and the proxy (the load
/// balancer's), seconds, as the rules file sets it.
pub const NETWORK_THRESHOLD: f64 = 0.01;

/// The demo's rules file: its thresholds (including a minimum request
/// rate below the shipped default: rule time runs 60 / `scrape_every`
/// times faster than the load, so 60 logins a second read as fewer than
/// one a second), and the before-selftime endpoint alert.
pub const DEMO_RULES: &str = include_str!("../../docs/incident.rules.yml");

/// The rules a run evaluates: the shipped file, and the demo's own file
/// loaded beside it (thresholds, and the before-selftime endpoint alert).
#[derive(Clone, Debug)]
pub struct Rules {
    pub shipped: RuleFile,
    pub demo: RuleFile,
}

impl Rules {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            shipped: shipped::file().map_err(|e| e.to_string())?,
            demo: RuleFile::parse("incident.rules.yml", DEMO_RULES).map_err(|e| e.to_string())?,
        })
    }

    /// The groups in the order both evaluators run them: thresholds (the
    /// shipped defaults, then the demo's), then selftime's rules.
    pub fn groups(&self) -> Vec<&Group> {
        let mut groups: Vec<&Group> = Vec::new();
        groups.extend(self.shipped.groups().first());
        groups.extend(self.demo.groups());
        groups.extend(self.shipped.groups().iter().skip(1));
        groups
    }
}

/// Which engine decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evaluator {
    /// `promtool test rules`, with its version line.
    Promtool(String),
    /// The built-in evaluator of the same expressions.
    Builtin,
}

impl Evaluator {
    /// The `evaluator` of `incident.json`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Promtool(_) => "promtool",
            Self::Builtin => "builtin",
        }
    }
}

/// An alert that fired in a phase: when it first and last fired there
/// (ms of rule time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub id: AlertId,
    pub first: i64,
    pub last: i64,
}

impl Fired {
    /// Where Alertmanager sends it.
    pub fn reaches(&self) -> (Team, Reach) {
        let mut labels = self.id.labels.clone();
        labels.insert("alertname".into(), self.id.alert.clone());
        let (_, team, reach) = route(&labels);
        (team, reach)
    }
}

/// One phase's alerts.
#[derive(Clone, Debug)]
pub struct PhaseAlerts {
    pub phase: Phase,
    /// First and last scrape.
    pub scrapes: (u64, u64),
    /// When the before-selftime endpoint alert first fired, if it did.
    pub endpoint: Option<i64>,
    /// The shipped rules' alerts, by name then labels.
    pub alerts: Vec<Fired>,
}

impl PhaseAlerts {
    /// Each team reached, how, and by which alerts.
    pub fn reached(&self) -> BTreeMap<(Team, Reach), BTreeSet<String>> {
        let mut out: BTreeMap<(Team, Reach), BTreeSet<String>> = BTreeMap::new();
        for fired in &self.alerts {
            out.entry(fired.reaches())
                .or_default()
                .insert(fired.id.alert.clone());
        }
        out
    }

    /// The notifications sent: one per receiver and routing group, the
    /// routing example's `group_by` (a page's job, handler and dependency;
    /// a dependency's notification's dependency alone).
    pub fn notifications(&self) -> usize {
        let groups: BTreeSet<_> = self
            .alerts
            .iter()
            .map(|f| {
                let mut labels = f.id.labels.clone();
                labels.insert("alertname".into(), f.id.alert.clone());
                let key: Vec<String> = group_by(&labels)
                    .iter()
                    .map(|k| labels.get(*k).cloned().unwrap_or_default())
                    .collect();
                (f.reaches(), key)
            })
            .collect();
        groups.len()
    }

    /// The team this phase's incident belongs to, and how it should hear.
    pub fn owner(&self) -> Option<(Team, Reach)> {
        match self.phase.fault {
            Fault::None => None,
            Fault::Gateway(_) => Some((Team::Gateway, Reach::Page)),
            Fault::Legacy(_) => Some((Team::Legacy, Reach::Page)),
            Fault::Proxy(_) => Some((Team::Platform, Reach::Page)),
            Fault::SessionStore(_) => Some((Team::SessionStore, Reach::Notify)),
            Fault::Own(_) | Fault::OwnSaturation(_) => Some((Team::Auth, Reach::Page)),
            // The load balancer is the platform team's: told, not paged.
            Fault::Network(_) => Some((Team::Platform, Reach::Notify)),
        }
    }

    /// Exactly the owner heard, once, and nobody else was paged.
    pub fn reached_exactly_its_owner(&self) -> bool {
        let reached: BTreeSet<(Team, Reach)> = self.reached().into_keys().collect();
        reached == self.owner().into_iter().collect()
            && self.notifications() == usize::from(self.owner().is_some())
    }
}

/// The whole verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub evaluator: Evaluator,
    pub phases: Vec<PhaseAlerts>,
}

impl Verdict {
    /// The phases (0-based) in which the endpoint alert paged the auth team.
    pub fn endpoint_pages(&self) -> Vec<usize> {
        (0..self.phases.len())
            .filter(|&i| self.phases[i].endpoint.is_some())
            .collect()
    }

    /// Pages of the endpoint alert for an incident that was not auth's.
    pub fn endpoint_false_pages(&self) -> usize {
        self.phases
            .iter()
            .filter(|p| p.endpoint.is_some() && p.owner() != Some((Team::Auth, Reach::Page)))
            .count()
    }

    /// Pages from the shipped rules to a team whose incident it was not.
    pub fn false_pages(&self) -> usize {
        self.phases
            .iter()
            .map(|p| {
                p.reached()
                    .into_keys()
                    .filter(|&(_, reach)| reach == Reach::Page)
                    .filter(|&key| Some(key) != p.owner())
                    .count()
            })
            .sum()
    }

    /// The run showed what the demo sets out to show: the endpoint alert
    /// pages in every incident and never on the baseline; the shipped
    /// rules reach each incident's owner, once, and nobody else.
    pub fn as_expected(&self) -> bool {
        self.phases
            .iter()
            .all(|p| p.reached_exactly_its_owner() && p.endpoint.is_some() == p.owner().is_some())
    }
}

/// The queries that ask promtool, per phase, when each alert first and
/// last fired.
fn phase_queries(plan: &Plan) -> Vec<(usize, Query, Query)> {
    (0..PHASES.len())
        .map(|index| {
            let (start, end) = plan.scrapes(index);
            let span = Dur::secs((end - start) * super::plan::RULE_MINUTES_PER_SCRAPE * 60);
            let step = Dur::mins(super::plan::RULE_MINUTES_PER_SCRAPE);
            let over = |f: &str| Query {
                expr: format!("{f}(timestamp(ALERTS{{alertstate=\"firing\"}})[{span}:{step}])"),
                at: rule_ms(end),
            };
            (index, over("min_over_time"), over("max_over_time"))
        })
        .collect()
}

/// Splits fired alerts into the endpoint alert's first time and the
/// shipped rules' alerts.
fn split(fired: BTreeMap<AlertId, (i64, i64)>) -> (Option<i64>, Vec<Fired>) {
    let mut endpoint = None;
    let mut alerts = Vec::new();
    for (id, (first, last)) in fired {
        if id.alert == ENDPOINT_ALERT {
            endpoint = Some(endpoint.map_or(first, |e: i64| e.min(first)));
        } else {
            alerts.push(Fired { id, first, last });
        }
    }
    (endpoint, alerts)
}

/// The built-in evaluator's verdict; `samples` gets the recorded series
/// (for the chart).
pub fn builtin(rules: &Rules, plan: &Plan, samples: &mut Storage) -> Result<Verdict, String> {
    let groups = rules.groups();
    let timeline = eval::run_groups(&groups, samples, rule_ms(plan.last_scrape()), rule_ms(1))
        .map_err(|e| format!("the built-in evaluator: {e}"))?;
    let phases = (0..PHASES.len())
        .map(|index| {
            let (start, end) = plan.scrapes(index);
            let (endpoint, alerts) = split(timeline.fired_between(rule_ms(start), rule_ms(end)));
            PhaseAlerts {
                phase: PHASES[index],
                scrapes: (start, end),
                endpoint,
                alerts,
            }
        })
        .collect();
    Ok(Verdict {
        evaluator: Evaluator::Builtin,
        phases,
    })
}

/// Where the rule files a promtool run reads are, and the test file.
#[derive(Clone, Debug)]
pub struct PromtoolFiles {
    pub shipped: PathBuf,
    pub demo: PathBuf,
    pub dir: PathBuf,
}

/// promtool's verdict on `samples` (the scrapes alone).
pub fn promtool(
    rules: &Rules,
    plan: &Plan,
    samples: &Storage,
    files: &PromtoolFiles,
    version: String,
) -> Result<Verdict, String> {
    std::fs::write(&files.demo, rules.demo.text())
        .map_err(|e| format!("writing {}: {e}", files.demo.display()))?;
    let queries = phase_queries(plan);
    let flat: Vec<Query> = queries
        .iter()
        .flat_map(|(_, min, max)| [min.clone(), max.clone()])
        .collect();
    let order: Vec<&str> = rules.groups().iter().map(|g| g.name.as_str()).collect();
    let test = promtool::test_file(
        &[files.shipped.clone(), files.demo.clone()],
        &order,
        samples,
        Dur::mins(super::plan::RULE_MINUTES_PER_SCRAPE),
        &flat,
    );
    let results = promtool::run(&files.dir, &test, &flat).map_err(|e| e.to_string())?;
    let phases = queries
        .iter()
        .map(|&(index, _, _)| {
            let to_ids = |found: &[(Labels, f64)]| -> BTreeMap<AlertId, i64> {
                found
                    .iter()
                    .map(|(labels, seconds)| {
                        let mut labels = labels.clone();
                        let alert = labels.remove("alertname").unwrap_or_default();
                        labels.remove("alertstate");
                        // Timestamps come back as seconds, exact in an f64.
                        #[allow(clippy::cast_possible_truncation)]
                        let ms = (seconds * 1_000.0).round() as i64;
                        (AlertId { alert, labels }, ms)
                    })
                    .collect()
            };
            let first = to_ids(&results[2 * index]);
            let last = to_ids(&results[2 * index + 1]);
            let fired = first
                .into_iter()
                .map(|(id, first)| {
                    let last = last.get(&id).copied().unwrap_or(first);
                    (id, (first, last))
                })
                .collect();
            let (endpoint, alerts) = split(fired);
            PhaseAlerts {
                phase: PHASES[index],
                scrapes: plan.scrapes(index),
                endpoint,
                alerts,
            }
        })
        .collect();
    Ok(Verdict {
        evaluator: Evaluator::Promtool(version),
        phases,
    })
}

/// `incident.json`.
pub fn json(verdict: &Verdict, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"evaluator\": {}, \"phases\": [",
        quoted(verdict.evaluator.key())
    );
    for (i, phase) in verdict.phases.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "\n  {{\"name\": {}, \"fault\": {}, \"endpoint_alert\": {}, \"alerts\": [",
            quoted(phase.phase.title),
            quoted(phase.phase.fault.key()),
            phase.endpoint.is_some()
        );
        for (j, fired) in phase.alerts.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            let labels: Vec<String> = fired
                .id
                .labels
                .iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), quoted(v)))
                .collect();
            let _ = write!(
                out,
                "\n    {{\"alert\": {}, \"labels\": {{{}}}, \"first_fired_s\": {}}}",
                quoted(&fired.id.alert),
                labels.join(", "),
                seconds(plan, fired.first)
            );
        }
        out.push_str("]}");
    }
    out.push_str("\n]}\n");
    out
}

/// Rule-time ms as the demo's seconds since the first scrape.
pub fn seconds(plan: &Plan, ms: i64) -> f64 {
    let k = u64::try_from(ms / rule_ms(1)).unwrap_or(0);
    (plan.seconds(k) * 1_000.0).round() / 1_000.0
}

fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether the rules file at `path` is the one the built-in evaluator runs.
pub fn shipped_file_matches(rules: &Rules, path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text == rules.shipped.text())
}
