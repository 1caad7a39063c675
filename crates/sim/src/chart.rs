//! SVG charts (plotters) of a scorecard's runs, each panel saying one thing:
//!
//! 1. **The whole trace**: load (in instance-equivalents at the SLO rate), demand (the fewest
//!    instances that meet the p95 SLO: the SLO line) and each policy's ready instances, averaged
//!    into at most [`MAX_POINTS`] buckets.
//! 2. **The worst burst, zoomed**: [`ZOOM_HOURS`] around the steepest rise in demand (where
//!    autoscalers fall behind), at full tick resolution.
//! 3. **SLO misses** in that window: one row per policy, a mark for every tick that missed.
//!
//! The legend stands in its own column, so it never covers a peak; every policy has its own
//! colour (the policy under test drawn thickest, the oracle dashed).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::SimError;
use crate::replay::Run;
use crate::simulation::Scorecard;
use crate::trace::Trace;

/// Points per series on the whole-trace panel.
pub const MAX_POINTS: usize = 400;
/// Length of the zoomed window (hours).
pub const ZOOM_HOURS: f64 = 6.0;

/// Distinct colours (no two reds); the first goes to the policy under test.
const COLOURS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(214, 39, 40),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
    RGBColor(0, 128, 128),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
];
const LOAD_FILL: RGBColor = RGBColor(215, 215, 215);
const MISS: RGBColor = RGBColor(200, 0, 0);
const WIDTH: u32 = 1100;
const LEGEND_WIDTH: u32 = 230;

/// One drawn line: a policy's supply, or the demand.
struct Line {
    name: String,
    colour: RGBColor,
    width: u32,
    dashed: bool,
}

fn bucketed(values: impl Iterator<Item = f64>, n: usize, tick_h: f64) -> Vec<(f64, f64)> {
    let per = n.div_ceil(MAX_POINTS).max(1);
    let mut out = Vec::with_capacity(MAX_POINTS + 1);
    let (mut sum, mut k, mut start) = (0.0, 0usize, 0usize);
    for (i, v) in values.enumerate() {
        sum += v;
        k += 1;
        if k == per {
            out.push((
                (start as f64 + per as f64 / 2.0) * tick_h,
                (sum / k as f64 * 10.0).round() / 10.0,
            ));
            sum = 0.0;
            k = 0;
            start = i + 1;
        }
    }
    if k > 0 {
        out.push((
            (start as f64 + k as f64 / 2.0) * tick_h,
            (sum / k as f64 * 10.0).round() / 10.0,
        ));
    }
    out
}

/// The ticks `[from, to)` of the zoomed window: centred on the worst burst, the tick where
/// demand stands highest above its minimum of the preceding half window; the whole run when it is
/// shorter than the window.
pub fn worst_window(demand: &[u32], tick_s: f64) -> (usize, usize) {
    let n = demand.len();
    let w = ((ZOOM_HOURS * 3600.0 / tick_s).round() as usize).max(2);
    if n <= w {
        return (0, n);
    }
    let half = w / 2;
    // Sliding minimum over the last `half` ticks (monotonic deque of indices).
    let mut mins: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let (mut best, mut best_at) = (0u32, 0usize);
    for (t, &d) in demand.iter().enumerate() {
        while mins.back().is_some_and(|&j| demand[j] >= d) {
            mins.pop_back();
        }
        mins.push_back(t);
        if mins.front().is_some_and(|&j| j + half < t) {
            mins.pop_front();
        }
        let rise = d - mins.front().map_or(d, |&j| demand[j]);
        if rise > best {
            (best, best_at) = (rise, t);
        }
    }
    let from = best_at.saturating_sub(half).min(n - w);
    (from, from + w)
}

/// Draws the scorecard's runs into an SVG file.
pub fn write_svg(path: &Path, card: &Scorecard, _trace: &Trace) -> Result<(), SimError> {
    let err = |e: String| SimError::Chart {
        path: path.to_owned(),
        reason: e,
    };
    let runs: Vec<&Run> = card
        .runs
        .iter()
        .filter(|r| r.policy != "static-peak")
        .collect();
    let Some(first) = runs.first() else {
        return Err(err("no runs to draw".into()));
    };
    let lines = lines(&runs);
    let strip_h = 30 + 22 * runs.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, 330 + 300 + strip_h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let (plots, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (whole, rest) = plots.split_vertically(330);
    let (zoom, strip) = rest.split_vertically(300);

    let tick_s = first.series.tick_s;
    let n = first.series.demand.len();
    let (from, to) = worst_window(&first.series.demand, tick_s);
    let title = format!(
        "{} — load, demand (the SLO line: fewest instances meeting the p95 SLO) and ready instances",
        card.trace
    );
    draw_panel(&whole, &title, card, &runs, &lines, (0, n), true).map_err(err)?;
    let zoom_title = format!(
        "zoom: {:.1}–{:.1} h around the steepest rise in demand, every {:.0} s tick",
        from as f64 * tick_s / 3600.0,
        to as f64 * tick_s / 3600.0,
        tick_s
    );
    draw_panel(&zoom, &zoom_title, card, &runs, &lines, (from, to), false).map_err(err)?;
    draw_misses(&strip, &runs, &lines, (from, to)).map_err(err)?;
    draw_legend(&legend, &lines).map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Demand first (black), then one line per run: the first (the policy under test) thickest, the
/// oracle dashed.
fn lines(runs: &[&Run]) -> Vec<Line> {
    let mut out = vec![Line {
        name: "demand (SLO line)".into(),
        colour: BLACK,
        width: 1,
        dashed: false,
    }];
    out.extend(runs.iter().enumerate().map(|(i, r)| Line {
        name: r.policy.clone(),
        colour: COLOURS[i % COLOURS.len()],
        width: if i == 0 { 3 } else { 1 },
        dashed: r.policy == "oracle",
    }));
    out
}

/// One panel: load as an area, demand and each run's ready instances over ticks `[from, to)`;
/// `bucket` averages into at most [`MAX_POINTS`] points.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    card: &Scorecard,
    runs: &[&Run],
    lines: &[Line],
    (from, to): (usize, usize),
    bucket: bool,
) -> Result<(), String> {
    let first = runs[0];
    let tick_h = first.series.tick_s / 3600.0;
    let per = card.rps_at_slo.max(1e-9);
    let n = to - from;
    let series = |v: Vec<f64>| -> Vec<(f64, f64)> {
        if bucket {
            bucketed(v.into_iter(), n, tick_h)
        } else {
            v.into_iter()
                .enumerate()
                .map(|(i, y)| ((from + i) as f64 * tick_h, y))
                .collect()
        }
    };
    let load = series(
        first.series.load_rps[from..to]
            .iter()
            .map(|v| f64::from(*v) / per)
            .collect(),
    );
    let mut curves = vec![series(
        first.series.demand[from..to]
            .iter()
            .map(|v| f64::from(*v))
            .collect(),
    )];
    curves.extend(runs.iter().map(|r| {
        series(
            r.series.supply[from..to]
                .iter()
                .map(|v| f64::from(*v))
                .collect(),
        )
    }));
    let ymax = curves
        .iter()
        .chain([&load])
        .flat_map(|c| c.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let (x0, x1) = (from as f64 * tick_h, (to as f64 * tick_h).max(1e-6));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(40)
        .build_cartesian_2d(x0..x1, 0.0..ymax * 1.08)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("hours since the trace start")
        .y_desc("instances")
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(AreaSeries::new(load, 0.0, LOAD_FILL.mix(0.6)))
        .map_err(|e| e.to_string())?;
    for (line, points) in lines.iter().zip(curves) {
        let style = line.colour.stroke_width(line.width);
        if line.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points, style))
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One row per run: a red mark for every tick of `[from, to)` that missed the SLO.
fn draw_misses(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    runs: &[&Run],
    lines: &[Line],
    (from, to): (usize, usize),
) -> Result<(), String> {
    let tick_h = runs[0].series.tick_s / 3600.0;
    let rows = runs.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("SLO missed (each mark: one tick)", ("sans-serif", 12))
        .margin_left(8)
        .margin_right(8)
        .y_label_area_size(40)
        .build_cartesian_2d(
            from as f64 * tick_h..(to as f64 * tick_h).max(1e-6),
            0.0..rows,
        )
        .map_err(|e| e.to_string())?;
    for (row, (run, line)) in runs.iter().zip(&lines[1..]).enumerate() {
        let y = rows - row as f64 - 0.5;
        let marks = run.series.slo_met[from..to]
            .iter()
            .enumerate()
            .filter(|(_, met)| !**met)
            .map(move |(i, _)| {
                let x = (from + i) as f64 * tick_h;
                Rectangle::new([(x, y - 0.45), (x + tick_h, y)], MISS.filled())
            });
        chart.draw_series(marks).map_err(|e| e.to_string())?;
        chart
            .draw_series([Text::new(
                line.name.clone(),
                (from as f64 * tick_h, y + 0.5),
                ("sans-serif", 10).into_font().color(&line.colour),
            )])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The legend, in its own column: load, then each line with its colour and style.
fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, lines: &[Line]) -> Result<(), String> {
    let font = ("sans-serif", 12).into_font();
    area.draw(&Rectangle::new([(8, 34), (28, 44)], LOAD_FILL.filled()))
        .map_err(|e| e.to_string())?;
    area.draw(&Text::new(
        "load (instance-equivalents)",
        (34, 33),
        font.clone(),
    ))
    .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let y = 56 + 18 * i as i32;
        let style = line.colour.stroke_width(line.width);
        let segments: &[(i32, i32)] = if line.dashed {
            &[(8, 15), (21, 28)]
        } else {
            &[(8, 28)]
        };
        for &(a, b) in segments {
            area.draw(&PathElement::new(vec![(a, y), (b, y)], style))
                .map_err(|e| e.to_string())?;
        }
        area.draw(&Text::new(line.name.clone(), (34, y - 7), font.clone()))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zoom_window_is_centred_on_the_steepest_rise_in_demand() {
        // 15 s ticks, 6 h window = 1440 ticks; a slow ramp early, a step of +30 at tick 5000.
        let mut d: Vec<u32> = (0..8000).map(|t| 5 + (t / 1000) as u32).collect();
        for x in &mut d[5000..5600] {
            *x += 30;
        }
        let (from, to) = worst_window(&d, 15.0);
        assert_eq!(to - from, 1440);
        assert!(from < 5000 && 5000 < to, "{from}..{to}");
        assert_eq!(from, 5000 - 720);
        // Shorter than the window: the whole run.
        assert_eq!(worst_window(&d[..100], 15.0), (0, 100));
    }
}
