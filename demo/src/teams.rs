//! Who owns what: the demo's teams, and where the shipped rules' alerts
//! reach them. The same routes as `runtime/alerts/alertmanager.yml` (the
//! tests check the two agree with `amtool config routes test`).

use selftime_alerting::eval::Labels;
use selftime_alerting::shipped::alerts;

/// A team, and how an alert reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Team {
    Gateway,
    Auth,
    Platform,
    Legacy,
    SessionStore,
    /// None of the services' teams: the catch-all receivers, and the
    /// keepers of the rules files.
    Nobody,
}

impl Team {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway team",
            Self::Auth => "auth team",
            Self::Platform => "platform team",
            Self::Legacy => "legacy team",
            Self::SessionStore => "session-store team",
            Self::Nobody => "nobody",
        }
    }
}

/// The jobs: each service's team.
pub const JOBS: [(&str, Team); 4] = [
    ("gateway", Team::Gateway),
    ("auth", Team::Auth),
    ("proxy", Team::Platform),
    ("legacy", Team::Legacy),
];

/// The dependencies that have owners to notify.
pub const DEPENDENCIES: [(&str, Team); 1] = [("session_store", Team::SessionStore)];

/// Whether an alert pages or only notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    Page,
    Notify,
}

/// The receiver `alertmanager.yml` sends an alert with `labels` to, and the
/// team and kind of reach that receiver stands for.
pub fn route(labels: &Labels) -> (&'static str, Team, Reach) {
    let get = |key: &str| labels.get(key).map_or("", String::as_str);
    if get("alertname") == alerts::OBJECTIVE_NAMES_NO_BUCKET {
        return ("rules-keepers-chat", Team::Nobody, Reach::Notify);
    }
    // The way between services (the load balancer) is the platform team's.
    if get("alertname") == alerts::BETWEEN_LATENCY {
        return (
            receiver(Team::Platform, Reach::Notify),
            Team::Platform,
            Reach::Notify,
        );
    }
    if get("severity") == "notify" {
        return match DEPENDENCIES
            .iter()
            .find(|(dep, _)| *dep == get("dependency"))
        {
            Some(&(_, team)) => (receiver(team, Reach::Notify), team, Reach::Notify),
            None => ("unowned-dependencies-chat", Team::Nobody, Reach::Notify),
        };
    }
    if get("severity") == "page" {
        if let Some(&(_, team)) = JOBS.iter().find(|(job, _)| *job == get("job")) {
            return (receiver(team, Reach::Page), team, Reach::Page);
        }
    }
    ("unrouted", Team::Nobody, Reach::Notify)
}

/// The labels `alertmanager.yml` groups an alert with `labels` by, on the
/// route `route` sends it down: alerts with the same values of these go
/// out as one notification.
pub fn group_by(labels: &Labels) -> &'static [&'static str] {
    let get = |key: &str| labels.get(key).map_or("", String::as_str);
    if get("alertname") == alerts::OBJECTIVE_NAMES_NO_BUCKET {
        &["job"]
    } else if get("alertname") == alerts::BETWEEN_LATENCY {
        &["job", "dependency"]
    } else if get("severity") == "notify" {
        &["dependency"]
    } else {
        &["job", "handler", "dependency"]
    }
}

/// The receiver's name in `alertmanager.yml`.
pub const fn receiver(team: Team, reach: Reach) -> &'static str {
    match (team, reach) {
        (Team::Gateway, Reach::Page) => "gateway-team-pager",
        (Team::Auth, Reach::Page) => "auth-team-pager",
        (Team::Platform, Reach::Page) => "platform-team-pager",
        (Team::Legacy, Reach::Page) => "legacy-team-pager",
        (Team::Platform, Reach::Notify) => "platform-team-chat",
        (Team::SessionStore, _) => "session-store-team-chat",
        _ => "unrouted",
    }
}
