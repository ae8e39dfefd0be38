//! The vectorized layer and the ONNX runtime, timed: `cargo bench -p vigil-backtest --bench
//! vectorized [-- FILE]` (figures in docs/benchmarks.md, beside `scripts/bench-numpy.py` on
//! the same file).
//!
//! FILE is a bars CSV (default `/tmp/bench/bars.csv`, 1,000,000 one-minute bars made by
//! `vigil data synth --bars 1000000 --seed 42 --out /tmp/bench/bars.csv`). Timed, `RUNS`
//! times each (default 5; best and median):
//! - `read`: the CSV file to the close column (`Bars::read`, the replay's reader and checks);
//! - `engine`: the EMA-cross computation numpy's does, from the closes in memory to the
//!   figures: the model's output column, positions, returns net of costs, and the summary
//!   (total return, Sharpe, drawdown …);
//! - `end to end`: `read` and `engine` in one: the CSV file to the figures, what the
//!   numpy/pandas script's "end to end" times (`read_csv` of the close column and its engine);
//! - `evaluate`: everything `vigil backtest --layer vectorized` computes once the bars are
//!   read (the run, both probes, the split, four folds, the information coefficient);
//! - ONNX: the bundled network (`models/goog_mlp`) on `ONNX_ROWS` feature rows (default
//!   100,000), as one batch of 65,536 rows at a time (the vectorized layer) and one row at a
//!   time (a live bar).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_backtest::evaluate::{Options, vectorized};
use vigil_backtest::vectorized::{Bars, Costs, Setup, outputs, run};
use vigil_backtest::{MinimumSample, Sample, summarise};
use vigil_config::{RegimeConfig, VigilConfig};
use vigil_model::{Artifact, FeatureSet, Output};

fn env(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a whole number: {e}")),
        Err(_) => default,
    }
}

/// Runs `f` `runs` times; returns (best, median).
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(f());
            t0.elapsed()
        })
        .collect();
    all.sort();
    (all[0], all[all.len() / 2])
}

fn line(what: &str, n: usize, (best, median): (Duration, Duration)) {
    println!(
        "{what:<44} best {:>9.2} ms  median {:>9.2} ms  {:>7.1} M rows/s (best)",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        n as f64 / best.as_secs_f64() / 1e6
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("/tmp/bench/bars.csv"), PathBuf::from);
    let runs = env("RUNS", 5).max(1);
    let bars = Bars::read(&file).unwrap_or_else(|e| {
        panic!(
            "{e}\n(make the file with `vigil data synth --bars 1000000 --seed 42 --out {}`)",
            file.display()
        )
    });
    let n = bars.closes.len();
    println!("{} bars from {}, {runs} runs each", n, file.display());

    line(
        "read: CSV file to closes",
        n,
        time(runs, || Bars::read(&file)),
    );

    let ema = Artifact::load(&root.join("models/ema_cross")).expect("models/ema_cross");
    let regime = RegimeConfig::default();
    let setup = Setup {
        output: Output::Sign,
        allow_short: true,
        costs: Costs {
            commission_bps: 1.0,
            slippage_bps: 1.0,
        },
        exposure: 1.0,
        lag: 0,
    };
    let minimum = MinimumSample::default();
    let engine = |bars: &Bars| {
        let outs = outputs(&ema, None, &bars.closes, &regime).expect("runs");
        let r = run(&bars.closes, &outs, &setup);
        summarise(
            &Sample {
                returns: &r.returns,
                periods_per_year: 525_960.0,
                days: bars.days(0, bars.closes.len()),
                trades: &r.trades,
                exposed_bars: r.exposed_bars,
                turnover: r.turnover,
                trials: 1,
            },
            &minimum,
        )
    };
    line(
        "engine: closes to figures (EMA cross)",
        n,
        time(runs, || engine(&bars)),
    );
    line(
        "end to end: CSV file to figures",
        n,
        time(runs, || engine(&Bars::read(&file).expect("read"))),
    );
    let cfg = VigilConfig::embedded_default();
    let opts = Options {
        periods_per_year: 525_960.0,
        minimum,
        split: 0.7,
        folds: 4,
        trials: 1,
        parity: false,
    };
    line(
        "evaluate: run, probes, split, folds, IC",
        n,
        time(runs, || {
            vectorized(&ema, None, &bars, &cfg, &opts).expect("runs")
        }),
    );

    let (mlp, graph) = vigil_model::open(&root.join("models/goog_mlp")).expect("goog_mlp");
    let graph = graph.expect("an onnx model");
    let rows_wanted = env("ONNX_ROWS", 100_000).min(n);
    let mut set = FeatureSet::new(&mlp.features);
    let width = mlp.features.len();
    let mut rows: Vec<f32> = Vec::with_capacity(rows_wanted * width);
    for c in &bars.closes {
        if rows.len() / width >= rows_wanted {
            break;
        }
        if let Some(v) = set.update(*c, 0.0) {
            rows.extend(v.iter().map(|x| *x as f32));
        }
    }
    let m = rows.len() / width;
    line(
        "onnx goog_mlp: batches of 65,536 rows",
        m,
        time(runs, || {
            rows.chunks(65_536 * width)
                .map(|c| graph.predict(c).expect("runs").len())
                .sum::<usize>()
        }),
    );
    let one = m.min(20_000);
    let (best, median) = time(runs, || {
        rows[..one * width]
            .chunks(width)
            .map(|c| graph.predict(c).expect("runs")[0])
            .sum::<f64>()
    });
    println!(
        "{:<44} best {:>9.2} µs  median {:>9.2} µs  per row ({one} rows)",
        "onnx goog_mlp: one row at a time (live)",
        best.as_secs_f64() * 1e6 / one as f64,
        median.as_secs_f64() * 1e6 / one as f64
    );
}
