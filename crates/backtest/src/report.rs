//! The backtest report (issue 21 point 7): one self-contained HTML page, with no network
//! reference, that shows the equity curve and the drawdown curve of each layer, the
//! walk-forward folds' in- and out-of-sample Sharpe ratios and the gate's checks. The charts
//! are drawn by `plotters` as inline SVG (the browser renders their text; its layout uses
//! the font the day report's chart embeds, [`vigil_session::chart_font`]); the tables are
//! plain HTML. Every text the caller gives is escaped. Long curves are
//! thinned to at most [`MAX_POINTS`] points a layer, keeping each bucket's first, lowest and
//! highest point and the last point, so a million-bar run gives a small page and its worst
//! drawdown still shows.

use chrono::{DateTime, Duration, Utc};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use vigil_core::escape_markup as escape;

/// At most this many points of one layer's curve are drawn (plus its last point).
pub const MAX_POINTS: usize = 2_000;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 380;

/// What the report shows.
#[derive(Debug)]
pub struct ReportInput<'a> {
    /// The page's title, e.g. `ema_cross@1.0.0 on GOOG.csv`.
    pub title: &'a str,
    /// One curve per layer run (vectorized, oms); their time axes may differ.
    pub layers: Vec<LayerCurve<'a>>,
    /// The walk-forward folds.
    pub folds: &'a [FoldRow],
    /// The gate's checks; empty when no gate ran.
    pub gate: &'a [GateRow],
    /// Name → value text, printed as a table.
    pub figures: &'a [(String, String)],
}

/// One layer's equity curve.
#[derive(Debug)]
pub struct LayerCurve<'a> {
    /// The layer's name (`vectorized`, `oms`).
    pub layer: &'a str,
    /// Each point's time.
    pub times: &'a [DateTime<Utc>],
    /// Equity at each time, starting at 1.0.
    pub equity: &'a [f64],
}

/// One walk-forward fold; a ratio is `None` when it was withheld.
#[derive(Clone, Debug)]
pub struct FoldRow {
    /// The fold's number.
    pub fold: usize,
    /// The in-sample Sharpe ratio.
    pub in_sample_sharpe: Option<f64>,
    /// The out-of-sample Sharpe ratio.
    pub out_of_sample_sharpe: Option<f64>,
}

/// One check of the gate.
#[derive(Clone, Debug)]
pub struct GateRow {
    /// The layer the check was made on.
    pub layer: String,
    /// The check's name.
    pub check: String,
    /// Its threshold, as text.
    pub threshold: String,
    /// The value measured, as text.
    pub value: String,
    /// Whether the check passed.
    pub passed: bool,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A chart could not be drawn.
    #[error("drawing the {chart} chart: {message}")]
    Chart {
        /// Which chart.
        chart: &'static str,
        /// The drawing library's error.
        message: String,
    },
    /// A layer's times and equity values differ in number.
    #[error("layer {layer}: {times} times but {equity} equity values")]
    Lengths {
        /// The layer.
        layer: String,
        /// How many times.
        times: usize,
        /// How many equity values.
        equity: usize,
    },
}

fn chart_error(chart: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ReportError {
    move |e| ReportError::Chart {
        chart,
        message: e.to_string(),
    }
}

/// One drawn curve: its label, the points drawn, and what was left out.
#[derive(Debug)]
struct Curve {
    label: String,
    points: Vec<(DateTime<Utc>, f64)>,
    /// Finite points before thinning.
    finite: usize,
    /// All points given.
    total: usize,
}

/// The finite points of a layer's equity.
fn finite_points(layer: &LayerCurve<'_>) -> Vec<(DateTime<Utc>, f64)> {
    layer
        .times
        .iter()
        .zip(layer.equity)
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (*t, *v))
        .collect()
}

/// Drawdown at each point: equity over its running maximum, less one (0 at a new high).
/// Points before the first positive equity have no drawdown and are left out.
pub fn drawdown(points: &[(DateTime<Utc>, f64)]) -> Vec<(DateTime<Utc>, f64)> {
    let mut peak = f64::NEG_INFINITY;
    let mut out = Vec::with_capacity(points.len());
    for &(t, v) in points {
        peak = peak.max(v);
        if peak > 0.0 {
            out.push((t, v / peak - 1.0));
        }
    }
    out
}

/// Thins a curve to at most `max` points plus its last: the points fall into buckets, and
/// each bucket keeps its first, lowest and highest point in time order, so no peak or trough
/// is lost. Curves of at most `max` points are kept whole.
pub fn downsample(points: &[(DateTime<Utc>, f64)], max: usize) -> Vec<(DateTime<Utc>, f64)> {
    if points.len() <= max || max < 3 {
        return points.to_vec();
    }
    let buckets = max / 3;
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max + 1);
    for chunk in points.chunks(size) {
        let mut lo = 0;
        let mut hi = 0;
        for (i, (_, v)) in chunk.iter().enumerate() {
            if *v < chunk[lo].1 {
                lo = i;
            }
            if *v > chunk[hi].1 {
                hi = i;
            }
        }
        let mut keep = [0, lo, hi];
        keep.sort_unstable();
        let mut last_kept = None;
        for i in keep {
            if last_kept != Some(i) {
                out.push(chunk[i]);
                last_kept = Some(i);
            }
        }
    }
    if let (Some(last), Some(kept)) = (points.last(), out.last())
        && kept != last
    {
        out.push(*last);
    }
    out
}

/// Renders the report page.
pub fn render(input: &ReportInput<'_>) -> Result<String, ReportError> {
    // plotters lays the SVG's text out with the embedded font (the browser draws it).
    vigil_session::chart_font().map_err(|e| chart_error("report")(&e))?;
    let mut equity = Vec::with_capacity(input.layers.len());
    let mut drawdowns = Vec::with_capacity(input.layers.len());
    let mut layer_rows = Vec::with_capacity(input.layers.len());
    for layer in &input.layers {
        if layer.times.len() != layer.equity.len() {
            return Err(ReportError::Lengths {
                layer: layer.layer.to_string(),
                times: layer.times.len(),
                equity: layer.equity.len(),
            });
        }
        let points = finite_points(layer);
        let dd = drawdown(&points);
        let worst = dd
            .iter()
            .map(|(_, v)| *v)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        layer_rows.push(LayerRow {
            layer: layer.layer.to_string(),
            points: layer.equity.len(),
            skipped: layer.equity.len() - points.len(),
            last: points.last().map(|(_, v)| *v),
            max_drawdown: worst,
        });
        drawdowns.push(Curve {
            label: layer.layer.to_string(),
            points: downsample(&dd, MAX_POINTS),
            finite: dd.len(),
            total: layer.equity.len(),
        });
        equity.push(Curve {
            label: layer.layer.to_string(),
            points: downsample(&points, MAX_POINTS),
            finite: points.len(),
            total: layer.equity.len(),
        });
    }

    let mut page = String::new();
    let title = escape(input.title);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(&format!("<title>Backtest report: {title}</title>\n"));
    page.push_str(STYLE);
    page.push_str("</head>\n<body>\n");
    page.push_str(&format!("<h1>Backtest report: {title}</h1>\n"));

    page.push_str("<h2>Figures</h2>\n");
    if input.figures.is_empty() {
        page.push_str("<p>No figures.</p>\n");
    } else {
        page.push_str("<table>\n<tr><th>figure</th><th>value</th></tr>\n");
        for (name, value) in input.figures {
            page.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>\n",
                escape(name),
                escape(value)
            ));
        }
        page.push_str("</table>\n");
    }

    page.push_str("<h2>Equity</h2>\n");
    if input.layers.is_empty() {
        page.push_str("<p>No layer ran.</p>\n");
    } else {
        page.push_str(&layer_table(&layer_rows));
        page.push_str(&figure(
            &curve_chart("equity", "equity (start = 1)", &equity, false)?,
            "Equity of each layer.",
        ));
        page.push_str(&thinning_notes(&equity));
        page.push_str("<h2>Drawdown</h2>\n");
        page.push_str(&figure(
            &curve_chart(
                "drawdown",
                "drawdown (equity / running max − 1)",
                &drawdowns,
                true,
            )?,
            "Drawdown of each layer: equity over its running maximum, less one.",
        ));
        page.push_str(&thinning_notes(&drawdowns));
    }

    page.push_str("<h2>Walk-forward folds</h2>\n");
    if input.folds.is_empty() {
        page.push_str("<p>No folds.</p>\n");
    } else {
        page.push_str(&figure(
            &folds_chart(input.folds)?,
            "In-sample and out-of-sample Sharpe ratio of each fold.",
        ));
        page.push_str(&fold_notes(input.folds));
        page.push_str(&fold_table(input.folds));
    }

    page.push_str("<h2>Gate</h2>\n");
    if input.gate.is_empty() {
        page.push_str("<p>No gate ran.</p>\n");
    } else {
        let passed = input.gate.iter().filter(|r| r.passed).count();
        page.push_str(&format!(
            "<p>{passed} of {} checks passed.</p>\n",
            input.gate.len()
        ));
        page.push_str(&gate_table(input.gate));
        page.push_str(&figure(
            &gate_chart(input.gate)?,
            "Checks passed and failed, per layer.",
        ));
    }

    page.push_str("</body>\n</html>\n");
    Ok(page)
}

const STYLE: &str = "<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; }
td.num { font-variant-numeric: tabular-nums; }
tr.pass td.result { background: #d7f2d7; color: #145214; font-weight: bold; }
tr.fail td.result { background: #f8d4d4; color: #7a1010; font-weight: bold; }
figure { margin: 0.5em 0 1em; }
figcaption { color: #555; font-size: 0.9em; }
p.note { color: #555; font-size: 0.9em; }
</style>
";

/// A figure around an inline SVG chart.
fn figure(svg: &str, caption: &str) -> String {
    format!(
        "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        escape(caption)
    )
}

#[derive(Debug)]
struct LayerRow {
    layer: String,
    points: usize,
    skipped: usize,
    last: Option<f64>,
    max_drawdown: Option<f64>,
}

fn layer_table(rows: &[LayerRow]) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>layer</th><th>points</th><th>final equity</th><th>max drawdown</th></tr>\n",
    );
    for r in rows {
        let last = r
            .last
            .map_or_else(|| "–".to_string(), |v| format!("{v:.4}"));
        let dd = r
            .max_drawdown
            .map_or_else(|| "–".to_string(), |v| format!("{:.2}%", v * 100.0));
        let skipped = if r.skipped > 0 {
            format!(" ({} not finite, not drawn)", r.skipped)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}{skipped}</td><td class=\"num\">{last}</td><td class=\"num\">{dd}</td></tr>\n",
            escape(&r.layer),
            r.points
        ));
    }
    out.push_str("</table>\n");
    out
}

fn thinning_notes(curves: &[Curve]) -> String {
    let mut out = String::new();
    for c in curves {
        if c.points.len() < c.finite {
            out.push_str(&format!(
                "<p class=\"note\">{}: {} of {} points drawn (each bucket's first, lowest and highest, and the last).</p>\n",
                escape(&c.label),
                c.points.len(),
                c.total
            ));
        }
    }
    out
}

/// The smallest and largest finite value of the curves, padded; a flat or empty range is
/// widened so the axis has a span.
fn value_range(values: impl Iterator<Item = f64>, include_zero_top: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if include_zero_top {
        hi = hi.max(0.0);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (-1.0, 1.0);
    }
    if hi - lo < 1e-9 {
        let pad = (hi.abs() * 0.01).max(0.01);
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    lo -= pad;
    if !include_zero_top {
        hi += pad;
    }
    (lo, hi)
}

fn time_range(curves: &[Curve]) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut times = curves.iter().flat_map(|c| c.points.iter().map(|(t, _)| *t));
    let Some(first) = times.next() else {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        return (now, now + Duration::days(1));
    };
    let (lo, hi) = times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if hi <= lo {
        (lo - Duration::hours(12), hi + Duration::hours(12))
    } else {
        (lo, hi)
    }
}

fn layer_color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// A line chart of one curve per layer against time.
fn curve_chart(
    name: &'static str,
    y_desc: &str,
    curves: &[Curve],
    drawdown: bool,
) -> Result<String, ReportError> {
    let err = chart_error(name);
    let (t0, t1) = time_range(curves);
    let (y0, y1) = value_range(
        curves.iter().flat_map(|c| c.points.iter().map(|(_, v)| *v)),
        drawdown,
    );
    let span = t1 - t0;
    let time_format = if span <= Duration::days(14) {
        "%Y-%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(70)
            .build_cartesian_2d(t0..t1, y0..y1)
            .map_err(|e| err(&e))?;
        let x_format = |t: &DateTime<Utc>| t.format(time_format).to_string();
        let y_format = |v: &f64| {
            if drawdown {
                format!("{:.1}%", v * 100.0)
            } else {
                format!("{v:.3}")
            }
        };
        chart
            .configure_mesh()
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for (i, curve) in curves.iter().enumerate() {
            let color = layer_color(i);
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .position(if drawdown {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn fold_notes(folds: &[FoldRow]) -> String {
    let mut missing = Vec::new();
    for f in folds {
        for (which, v) in [
            ("in-sample", f.in_sample_sharpe),
            ("out-of-sample", f.out_of_sample_sharpe),
        ] {
            match v {
                None => missing.push(format!("fold {}: {which} Sharpe withheld", f.fold)),
                Some(v) if !v.is_finite() => {
                    missing.push(format!("fold {}: {which} Sharpe not finite ({v})", f.fold))
                }
                Some(_) => {}
            }
        }
    }
    if missing.is_empty() {
        return String::new();
    }
    format!(
        "<p class=\"note\">Not drawn: {}.</p>\n",
        escape(&missing.join("; "))
    )
}

fn sharpe_text(v: Option<f64>) -> String {
    v.map_or_else(|| "withheld".to_string(), |v| format!("{v:.3}"))
}

fn fold_table(folds: &[FoldRow]) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>fold</th><th>in-sample Sharpe</th><th>out-of-sample Sharpe</th></tr>\n",
    );
    for f in folds {
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            f.fold,
            sharpe_text(f.in_sample_sharpe),
            sharpe_text(f.out_of_sample_sharpe)
        ));
    }
    out.push_str("</table>\n");
    out
}

const IN_SAMPLE: RGBColor = RGBColor(70, 110, 190);
const OUT_OF_SAMPLE: RGBColor = RGBColor(235, 140, 40);
const PASSED: RGBColor = RGBColor(60, 160, 80);
const FAILED: RGBColor = RGBColor(200, 60, 60);

/// A chart with one slot per category on x; each slot has a left and a right bar.
struct PairedBars<'a> {
    name: &'static str,
    y_desc: &'a str,
    categories: Vec<String>,
    left: (&'a str, RGBColor, Vec<Option<f64>>),
    right: (&'a str, RGBColor, Vec<Option<f64>>),
    integer_y: bool,
}

fn paired_bar_chart(spec: &PairedBars<'_>) -> Result<String, ReportError> {
    let err = chart_error(spec.name);
    let n = spec.categories.len();
    let values = spec
        .left
        .2
        .iter()
        .chain(&spec.right.2)
        .flatten()
        .copied()
        .filter(|v| v.is_finite());
    let (mut y0, mut y1) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if y1 - y0 < 1e-9 {
        y1 = 1.0;
    }
    if spec.integer_y {
        // Counts: whole-number ticks, one spare above the highest bar.
        y1 = y1.ceil() + 1.0;
    } else {
        let pad = (y1 - y0) * 0.08;
        if y0 < 0.0 {
            y0 -= pad;
        }
        y1 += pad;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(70)
            // An integer range includes its end: 0..n-1 gives the n slots.
            .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), y0..y1)
            .map_err(|e| err(&e))?;
        let x_format = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                spec.categories.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        let y_format = |v: &f64| {
            if spec.integer_y {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            } else {
                format!("{v:.2}")
            }
        };
        chart
            .configure_mesh()
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .disable_x_mesh()
            .x_labels(n.max(1))
            .y_labels(if spec.integer_y {
                (y1.ceil() as usize + 1).min(10)
            } else {
                8
            })
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .y_desc(spec.y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for (side, (label, color, values)) in [(0, &spec.left), (1, &spec.right)] {
            let color = *color;
            let bars = values.iter().enumerate().filter_map(move |(i, v)| {
                let v = (*v).filter(|v| v.is_finite())?;
                let (a, b) = if side == 0 {
                    (SegmentValue::Exact(i), SegmentValue::CenterOf(i))
                } else {
                    (SegmentValue::CenterOf(i), SegmentValue::Exact(i + 1))
                };
                let mut bar = Rectangle::new([(a, 0.0), (b, v)], color.filled());
                if side == 0 {
                    bar.set_margin(0, 0, 8, 1);
                } else {
                    bar.set_margin(0, 0, 1, 8);
                }
                Some(bar)
            });
            chart
                .draw_series(bars)
                .map_err(|e| err(&e))?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn folds_chart(folds: &[FoldRow]) -> Result<String, ReportError> {
    paired_bar_chart(&PairedBars {
        name: "folds",
        y_desc: "Sharpe ratio",
        categories: folds.iter().map(|f| format!("fold {}", f.fold)).collect(),
        left: (
            "in-sample",
            IN_SAMPLE,
            folds.iter().map(|f| f.in_sample_sharpe).collect(),
        ),
        right: (
            "out-of-sample",
            OUT_OF_SAMPLE,
            folds.iter().map(|f| f.out_of_sample_sharpe).collect(),
        ),
        integer_y: false,
    })
}

/// Passed and failed checks per layer, the layers in the order they first appear.
fn gate_counts(gate: &[GateRow]) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    for row in gate {
        let i = match out.iter().position(|(l, _, _)| *l == row.layer) {
            Some(i) => i,
            None => {
                out.push((row.layer.clone(), 0, 0));
                out.len() - 1
            }
        };
        if row.passed {
            out[i].1 += 1;
        } else {
            out[i].2 += 1;
        }
    }
    out
}

fn gate_chart(gate: &[GateRow]) -> Result<String, ReportError> {
    let counts = gate_counts(gate);
    paired_bar_chart(&PairedBars {
        name: "gate",
        y_desc: "checks",
        categories: counts.iter().map(|(l, _, _)| l.clone()).collect(),
        left: (
            "passed",
            PASSED,
            counts.iter().map(|(_, p, _)| Some(*p as f64)).collect(),
        ),
        right: (
            "failed",
            FAILED,
            counts.iter().map(|(_, _, f)| Some(*f as f64)).collect(),
        ),
        integer_y: true,
    })
}

fn gate_table(gate: &[GateRow]) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>layer</th><th>check</th><th>threshold</th><th>value</th><th>result</th></tr>\n",
    );
    for r in gate {
        let (class, result) = if r.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        out.push_str(&format!(
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"result\">{result}</td></tr>\n",
            escape(&r.layer),
            escape(&r.check),
            escape(&r.threshold),
            escape(&r.value)
        ));
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests;
