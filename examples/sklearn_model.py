"""Train a small scikit-learn pipeline, log it with its signature and environment, and load it
back in a fresh Python process, as a colleague or a serving job would.

    python examples/sklearn_model.py

Everything goes to ./fitruns/ (the embedded default store).
"""

from __future__ import annotations

import subprocess
import sys

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fitscribe
from fitscribe.flavors import sklearn as sk_flavor

X, y = load_iris(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)

fitscribe.set_experiment("flavors-sklearn")
with fitscribe.start_run(run_name="iris-pipeline") as run:
    fitscribe.log_metric("train_accuracy", model.score(X, y))
    info = sk_flavor.log_model(model, "model", input_example=X.head(3))

print(f"logged {info.model_uri}")
print(f"signature inputs: {[c.name for c in info.signature.inputs]}")

# Load it back in another process: the native estimator, and the generic pyfunc model, which
# checks the input against the signature and accepts dicts and lists too.
LOADER = """
import sys, fitscribe
uri = sys.argv[1]
native = fitscribe.flavors.sklearn.load_model(uri)
model = fitscribe.flavors.pyfunc.load_model(uri)
row = {"sepal length (cm)": 5.9, "sepal width (cm)": 3.0, "petal length (cm)": 5.1, "petal width (cm)": 1.8}
print(type(native).__name__, model.predict(row).tolist(), model.predict(model.input_example).tolist())
"""
out = subprocess.run([sys.executable, "-c", LOADER, info.model_uri], capture_output=True, text=True, check=True)
print(f"fresh process: {out.stdout.strip()}")
expected = model.predict(X.head(3)).tolist()
assert out.stdout.split("] ")[-1].strip() == str(expected), (out.stdout, expected)
print(f"predictions match the original model: {expected}")
