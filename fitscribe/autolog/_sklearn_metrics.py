"""Training metrics and plots for scikit-learn estimators, from one prediction pass.

Names follow MLflow's (``training_accuracy_score``, ``training_roc_auc``,
``training_mean_squared_error``, ``training_confusion_matrix.png``...) so dashboards port over.
Unlike MLflow, ``predict`` and ``predict_proba`` run once each and every metric and plot reuses
them; ``training_score`` is derived from them when the estimator uses scikit-learn's default
``score``; training sets over ``max_metric_rows`` rows are sampled (noted in the report).
"""

from __future__ import annotations

import io
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


def training_metrics(call: "TrainingCall", estimator: Any, X: Any, y: Any, weight: Any) -> dict[str, float]:
    """Compute MLflow's training metrics for a classifier or regressor; keep predictions for plots."""
    from sklearn.base import is_classifier, is_regressor

    limit = int(call.config.options.get("max_metric_rows", 100_000))
    X, y, weight = _sample(call, X, y, weight, limit)
    metrics: dict[str, float] = {}
    if is_classifier(estimator):
        metrics.update(call.step("classifier metrics", lambda: _classifier(call, estimator, X, y, weight)) or {})
    elif is_regressor(estimator):
        metrics.update(call.step("regressor metrics", lambda: _regressor(call, estimator, X, y, weight)) or {})
    default = _default_score(estimator)
    if default == "accuracy" and "training_accuracy_score" in metrics:
        metrics["training_score"] = metrics["training_accuracy_score"]
    elif default == "r2" and "training_r2_score" in metrics:
        metrics["training_score"] = metrics["training_r2_score"]
    elif hasattr(estimator, "score"):
        value = call.step("training_score", lambda: estimator.score(X, y, sample_weight=weight) if weight is not None else estimator.score(X, y))
        if value is not None:
            metrics["training_score"] = float(value)
    return {k: v for k, v in metrics.items() if v is not None and not isinstance(v, bool)}


def _classifier(call: "TrainingCall", estimator: Any, X: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics as m

    proba = call.step("predict_proba", lambda: estimator.predict_proba(X)) if hasattr(estimator, "predict_proba") else None
    pred = _labels_from_proba(estimator, proba) if proba is not None else None
    if pred is None:
        pred = estimator.predict(X)
    call.state["y_true"], call.state["y_pred"] = y, pred
    pos_label = call.config.options.get("pos_label")
    average = "binary" if pos_label is not None else "weighted"
    extra = {"pos_label": pos_label} if pos_label is not None else {}
    out = {
        "training_precision_score": m.precision_score(y, pred, average=average, sample_weight=weight, zero_division=0, **extra),
        "training_recall_score": m.recall_score(y, pred, average=average, sample_weight=weight, zero_division=0, **extra),
        "training_f1_score": m.f1_score(y, pred, average=average, sample_weight=weight, zero_division=0, **extra),
        "training_accuracy_score": m.accuracy_score(y, pred, sample_weight=weight),
    }
    if proba is not None:
        call.state["y_proba"] = proba
        out.update(_probability_metrics(call, estimator, y, proba, weight))
    return {k: float(v) for k, v in out.items() if v is not None}


def _probability_metrics(call: "TrainingCall", estimator: Any, y: Any, proba: Any, weight: Any) -> dict[str, Any]:
    from sklearn import metrics as m

    classes = getattr(estimator, "classes_", None)
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


def _regressor(call: "TrainingCall", estimator: Any, X: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics as m

    pred = estimator.predict(X)
    mse = m.mean_squared_error(y, pred, sample_weight=weight, multioutput="uniform_average")
    return {
        "training_mean_squared_error": float(mse),
        "training_root_mean_squared_error": math.sqrt(mse),
        "training_mean_absolute_error": float(m.mean_absolute_error(y, pred, sample_weight=weight, multioutput="uniform_average")),
        "training_r2_score": float(m.r2_score(y, pred, sample_weight=weight, multioutput="uniform_average")),
    }


# -- plots (matplotlib's object API with the Agg canvas: the user's pyplot state is untouched) ------

def _figure(width: float = 6.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def log_plots(call: "TrainingCall", labels: list[Any]) -> None:
    """Save the confusion matrix (classifiers) and ROC/PR curves (binary) of the training predictions.

    Uses only the predictions kept in ``call.state``, so it can run after fit has returned.
    """
    y, pred = call.state.get("y_true"), call.state.get("y_pred")
    if y is None or pred is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        call.skip("plots", "matplotlib is not installed (pip install matplotlib)")
        return
    call.step("training_confusion_matrix.png", lambda: _put(call, "training_confusion_matrix.png", _confusion(y, pred, labels)))
    proba = call.state.get("y_proba")
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
    import numpy as np
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, pred, labels=labels or None, normalize="true")
    fig = _figure(5, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax)
    ticks = np.arange(len(matrix))
    names = [str(label) for label in labels] or [str(t) for t in ticks]
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    if len(matrix) <= 20:
        for i in range(len(matrix)):
            for j in range(len(matrix)):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center",
                        color="white" if matrix[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title("Normalized confusion matrix (training data)")
    return _png(fig)


def _roc(y: Any, score: Any, positive: Any) -> bytes:
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(y, score, pos_label=positive)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC = {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel(f"False positive rate (positive label: {positive})")
    ax.set_ylabel("True positive rate")
    ax.set_title("ROC curve (training data)")
    ax.legend(loc="lower right")
    return _png(fig)


def _pr(y: Any, score: Any, positive: Any) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, score, pos_label=positive)
    fig = _figure()
    ax = fig.add_subplot()
    ap = average_precision_score(y, score, pos_label=positive)
    ax.plot(recall, precision, label=f"AP = {ap:.3f}")
    ax.set_xlabel(f"Recall (positive label: {positive})")
    ax.set_ylabel("Precision")
    ax.set_title("Precision-recall curve (training data)")
    ax.legend(loc="lower left")
    return _png(fig)
