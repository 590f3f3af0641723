//! The picture: p99 total vs p99 internal over time, phases shaded and
//! labelled, both thresholds drawn, each page marked.

use super::analysis::{Report, Signal};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 640;
/// Height of the legend strip under the plot.
const LEGEND: u32 = 60;
const TOTAL: RGBColor = RGBColor(192, 57, 43);
const INTERNAL: RGBColor = RGBColor(33, 102, 172);
/// Shading of a phase whose incident is another team's.
const THEIRS: RGBColor = RGBColor(253, 235, 208);
/// Shading of the phase whose incident is ours.
const OURS: RGBColor = RGBColor(250, 215, 215);
const BASELINE: RGBColor = RGBColor(232, 245, 233);
const INK: RGBColor = RGBColor(40, 40, 40);

const fn color(signal: Signal) -> RGBColor {
    match signal {
        Signal::Total => TOTAL,
        Signal::Internal => INTERNAL,
    }
}

/// Writes the chart of `report` as an SVG file at `path`.
pub(crate) fn draw(report: &Report, path: &Path) -> Result<(), String> {
    draw_inner(report, path).map_err(|error| format!("drawing {}: {error}", path.display()))
}

fn draw_inner(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend gets its own strip under the plot, where no line can hide it.
    let (plot, strip) = root.split_vertically(HEIGHT - LEGEND);

    let x_end = report.duration().max(1.0);
    let highest = report
        .phases
        .iter()
        .flat_map(|phase| &phase.evaluations)
        .flat_map(|evaluation| evaluation.p99.into_iter().flatten())
        .chain(report.rules.iter().map(|rule| rule.threshold))
        .fold(1.0_f64, f64::max);
    // Headroom above the highest line for the phase labels.
    let y_end = highest * 1.25;

    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!(
                "auth service logins: p99 latency over the last {} s, total vs internal",
                report.plan.window.as_secs_f64()
            ),
            ("sans-serif", 22).into_font().color(&INK),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_end, 0.0..y_end)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("seconds since the replay started")
        .y_desc("p99 latency (ms)")
        .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
        .label_style(("sans-serif", 13).into_font().color(&INK))
        .draw()?;

    phases(&mut chart, report, x_end, y_end)?;
    lines(&mut chart, report, x_end)?;
    legend(report, &strip)?;
    root.present()?;
    Ok(())
}

/// The chart's coordinates: seconds across, milliseconds up.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The phases: shaded by whose incident each is, labelled at the top.
fn phases<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    report: &Report,
    x_end: f64,
    y_end: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart.draw_series(report.phases.iter().map(|phase| {
        let shade = match phase.phase.fault.owner() {
            None => BASELINE,
            Some(_) if phase.phase.fault.is_ours() => OURS,
            Some(_) => THEIRS,
        };
        Rectangle::new([(phase.start, 0.0), (phase.end, y_end)], shade.filled())
    }))?;
    let label_font = ("sans-serif", 14).into_font().color(&INK);
    let owner_font = ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90));
    let pad = x_end * 0.006;
    chart.draw_series(report.phases.iter().enumerate().map(|(index, phase)| {
        Text::new(
            format!("{} {}", index + 1, phase.phase.label),
            (phase.start + pad, y_end * 0.975),
            label_font.clone(),
        )
    }))?;
    chart.draw_series(report.phases.iter().map(|phase| {
        let owner = match phase.phase.fault.owner() {
            None => "healthy".to_owned(),
            Some(owner) => format!("fault: {owner}"),
        };
        Text::new(owner, (phase.start + pad, y_end * 0.93), owner_font.clone())
    }))?;
    Ok(())
}

/// The thresholds, each signal's p99 line, and where each rule paged.
fn lines<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    report: &Report,
    x_end: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for rule in &report.rules {
        let ink = color(rule.signal);
        chart.draw_series(DashedLineSeries::new(
            [(0.0, rule.threshold), (x_end, rule.threshold)],
            8,
            6,
            ink.mix(0.7).stroke_width(2),
        ))?;
    }

    for signal in Signal::BOTH {
        let ink = color(signal);
        for phase in &report.phases {
            // One line per phase: each phase's windows are its own.
            let points: Vec<(f64, f64)> = phase
                .evaluations
                .iter()
                .filter_map(|e| Some((e.at, e.p99[signal as usize]?)))
                .collect();
            chart.draw_series(LineSeries::new(points, ink.stroke_width(3)))?;
        }
        // Where the rule paged.
        let pages: Vec<(f64, f64)> = report
            .phases
            .iter()
            .filter_map(|phase| {
                let at = phase.fired[signal as usize]?;
                let p99 = phase
                    .evaluations
                    .iter()
                    .find(|e| (e.at - at).abs() < 1e-9)
                    .and_then(|e| e.p99[signal as usize])?;
                Some((at, p99))
            })
            .collect();
        chart.draw_series(pages.iter().map(|&point| {
            EmptyElement::at(point)
                + Circle::new((0, 0), 7, ink.filled())
                + Circle::new((0, 0), 7, WHITE.stroke_width(2))
                + Text::new("PAGE", (9, -26), ("sans-serif", 13).into_font().color(&ink))
        }))?;
    }

    Ok(())
}

/// Two rows in four columns: each signal's line and threshold, then the
/// phase shadings.
fn legend<DB: DrawingBackend>(
    report: &Report,
    strip: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    const COLUMNS: [i32; 4] = [84, 300, 700, 880];
    const ROWS: [i32; 2] = [16, 40];
    let font = ("sans-serif", 14).into_font().color(&INK);
    for (rule, row) in report.rules.iter().zip(ROWS) {
        let ink = color(rule.signal);
        let x = COLUMNS[0];
        strip.draw(&PathElement::new(
            [(x, row), (x + 28, row)],
            ink.stroke_width(3),
        ))?;
        let text = format!("p99 {} latency", rule.signal.name());
        label(strip, x + 36, row, &text, &font)?;
        let x = COLUMNS[1];
        for dash in 0..3 {
            let from = x + dash * 11;
            strip.draw(&PathElement::new(
                [(from, row), (from + 7, row)],
                ink.mix(0.7).stroke_width(2),
            ))?;
        }
        let text = format!(
            "{} alert: p99 > {:.1} ms (baseline {:.1} + {} ms)",
            rule.signal.name(),
            rule.threshold,
            rule.baseline,
            report.plan.margin.as_millis()
        );
        label(strip, x + 36, row, &text, &font)?;
    }
    for (shade, text, x, row) in [
        (BASELINE, "phase: healthy", COLUMNS[2], ROWS[0]),
        (OURS, "phase: our own incident", COLUMNS[2], ROWS[1]),
        (
            THEIRS,
            "phase: another team's incident",
            COLUMNS[3],
            ROWS[0],
        ),
    ] {
        strip.draw(&Rectangle::new(
            [(x, row - 7), (x + 28, row + 7)],
            shade.filled(),
        ))?;
        label(strip, x + 36, row, text, &font)?;
    }
    Ok(())
}

/// Draws `text` with its left end at `x`, centred on `row`.
fn label<DB: DrawingBackend>(
    strip: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    row: i32,
    text: &str,
    font: &TextStyle<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    strip.draw(&Text::new(text.to_owned(), (x, row - 8), font.clone()))
}
