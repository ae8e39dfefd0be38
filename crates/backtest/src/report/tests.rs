use super::*;

/// A deterministic random walk of `n` equity points from 1.0, one a minute from 2024-01-02.
fn walk(n: usize, seed: u64) -> (Vec<DateTime<Utc>>, Vec<f64>) {
    let start = DateTime::<Utc>::from_timestamp(1_704_182_400, 0).expect("valid start");
    let mut state = seed;
    let mut equity = 1.0_f64;
    let mut times = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        times.push(start + Duration::minutes(i as i64));
        values.push(equity);
        // xorshift64: a return in [-0.5%, +0.5%] with a slight upward drift.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        equity *= 1.0 + (u - 0.49) * 0.01;
    }
    (times, values)
}

fn folds() -> Vec<FoldRow> {
    vec![
        FoldRow {
            fold: 1,
            in_sample_sharpe: Some(1.4),
            out_of_sample_sharpe: Some(0.6),
        },
        FoldRow {
            fold: 2,
            in_sample_sharpe: Some(0.9),
            out_of_sample_sharpe: None,
        },
        FoldRow {
            fold: 3,
            in_sample_sharpe: Some(1.1),
            out_of_sample_sharpe: Some(-0.3),
        },
    ]
}

fn gate() -> Vec<GateRow> {
    vec![
        GateRow {
            layer: "vectorized".into(),
            check: "deflated Sharpe".into(),
            threshold: ">= 0.95".into(),
            value: "0.97".into(),
            passed: true,
        },
        GateRow {
            layer: "oms".into(),
            check: "max drawdown".into(),
            threshold: "<= 20%".into(),
            value: "24.1%".into(),
            passed: false,
        },
        GateRow {
            layer: "oms".into(),
            check: "trades".into(),
            threshold: ">= 30".into(),
            value: "41".into(),
            passed: true,
        },
    ]
}

fn figures() -> Vec<(String, String)> {
    vec![
        ("Sharpe".to_string(), "1.02".to_string()),
        ("bars".to_string(), "5000".to_string()),
    ]
}

fn render_walks(title: &str, n: usize) -> String {
    let (t1, e1) = walk(n, 0x9E37_79B9_7F4A_7C15);
    let (t2, e2) = walk(n / 2 + 1, 0xD1B5_4A32_D192_ED03);
    let folds = folds();
    let gate = gate();
    let figures = figures();
    let input = ReportInput {
        title,
        layers: vec![
            LayerCurve {
                layer: "vectorized",
                times: &t1,
                equity: &e1,
            },
            LayerCurve {
                layer: "oms",
                times: &t2,
                equity: &e2,
            },
        ],
        folds: &folds,
        gate: &gate,
        figures: &figures,
    };
    render(&input).expect("report renders")
}

#[test]
fn each_chart_is_an_inline_svg() {
    let page = render_walks("ema_cross@1.0.0 on GOOG.csv", 5_000);
    assert!(page.starts_with("<!DOCTYPE html>"));
    // equity, drawdown, folds, gate.
    assert_eq!(page.matches("<svg").count(), 4, "one <svg> per chart");
    assert_eq!(page.matches("</svg>").count(), 4);
    // Each line chart draws one path per layer plus its legend, and the legends name both.
    assert!(page.matches("\nvectorized\n</text>").count() >= 3);
    assert!(page.matches("\noms\n</text>").count() >= 3);
    assert!(page.contains("\nin-sample\n</text>"));
    assert!(page.contains("\nout-of-sample\n</text>"));
    assert!(page.contains("\npassed\n</text>"));
    assert!(page.contains("\nfailed\n</text>"));
    assert!(page.contains("<td>Sharpe</td><td class=\"num\">1.02</td>"));
}

#[test]
fn the_page_references_no_network_address() {
    let page = render_walks("ema_cross@1.0.0 on GOOG.csv", 5_000);
    let without_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_namespace.contains("http://"));
    assert!(!without_namespace.contains("https://"));
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("@import"));
    assert!(!page.contains("url("));
}

#[test]
fn a_title_with_markup_is_escaped() {
    let page = render_walks("<script>alert('x')</script> & co", 500);
    assert!(!page.contains("<script"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
}

#[test]
fn gate_and_figure_text_is_escaped_and_coloured() {
    let (t, e) = walk(100, 7);
    let gate = vec![
        GateRow {
            layer: "<b>oms</b>".into(),
            check: "a & b".into(),
            threshold: "<1".into(),
            value: "\"2\"".into(),
            passed: false,
        },
        GateRow {
            layer: "<b>oms</b>".into(),
            check: "c".into(),
            threshold: "1".into(),
            value: "1".into(),
            passed: true,
        },
    ];
    let figures = vec![("<i>x</i>".to_string(), "1 < 2".to_string())];
    let page = render(&ReportInput {
        title: "t",
        layers: vec![LayerCurve {
            layer: "<b>oms</b>",
            times: &t,
            equity: &e,
        }],
        folds: &[],
        gate: &gate,
        figures: &figures,
    })
    .expect("report renders");
    assert!(!page.contains("<b>"));
    assert!(!page.contains("<i>"));
    assert!(page.contains("<tr class=\"fail\"><td>&lt;b&gt;oms&lt;/b&gt;</td><td>a &amp; b</td><td class=\"num\">&lt;1</td><td class=\"num\">&quot;2&quot;</td><td class=\"result\">FAIL</td></tr>"));
    assert!(page.contains("<tr class=\"pass\">"));
    assert!(page.contains("1 of 2 checks passed."));
    assert!(page.contains("<td class=\"num\">1 &lt; 2</td>"));
    assert!(page.contains("No folds."));
    // equity, drawdown, gate: no fold chart without folds.
    assert_eq!(page.matches("<svg").count(), 3);
}

#[test]
fn a_million_point_curve_gives_a_small_page() {
    let n = 1_000_000;
    let page = render_walks("ema_cross@1.0.0 on GOOG.csv", n);
    eprintln!("page for a {n}-point curve: {} bytes", page.len());
    assert!(page.len() < 1_000_000, "page is {} bytes", page.len());
    assert_eq!(page.matches("<svg").count(), 4);
    assert!(page.contains(&format!("of {n} points drawn")));
    // The table's figures come from the whole curve, not the thinned one.
    let (t, e) = walk(n, 0x9E37_79B9_7F4A_7C15);
    let points: Vec<_> = t.into_iter().zip(e.iter().copied()).collect();
    let worst = drawdown(&points)
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::min);
    assert!(page.contains(&format!("{:.2}%", worst * 100.0)));
    assert!(page.contains(&format!("{:.4}", e[n - 1])));
}

#[test]
fn drawdown_is_equity_over_its_running_max_less_one() {
    let t0 = DateTime::<Utc>::UNIX_EPOCH;
    let values = [1.0, 1.2, 0.9, 1.3, 1.04];
    let points: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (t0 + Duration::days(i as i64), *v))
        .collect();
    let dd: Vec<f64> = drawdown(&points).iter().map(|(_, v)| *v).collect();
    let want = [0.0, 0.0, 0.9 / 1.2 - 1.0, 0.0, 1.04 / 1.3 - 1.0];
    assert_eq!(dd.len(), want.len());
    for (got, want) in dd.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{got} != {want}");
    }
}

#[test]
fn downsampling_keeps_extremes_and_the_last_point() {
    let (t, e) = walk(100_003, 42);
    let points: Vec<_> = t.into_iter().zip(e).collect();
    let thin = downsample(&points, MAX_POINTS);
    assert!(thin.len() <= MAX_POINTS + 1, "{} points", thin.len());
    assert!(thin.len() > MAX_POINTS / 2);
    assert_eq!(thin.first(), points.first());
    assert_eq!(thin.last(), points.last());
    let min = |p: &[(DateTime<Utc>, f64)]| p.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
    let max =
        |p: &[(DateTime<Utc>, f64)]| p.iter().map(|(_, v)| *v).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(min(&thin), min(&points));
    assert_eq!(max(&thin), max(&points));
    assert!(thin.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
    // A short curve is kept whole.
    assert_eq!(downsample(&points[..10], MAX_POINTS), points[..10].to_vec());
}

#[test]
fn a_missing_fold_value_is_noted_not_drawn() {
    let page = render_walks("t", 200);
    assert!(page.contains("Not drawn: fold 2: out-of-sample Sharpe withheld."));
    assert!(page.contains("<td>2</td><td class=\"num\">0.900</td><td class=\"num\">withheld</td>"));
    // The fold chart draws five bars (six values, one withheld), each a filled rect with the
    // series' colour; the legend adds one rect of each colour.
    let start = page
        .find("<h2>Walk-forward folds</h2>")
        .expect("fold section");
    let end = page.find("<h2>Gate</h2>").expect("gate section");
    let section = &page[start..end];
    let bars = |c: RGBColor| {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        section.matches(&fill).count()
    };
    assert_eq!(bars(IN_SAMPLE), 3 + 1);
    assert_eq!(bars(OUT_OF_SAMPLE), 2 + 1);
}

#[test]
fn mismatched_lengths_are_an_error() {
    let (t, e) = walk(10, 1);
    let err = render(&ReportInput {
        title: "t",
        layers: vec![LayerCurve {
            layer: "oms",
            times: &t[..9],
            equity: &e,
        }],
        folds: &[],
        gate: &[],
        figures: &[],
    })
    .expect_err("lengths differ");
    assert_eq!(err.to_string(), "layer oms: 9 times but 10 equity values");
}

#[test]
#[ignore = "writes a sample page to REPORT_SAMPLE"]
fn write_sample_page() {
    let path = std::env::var("REPORT_SAMPLE").expect("REPORT_SAMPLE set");
    std::fs::write(&path, render_walks("ema_cross@1.0.0 on <GOOG>.csv", 5_000)).expect("written");
    // One fold, one gated layer, a 40-day daily curve.
    let (t, e) = walk(40, 3);
    let t: Vec<_> = t
        .iter()
        .enumerate()
        .map(|(i, t)| *t + Duration::days(i as i64))
        .collect();
    let gate = &gate()[..1];
    let page = render(&ReportInput {
        title: "one of each",
        layers: vec![LayerCurve {
            layer: "vectorized",
            times: &t,
            equity: &e,
        }],
        folds: &folds()[..1],
        gate,
        figures: &[],
    })
    .expect("report renders");
    std::fs::write(format!("{path}.one.html"), page).expect("written");
}
