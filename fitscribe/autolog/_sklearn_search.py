"""GridSearchCV / RandomizedSearchCV: best params, cv_results.csv and child runs per candidate.

Child runs are written after the search from ``cv_results_`` (they are not live runs): the best
``max_tuning_runs`` candidates by ``rank_test_score`` (the first ``rank_test_*`` column with
multi-metric scoring, noted in the report), each with the seed estimator's params overlaid by the
candidate's, and every numeric column but ``param_*`` and ``split*`` as metrics.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from fitscribe._time import now_ms
from fitscribe.autolog import _logging as log
from fitscribe.entities import Metric, Param, RunTag

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.autolog._session import TrainingCall

__all__ = ["log_search", "in_cross_validation"]

_VALIDATION_FILE = os.path.join("sklearn", "model_selection", "_validation.py")


def in_cross_validation(skip: int = 1) -> bool:
    """Return True when scikit-learn's ``model_selection/_validation.py`` is up the stack: a fit
    inside ``cross_val_score`` & co, or a search candidate's fit, however they were imported.

    Args:
        skip: Frames above the caller to pass over before looking (the caller's own wrappers).
    """
    frame = sys._getframe(skip + 1)
    for _ in range(40):
        if frame is None:
            return False
        if frame.f_code.co_filename.endswith(_VALIDATION_FILE):
            return True
        frame = frame.f_back
    return False


def log_search(call: "TrainingCall", search: Any) -> None:
    """Log the search's best params and score, ``cv_results.csv`` and the child runs."""
    if hasattr(search, "best_params_"):
        call.step("best params", lambda: log.log_params(call, {f"best_{k}": v for k, v in search.best_params_.items()}))
    if hasattr(search, "best_score_"):
        call.step("best_cv_score", lambda: log.log_metrics(call, {"best_cv_score": search.best_score_}))
    results = getattr(search, "cv_results_", None)
    if results is None:
        return
    # Written after fit returns, from copies: the user may refit or mutate the search object.
    import copy

    results = copy.deepcopy(results)
    seed = _seed_snapshot(search.estimator)
    call.defer("cv_results.csv", lambda: _log_csv(call, results))
    runs = call.config.options.get("max_tuning_runs", 5)
    if runs != 0:
        call.defer("child runs", lambda: _children(call, seed, results, runs))


def _seed_snapshot(seed: Any) -> dict[str, str]:
    return {
        "__name__": type(seed).__name__,
        "__class__": f"{type(seed).__module__}.{type(seed).__qualname__}",
        **{str(k): str(v) for k, v in seed.get_params(deep=True).items()},
    }


def _log_csv(call: "TrainingCall", results: dict[str, Any]) -> None:
    import csv

    assert call.run_id is not None
    keys = list(results)
    with tempfile.TemporaryDirectory(prefix="fitscribe-cv-") as tmp:
        path = os.path.join(tmp, "cv_results.csv")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(keys)
            for i in range(len(results[keys[0]])):
                writer.writerow([_cell(results[k][i]) for k in keys])
        call.client.log_artifact(call.run_id, path)
    call.record("artifacts", "cv_results.csv")


def _cell(value: Any) -> Any:
    """An empty cell for a missing value: None, or numpy's masked constant (a parameter that only
    some candidates of a list-of-grids search have)."""
    import numpy as np

    return "" if value is None or value is np.ma.masked else value


def _rank_column(call: "TrainingCall", results: dict[str, Any]) -> str | None:
    ranks = sorted(k for k in results if k.startswith("rank_test_"))
    if not ranks:
        return None
    if "rank_test_score" in ranks:
        return "rank_test_score"
    call.notes.append(f"multi-metric search: child runs ranked by {ranks[0]}")
    return ranks[0]


def _children(call: "TrainingCall", seed: dict[str, str], results: dict[str, Any], limit: int | None) -> None:
    import numpy as np

    column = _rank_column(call, results)
    candidates = list(range(len(results["params"])))
    if column is not None:
        candidates.sort(key=lambda i: (results[column][i], i))
    chosen = candidates if limit is None else candidates[:limit]
    if len(chosen) < len(candidates):
        call.notes.append(f"logged the {len(chosen)} best of {len(candidates)} candidates as child runs (max_tuning_runs)")
    seed_params = {k: v for k, v in seed.items() if not k.startswith("__")}
    client, parent = call.client, call.client.get_run(call.run_id)  # type: ignore[arg-type]
    numeric = [k for k, v in results.items() if not k.startswith(("param", "split")) and np.asarray(v).dtype.kind in "fiub"]
    for i in chosen:
        params = {**seed_params, **{str(k): str(v) for k, v in results["params"][i].items()}}
        tags = [
            RunTag("mlflow.parentRunId", parent.info.run_id),
            RunTag("mlflow.autologging", call.integration.name),
            RunTag("estimator_name", seed["__name__"]),
            RunTag("estimator_class", seed["__class__"]),
        ]
        run = client.create_run(parent.info.experiment_id, start_time=parent.info.start_time,
                                tags={t.key: t.value for t in tags})
        now = now_ms()
        metrics = [Metric(k, float(results[k][i]), now, 0) for k in numeric]
        param_items = [Param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, max(len(param_items), 1), 100):
            client.log_batch(run.info.run_id, params=param_items[start : start + 100])
        client.log_batch(run.info.run_id, metrics=metrics)
        client.set_terminated(run.info.run_id, "FINISHED")
    call.record("child runs", *(str(i) for i in chosen))
