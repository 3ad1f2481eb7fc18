"""The fitscribe demo: record a few training runs in the embedded store, then show what was recorded.

Run it from anywhere: ``python examples/quickstart.py``. Runs go to ./fitruns (SQLite + artifacts);
set FITSCRIBE_TRACKING_URI to record elsewhere. With scikit-learn installed it also records two
autologged models. Afterwards try ``fitscribe ui`` (the web UI) or ``fitscribe runs list``.
"""

from __future__ import annotations

import math
import random

import fitscribe


def train(lr: float, epochs: int = 20) -> float:
    """A stand-in for a training loop: a noisy loss that decays faster with a larger learning rate."""
    rng = random.Random(int(lr * 1000))
    loss = 1.0
    for epoch in range(epochs):
        loss = loss * (1 - lr) + rng.uniform(0, 0.02)
        fitscribe.log_metric("train_loss", loss, step=epoch)
        fitscribe.log_metric("val_loss", loss * 1.1 + rng.uniform(0, 0.01), step=epoch)
    return loss


def autologged_models() -> None:
    """Two scikit-learn models, recorded by autolog alone: params, training metrics, plots, the model."""
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        print("(scikit-learn is not installed: pip install -e '.[sklearn]' to also record two autologged models)")
        return
    X, y = load_breast_cancer(return_X_y=True)  # bundled with scikit-learn: no download
    fitscribe.autolog()
    try:
        for C in (0.05, 1.0):
            with fitscribe.start_run(run_name=f"logreg C={C}"):
                make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X, y)
    finally:
        fitscribe.autolog(disable=True)
    fitscribe.flush()  # plots and the model are written in the background: wait for them
    runs = fitscribe.search_runs(filter_string="tags.estimator_name = 'Pipeline'", order_by=["start_time DESC"],
                                 max_results=2, output_format="list")
    for run in runs:
        artifacts = ", ".join(f.path for f in fitscribe.list_artifacts(run.info.run_id))
        print(f"  {run.info.run_name:14} training_accuracy_score={run.data.metrics['training_accuracy_score']:.4f} "
              f"({len(run.data.params)} params; artifacts: {artifacts})")


def main() -> None:
    experiment = fitscribe.set_experiment("quickstart")
    with fitscribe.start_run(run_name="lr-sweep", description="A small learning-rate sweep") as parent:
        for lr in (0.05, 0.1, 0.3):
            with fitscribe.start_run(run_name=f"lr={lr}", nested=True):
                fitscribe.log_params({"lr": lr, "epochs": 20, "optimizer": "sgd"})
                final = train(lr)
                fitscribe.log_metric("final_loss", final)
                fitscribe.log_dict({"lr": lr, "final_loss": final}, "summary.json")
        fitscribe.log_text("Swept lr over 0.05, 0.1 and 0.3.\n", "notes.md")

    best = fitscribe.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        order_by=["metrics.final_loss ASC"],
        output_format="list",
    )
    print(f"Recorded experiment {experiment.name!r} in {fitscribe.get_tracking_uri()}")
    print(f"Parent run {parent.info.run_id} ({parent.info.run_name}) with {len(best)} child runs:")
    for run in best:
        history = fitscribe.get_metric_history(run.info.run_id, "train_loss")
        artifacts = [f.path for f in fitscribe.list_artifacts(run.info.run_id)]
        print(
            f"  {run.info.run_name:10} lr={run.data.params['lr']:<5} final_loss={run.data.metrics['final_loss']:.4f} "
            f"({len(history)} train_loss points; artifacts: {', '.join(artifacts)})"
        )
    best_run = best[0]
    assert not math.isnan(best_run.data.metrics["final_loss"])
    print(f"Best: {best_run.info.run_name} (run id {best_run.info.run_id})")
    print("Two autologged scikit-learn models (fitscribe.autolog(), the training code unchanged):")
    autologged_models()
    print("Next: `fitscribe ui` (pip install -e '.[server]'), then open http://127.0.0.1:5000 to browse,")
    print("compare and plot these runs; or `fitscribe runs list --experiment quickstart`.")


if __name__ == "__main__":
    main()
