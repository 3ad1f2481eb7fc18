"""Log a scikit-learn classifier with an ONNX copy, then score the ONNX copy in a fresh process.

Run it from anywhere: ``python examples/onnx_model.py`` (needs ``pip install "fitscribe[onnx]"``).
The run goes to ./fitruns. The model folder holds both ``model.pkl`` (the estimator) and
``model.onnx`` (the same model as an ONNX graph). The fresh process loads only the ONNX copy, with
onnxruntime: no scikit-learn and no unpickling, which is how you would serve it elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import fitscribe
import fitscribe.flavors.sklearn


def score(model_uri: str) -> None:
    """The fresh process: read rows from stdin, print the ONNX copy's labels and probabilities as JSON."""
    import fitscribe.flavors.onnx

    session = fitscribe.flavors.onnx.load_session(model_uri)
    rows = np.asarray(json.load(sys.stdin), dtype=np.float32)
    labels, probabilities = session.run(["label", "probabilities"], {"input": rows})
    print(json.dumps({"labels": labels.tolist(), "probabilities": probabilities.tolist()}))


def main() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)

    fitscribe.set_experiment("onnx-example")
    with fitscribe.start_run(run_name="iris-logistic-onnx"):
        fitscribe.log_params({"model": "LogisticRegression", "C": 0.5, "scaler": "StandardScaler"})
        fitscribe.log_metric("train_accuracy", model.score(X, y))
        info = fitscribe.flavors.sklearn.log_model(model, "model", onnx=True, input_example=X[:5])
    print(f"Logged {info.model_uri} with flavors {sorted(info.flavors)}")

    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--score", info.model_uri],
        input=json.dumps(X.tolist()), env=env, capture_output=True, text=True, check=True, timeout=120,
    )
    scored = json.loads(result.stdout)
    same_labels = scored["labels"] == model.predict(X).tolist()
    gap = float(np.max(np.abs(np.asarray(scored["probabilities"]) - model.predict_proba(X))))
    print(f"ONNX copy in a fresh process: labels match scikit-learn on all {len(X)} rows: {same_labels}; "
          f"largest probability difference {gap:.1e}")
    if not same_labels or gap > 1e-5:
        raise SystemExit("The ONNX copy disagrees with the scikit-learn model.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--score":
        score(sys.argv[2])
    else:
        main()
