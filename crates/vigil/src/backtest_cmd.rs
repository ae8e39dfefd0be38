//! `vigil backtest`: a model artifact on a bars file, through the vectorized layer (the OMS
//! layer, the parity mode and the gate are issue 21's next steps). Prints every figure, or
//! JSON with `--json`. Exit codes: 0 it ran, 2 it could not (model, data, config).

use std::path::PathBuf;
use std::process::ExitCode;

use rust_decimal::prelude::ToPrimitive as _;
use serde_json::json;
use vigil_backtest::vectorized::{Bars, Costs, outputs, run};
use vigil_backtest::{Figure, Market, MinimumSample, Sample, Summary, periods_per_year, summarise};
use vigil_model::Artifact;

use crate::control_client::{USAGE, load_config};

/// Which layer runs the model.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Layer {
    /// Features → output → positions → returns net of costs, over whole columns.
    Vectorized,
}

/// `vigil backtest` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct BacktestArgs {
    /// The layer (the OMS layer is not built yet).
    #[arg(long, value_enum, default_value = "vectorized")]
    layer: Layer,
    /// The model: a directory with its `model.toml` (e.g. `models/ema_cross`).
    #[arg(long)]
    model: PathBuf,
    /// A bars CSV file (timestamp, open, high, low, close[, volume]).
    #[arg(long)]
    data: PathBuf,
    /// Config: the costs (`[execution] commission_bps`, `slippage_bps`), `[signal]
    /// allow_short`, the exchange calendar; default: the embedded one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The instrument trades around the clock (annualise by 365.25 days, not by the
    /// exchange's sessions).
    #[arg(long)]
    all_day: bool,
    /// Fewest calendar days a ratio is computed on.
    #[arg(long, default_value_t = 90.0)]
    min_days: f64,
    /// Fewest closed trades a ratio is computed on.
    #[arg(long, default_value_t = 30)]
    min_trades: u64,
    /// Print every figure as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_cmd(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let Layer::Vectorized = args.layer;
    let Some(cfg) = load_config(args.config.as_deref()) else {
        return Ok(ExitCode::from(USAGE));
    };
    let refuse = |e: &dyn std::fmt::Display| {
        eprintln!("vigil backtest: {e}");
        Ok(ExitCode::from(USAGE))
    };
    let model = match Artifact::load(&args.model) {
        Ok(m) => m,
        Err(e) => return refuse(&e),
    };
    let bars = match Bars::read(&args.data) {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    let (Some(interval), Some(first), Some(last)) =
        (bars.interval(), bars.times.first(), bars.times.last())
    else {
        return refuse(&format!("{}: fewer than two bars", args.data.display()));
    };
    let calendar = match cfg.calendar.calendar() {
        Ok(c) => c,
        Err(e) => return refuse(&format!("calendar: {e}")),
    };
    let market = if args.all_day {
        Market::AllDay
    } else {
        Market::Exchange(&calendar)
    };
    let ppy = match periods_per_year(market, interval, first.date_naive(), last.date_naive()) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    let outs = match outputs(&model, &bars.closes, cfg.signal.allow_short) {
        Ok(o) => o,
        Err(e) => return refuse(&e),
    };
    let bps = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
    let costs = Costs {
        commission_bps: bps(cfg.execution.commission_bps),
        slippage_bps: bps(cfg.execution.slippage_bps),
    };
    let days = (*last - *first).num_seconds() as f64 / 86_400.0;
    let minimum = MinimumSample {
        days: args.min_days,
        trades: args.min_trades,
    };
    let output = &model.manifest.output;
    let summary_of = |costs: &Costs, lag: usize| {
        let r = run(&bars.closes, &outs, output, costs, lag);
        let s = summarise(
            &Sample {
                returns: &r.returns,
                periods_per_year: ppy,
                days,
                trades: &r.trades,
                exposed_bars: r.exposed_bars,
                turnover: r.turnover,
                trials: 1,
            },
            &minimum,
        );
        (r, s)
    };
    let (r, summary) = summary_of(&costs, 0);
    let (_, lagged) = summary_of(&costs, 1);
    let doubled = Costs {
        commission_bps: costs.commission_bps * 2.0,
        slippage_bps: costs.slippage_bps * 2.0,
    };
    let (_, dear) = summary_of(&doubled, 0);
    let (values, next): (Vec<f64>, Vec<f64>) = outs
        .iter()
        .zip(bars.closes.windows(2))
        .filter_map(|(o, w)| o.map(|o| (o, w[1] / w[0] - 1.0)))
        .unzip();
    let ic = vigil_backtest::metrics::information_coefficient(&values, &next);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "layer": "vectorized",
                "model": model.label(),
                "data": args.data.display().to_string(),
                "bars": bars.closes.len(),
                "interval_s": interval.num_seconds(),
                "periods_per_year": ppy,
                "costs_bps": costs.commission_bps + costs.slippage_bps,
                "position_changes": r.position_changes,
                "information_coefficient": ic,
                "trials": 1,
                "summary": summary,
                "probes": {
                    "lagged_one_bar": { "sharpe": lagged.sharpe, "total_return": lagged.total_return },
                    "costs_doubled": { "sharpe": dear.sharpe, "total_return": dear.total_return },
                },
            }))?
        );
    } else {
        print_text(&model.label(), &args, ppy, &summary, &lagged, &dear, ic);
    }
    Ok(ExitCode::SUCCESS)
}

fn figure(f: &Figure, decimals: usize) -> String {
    match f {
        Figure::Value(v) => format!("{v:.decimals$}"),
        Figure::Withheld(why) => format!("— ({why})"),
    }
}

fn print_text(
    model: &str,
    args: &BacktestArgs,
    ppy: f64,
    s: &Summary,
    lagged: &Summary,
    dear: &Summary,
    ic: Option<f64>,
) {
    println!(
        "vigil backtest: {model} on {} (vectorized layer), {} bars over {:.0} days, {ppy:.0} bars a year",
        args.data.display(),
        s.bars,
        s.days
    );
    let pct = |v: f64| format!("{:.2}%", v * 100.0);
    let rows: Vec<(&str, String)> = vec![
        ("total return", pct(s.total_return)),
        ("annual return", figure(&s.annual_return, 4)),
        ("sharpe", figure(&s.sharpe, 2)),
        ("sortino", figure(&s.sortino, 2)),
        ("max drawdown", pct(s.max_drawdown)),
        ("max drawdown bars", s.max_drawdown_bars.to_string()),
        ("calmar", figure(&s.calmar, 2)),
        ("win rate", figure(&s.win_rate, 3)),
        ("profit factor", figure(&s.profit_factor, 2)),
        ("turnover a year", format!("{:.1}", s.turnover)),
        ("exposure", pct(s.exposure)),
        ("probabilistic sharpe", figure(&s.probabilistic_sharpe, 3)),
        ("deflated sharpe (1 trial)", figure(&s.deflated_sharpe, 3)),
        (
            "information coefficient",
            ic.map_or("— (the output does not vary)".into(), |v| {
                format!("{v:.3}")
            }),
        ),
        ("trades", s.trades.to_string()),
        ("probe: lagged one bar, sharpe", figure(&lagged.sharpe, 2)),
        ("probe: costs doubled, sharpe", figure(&dear.sharpe, 2)),
    ];
    for (name, value) in rows {
        println!("  {name:<30} {value}");
    }
}
