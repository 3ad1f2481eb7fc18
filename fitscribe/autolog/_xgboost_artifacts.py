"""What XGBoost autologging stores after training: feature importances (JSON and a bar chart) and the model.

The importance scores are read from the booster while the training call still holds it; the files
are written on the background finisher from copies. The charts are drawn with Pillow
(:func:`fitscribe.autolog._charts.bars_png`): importing matplotlib would add about 30 MB to the
training process.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from fitscribe.autolog._session import SkippedItem, TrainingCall

MAX_BARS = 40  # the largest importances drawn; the JSON file keeps them all


def xgboost_message(exc: Exception) -> str:
    """XGBoost's error message without its timestamp, source location and stack trace."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", first)


def log_importance(call: TrainingCall, booster: Any) -> None:
    """Read the scores now (the booster is the user's); write the files after training returns."""
    scores: dict[str, dict[str, Any]] = {}
    for kind in call.config.options["importance_types"]:
        score = call.step(f"feature_importance_{kind}.json", lambda k=kind: _score(booster, k))
        if score is not None:
            scores[kind] = {str(k): (list(v) if isinstance(v, (list, tuple)) else float(v)) for k, v in score.items()}
    if scores:
        call.defer("feature importance files", lambda: _write_importance(call, scores))


def _score(booster: Any, kind: str) -> dict[str, Any]:
    import xgboost

    try:
        return dict(booster.get_score(importance_type=kind))
    except xgboost.core.XGBoostError as exc:  # e.g. gblinear defines only "weight"
        raise SkippedItem(xgboost_message(exc)) from exc


def _write_importance(call: TrainingCall, scores: dict[str, dict[str, Any]]) -> None:
    """``feature_importance_<type>.json`` and ``.png`` (horizontal bars, largest at the top), all
    stored with one artifact call. Runs on the background finisher: it uses copies only."""
    import tempfile

    assert call.run_id is not None
    plots = call.config.log_plots and call.step("feature importance plots", _pillow)
    with tempfile.TemporaryDirectory(prefix="fitscribe-xgb-") as tmp:
        written = []
        for kind, score in scores.items():
            name = f"feature_importance_{kind}.json"
            if call.step(name, lambda n=name, s=score: _write(tmp, n, json.dumps(s, indent=2).encode())):
                written.append(name)
            name = f"feature_importance_{kind}.png"
            if plots and not score:
                call.skip(name, "the model has no splits, so no feature has an importance")
            elif plots and call.step(name, lambda n=name, k=kind, s=score: _write(tmp, n, importance_png(k, s))):
                written.append(name)
        if written:
            call.step("upload feature importance", lambda: _upload(call, tmp, written))


def _upload(call: TrainingCall, folder: str, names: list[str]) -> None:
    assert call.run_id is not None
    call.client.log_artifacts(call.run_id, folder)
    call.record("artifacts", *names)


def _pillow() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError as exc:
        raise SkippedItem("Pillow is not installed (pip install pillow, or fitscribe[plots])") from exc
    return True


def _write(folder: str, name: str, data: bytes) -> bool:
    with open(os.path.join(folder, name), "wb") as fh:
        fh.write(data)
    return True


def importance_png(kind: str, score: dict[str, Any]) -> bytes:
    """Draw one importance type as horizontal bars: the :data:`MAX_BARS` largest, one bar per class
    when a score is a list (``gblinear`` with several classes)."""
    from fitscribe.autolog._charts import bars_png

    return bars_png(f"Feature importance: {kind}", list(score), list(score.values()), f"importance ({kind})",
                    max_bars=MAX_BARS)


def log_model(call: TrainingCall, model: Any, example: Any) -> None:
    """Log the Booster or wrapper with the ``xgboost`` flavor, its signature inferred from ``example``."""
    from fitscribe.flavors import xgboost as flavor
    from fitscribe.flavors.signature import infer_signature

    config = call.config
    signature: Any = False
    if config.log_model_signatures and example is not None:
        signature = infer_signature(example, flavor.FLAVOR.example_output(model, example))
    info = flavor.log_model(
        model, "model", model_format=config.options.get("model_format", "ubj"), run_id=call.run_id,
        signature=signature, input_example=example if config.log_input_examples else None,
        registered_model_name=config.registered_model_name,
    )
    call.record("models", info.model_uri)
