"""Training metrics and plots for scikit-learn estimators, from one prediction pass.

Names follow MLflow's (``training_accuracy_score``, ``training_roc_auc``,
``training_mean_squared_error``, ``training_confusion_matrix.png``...) so dashboards port over.
Unlike MLflow, ``predict`` and ``predict_proba`` run once each and every metric and plot reuses
them; ``training_score`` is derived from them when the estimator uses scikit-learn's default
``score``; training sets over ``max_metric_rows`` rows are sampled (noted in the report).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.autolog._session import TrainingCall

__all__ = ["training_metrics", "log_plots"]


def _sample(call: "TrainingCall", X: Any, y: Any, weight: Any, limit: int) -> tuple[Any, Any, Any]:
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    if n <= limit:
        return X, y, weight
    import numpy as np

    rows = np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))

    def take(a: Any) -> Any:
        if a is None:
            return None
        return a.iloc[rows] if hasattr(a, "iloc") else (a[rows] if hasattr(a, "shape") else [a[i] for i in rows])

    call.notes.append(f"training metrics computed on a random sample of {limit:,} of {n:,} rows")
    return take(X), take(y), take(weight)


def _default_score(estimator: Any) -> str | None:
    from sklearn.base import ClassifierMixin, RegressorMixin

    score = getattr(type(estimator), "score", None)
    if score is ClassifierMixin.score:
        return "accuracy"
    if score is RegressorMixin.score:
        return "r2"
    return None


class Predictions:
    """What training metrics and plots need, taken from the live estimator while ``fit`` returns:
    copies of the targets and weights, the predictions, the class labels and, for a custom
    ``score``, its value. Everything else is computed later, on the background finisher."""

    def __init__(self, kind: str, y: Any, pred: Any, proba: Any, weight: Any, classes: Any, default: str | None) -> None:
        self.kind = kind
        self.y = y
        self.pred = pred
        self.proba = proba
        self.weight = weight
        self.classes = classes
        self.default = default
        self.score: float | None = None


def predictions(call: "TrainingCall", estimator: Any, X: Any, y: Any, weight: Any) -> Predictions | None:
    """Run the one prediction pass (sampling large training sets); None for other estimators."""
    import numpy as np
    from sklearn.base import is_classifier, is_regressor

    limit = int(call.config.options.get("max_metric_rows", 100_000))
    X, y, weight = _sample(call, X, y, weight, limit)
    y_copy = np.array(y, copy=True)
    w_copy = None if weight is None else np.array(weight, copy=True)
    default = _default_score(estimator)
    if is_classifier(estimator):
        proba = call.step("predict_proba", lambda: estimator.predict_proba(X)) if hasattr(estimator, "predict_proba") else None
        pred = _labels_from_proba(estimator, proba) if proba is not None else None
        if pred is None:
            pred = estimator.predict(X)
        out = Predictions("classifier", y_copy, np.asarray(pred), proba, w_copy, getattr(estimator, "classes_", None), default)
    elif is_regressor(estimator):
        out = Predictions("regressor", y_copy, np.asarray(estimator.predict(X)), None, w_copy, None, default)
    else:
        out = Predictions("other", y_copy, None, None, w_copy, None, default)
    if default is None and hasattr(estimator, "score"):
        value = call.step("training_score", lambda: estimator.score(X, y, sample_weight=weight) if weight is not None else estimator.score(X, y))
        out.score = None if value is None else float(value)
    return out


def training_metrics(call: "TrainingCall", p: Predictions) -> dict[str, float]:
    """Compute MLflow's training metrics from the predictions (no estimator needed)."""
    metrics: dict[str, float] = {}
    if p.kind == "classifier":
        metrics.update(call.step("classifier metrics", lambda: _classifier(call, p)) or {})
    elif p.kind == "regressor":
        metrics.update(call.step("regressor metrics", lambda: _regressor(p)) or {})
    if p.default == "accuracy" and "training_accuracy_score" in metrics:
        metrics["training_score"] = metrics["training_accuracy_score"]
    elif p.default == "r2" and "training_r2_score" in metrics:
        metrics["training_score"] = metrics["training_r2_score"]
    elif p.score is not None:
        metrics["training_score"] = p.score
    return {k: v for k, v in metrics.items() if v is not None and not isinstance(v, bool)}


def _classifier(call: "TrainingCall", p: Predictions) -> dict[str, float]:
    from sklearn import metrics as m

    y, pred, weight = p.y, p.pred, p.weight
    pos_label = call.config.options.get("pos_label")
    average = "binary" if pos_label is not None else "weighted"
    extra = {"pos_label": pos_label} if pos_label is not None else {}
    precision, recall, f1, _ = m.precision_recall_fscore_support(
        y, pred, average=average, sample_weight=weight, zero_division=0, **extra
    )
    out: dict[str, Any] = {
        "training_precision_score": precision,
        "training_recall_score": recall,
        "training_f1_score": f1,
        "training_accuracy_score": m.accuracy_score(y, pred, sample_weight=weight),
    }
    if p.proba is not None:
        out.update(_probability_metrics(call, p))
    return {k: float(v) for k, v in out.items() if v is not None}


def _probability_metrics(call: "TrainingCall", p: Predictions) -> dict[str, Any]:
    from sklearn import metrics as m

    y, proba, weight, classes = p.y, p.proba, p.weight, p.classes
    out = {"training_log_loss": call.step("training_log_loss", lambda: m.log_loss(y, proba, sample_weight=weight, labels=classes))}
    if proba.shape[1] == 2:
        out["training_roc_auc"] = call.step("training_roc_auc", lambda: m.roc_auc_score(y, proba[:, 1], sample_weight=weight))
    else:
        out["training_roc_auc"] = call.step(
            "training_roc_auc",
            lambda: m.roc_auc_score(y, proba, average="weighted", multi_class="ovo", sample_weight=weight, labels=classes),
        )
    return out


def _labels_from_proba(estimator: Any, proba: Any) -> Any:
    """Return ``predict``'s labels from ``predict_proba`` for estimators whose ``predict`` is exactly
    the arg-max of the probabilities (trees and forests), saving a second pass; None otherwise."""
    import sys

    forest = getattr(sys.modules.get("sklearn.ensemble._forest"), "ForestClassifier", None)
    tree = getattr(sys.modules.get("sklearn.tree._classes"), "DecisionTreeClassifier", None)
    own = type(estimator).predict
    exact = {getattr(forest, "predict", None), getattr(tree, "predict", None)} - {None}
    if own not in exact or getattr(proba, "ndim", 0) != 2 or getattr(estimator, "n_outputs_", 1) != 1:
        return None
    import numpy as np

    return np.asarray(estimator.classes_).take(np.argmax(proba, axis=1), axis=0)


def _regressor(p: Predictions) -> dict[str, float]:
    from sklearn import metrics as m

    y, pred, weight = p.y, p.pred, p.weight
    mse = m.mean_squared_error(y, pred, sample_weight=weight, multioutput="uniform_average")
    return {
        "training_mean_squared_error": float(mse),
        "training_root_mean_squared_error": math.sqrt(mse),
        "training_mean_absolute_error": float(m.mean_absolute_error(y, pred, sample_weight=weight, multioutput="uniform_average")),
        "training_r2_score": float(m.r2_score(y, pred, sample_weight=weight, multioutput="uniform_average")),
    }


# -- plots (drawn with Pillow, see _charts: importing matplotlib would add ~30 MB to the process) ----

def log_plots(call: "TrainingCall", p: Predictions) -> None:
    """Save the confusion matrix (classifiers) and ROC/PR curves (binary) of the training predictions."""
    y, pred = p.y, p.pred
    if p.kind != "classifier" or pred is None:
        return
    labels = list(p.classes) if p.classes is not None else []
    try:
        import PIL  # noqa: F401
    except ImportError:
        call.skip("plots", "Pillow is not installed (pip install pillow, or fitscribe[plots])")
        return
    call.step("training_confusion_matrix.png", lambda: _put(call, "training_confusion_matrix.png", _confusion(y, pred, labels)))
    proba = p.proba
    if proba is not None and len(labels) == 2:
        call.step("training_roc_curve.png", lambda: _put(call, "training_roc_curve.png", _roc(y, proba[:, 1], labels[1])))
        call.step(
            "training_precision_recall_curve.png",
            lambda: _put(call, "training_precision_recall_curve.png", _pr(y, proba[:, 1], labels[1])),
        )


def _put(call: "TrainingCall", name: str, data: bytes) -> None:
    import os
    import tempfile

    assert call.run_id is not None
    with tempfile.TemporaryDirectory(prefix="fitscribe-plot-") as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as fh:
            fh.write(data)
        call.client.log_artifact(call.run_id, path)
    call.record("artifacts", name)


def _confusion(y: Any, pred: Any, labels: list[Any]) -> bytes:
    from sklearn.metrics import confusion_matrix

    from fitscribe.autolog._charts import heatmap_png

    matrix = confusion_matrix(y, pred, labels=labels or None, normalize="true")
    names = [str(label) for label in labels] or [str(i) for i in range(len(matrix))]
    return heatmap_png(matrix, names, "Normalized confusion matrix (training data)", "Predicted label", "True label")


def _roc(y: Any, score: Any, positive: Any) -> bytes:
    from sklearn.metrics import auc, roc_curve

    from fitscribe.autolog._charts import Curve, curves_png

    fpr, tpr, _ = roc_curve(y, score, pos_label=positive)
    return curves_png(
        [Curve(fpr, tpr, f"AUC = {auc(fpr, tpr):.3f}"), Curve([0, 1], [0, 1], dashed=True, color=(128, 128, 128))],
        "ROC curve (training data)", f"False positive rate (positive label: {positive})", "True positive rate",
    )


def _pr(y: Any, score: Any, positive: Any) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from fitscribe.autolog._charts import Curve, curves_png

    precision, recall, _ = precision_recall_curve(y, score, pos_label=positive)
    ap = average_precision_score(y, score, pos_label=positive)
    return curves_png(
        [Curve(recall, precision, f"AP = {ap:.3f}")],
        "Precision-recall curve (training data)", f"Recall (positive label: {positive})", "Precision", legend="lower left",
    )
