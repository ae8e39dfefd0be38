//! The day's equity and drawdown as one PNG: the equity curve above, the fall from the
//! day's running peak (in percent) below, on the same time axis (New York time). Drawn
//! with plotters into memory; labels in the embedded Lato font (SIL OFL 1.1, see
//! `assets/Lato-LICENSE.txt`).

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use rust_decimal::prelude::ToPrimitive;

use super::DayReport;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
const FONT: &[u8] = include_bytes!("../../assets/Lato-Regular.ttf");

/// Registers the embedded font as plotters' `sans-serif`, once per process; its error, if
/// it failed, every time. Every chart of the workspace calls it before drawing: with the
/// `ab_glyph` feature plotters lays text out with a registered font only (the backtest
/// report's SVG included).
pub fn chart_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the embedded chart font does not load".to_string())
        })
        .clone()
}

/// Minutes since midnight of `HH:MM`.
fn minutes(t: &str) -> Option<f64> {
    let (h, m) = t.split_once(':')?;
    Some(f64::from(
        h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?,
    ))
}

/// The chart of `report`'s curve as PNG bytes.
///
/// # Errors
/// When the curve has no readable point, or plotters or the encoder fail (with their
/// message).
pub(super) fn draw(report: &DayReport) -> Result<Vec<u8>, String> {
    chart_font()?;
    let points: Vec<(f64, f64)> = report
        .curve
        .iter()
        .filter_map(|(t, e)| Some((minutes(t)?, e.to_f64()?)))
        .collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err("the equity curve has no readable point".into());
    };
    let mut peak = f64::MIN;
    let drawdown: Vec<(f64, f64)> = points
        .iter()
        .map(|&(x, e)| {
            peak = peak.max(e);
            (
                x,
                if peak > 0.0 {
                    (e - peak) / peak * 100.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    let x = first.0..(last.0 + 1.0).max(first.0 + 30.0);
    let (lo, hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &(_, e)| {
            (lo.min(e), hi.max(e))
        });
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.0005).max(1.0);
    let deepest = drawdown.iter().fold(0.0f64, |m, &(_, d)| m.min(d));
    let deepest = (deepest * 1.15).min(-0.05);
    let err = |e: &dyn std::fmt::Display| format!("cannot draw the chart: {e}");
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (top, bottom) = root.split_vertically(HEIGHT * 62 / 100);
        let hhmm = |m: &f64| format!("{:02}:{:02}", (*m as u32) / 60, (*m as u32) % 60);
        let mut equity = ChartBuilder::on(&top)
            .caption(
                format!("Equity, {} session (New York time)", report.session),
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(24)
            .y_label_area_size(80)
            .build_cartesian_2d(x.clone(), (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        equity
            .configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&hhmm)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        equity
            .draw_series(LineSeries::new(
                points.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        let mut dd = ChartBuilder::on(&bottom)
            .caption("Drawdown from the day's peak (%)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(24)
            .y_label_area_size(80)
            .build_cartesian_2d(x, deepest..0.0)
            .map_err(|e| err(&e))?;
        dd.configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&hhmm)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(|e| err(&e))?;
        dd.draw_series(
            AreaSeries::new(drawdown.iter().copied(), 0.0, RED.mix(0.25)).border_style(RED),
        )
        .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, pixels)
        .ok_or_else(|| "the chart's pixels do not fill the picture".to_string())?;
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageOutputFormat::Png)
        .map_err(|e| format!("cannot encode the chart as PNG: {e}"))?;
    Ok(png.into_inner())
}
