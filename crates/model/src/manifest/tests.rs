use super::*;

const EMA: &str = r#"
name = "ema_cross"
version = "1.0.0"
kind = "ema_cross"
features = []
output = { kind = "sign" }

[parameters]
fast_span = 10
slow_span = 30
"#;

fn dir_with(manifest: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(MANIFEST), manifest).expect("manifest");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("file");
    }
    dir
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn onnx_manifest(hash: &str, features: &str) -> String {
    format!(
        r#"
name = "goog-gbt"
version = "0.3.1"
kind = "onnx"
features = [{features}]
output = {{ kind = "threshold", long = 0.55, short = 0.45 }}

[parameters]
graph = "model.onnx"

[files]
"model.onnx" = "{hash}"

[training]
script = "models/goog_mlp/train.py"
data_sha256 = "00"
seed = 7
"#
    )
}

#[test]
fn the_ema_cross_loads_with_its_version() {
    let dir = dir_with(EMA, &[]);
    let a = Artifact::load(dir.path()).expect("valid");
    assert_eq!(a.label(), "ema_cross@1.0.0");
    assert_eq!(a.manifest.kind, Kind::EmaCross);
    assert!(a.features.is_empty());
}

#[test]
fn the_bundled_ema_cross_artifact_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ema_cross");
    let a = Artifact::load(&dir).expect("the bundled model is valid");
    assert_eq!(a.manifest.name, "ema_cross");
}

#[test]
fn an_onnx_model_checks_its_graph_and_features() {
    let graph = b"not really onnx, but hashed";
    let text = onnx_manifest(
        &sha(graph),
        r#""return_5", "ema_ratio_10_30", "rsi_14", "regime""#,
    );
    let dir = dir_with(&text, &[("model.onnx", graph)]);
    let a = Artifact::load(dir.path()).expect("valid");
    assert_eq!(
        a.features,
        vec![
            Feature::Return(5),
            Feature::EmaRatio(10, 30),
            Feature::Rsi(14),
            Feature::Regime
        ]
    );
    assert_eq!(
        a.features
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        a.manifest.features
    );
}

/// One changed byte in the graph: refused, naming the file and both hashes.
#[test]
fn a_tampered_file_is_refused() {
    let graph = b"the graph as trained";
    let text = onnx_manifest(&sha(graph), r#""return_5""#);
    let dir = dir_with(&text, &[("model.onnx", b"the graph as tampered")]);
    let err = Artifact::load(dir.path())
        .expect_err("tampered")
        .to_string();
    assert!(
        err.contains("model.onnx: sha256 is ") && err.contains(&sha(graph)),
        "{err}"
    );
    let dir = dir_with(&text, &[]);
    let err = Artifact::load(dir.path()).expect_err("missing").to_string();
    assert!(err.contains("model.onnx: cannot read"), "{err}");
}

#[test]
fn a_manifest_that_does_not_validate_is_refused_with_the_key_and_reason() {
    let graph = b"g";
    let h = sha(graph);
    for (text, says) in [
        (
            EMA.replace("1.0.0", "1.0"),
            "version: \"1.0\" is not a semantic version",
        ),
        (
            EMA.replace("\"ema_cross\"\nversion", "\"ema cross\"\nversion"),
            "name: \"ema cross\" is not a name",
        ),
        (
            EMA.replace("slow_span = 30", "slow_span = 5"),
            "parameters.slow_span: must be greater than parameters.fast_span (10), got 5",
        ),
        (
            EMA.replace("fast_span = 10", "fast_span = \"10\""),
            "parameters.fast_span: must be a whole number",
        ),
        (
            EMA.replace("kind = \"ema_cross\"", "kind = \"lstm\""),
            "unknown variant `lstm`",
        ),
        (
            EMA.replace("features = []", "features = []\ncolour = 1"),
            "unknown field `colour`",
        ),
        (
            onnx_manifest(&h, r#""return_0""#),
            "features: feature \"return_0\": the window must be",
        ),
        (
            onnx_manifest(&h, r#""macd""#),
            "features: unknown feature \"macd\"",
        ),
        (
            onnx_manifest(&h, r#""ema_ratio_30_10""#),
            "the fast span must be shorter",
        ),
        (
            onnx_manifest(&h, ""),
            "features: an onnx model reads at least one feature",
        ),
        (
            onnx_manifest(&h, r#""regime""#)
                .replace("long = 0.55, short = 0.45", "long = 0.4, short = 0.6"),
            "output: short (0.6) must not be above long (0.4)",
        ),
        (
            onnx_manifest(&h, r#""regime""#).replace("\"model.onnx\" = ", "\"other.onnx\" = "),
            "files: the graph \"model.onnx\" is not listed",
        ),
        (
            onnx_manifest(&h, r#""regime""#).replace(
                "\"model.onnx\" = ",
                "\"model.onnx\" = \"x\"\n\"../etc/passwd\" = ",
            ),
            "files: \"../etc/passwd\" must be a path inside",
        ),
    ] {
        let dir = dir_with(&text, &[("model.onnx", graph)]);
        let err = Artifact::load(dir.path()).expect_err(says).to_string();
        assert!(err.contains(says), "{says:?} not in {err}");
        assert!(err.contains(MANIFEST), "{err}");
    }
}
