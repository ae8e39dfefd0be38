use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12
}

/// −1, 0, +1 outputs map to short, flat and long.
const SIGNED: Output = Output::Threshold {
    long: 0.5,
    short: -0.5,
};

fn setup(output: Output, costs: Costs, lag: usize) -> Setup {
    Setup {
        output,
        allow_short: true,
        costs,
        exposure: 1.0,
        lag,
    }
}

/// Closes 100, 110, 99, 99; the model says long at bar 0, short at bar 1, flat from bar 2.
/// Bar 1 earns +10% long; bar 2 earns −(99/110 − 1) = +10% short; bar 3 nothing.
#[test]
fn positions_earn_the_next_bars_return() {
    let closes = [100.0, 110.0, 99.0, 99.0];
    let outs = [Some(1.0), Some(-1.0), Some(0.0), Some(0.0)];
    let r = run(&closes, &outs, &setup(SIGNED, Costs::FREE, 0));
    assert_eq!(r.positions, vec![1.0, -1.0, 0.0, 0.0]);
    assert_eq!(r.returns.len(), 4);
    assert!(close(r.returns[0], 0.0));
    assert!(close(r.returns[1], 0.10));
    assert!(close(r.returns[2], 0.10));
    assert!(close(r.returns[3], 0.0));
    assert_eq!(r.position_changes, 3);
    assert_eq!(r.turnover, 1.0 + 2.0 + 1.0);
    assert_eq!(r.exposed_bars, 2);
    assert_eq!(r.trades.len(), 2);
    assert_eq!(r.trade_ends, vec![1, 2]);
    assert!(close(r.trades[0], 0.10) && close(r.trades[1], 0.10));
    // Per unit: +10 long, then +11 short.
    assert!(close(r.pnl_per_unit, 21.0));
}

/// Ten basis points a unit: the entry at bar 0 pays 10 bp, the flip at bar 1 (two units) 20
/// bp, each in the return of the bar of the change; at 8% of equity a unit, all of it
/// scaled by 0.08.
#[test]
fn costs_are_paid_per_unit_changed() {
    let closes = [100.0, 110.0, 99.0];
    let outs = [Some(1.0), Some(-1.0), Some(-1.0)];
    let costs = Costs {
        commission_bps: 6.0,
        slippage_bps: 4.0,
    };
    let r = run(&closes, &outs, &setup(SIGNED, costs, 0));
    assert!(close(r.returns[0], -0.001));
    assert!(close(r.returns[1], 0.10 - 0.001 * 2.0));
    assert!(close(r.returns[2], 0.10));
    let part = run(
        &closes,
        &outs,
        &Setup {
            exposure: 0.08,
            ..setup(SIGNED, costs, 0)
        },
    );
    for (a, b) in part.returns.iter().zip(&r.returns) {
        assert!(close(*a, b * 0.08));
    }
    assert!(close(part.turnover, 3.0 * 0.08));
}

/// Lagged one bar, the same outputs trade a bar late.
#[test]
fn the_lag_probe_delays_every_position() {
    let closes = [100.0, 110.0, 121.0];
    let outs = [Some(1.0), Some(1.0), Some(1.0)];
    let r = run(&closes, &outs, &setup(Output::Sign, Costs::FREE, 1));
    assert_eq!(r.positions, vec![0.0, 1.0, 1.0]);
    assert!(close(r.returns[1], 0.0) && close(r.returns[2], 0.10));
}

/// No opinion (a zero sign, a warm-up) keeps the position held; shorts become flat when
/// they are not allowed.
#[test]
fn no_opinion_holds_and_shorts_can_be_turned_flat() {
    let outs = [None, Some(2.0), Some(0.0), None, Some(-3.0)];
    assert_eq!(
        targets(&outs, &Output::Sign, true),
        vec![0.0, 1.0, 1.0, 1.0, -1.0]
    );
    assert_eq!(
        targets(&outs, &Output::Sign, false),
        vec![0.0, 1.0, 1.0, 1.0, 0.0]
    );
}

/// The bundled GOOG daily bars through the bundled EMA cross: a daily interval, silent for
/// the slow span, then the EMA gap of the live model's averages.
#[test]
fn the_bundled_model_runs_on_the_bundled_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bars = Bars::read(&root.join("data/GOOG_1d.csv")).expect("bars");
    assert!(bars.closes.len() > 1000);
    assert_eq!(bars.interval(), Some(Duration::days(1)));
    let model = Artifact::load(&root.join("models/ema_cross")).expect("model");
    let outs = outputs(&model, None, &bars.closes, &RegimeConfig::default()).expect("runs");
    let mut fast = Ema::new(10);
    let mut slow = Ema::new(30);
    for (i, (c, o)) in bars.closes.iter().zip(&outs).enumerate() {
        let d = fast.update(*c) - slow.update(*c);
        assert_eq!(*o, (i >= 30).then_some(d), "bar {i}");
    }
}

/// The ONNX model, over whole columns in batches, gives bar by bar what the live
/// predictor gives.
#[test]
fn the_onnx_model_gives_the_same_outputs_in_columns_as_bar_by_bar() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bars = Bars::read(&root.join("data/GOOG_1d.csv")).expect("bars");
    let (model, graph) = vigil_model::open(&root.join("models/goog_mlp")).expect("model");
    let outs = outputs(
        &model,
        graph.as_ref(),
        &bars.closes,
        &RegimeConfig::default(),
    )
    .expect("runs");
    let mut live = vigil_model::Predictor::new(&model, graph.as_ref(), true);
    let mut spoke = 0;
    for (i, (c, o)) in bars.closes.iter().zip(&outs).enumerate() {
        let p = live.update(*c, 0.0).expect("runs").map(|p| p.output);
        assert_eq!(p, *o, "bar {i}");
        spoke += usize::from(o.is_some());
    }
    // Every bar once the longest window (the 30-bar EMA) is full.
    assert_eq!(spoke, bars.closes.len() - 29);
}

/// The reader takes the timestamp and close columns wherever they are, reads both halves
/// of the file alike, and refuses a bad row with the file and its line number — in either
/// half, and where the halves meet.
#[test]
fn the_reader_names_the_line_of_a_bad_row_in_either_half() {
    let path = Path::new("bars.csv");
    // Lines across buffers, and longer than a buffer, too.
    for chunk in [1, 7, 64, 1 << 20] {
        let parse = |bytes: &[u8]| Bars::parse_in_chunks(bytes, path, chunk);
        let rows = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("{},2024-01-{:02}T00:00:00Z,{}", 1.0, 1 + i, 100 + i))
                .collect()
        };
        let text = |rows: &[String]| format!("open,timestamp,close\n{}\n", rows.join("\n"));
        let good = rows(20);
        let b = parse(text(&good).as_bytes()).expect("good rows");
        assert_eq!(
            b.closes,
            (0..20).map(|i| 100.0 + i as f64).collect::<Vec<_>>()
        );
        assert_eq!(b.times[19].to_rfc3339(), "2024-01-20T00:00:00+00:00");
        for bad_row in [3, 17] {
            let mut bad = good.clone();
            bad[bad_row] = format!("1,2024-01-{:02}T00:00:00Z,-5", 1 + bad_row);
            let e = parse(text(&bad).as_bytes()).expect_err("a negative close");
            // The header is line 1: row r is line r + 2.
            let want = format!("bars.csv:{}: close \"-5\"", bad_row + 2);
            assert!(e.to_string().starts_with(&want), "{e} (wanted {want})");
        }
        // Every timestamp after the last, the middle of the file included.
        for at in [5, 10, 11, 15] {
            let mut bad = good.clone();
            bad[at] = format!("1,2024-01-{:02}T00:00:00Z,150", at);
            let e = parse(text(&bad).as_bytes()).expect_err("out of order");
            assert!(
                e.to_string().contains("is not after the previous bar's"),
                "{e}"
            );
        }
        let e = parse(b"timestamp,open\n2024-01-01,1\n").expect_err("no close");
        assert!(e.to_string().contains("no `close` column"), "{e}");
        // Windows line ends, blank lines, a byte-order mark, no `\n` at the end.
        let crlf = format!("\u{feff}{}", text(&good).replace('\n', "\r\n\r\n"));
        let b = parse(crlf.trim_end().as_bytes()).expect("CRLF rows");
        assert_eq!(b.closes.len(), 20, "chunk {chunk}");
        assert_eq!(b.closes[19], 119.0);
        // A bad row after blank lines is still named by its line in the file: the header
        // is line 1, each row follows a blank line, row 5 (close 105) is line 3 + 2 × 5.
        let e = parse(crlf.replace(",105\r", ",x\r").as_bytes()).expect_err("bad close");
        assert!(e.to_string().starts_with("bars.csv:13: close \"x\""), "{e}");
    }
}

/// A file read hands every byte to the tap, in order (the file's hash, computed as it is
/// read), and gives the same columns as its bytes parsed.
#[test]
fn a_file_read_taps_every_byte_in_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("data/GOOG_1d.csv");
    let mut seen = Vec::new();
    let bars = Bars::read_with(&path, |b| seen.extend_from_slice(b)).expect("bars");
    let bytes = std::fs::read(&path).expect("file");
    assert_eq!(seen, bytes);
    let parsed = Bars::parse_in_chunks(&bytes, &path, 4096).expect("parsed");
    assert_eq!(bars.closes, parsed.closes);
    assert_eq!(bars.times, parsed.times);
    assert!(bars.closes.len() > 1000);
    let e = Bars::read(&root.join("data/no-such-file.csv")).expect_err("missing");
    assert!(
        e.to_string().contains("no-such-file.csv: cannot read"),
        "{e}"
    );
}

/// The bar interval is the median gap: a weekend does not make daily bars weekly, and
/// gaps out of order count by value.
#[test]
fn the_interval_is_the_median_gap() {
    let at = |hours: &[i64]| Bars {
        times: hours
            .iter()
            .map(|h| DateTime::<Utc>::UNIX_EPOCH + Duration::hours(*h))
            .collect(),
        closes: vec![1.0; hours.len()],
    };
    // Mon..Fri, Mon, Tue: gaps 24 ×4, 72, 24.
    let days: Vec<i64> = [0, 1, 2, 3, 4, 7, 8].iter().map(|d| d * 24).collect();
    assert_eq!(at(&days).interval(), Some(Duration::days(1)));
    // Gaps 4, 1, 3, 2 hours: sorted 1, 2, 3, 4; the one at index 2.
    assert_eq!(at(&[0, 4, 5, 8, 10]).interval(), Some(Duration::hours(3)));
    assert_eq!(at(&[0, 5]).interval(), Some(Duration::hours(5)));
    assert_eq!(at(&[0]).interval(), None);
    assert_eq!(at(&[]).interval(), None);
}
