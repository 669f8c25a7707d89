//! The simulation plots: a measure against the number of labeled candidates, one line per
//! strategy (mean over replicates) with a band for the replicate spread (min to max), random
//! drawn in black as the reference; and, for several objectives, the acquired candidates over
//! the pool's true front. SVG and PNG, staged in the run's output set.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::OutputSet;
use crate::error::{Error, Result};
use crate::sim::pareto::ParetoSimResult;
use crate::sim::{CurvePoint, Objective, SimResult};

/// One strategy's curve: `(labeled, mean, min, max)` per round.
type Curve = Vec<(f64, f64, f64, f64)>;

/// What a curve plot draws.
struct CurvePlot<'a> {
    strategies: &'a [String],
    rounds: usize,
    reps: usize,
    curves: &'a [CurvePoint],
    metric: &'a str,
    label: String,
    /// The measure is a share: the axis stops at 1.
    share: bool,
}

fn curves(r: &CurvePlot) -> Vec<(String, Curve)> {
    r.strategies
        .iter()
        .map(|s| {
            let curve = (0..=r.rounds)
                .map(|round| {
                    let pts: Vec<(f64, f64)> = r
                        .curves
                        .iter()
                        .filter(|c| &c.strategy == s && c.round == round && c.metric == r.metric)
                        .map(|c| (c.labeled as f64, c.value))
                        .collect();
                    let n = pts.len().max(1) as f64;
                    let x = pts.iter().map(|p| p.0).sum::<f64>() / n;
                    let mean = pts.iter().map(|p| p.1).sum::<f64>() / n;
                    let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                    let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                    (x, mean, lo, hi)
                })
                .collect();
            (s.clone(), curve)
        })
        .collect()
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans, embedded: plots render the same on machines without fonts.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    r: &CurvePlot,
) -> std::result::Result<(), String> {
    let label = &r.label;
    let data = curves(r);
    let x_max = data
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = data
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.3))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let y_top = if r.share {
        1.0f64.min(y_max * 1.1).max(0.1)
    } else {
        (y_max * 1.1).max(1e-6)
    };
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{label} against labeled candidates ({} replicates)", r.reps),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("labeled candidates")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(label.as_str())
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, curve)) in data.iter().enumerate() {
        let color = if name == "random" {
            BLACK
        } else {
            let (r, g, b) = Palette99::pick(k).to_rgba().rgb();
            RGBColor(r, g, b)
        };
        let band: Vec<(f64, f64)> = curve
            .iter()
            .map(|p| (p.0, p.3))
            .chain(curve.iter().rev().map(|p| (p.0, p.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.15).filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (p.0, p.1)),
                color.stroke_width(if name == "random" { 3 } else { 2 }),
            ))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Stages the plot in `set`: SVG to `svg` and PNG to `png` (both declared outputs).
pub fn write_plots(set: &mut OutputSet, r: &SimResult, svg: &Path, png: &Path) -> Result<()> {
    let (metric, label, share) = match r.objective {
        Objective::FindBest => ("topk_recall", format!("top-{} recall", r.topk), true),
        Objective::Accuracy => ("test_rmse", "test RMSE".to_string(), false),
    };
    let plot = CurvePlot {
        strategies: &r.strategies,
        rounds: r.rounds,
        reps: r.reps,
        curves: &r.curves,
        metric,
        label,
        share,
    };
    write_both(
        set,
        svg,
        png,
        |root| draw(root, &plot),
        |root| draw(root, &plot),
    )
}

/// Stages a multi-objective simulation's plots: the hypervolume curves (`hv`, SVG and PNG) and
/// replicate 0's acquired candidates over the pool's values of the first two objectives
/// (`front`, SVG and PNG).
pub fn write_pareto_plots(
    set: &mut OutputSet,
    r: &ParetoSimResult,
    hv: [&Path; 2],
    front: [&Path; 2],
) -> Result<()> {
    let plot = CurvePlot {
        strategies: &r.strategies,
        rounds: r.rounds,
        reps: r.reps,
        curves: &r.curves,
        metric: "hypervolume",
        label: "hypervolume / pool's".to_string(),
        share: true,
    };
    write_both(
        set,
        hv[0],
        hv[1],
        |root| draw(root, &plot),
        |root| draw(root, &plot),
    )?;
    write_both(
        set,
        front[0],
        front[1],
        |root| draw_front(root, r),
        |root| draw_front(root, r),
    )
}

/// Replicate 0's acquired candidates (one colour per strategy, random black) over every
/// candidate (grey), on the first two objectives in the file's units.
fn draw_front<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    r: &ParetoSimResult,
) -> std::result::Result<(), String> {
    let m = r.objectives.len();
    let xy: Vec<(f64, f64)> = r.points.chunks_exact(m).map(|p| (p[0], p[1])).collect();
    let span = |f: fn(&(f64, f64)) -> f64| {
        let lo = xy.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = xy.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.03).max(1e-9);
        (lo - pad)..(hi + pad)
    };
    let (xs, ys) = (span(|p| p.0), span(|p| p.1));
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "acquired after {} rounds (replicate 0) over the pool",
                r.rounds
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(r.objectives[0].as_str())
        .y_desc(r.objectives[1].as_str())
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            xy.iter()
                .map(|&p| Circle::new(p, 2, RGBColor(200, 200, 200).filled())),
        )
        .map_err(|e| e.to_string())?;
    for (k, (name, rows)) in r.strategies.iter().zip(&r.acquired).enumerate() {
        let color = if name == "random" {
            BLACK
        } else {
            let (r, g, b) = Palette99::pick(k).to_rgba().rgb();
            RGBColor(r, g, b)
        };
        chart
            .draw_series(rows.iter().map(|&i| Circle::new(xy[i], 3, color.filled())))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Renders a figure to SVG (`svg`) and PNG (`png`) and stages both in `set`.
fn write_both(
    set: &mut OutputSet,
    svg: &Path,
    png: &Path,
    draw_svg: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>,
    draw_png: impl FnOnce(DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    let (w, h) = (900u32, 560u32);
    let mut text = String::new();
    draw_svg(SVGBackend::with_string(&mut text, (w, h)).into_drawing_area())
        .map_err(|e| Error::io(svg, std::io::Error::other(e)))?;
    set.write(svg, |f| f.write_all(text.as_bytes()))?;
    // The PNG encoder writes to a path and picks the format by its extension: render to a
    // scratch `.png` beside the output, then stage its bytes like any other output's.
    let (scratch, file) = set.scratch(png, "png")?;
    drop(file);
    draw_png(BitMapBackend::new(scratch.path(), (w, h)).into_drawing_area())
        .map_err(|e| Error::io(png, std::io::Error::other(e)))?;
    let bytes = std::fs::read(scratch.path()).map_err(|e| Error::io(png, e))?;
    set.write(png, |f| f.write_all(&bytes))
}
