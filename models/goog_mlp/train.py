#!/usr/bin/env python3
"""Train the bundled ONNX model: a small neural network (an MLP) on GOOG daily bars.

The model reads features computed by vigil itself (`vigil model features`), so that it is
trained on the very numbers it will see in a backtest and live. It predicts the probability
that the next bar's close is above this one's; the manifest's threshold turns that into a
target position (long above 0.55, short below 0.45, flat between).

Run from the repository root (needs numpy, scikit-learn, skl2onnx, onnxruntime):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scikit-learn skl2onnx onnxruntime
    cargo build --release -p vigil
    /tmp/venv/bin/python models/goog_mlp/train.py [--vigil target/release/vigil]

It writes, in this directory: `model.onnx`, `expected.csv` (feature rows and the
probabilities onnxruntime gave, which vigil's tests compare with its own runtime's) and
`model.toml` (with every file's SHA-256 and the training data's). Seeded: the same data
gives the same model, byte for byte.
"""

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import skl2onnx
import sklearn
from skl2onnx import to_onnx
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = "data/GOOG_1d.csv"
FEATURES = ["return_1", "return_5", "return_20", "ema_ratio_10_30", "volatility_20", "rsi_14"]
SEED = 21
# The first 70% of the rows train the model; the rest is never seen in training (the
# backtest's out-of-sample split is the same 70%).
TRAIN_FRACTION = 0.7
VERSION = "1.0.0"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def features(vigil):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "features.csv")
        subprocess.run(
            [vigil, "model", "features", "--features", ",".join(FEATURES),
             "--data", os.path.join(ROOT, DATA), "--out", out],
            check=True,
        )
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    closes = np.array([float(r["close"]) for r in rows])
    x = np.array([[float(r[name]) for name in FEATURES] for r in rows], dtype=np.float32)
    return x, closes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vigil", default=os.path.join(ROOT, "target", "release", "vigil"))
    args = parser.parse_args()

    x, closes = features(args.vigil)
    # The label of row t: the next close is above this one (the last row has no next bar).
    y = (closes[1:] > closes[:-1]).astype(np.int64)
    x_all = x[:-1]
    cut = int(len(x_all) * TRAIN_FRACTION)
    # The network learns on standardised features; the standardisation is then folded into
    # its first layer (w / sd, b - (mean / sd) . w), so the exported graph takes the features
    # exactly as vigil computes them, with no Scaler operator (tract does not run it).
    mean = x_all[:cut].mean(axis=0)
    sd = x_all[:cut].std(axis=0)
    model = MLPClassifier(
        hidden_layer_sizes=(16,), alpha=1e-2, max_iter=400, random_state=SEED
    )
    model.fit((x_all[:cut] - mean) / sd, y[:cut])
    w, b = model.coefs_[0], model.intercepts_[0]
    model.coefs_[0] = w / sd[:, None]
    model.intercepts_[0] = b - (mean / sd) @ w
    # A network, not trees: tract 0.21 refuses a gradient-boosted classifier's exported base
    # values, and runs a forest at ~0.2 ms a row (docs/backtest.md); a network's matrix
    # products it runs in microseconds.
    print(f"trained on {cut} rows, {len(x_all) - cut} held out")
    print(f"accuracy in sample {model.score(x_all[:cut], y[:cut]):.4f}, "
          f"out of sample {model.score(x_all[cut:], y[cut:]):.4f}")

    onx = to_onnx(model, x_all[:1], options={id(model): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    graph = os.path.join(HERE, "model.onnx")
    with open(graph, "wb") as f:
        f.write(onx.SerializeToString())

    # What the exported graph gives, by onnxruntime: vigil's runtime must give the same.
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    sample = x[:: max(1, len(x) // 50)][:50]
    got = session.run(None, {session.get_inputs()[0].name: sample})
    probabilities = got[names.index("probabilities")][:, 1]
    assert np.allclose(probabilities, model.predict_proba(sample)[:, 1], atol=1e-5)
    with open(os.path.join(HERE, "expected.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FEATURES + ["probability_up"])
        for row, p in zip(sample, probabilities):
            w.writerow([repr(float(v)) for v in row] + [repr(float(p))])
    print(f"outputs: {names}; {len(sample)} expected rows written")
    for row, p in list(zip(sample, probabilities))[:3]:
        print("  ", ", ".join(f"{v:.6f}" for v in row), "->", f"{p:.6f}")

    manifest = f"""# Written by train.py: do not edit by hand (the hashes would no longer match).
# A multi-layer perceptron, 16 hidden units (scikit-learn {sklearn.__version__}, exported by skl2onnx
# {skl2onnx.__version__}) on GOOG daily bars: the probability that the next close is higher.
name = "goog_mlp"
version = "{VERSION}"
kind = "onnx"
features = [{", ".join(f'"{n}"' for n in FEATURES)}]
output = {{ kind = "threshold", long = 0.55, short = 0.45 }}

[parameters]
graph = "model.onnx"
output = "probabilities"
column = 1

[files]
"model.onnx" = "{sha256(graph)}"
"expected.csv" = "{sha256(os.path.join(HERE, 'expected.csv'))}"

[training]
script = "models/goog_mlp/train.py"
data = "{DATA}"
data_sha256 = "{sha256(os.path.join(ROOT, DATA))}"
seed = {SEED}
rows = {cut}
"""
    with open(os.path.join(HERE, "model.toml"), "w") as f:
        f.write(manifest)
    print("wrote model.onnx, expected.csv, model.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
