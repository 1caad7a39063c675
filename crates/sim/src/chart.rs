//! SVG charts (plotters): per trace, the load (in instance-equivalents at the
//! SLO rate), the demand, and each policy's supply (ready instances) over time.
//! Series are averaged into at most [`MAX_POINTS`] buckets to keep files small.

use std::path::Path;

use plotters::prelude::*;

use crate::SimError;
use crate::simulation::Scorecard;
use crate::trace::Trace;

/// Points per series.
pub const MAX_POINTS: usize = 400;

const COLOURS: &[RGBColor] = &[
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];

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

/// Draws the scorecard's runs into an SVG file.
pub fn write_svg(path: &Path, card: &Scorecard, _trace: &Trace) -> Result<(), SimError> {
    let err = |e: String| SimError::Chart {
        path: path.to_owned(),
        reason: e,
    };
    let Some(first) = card.runs.first() else {
        return Err(err("no runs to draw".into()));
    };
    let n = first.series.demand.len();
    let tick_h = first.series.tick_s / 3600.0;
    let hours = n as f64 * tick_h;
    let per = card.rps_at_slo.max(1e-9);
    let load = bucketed(
        first.series.load_rps.iter().map(|v| f64::from(*v) / per),
        n,
        tick_h,
    );
    let demand = bucketed(first.series.demand.iter().map(|v| f64::from(*v)), n, tick_h);
    let mut ymax = demand.iter().map(|p| p.1).fold(1.0, f64::max);
    let supplies: Vec<(String, Vec<(f64, f64)>)> = card
        .runs
        .iter()
        .filter(|r| r.policy != "static-peak")
        .map(|r| {
            let s = bucketed(r.series.supply.iter().map(|v| f64::from(*v)), n, tick_h);
            (r.policy.clone(), s)
        })
        .collect();
    for (_, s) in &supplies {
        ymax = s.iter().map(|p| p.1).fold(ymax, f64::max);
    }
    let root = SVGBackend::new(path, (900, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} — load, demand and supply (instances)", card.trace),
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..hours.max(1e-6), 0.0..ymax * 1.1)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("instances")
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(AreaSeries::new(load, 0.0, RGBColor(220, 220, 220).mix(0.6)))
        .map_err(|e| err(e.to_string()))?
        .label("load (instance-equivalents)")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 4), (x + 14, y + 4)],
                RGBColor(200, 200, 200).filled(),
            )
        });
    chart
        .draw_series(LineSeries::new(demand, BLACK.stroke_width(1)))
        .map_err(|e| err(e.to_string()))?
        .label("demand")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK));
    for (i, (name, s)) in supplies.into_iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(s, c.stroke_width(1)))
            .map_err(|e| err(e.to_string()))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
