//! `vigil backtest`: a model artifact on a bars file, through the vectorized layer, the OMS
//! layer (the real agents on the simulated clock and the paper venue), or both side by
//! side. Prints every figure, or JSON with `--json`. Exit codes: 0 it ran, 2 it could not
//! (model, data, config).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use vigil_backtest::evaluate::{self, Evaluation, Options};
use vigil_backtest::vectorized::Bars;
use vigil_backtest::{Figure, Market, MinimumSample, Summary, periods_per_year};
use vigil_config::VigilConfig;
use vigil_model::{Artifact, Onnx};

use crate::control_client::{USAGE, load_config};

/// Which layer runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layer {
    /// Features → output → positions → returns net of costs, over whole columns.
    Vectorized,
    /// The real Data, Regime, Signal, Risk and Execution agents on the simulated clock and
    /// the paper venue.
    Oms,
    /// Both, side by side.
    Both,
}

/// What both `vigil backtest` and `vigil gate` take.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The model: a directory with its `model.toml` (e.g. `models/ema_cross`).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// A bars CSV file (timestamp, open, high, low, close[, volume]).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Config: the costs (`[execution] commission_bps`, `slippage_bps`), `[signal]
    /// allow_short`, `[risk] position_pct`, the exchange calendar, and the store the run is
    /// recorded in (`[store]`: the deflated Sharpe's trials); default: the embedded one.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The instrument trades around the clock (annualise by 365.25 days, not by the
    /// exchange's sessions).
    #[arg(long)]
    pub(crate) all_day: bool,
    /// Fewest calendar days a ratio is computed on.
    #[arg(long, default_value_t = 90.0)]
    pub(crate) min_days: f64,
    /// Fewest closed trades a ratio is computed on.
    #[arg(long, default_value_t = 30)]
    pub(crate) min_trades: u64,
    /// The share of the bars in sample; the rest is out of sample.
    #[arg(long, default_value_t = 0.7)]
    pub(crate) split: f64,
    /// Anchored walk-forward folds.
    #[arg(long, default_value_t = 4)]
    pub(crate) folds: usize,
}

/// `vigil backtest` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct BacktestArgs {
    /// The layer.
    #[arg(long, value_enum, default_value = "both")]
    layer: Layer,
    #[command(flatten)]
    run: RunArgs,
    /// Parity mode: fills at the signal bar's close, no costs, unlimited liquidity, one
    /// unit, shorts allowed: both layers must then give the same P&L per unit.
    #[arg(long)]
    parity: bool,
    /// Print every figure as JSON.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report (equity, drawdown, folds) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keep the OMS layer's session files (log, store) in this folder instead of a
    /// temporary one.
    #[arg(long)]
    oms_dir: Option<PathBuf>,
}

/// A model and data, loaded and checked: what every layer runs on.
pub(crate) struct Loaded {
    pub(crate) cfg: VigilConfig,
    pub(crate) model: Artifact,
    pub(crate) graph: Option<Onnx>,
    pub(crate) bars: Bars,
    pub(crate) opts: Options,
    pub(crate) model_dir: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) data_sha256: String,
}

/// The SHA-256 of a file, hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, String> {
    use sha2::Digest as _;
    std::fs::read(path)
        .map(|b| hex::encode(sha2::Sha256::digest(&b)))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Records this backtest in the store (`[store]`) and returns how many backtests of the
/// model's name it holds: the deflated Sharpe ratio's trials.
fn record(
    cfg: &VigilConfig,
    model: &Artifact,
    data_sha256: &str,
    command: &str,
) -> Result<u64, String> {
    crate::control_client::with_store(cfg, async |store| {
        store
            .record_backtest(
                &model.manifest.name,
                &model.manifest.version,
                data_sha256,
                command,
                vigil_core::Clock::now(&vigil_core::SystemClock),
            )
            .await
            .map_err(|e| format!("recording the backtest in the store: {e}"))
    })
}

/// Loads the config, the model and the data, and records the run in the store as
/// `command`'s; `Err` is the message to refuse with.
pub(crate) fn load(args: &RunArgs, parity: bool, command: &str) -> Result<Loaded, String> {
    let cfg = load_config(args.config.as_deref()).ok_or_else(String::new)?;
    let (model, graph) = vigil_model::open(&args.model).map_err(|e| e.to_string())?;
    let progress = crate::progress::Progress::new("reading bars");
    // Read once: hashed (the store's record, the gate's artifact) as it is parsed.
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let bars = Bars::read_with(&args.data, |bytes| sha2::Digest::update(&mut hasher, bytes))
        .map_err(|e| e.to_string())?;
    let data_sha256 = hex::encode(sha2::Digest::finalize(hasher));
    progress.finish();
    let (Some(interval), Some(first), Some(last)) =
        (bars.interval(), bars.times.first(), bars.times.last())
    else {
        return Err(format!("{}: fewer than two bars", args.data.display()));
    };
    let calendar = cfg
        .calendar
        .calendar()
        .map_err(|e| format!("calendar: {e}"))?;
    let market = if args.all_day {
        Market::AllDay
    } else {
        Market::Exchange(&calendar)
    };
    let ppy = periods_per_year(market, interval, first.date_naive(), last.date_naive())
        .map_err(|e| e.to_string())?;
    if !(0.1..=0.95).contains(&args.split) {
        return Err(format!(
            "--split {}: the share in sample must be in [0.1, 0.95]",
            args.split
        ));
    }
    let trials = record(&cfg, &model, &data_sha256, command)?;
    let opts = Options {
        periods_per_year: ppy,
        minimum: MinimumSample {
            days: args.min_days,
            trades: args.min_trades,
        },
        split: args.split,
        folds: args.folds,
        trials,
        parity,
    };
    Ok(Loaded {
        cfg,
        model,
        graph,
        bars,
        opts,
        model_dir: absolute(&args.model)?,
        data: absolute(&args.data)?,
        data_sha256,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the layers `layer` asks for; the OMS layer's session files go to `oms_dir`, or to
/// a temporary folder removed afterwards.
pub(crate) fn evaluate(
    loaded: &Loaded,
    layer: Layer,
    oms_dir: Option<&Path>,
) -> Result<Vec<Evaluation>, String> {
    let mut out = Vec::new();
    if layer != Layer::Oms {
        let progress = crate::progress::Progress::new("vectorized layer");
        out.push(
            evaluate::vectorized(
                &loaded.model,
                loaded.graph.as_ref(),
                &loaded.bars,
                &loaded.cfg,
                &loaded.opts,
            )
            .map_err(|e| e.to_string())?,
        );
        progress.finish();
    }
    if layer != Layer::Vectorized {
        let progress = crate::progress::Progress::new(format!(
            "OMS layer: {} bars through the agents",
            loaded.bars.closes.len()
        ));
        let scratch;
        let work = match oms_dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                scratch = tempfile::tempdir().map_err(|e| format!("a scratch folder: {e}"))?;
                scratch.path().to_path_buf()
            }
        };
        out.push(
            evaluate::oms(
                &loaded.model_dir,
                &loaded.data,
                &loaded.bars,
                &loaded.cfg,
                &loaded.opts,
                &work,
            )
            .map_err(|e| e.to_string())?,
        );
        progress.finish();
    }
    Ok(out)
}

pub(crate) fn refuse(command: &str, e: &str) -> ExitCode {
    if !e.is_empty() {
        eprintln!("vigil {command}: {e}");
    }
    ExitCode::from(USAGE)
}

pub(crate) fn run_cmd(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let loaded = match load(&args.run, args.parity, "backtest") {
        Ok(l) => l,
        Err(e) => return Ok(refuse("backtest", &e)),
    };
    let layers = match evaluate(&loaded, args.layer, args.oms_dir.as_deref()) {
        Ok(l) => l,
        Err(e) => return Ok(refuse("backtest", &e)),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&document(&loaded, &args.run.data, &layers))?
        );
    } else {
        print_text(&loaded, &args.run.data, &layers);
    }
    let page = match crate::report::page(&loaded, &args.run.data, &layers, &[]) {
        Ok(p) => p,
        Err(e) => return Ok(refuse("backtest", &e)),
    };
    if let Some(path) = &args.report {
        crate::report::write(path, &page)?;
        if !args.json {
            println!("  report written to {}", path.display());
        }
    }
    let summary = json!({ "backtest": document(&loaded, &args.run.data, &layers) });
    match crate::report::record(&loaded, "backtest", &args.run.data, None, &summary, &page) {
        Ok(id) if !args.json => println!("  report {id} stored (the dashboard's Reports page)"),
        Ok(_) => {}
        Err(e) => return Ok(refuse("backtest", &e)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Every figure, as `--json` prints it and the gate stores it.
pub(crate) fn document(loaded: &Loaded, data: &Path, layers: &[Evaluation]) -> serde_json::Value {
    json!({
        "model": loaded.model.label(),
        "data": data.display().to_string(),
        "data_sha256": loaded.data_sha256,
        "bars": loaded.bars.closes.len(),
        "interval_s": loaded.bars.interval().map(|d| d.num_seconds()),
        "periods_per_year": loaded.opts.periods_per_year,
        "minimum_sample": loaded.opts.minimum,
        "trials": loaded.opts.trials,
        "parity": loaded.opts.parity,
        "layers": layers,
    })
}

/// A figure as text; a withheld one is `—` here, its reason listed under the table.
fn figure(f: &Figure, decimals: usize) -> String {
    match f {
        Figure::Value(v) => format!("{v:.decimals$}"),
        Figure::Withheld(_) => "—".into(),
    }
}

/// Every distinct reason a figure was withheld, in the order met.
fn withheld(layers: &[Evaluation]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &Summary| {
        for f in [
            &s.annual_return,
            &s.sharpe,
            &s.sortino,
            &s.calmar,
            &s.win_rate,
            &s.profit_factor,
            &s.probabilistic_sharpe,
            &s.deflated_sharpe,
        ] {
            if let Figure::Withheld(why) = f
                && !out.contains(why)
            {
                out.push(why.clone());
            }
        }
    };
    for e in layers {
        add(&e.summary);
        for seg in std::iter::once(&e.split).chain(&e.folds) {
            add(&seg.in_sample);
            add(&seg.out_of_sample);
        }
    }
    out
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// The rows of one summary, by name.
fn rows(s: &Summary, trials: u64) -> Vec<(String, String)> {
    vec![
        ("total return".into(), pct(s.total_return)),
        ("annual return".into(), figure(&s.annual_return, 4)),
        ("sharpe".into(), figure(&s.sharpe, 2)),
        ("sortino".into(), figure(&s.sortino, 2)),
        ("max drawdown".into(), pct(s.max_drawdown)),
        ("max drawdown bars".into(), s.max_drawdown_bars.to_string()),
        ("calmar".into(), figure(&s.calmar, 2)),
        ("win rate".into(), figure(&s.win_rate, 3)),
        ("profit factor".into(), figure(&s.profit_factor, 2)),
        ("turnover a year".into(), format!("{:.2}", s.turnover)),
        ("exposure".into(), pct(s.exposure)),
        (
            "probabilistic sharpe".into(),
            figure(&s.probabilistic_sharpe, 3),
        ),
        (
            format!("deflated sharpe ({trials} trial(s))"),
            figure(&s.deflated_sharpe, 3),
        ),
        ("trades".into(), s.trades.to_string()),
    ]
}

/// Every row of every layer, side by side: `(name, [value per layer])`.
pub(crate) fn table(loaded: &Loaded, layers: &[Evaluation]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut push =
        |name: String, value: String, column: usize| match out.iter_mut().find(|(n, _)| *n == name)
        {
            Some((_, values)) => values[column] = value,
            None => {
                let mut values = vec!["".to_string(); layers.len()];
                values[column] = value;
                out.push((name, values));
            }
        };
    for (c, e) in layers.iter().enumerate() {
        for (name, value) in rows(&e.summary, loaded.opts.trials) {
            push(name, value, c);
        }
        if e.probes.is_some() {
            push(
                "information coefficient".into(),
                e.information_coefficient
                    .map_or("— (the output does not vary)".into(), |v| {
                        format!("{v:.3}")
                    }),
                c,
            );
        }
        push("position changes".into(), e.position_changes.to_string(), c);
        push("pnl per unit".into(), format!("{:.2}", e.pnl_per_unit), c);
        push(
            format!("in sample sharpe (first {:.0}%)", loaded.opts.split * 100.0),
            figure(&e.split.in_sample.sharpe, 2),
            c,
        );
        push(
            "out of sample sharpe".into(),
            figure(&e.split.out_of_sample.sharpe, 2),
            c,
        );
        push(
            "oos / is sharpe".into(),
            e.split.decay.map_or("—".into(), |d| format!("{d:.2}")),
            c,
        );
        for f in &e.folds {
            push(
                format!("fold {} sharpe is / oos", f.fold),
                format!(
                    "{} / {}",
                    figure(&f.in_sample.sharpe, 2),
                    figure(&f.out_of_sample.sharpe, 2)
                ),
                c,
            );
        }
        if let Some(f) = &e.friction {
            push(
                "commission paid".into(),
                f.commission.round_dp(2).to_string(),
                c,
            );
            push(
                "slippage paid (vs decision price)".into(),
                f.slippage.round_dp(2).to_string(),
                c,
            );
            push("orders".into(), f.orders.to_string(), c);
            push("rejected by risk".into(), f.risk_rejected.to_string(), c);
            push(
                "rejected by the venue".into(),
                f.venue_rejects.to_string(),
                c,
            );
            push("partial fills".into(), f.partial_fills.to_string(), c);
            push("pnl (money)".into(), f.pnl.round_dp(2).to_string(), c);
            if let Some(v) = layers.iter().find(|l| l.layer == "vectorized") {
                push(
                    "gap to vectorized: total return".into(),
                    pct(e.summary.total_return - v.summary.total_return),
                    c,
                );
                push(
                    "gap to vectorized: sharpe".into(),
                    match (e.summary.sharpe.value(), v.summary.sharpe.value()) {
                        (Some(a), Some(b)) => format!("{:.2}", a - b),
                        _ => "—".into(),
                    },
                    c,
                );
            }
        }
        if let Some(p) = &e.probes {
            push(
                "probe: lagged one bar, sharpe".into(),
                figure(&p.lagged_one_bar.sharpe, 2),
                c,
            );
            push(
                "probe: costs doubled, sharpe".into(),
                figure(&p.costs_doubled.sharpe, 2),
                c,
            );
        }
    }
    out
}

fn print_text(loaded: &Loaded, data: &Path, layers: &[Evaluation]) {
    let s = &layers[0].summary;
    println!(
        "vigil backtest: {} on {}, {} bars over {:.0} days, {:.0} bars a year{}",
        loaded.model.label(),
        data.display(),
        s.bars,
        s.days,
        loaded.opts.periods_per_year,
        if loaded.opts.parity {
            " (parity mode)"
        } else {
            ""
        }
    );
    let names: Vec<&str> = layers.iter().map(|e| e.layer).collect();
    print!("  {:<34}", "");
    for n in &names {
        print!(" {n:<30}");
    }
    println!();
    for (name, values) in table(loaded, layers) {
        print!("  {name:<34}");
        for v in values {
            print!(" {v:<30}");
        }
        println!();
    }
    for why in withheld(layers) {
        println!("  — withheld: {why}");
    }
}
