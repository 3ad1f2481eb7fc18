"""Autolog an ordinary XGBoost early-stopping script: one line, ``fitscribe.autolog()``, records it.

Run it from anywhere: ``python examples/autolog_xgboost_early_stopping.py``. The run goes to
./fitruns (set FITSCRIBE_TRACKING_URI to record elsewhere). Below the autolog line is a plain
XGBoost script; at the end it prints what the run recorded: the params you set, every iteration of
``validation_0-logloss`` / ``validation_1-logloss``, ``best_iteration`` and ``stopped_iteration``,
the best iteration's values as ``best-validation_1-logloss``..., the feature importances and the
model.
"""

from __future__ import annotations

import fitscribe

fitscribe.autolog()

import xgboost  # noqa: E402  (imported after autolog() on purpose: it is patched as it loads)
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def train() -> xgboost.XGBClassifier:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    model = xgboost.XGBClassifier(
        n_estimators=500, learning_rate=0.3, max_depth=4, subsample=0.8, early_stopping_rounds=10, random_state=0,
    )
    # The last eval set decides when to stop; the first one shows the training loss alongside.
    model.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)], verbose=False)
    rounds = len(model.evals_result()["validation_1"]["logloss"])
    print(f"stopped after {rounds} of at most 500 rounds; best iteration {model.best_iteration}, "
          f"validation accuracy {(model.predict(X_valid) == y_valid).mean():.3f}")
    return model


def show_run() -> None:
    run = fitscribe.last_active_run()  # waits for the plots still being drawn in the background
    assert run is not None
    rid = run.info.run_id
    print(f"\nrun {rid} ({run.info.status}), autologged by {run.data.tags['mlflow.autologging']}")
    print("params:", ", ".join(f"{k}={v}" for k, v in sorted(run.data.params.items())))
    history = fitscribe.get_metric_history(rid, "validation_1-logloss")
    print(f"validation_1-logloss: {len(history)} points, first {history[0].value:.4f}, "
          f"latest {run.data.metrics['validation_1-logloss']:.4f} (the final iteration's, not the best)")
    for key in ("best_iteration", "stopped_iteration", "best-validation_1-logloss", "best-validation_0-logloss"):
        print(f"{key}: {run.data.metrics[key]:g}")
    print("artifacts:", ", ".join(sorted(f.path for f in fitscribe.list_artifacts(rid))))
    model = fitscribe.flavors.xgboost.load_model(f"runs:/{rid}/model")
    print(f"model loads back as {type(model).__name__} with best_iteration {model.best_iteration}")


if __name__ == "__main__":
    train()
    show_run()
