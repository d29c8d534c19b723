//! SVG plots (plotters' SVG backend: text is written as SVG text, no font files needed). Each
//! carries the command, machine and date under the chart.

use std::path::Path as FsPath;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::measure::Run;
use crate::phases::{Path, Results};

const SIZE: (u32, u32) = (760, 480);
/// Height of the caption strip under the chart.
const FOOTER: u32 = 44;

fn color(p: Path) -> RGBColor {
    match p {
        Path::Direct => RGBColor(90, 90, 90),
        Path::Gateway => RGBColor(0, 114, 178),
        Path::Nginx => RGBColor(213, 94, 0),
        Path::Collector => RGBColor(0, 158, 115),
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}")
}

/// A line chart over the sweep: offered load (x, log scale) against one measure of each run (y).
struct Figure<'a> {
    file: &'a str,
    title: &'a str,
    y_label: &'a str,
    y: fn(&Run) -> Option<f64>,
    log_y: bool,
    legend: SeriesLabelPosition,
}

const FIGURES: [Figure<'static>; 3] = [
    Figure {
        file: "throughput.svg",
        title: "Achieved vs offered load (log scales)",
        y_label: "spans/s achieved (thousands)",
        y: |r| Some(r.spans_per_s / 1e3),
        log_y: true,
        legend: SeriesLabelPosition::LowerRight,
    },
    Figure {
        file: "latency.svg",
        title: "p99 latency vs offered load (log scales)",
        y_label: "p99 latency (ms)",
        y: |r| Some(r.p99_ms),
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    },
    Figure {
        file: "cpu.svg",
        title: "Proxy CPU per span vs offered load",
        y_label: "CPU µs per span",
        y: Run::us_per_span,
        log_y: false,
        legend: SeriesLabelPosition::UpperRight,
    },
];

pub fn draw_all(dir: &FsPath, r: &Results, stamp: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    FIGURES.iter().try_for_each(|f| draw(&dir.join(f.file), f, r, stamp))
}

/// (log10 of offered thousands of spans/s, y or its log10) of `p`'s sweep runs.
fn points(r: &Results, p: Path, f: &Figure) -> Vec<(f64, f64)> {
    let y = |run: &Run| (f.y)(run).filter(|v| *v > 0.0).map(|v| if f.log_y { v.log10() } else { v });
    let point = |(q, rate, run): &(Path, u64, Run)| Some(((*rate as f64 / 1e3).log10(), y(run)?)).filter(|_| *q == p);
    r.sweep.iter().filter_map(point).collect()
}

/// (min, max) of each coordinate over every series.
fn bounds(series: &[(Path, Vec<(f64, f64)>)]) -> ((f64, f64), (f64, f64)) {
    let pts = series.iter().flat_map(|(_, v)| v.iter());
    let grow = |(lo, hi): (f64, f64), v: f64| (lo.min(v), hi.max(v));
    pts.fold(((f64::MAX, f64::MIN), (f64::MAX, f64::MIN)), |(x, y), &(a, b)| (grow(x, a), grow(y, b)))
}

fn pow10(v: &f64) -> String {
    let x = 10f64.powf(*v);
    if x >= 10.0 { format!("{x:.0}") } else { format!("{x:.2}") }
}

fn draw(file: &FsPath, f: &Figure, r: &Results, stamp: &str) -> Result<()> {
    let root = SVGBackend::new(file, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (chart_area, footer) = root.split_vertically(SIZE.1 - FOOTER);
    caption(&footer, stamp)?;
    let series: Vec<(Path, Vec<(f64, f64)>)> = Path::ALL.iter().map(|&p| (p, points(r, p, f))).collect();
    let ((x0, x1), (y0, y1)) = bounds(&series);
    let y_range = if f.log_y { y0 - 0.15..(y1 + 0.15).max(y0 + 0.5) } else { 0.0..(y1 * 1.1).max(1e-3) };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(f.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0 - 0.1..x1 + 0.1, y_range)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("offered spans/s (thousands, log scale)").y_desc(f.y_label).x_label_formatter(&pow10);
    if f.log_y {
        mesh.y_label_formatter(&pow10);
    }
    mesh.draw().map_err(err)?;
    for (p, pts) in series.into_iter().filter(|(_, v)| !v.is_empty()) {
        let c = color(p);
        let line = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))).map_err(err)?;
        line.label(p.short()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|xy| Circle::new(xy, 3, c.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(f.legend.clone())
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// The stamp, wrapped on ` · ` into at most two lines.
fn caption(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, stamp: &str) -> Result<()> {
    let style = ("sans-serif", 12).into_font().color(&BLACK);
    let (first, rest) = stamp.split_once(" · ").unwrap_or((stamp, ""));
    area.draw_text(first, &style, (12, 4)).map_err(err)?;
    area.draw_text(rest, &style, (12, 22)).map_err(err)
}
