//! The picture, in two panels over the run's rule time: above, p99 latency
//! at the gateway's endpoint with the before-selftime alert's pages; below,
//! each service's p99 internal latency (and, as the auth service measures
//! them, the session store's p99 and the p99 time between it and the proxy)
//! with every shipped alert marked where it fired and labelled with the team
//! it reached. Phases are shaded and labelled.

use super::plan::{Fault, Plan, RULE_MINUTES_PER_SCRAPE};
use super::teams::{Reach, Team};
use super::verdict::{
    ENDPOINT_THRESHOLD, NETWORK_THRESHOLD, SESSION_STORE_THRESHOLD, THRESHOLDS, Verdict,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use selftime_alerting::eval::{NAME, Storage};
use selftime_alerting::shipped::{alerts, recorded};
use std::path::Path;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
/// Height of the legend strip under the panels.
const LEGEND: u32 = 56;
const INK: RGBColor = RGBColor(40, 40, 40);
const ENDPOINT: RGBColor = RGBColor(192, 57, 43);
const SESSION_STORE: RGBColor = RGBColor(120, 120, 120);
/// The time between auth and the proxy (the load balancer's, the platform
/// team's), as auth's calls to the proxy measure it.
const NETWORK: RGBColor = RGBColor(1, 133, 113);
/// A color per job, in [`super::teams::JOBS`] order.
const JOBS: [(&str, RGBColor); 4] = [
    ("gateway", RGBColor(118, 42, 131)),
    ("auth", RGBColor(33, 102, 172)),
    ("proxy", RGBColor(27, 120, 55)),
    ("legacy", RGBColor(191, 129, 45)),
];
/// Shading of a phase whose incident is another team's, the auth team's, none.
const THEIRS: RGBColor = RGBColor(253, 240, 220);
const OURS: RGBColor = RGBColor(250, 220, 220);
const HEALTHY: RGBColor = RGBColor(236, 246, 237);

/// A recorded series of `evaluated`, as (minute, ms) points, NaNs and
/// staleness left out.
pub fn points(evaluated: &Storage, name: &str, matchers: &[(&str, &str)]) -> Vec<(f64, f64)> {
    evaluated
        .series()
        .filter(|(labels, _)| {
            labels.get(NAME).is_some_and(|n| n == name)
                && matchers
                    .iter()
                    .all(|(k, v)| labels.get(*k).is_some_and(|x| x == v))
        })
        .flat_map(|(_, points)| points.iter())
        .filter_map(|&(t, v)| {
            let v = v.filter(|v| v.is_finite())?;
            #[allow(clippy::cast_precision_loss, reason = "minutes of a short run")]
            let minute = t as f64 / 60_000.0;
            Some((minute, v * 1e3))
        })
        .collect()
}

/// Writes the chart as an SVG file at `path`.
pub fn draw(
    plan: &Plan,
    verdict: &Verdict,
    evaluated: &Storage,
    path: &Path,
) -> Result<(), String> {
    draw_inner(plan, verdict, evaluated, path)
        .map_err(|error| format!("drawing {}: {error}", path.display()))
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Failure<DB> = DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>;

fn draw_inner(
    plan: &Plan,
    verdict: &Verdict,
    evaluated: &Storage,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (panels, strip) = root.split_vertically(HEIGHT - LEGEND);
    let (top, bottom) = panels.split_vertically((HEIGHT - LEGEND) * 2 / 5);
    endpoint_panel(&top, plan, verdict, evaluated)?;
    services_panel(&bottom, plan, verdict, evaluated)?;
    legend(&strip, plan)?;
    root.present()?;
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "minutes of a short run")]
fn minute(ms: i64) -> f64 {
    ms as f64 / 60_000.0
}

#[allow(clippy::cast_precision_loss, reason = "minutes of a short run")]
fn x_end(plan: &Plan) -> f64 {
    (plan.last_scrape() * RULE_MINUTES_PER_SCRAPE) as f64
}

/// Above: what the users see at the gateway, and the old alert's pages.
fn endpoint_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    plan: &Plan,
    verdict: &Verdict,
    evaluated: &Storage,
) -> Result<(), Failure<DB>> {
    let endpoint = points(evaluated, recorded::TOTAL_P99, &[("job", "gateway")]);
    let y_end = endpoint
        .iter()
        .map(|p| p.1)
        .fold(ENDPOINT_THRESHOLD * 1e3, f64::max)
        * 1.3;
    let mut chart = panel(
        area,
        "Before selftime: p99 latency at the gateway's login endpoint (the auth team's page)",
        x_end(plan),
        y_end,
    )?;
    phases(&mut chart, plan, verdict, y_end)?;
    threshold(&mut chart, x_end(plan), ENDPOINT_THRESHOLD * 1e3, ENDPOINT)?;
    chart.draw_series(LineSeries::new(
        endpoint.iter().copied(),
        ENDPOINT.stroke_width(3),
    ))?;
    for phase in &verdict.phases {
        if let Some(at) = phase.endpoint {
            let y = value_at(&endpoint, minute(at));
            let text = if phase.owner() == Some((Team::Auth, Reach::Page)) {
                "PAGE auth team"
            } else {
                "PAGE auth team (not theirs)"
            };
            marker(&mut chart, (minute(at), y), ENDPOINT, text)?;
        }
    }
    Ok(())
}

/// One line of the lower panel: its legend, color and points.
type Line = (RGBColor, Vec<(f64, f64)>);

/// Below: each service's own time, and whom the shipped rules reached.
fn services_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    plan: &Plan,
    verdict: &Verdict,
    evaluated: &Storage,
) -> Result<(), Failure<DB>> {
    let mut lines: Vec<Line> = JOBS
        .iter()
        .map(|&(job, color)| {
            (
                color,
                points(evaluated, recorded::INTERNAL_P99, &[("job", job)]),
            )
        })
        .collect();
    lines.push((
        SESSION_STORE,
        points(
            evaluated,
            recorded::DEPENDENCY_P99,
            &[("job", "auth"), ("dependency", "session_store")],
        ),
    ));
    lines.push((
        NETWORK,
        points(
            evaluated,
            recorded::BETWEEN_P99,
            &[("job", "auth"), ("dependency", "legacy_proxy")],
        ),
    ));
    let y_end = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(30.0, f64::max)
        * 1.3;
    let mut chart = panel(
        area,
        "With selftime: each service's own time, and whom the shipped rules reached",
        x_end(plan),
        y_end,
    )?;
    phases(&mut chart, plan, verdict, y_end)?;
    for ((_, seconds), (_, color)) in THRESHOLDS.iter().zip(JOBS) {
        threshold(&mut chart, x_end(plan), seconds * 1e3, color)?;
    }
    threshold(
        &mut chart,
        x_end(plan),
        SESSION_STORE_THRESHOLD * 1e3,
        SESSION_STORE,
    )?;
    threshold(&mut chart, x_end(plan), NETWORK_THRESHOLD * 1e3, NETWORK)?;
    for (color, points) in &lines {
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
    }
    for phase in &verdict.phases {
        // One marker per team reached: where its first alert fired.
        for &(team, reach) in phase.reached().keys() {
            let Some(first) = phase
                .alerts
                .iter()
                .filter(|f| f.reaches() == (team, reach))
                .min_by_key(|f| f.first)
            else {
                continue;
            };
            // A dependency's alert on the dependency's line: the time
            // between on the network's, the rest on the session store's.
            let (color, series) = if first.id.alert == alerts::BETWEEN_LATENCY {
                (NETWORK, &lines[JOBS.len() + 1].1)
            } else if first.id.labels.contains_key("dependency") {
                (SESSION_STORE, &lines[JOBS.len()].1)
            } else {
                let job = first.id.labels.get("job").map_or("", String::as_str);
                let i = JOBS.iter().position(|(j, _)| *j == job).unwrap_or(0);
                (JOBS[i].1, &lines[i].1)
            };
            let verb = match reach {
                Reach::Page => "PAGE",
                Reach::Notify => "NOTIFY",
            };
            let x = minute(first.first);
            marker(
                &mut chart,
                (x, value_at(series, x)),
                color,
                &format!("{verb} {}", team.name()),
            )?;
        }
    }
    Ok(())
}

fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_end: f64,
    y_end: f64,
) -> Result<Chart<'a, DB>, Failure<DB>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 19).into_font().color(&INK))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_end, 0.0..y_end)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("minutes of rule time (one scrape each)")
        .y_desc("p99 (ms)")
        .axis_desc_style(("sans-serif", 14).into_font().color(&INK))
        .label_style(("sans-serif", 12).into_font().color(&INK))
        .draw()?;
    Ok(chart)
}

/// The phases: shaded by whose incident each is, labelled at the top.
fn phases<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    plan: &Plan,
    verdict: &Verdict,
    y_end: f64,
) -> Result<(), Failure<DB>> {
    #[allow(clippy::cast_precision_loss, reason = "minutes of a short run")]
    let minute = |k: u64| (k * RULE_MINUTES_PER_SCRAPE) as f64;
    chart.draw_series(verdict.phases.iter().map(|phase| {
        let shade = match phase.phase.fault {
            Fault::None => HEALTHY,
            Fault::Own(_) | Fault::OwnSaturation(_) => OURS,
            _ => THEIRS,
        };
        // The fault itself; the recovery after it is left white.
        let end = if phase.phase.fault == Fault::None {
            phase.scrapes.1 + 1
        } else {
            phase.scrapes.0 + plan.fault
        };
        Rectangle::new(
            [(minute(phase.scrapes.0), 0.0), (minute(end), y_end)],
            shade.filled(),
        )
    }))?;
    let font = ("sans-serif", 13).into_font().color(&INK);
    // The baseline is narrow: its label goes on a line of its own, below.
    chart.draw_series(verdict.phases.iter().enumerate().map(|(i, phase)| {
        let row = if i == 0 { 0.88 } else { 0.97 };
        Text::new(
            format!("{} {}", i + 1, phase.phase.label),
            (minute(phase.scrapes.0) + 0.8, y_end * row),
            font.clone(),
        )
    }))?;
    Ok(())
}

fn threshold<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x_end: f64,
    y: f64,
    color: RGBColor,
) -> Result<(), Failure<DB>> {
    chart.draw_series(DashedLineSeries::new(
        [(0.0, y), (x_end, y)],
        7,
        6,
        color.mix(0.6).stroke_width(1),
    ))?;
    Ok(())
}

fn marker<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    at: (f64, f64),
    color: RGBColor,
    text: &str,
) -> Result<(), Failure<DB>> {
    chart.draw_series(std::iter::once(
        EmptyElement::at(at)
            + Circle::new((0, 0), 6, color.filled())
            + Circle::new((0, 0), 6, WHITE.stroke_width(2))
            + Text::new(
                text.to_owned(),
                (8, -20),
                ("sans-serif", 12).into_font().color(&color),
            ),
    ))?;
    Ok(())
}

/// The series' value at `x`, or the nearest point's.
fn value_at(points: &[(f64, f64)], x: f64) -> f64 {
    points
        .iter()
        .min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()))
        .map_or(0.0, |p| p.1)
}

fn legend<DB: DrawingBackend>(
    strip: &DrawingArea<DB, plotters::coord::Shift>,
    plan: &Plan,
) -> Result<(), Failure<DB>> {
    let font = ("sans-serif", 13).into_font().color(&INK);
    let mut x = 70;
    for (text, color) in JOBS.iter().map(|&(job, c)| (job.to_owned(), c)).chain([
        ("session store".to_owned(), SESSION_STORE),
        ("network to the proxy".to_owned(), NETWORK),
        ("gateway endpoint".to_owned(), ENDPOINT),
    ]) {
        strip.draw(&PathElement::new(
            [(x, 14), (x + 26, 14)],
            color.stroke_width(3),
        ))?;
        strip.draw(&Text::new(text.clone(), (x + 32, 6), font.clone()))?;
        x += 40 + 8 * i32::try_from(text.len()).unwrap_or(10);
    }
    let note = format!(
        "dashed: thresholds · shaded: while a fault lasts (red: the auth team's own) · p99s read from buckets, as Prometheus reads them · one scrape every {:.0} ms",
        plan.scrape_every.as_secs_f64() * 1e3
    );
    strip.draw(&Text::new(note, (70, 30), font))?;
    Ok(())
}
