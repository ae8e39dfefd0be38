use std::path::{Path, PathBuf};

use super::*;

fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name)
}

/// Copies a bundled model into a temporary directory, to spoil it there.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(bundled(name)).expect("model dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}

#[test]
fn the_onnx_model_gives_what_its_training_script_printed() {
    let (artifact, graph) = open(&bundled("goog_mlp")).expect("the bundled model loads");
    let graph = graph.expect("an onnx model has a graph");
    let text = std::fs::read_to_string(artifact.dir.join("expected.csv")).expect("expected.csv");
    let mut rows = Vec::new();
    let mut expected = Vec::new();
    for line in text.lines().skip(1) {
        let values: Vec<f64> = line
            .split(',')
            .map(|v| v.parse().expect("number"))
            .collect();
        let (p, features) = values.split_last().expect("a row");
        assert_eq!(features.len(), artifact.features.len());
        rows.extend(features.iter().map(|v| *v as f32));
        expected.push(*p);
    }
    assert!(expected.len() >= 20, "{} rows", expected.len());
    // As a batch, and row by row (the live path): the same numbers as onnxruntime's.
    let batch = graph.predict(&rows).expect("batch");
    assert_eq!(batch.len(), expected.len());
    for (i, (got, want)) in batch.iter().zip(&expected).enumerate() {
        assert!((got - want).abs() < 1e-5, "row {i}: {got} vs {want}");
        let one = graph
            .predict(&rows[i * artifact.features.len()..(i + 1) * artifact.features.len()])
            .expect("one row");
        assert_eq!(one, vec![*got]);
    }
    // Not a constant: the model says different things on different days.
    let spread = expected.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - expected.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(spread > 0.01, "spread {spread}");
}

#[test]
fn a_tampered_graph_is_refused_naming_the_file() {
    let dir = copy_of("goog_mlp");
    let graph = dir.path().join("model.onnx");
    let mut bytes = std::fs::read(&graph).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&graph, bytes).expect("write");
    let err = open(dir.path()).expect_err("tampered");
    let text = err.to_string();
    assert!(
        text.contains("model.onnx") && text.contains("sha256"),
        "{text}"
    );
}

#[test]
fn a_graph_whose_inputs_do_not_match_the_features_is_refused() {
    let dir = copy_of("goog_mlp");
    let manifest = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    let fewer = text.replace("\"rsi_14\"", "").replace(", ]", "]");
    assert_ne!(fewer, text);
    std::fs::write(&manifest, fewer).expect("write");
    let err = open(dir.path()).expect_err("five features for a six-input graph");
    let text = err.to_string();
    assert!(
        text.contains("model.onnx") && text.contains("5 feature(s)") && text.contains("[batch, 5]"),
        "{text}"
    );
}

#[test]
fn an_unknown_output_name_is_refused() {
    let dir = copy_of("goog_mlp");
    let manifest = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(
        &manifest,
        text.replace("output = \"probabilities\"", "output = \"probability\""),
    )
    .expect("write");
    let text = open(dir.path()).expect_err("no such output").to_string();
    assert!(text.contains("\"probability\" is not an output"), "{text}");
}

#[test]
fn the_ema_cross_artifact_runs_as_the_built_in_model() {
    let (artifact, graph) = open(&bundled("ema_cross")).expect("loads");
    assert!(graph.is_none());
    let mut from_artifact = Predictor::new(&artifact, None, true);
    let mut built_in = Predictor::ema_cross(10, 30, 30, true);
    let mut spoke = 0;
    for i in 0..60 {
        let c = 100.0 + (i as f64 / 5.0).sin() * 3.0;
        let a = from_artifact.update(c, 0.0).expect("runs");
        assert_eq!(a, built_in.update(c, 0.0).expect("runs"), "bar {i}");
        // Silent for the slow span's 30 bars, then a view every bar.
        assert_eq!(a.is_some(), i >= 30, "bar {i}");
        if let Some(p) = a {
            assert!(p.position.is_some());
            spoke += 1;
        }
    }
    assert_eq!(spoke, 30);
    let mut fresh = Predictor::ema_cross(3, 5, 0, true);
    let first = fresh.update(100.0, 0.0).expect("runs").expect("no warm-up");
    assert_eq!(first.position, None, "equal averages: no opinion");
}

#[test]
fn outputs_become_positions() {
    let t = Output::Threshold {
        long: 0.55,
        short: 0.45,
    };
    assert_eq!(t.position(0.6, true), Some(1.0));
    assert_eq!(t.position(0.5, true), Some(0.0));
    assert_eq!(t.position(0.4, true), Some(-1.0));
    assert_eq!(t.position(0.4, false), Some(0.0));
    assert_eq!(t.position(f64::NAN, true), None);
    assert_eq!(Output::Sign.position(-2.0, true), Some(-1.0));
    assert_eq!(Output::Sign.position(0.0, true), None);
    assert!((t.strength(0.775) - 0.5).abs() < 1e-12);
}
