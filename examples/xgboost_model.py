"""Log an XGBoost classifier in XGBoost's own format, then load it back in a fresh Python process.

Run it from anywhere: ``python examples/xgboost_model.py``. The run goes to ./fitruns (set
FITSCRIBE_TRACKING_URI to record elsewhere). The model is stored as ``model.ubj`` (no pickle, so
it is safe to load a model like this from elsewhere), in the same layout as MLflow's xgboost flavor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import xgboost
from sklearn.datasets import load_breast_cancer

import fitscribe
import fitscribe.flavors.xgboost

# Runs in a new interpreter: only the model URI and the data (a plain array) are passed along; the
# signature saved from the input example names the array's columns for pyfunc.
LOAD_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fitscribe.flavors.pyfunc
    import fitscribe.flavors.xgboost

    model_uri, data_path, out_path = sys.argv[1:4]
    X = np.load(data_path)
    model = fitscribe.flavors.xgboost.load_model(model_uri)
    served = fitscribe.flavors.pyfunc.load_model(model_uri)
    print(f"fresh process loaded {type(model).__name__} from {model_uri}")
    np.save(out_path, np.column_stack([model.predict_proba(X)[:, 1], served.predict(X)]))
    """
)


def main() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, learning_rate=0.3)
    model.fit(X, y)

    fitscribe.set_experiment("xgboost-model")
    with fitscribe.start_run(run_name="breast-cancer-xgb") as run:
        fitscribe.log_params({"n_estimators": 10, "max_depth": 3, "learning_rate": 0.3})
        fitscribe.log_metric("train_accuracy", float((model.predict(X) == y).mean()))
        info = fitscribe.flavors.xgboost.log_model(model, "model", input_example=X.head(3))
    print(f"Logged {info.flavors['xgboost']['model_class']} as {info.flavors['xgboost']['data']} "
          f"to {info.model_uri} (run {run.info.run_id})")
    print(f"Signature inputs: {len(info.signature.inputs)} columns, e.g. {info.signature.inputs[0]}")

    with tempfile.TemporaryDirectory() as tmp:
        data_path, out_path = os.path.join(tmp, "X.npy"), os.path.join(tmp, "out.npy")
        np.save(data_path, X.to_numpy())
        env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
        subprocess.run(
            [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, info.model_uri, data_path, out_path],
            env=env, check=True, timeout=120,
        )
        fresh = np.load(out_path)

    expected_proba, expected_labels = model.predict_proba(X)[:, 1], model.predict(X)
    assert np.array_equal(fresh[:, 0], expected_proba), "probabilities differ after reloading"
    assert np.array_equal(fresh[:, 1], expected_labels), "pyfunc labels differ after reloading"
    print(f"Predictions match in a fresh process: {len(X)} rows, first probabilities "
          f"{np.round(fresh[:3, 0], 4).tolist()}")


if __name__ == "__main__":
    main()
