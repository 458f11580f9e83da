//! Plots as inline SVG (plotters' SVG backend, no fonts or files needed), so the HTML report
//! opens anywhere without a network.

use plotters::prelude::*;

use crate::ReportError;

/// Series colours, in order. Distinct and readable on white; the screenshot check looks for them.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series>,
    /// Fixed y range (precision/recall: 0–1); otherwise from the data.
    pub y_range: Option<(f64, f64)>,
    /// Tick labels for x (dates), indexed by the rounded x value.
    pub x_ticks: Option<&'a [String]>,
    /// Connect points (false: scatter only).
    pub lines: bool,
}

fn err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Plot(format!("{e:?}"))
}

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if x0 == x1 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    // Counts read best from zero.
    y0 = y0.min(0.0);
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (x1 - x0) * 0.02;
    (x0 - pad, x1 + pad, y0, y1 * 1.08)
}

/// One chart as an SVG document (a string to inline into HTML).
pub fn line_chart(c: &Chart<'_>) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (820, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (x0, x1, mut y0, mut y1) = bounds(&c.series);
        if let Some((a, b)) = c.y_range {
            (y0, y1) = (a, b);
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(c.title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let ticks = c.x_ticks;
        let fmt_x = move |x: &f64| match ticks {
            Some(t) => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    t.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            None => trim_number(*x),
        };
        chart
            .configure_mesh()
            .x_desc(c.x_label)
            .y_desc(c.y_label)
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&|y| trim_number(*y))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (i, s) in c.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = color.stroke_width(2);
            if c.lines {
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), style))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
                chart
                    .draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
            }
        }
        if c.series.len() > 1 || c.series.first().is_some_and(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                // Scores crowd the top of a 0–1 axis: keep their legend out of the way.
                .position(if c.y_range.is_some() {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// 12 → "12", 0.85 → "0.85", 12345.678 → "12345.68".
pub fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}
