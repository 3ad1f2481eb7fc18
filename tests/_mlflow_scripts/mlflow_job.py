"""Run a list of MLflow save/load tasks with the REAL MLflow, for tests/test_mlflow_interop.py.

Runs under the MLflow virtualenv's python (scripts/mlflow_venv.sh), never imports fitscribe, and
talks to the test only through files: ``python mlflow_job.py plan.json result.json``.

plan.json: ``{"tasks": [{"id": ..., "op": ..., ...}, ...]}``. Each task's outcome goes into
result.json under its id: ``{"ok": true, ...outputs}`` or ``{"ok": false, "error": traceback}``,
plus the warnings it raised and what MLflow logged at WARNING or above. Arrays go to ``.npy``
files in the task's ``out`` folder.

Ops:
    load: load a model folder with ``mlflow.<flavor>.load_model`` and ``mlflow.pyfunc.load_model``
        and save their predictions (also with ``predict_params``); optionally check MLflow's schema
        enforcement on a missing column (``drop_column``). ``sys_path``: folders to import from
        while loading (the fitscribe checkout, for a fitscribe PythonModel, which needs fitscribe).
    save: unpickle a model the test trained and save it with ``mlflow.<flavor>.save_model``
        (``sys_path``: folders holding the model's own classes, needed only to unpickle it here;
        ``signature``: infer one from ``example`` and, if given, ``params``).
    save_custom: save a custom ``mlflow.pyfunc.PythonModel`` (defined here).
    save_code: save a model-from-code: write ``source`` into a script and save it with
        ``mlflow.pyfunc.save_model(python_model=<script>)``.
    meta: read a model folder's metadata with ``mlflow.models.Model.load``, its input example, and
        its environment files.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import traceback
import warnings
from typing import Any

import numpy as np


def _inputs(spec: dict[str, Any]) -> Any:
    """Build the model input described by ``{"x": path.npy, "columns": [...] or None, "dtype": ...}``."""
    array = np.load(spec["x"])
    if spec.get("dtype"):
        array = array.astype(spec["dtype"])
    if spec.get("columns"):
        import pandas as pd

        return pd.DataFrame(array, columns=spec["columns"])
    return array


def _save_array(path: str, value: Any) -> list[int]:
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    array = np.asarray(value)
    np.save(path, array, allow_pickle=False)
    return list(array.shape)


def _flavor_module(name: str) -> Any:
    import importlib

    return importlib.import_module(f"mlflow.{name}")


def _native_predict(model: Any, data: Any) -> Any:
    """The native model's prediction, or None for a model with no predict of its own (ONNX)."""
    module = type(model).__module__.split(".")[0]
    if module == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(data)).numpy()
    if module == "onnx":
        return None
    import xgboost

    if isinstance(model, xgboost.Booster):
        return model.predict(xgboost.DMatrix(data))
    return model.predict(data)


def _one_output(value: Any) -> Any:
    """A pyfunc prediction as one array (MLflow's ONNX pyfunc answers a dict of named outputs)."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    return value


def op_load(task: dict[str, Any]) -> dict[str, Any]:
    extra = task.get("sys_path") or []
    sys.path[:0] = extra
    try:
        return _load(task)
    finally:
        for entry in extra:
            sys.path.remove(entry)


def _load(task: dict[str, Any]) -> dict[str, Any]:
    import mlflow.pyfunc

    data = _inputs(task["inputs"])
    out = task["out"]
    native = _flavor_module(task["flavor"]).load_model(task["path"])
    result: dict[str, Any] = {"native_class": f"{type(native).__module__}.{type(native).__qualname__}"}
    native_predict = _native_predict(native, data)
    if native_predict is not None:
        _save_array(os.path.join(out, "native_predict.npy"), native_predict)
    if hasattr(native, "predict_proba"):
        _save_array(os.path.join(out, "native_proba.npy"), native.predict_proba(data))
    pyfunc = mlflow.pyfunc.load_model(task["path"])
    _save_array(os.path.join(out, "pyfunc_predict.npy"), _one_output(pyfunc.predict(data)))
    if task.get("predict_params"):
        _save_array(os.path.join(out, "pyfunc_params_predict.npy"), pyfunc.predict(data, params=task["predict_params"]))
    result["pyfunc_signature"] = None if pyfunc.metadata.signature is None else pyfunc.metadata.signature.to_dict()
    missing = task.get("drop_column")
    if missing:
        try:
            pyfunc.predict(data.drop(columns=[missing]))
        except Exception as exc:  # we record what MLflow raised, for the test to check
            result["drop_column_error"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        else:
            result["drop_column_error"] = None
    return result


def op_save(task: dict[str, Any]) -> dict[str, Any]:
    from mlflow.models import infer_signature

    sys.path[:0] = task.get("sys_path") or []  # where the pickled model's own class is defined
    try:
        if task.get("model_onnx"):
            import onnx

            model = onnx.load(task["model_onnx"])
        else:
            with open(task["model_pickle"], "rb") as fh:
                model = pickle.load(fh)
    finally:
        for entry in task.get("sys_path") or []:
            sys.path.remove(entry)
    kwargs = dict(task.get("kwargs") or {})
    if task.get("example"):
        example = _inputs(task["example"])
        kwargs["input_example"] = example
        if task.get("signature"):
            kwargs["signature"] = infer_signature(example, _native_predict(model, example), params=task.get("params"))
    _flavor_module(task["flavor"]).save_model(model, task["path"], **kwargs)
    return {"files": sorted(os.listdir(task["path"]))}


def op_save_custom(task: dict[str, Any]) -> dict[str, Any]:
    import mlflow.pyfunc

    class AddN(mlflow.pyfunc.PythonModel):
        """A custom model: adds ``n`` to its input."""

        def __init__(self, n: float) -> None:
            self.n = n

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input + self.n

    mlflow.pyfunc.save_model(task["path"], python_model=AddN(task["n"]), pip_requirements=task["pip_requirements"])
    return {"files": sorted(os.listdir(task["path"]))}


def op_save_code(task: dict[str, Any]) -> dict[str, Any]:
    import mlflow.pyfunc

    script = os.path.join(os.path.dirname(task["path"]), task["script_name"])
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(task["source"])
    mlflow.pyfunc.save_model(task["path"], python_model=script, pip_requirements=task["pip_requirements"])
    return {"files": sorted(os.listdir(task["path"]))}


def op_meta(task: dict[str, Any]) -> dict[str, Any]:
    from mlflow.models import Model, get_model_info

    model = Model.load(task["path"])
    info = get_model_info(task["path"])
    example = model.load_input_example(task["path"])
    result: dict[str, Any] = {
        "signature": None if model.signature is None else model.signature.to_dict(),
        "info_signature": None if info.signature is None else info.signature.to_dict(),
        "run_id": model.run_id,
        "artifact_path": model.artifact_path,
        "utc_time_created": model.utc_time_created,
        "model_uuid": model.model_uuid,
        "saved_input_example_info": model.saved_input_example_info,
        "flavors": sorted(model.flavors),
        "metadata": model.metadata,
        "example_type": f"{type(example).__module__}.{type(example).__name__}",
        "example_columns": [str(c) for c in example.columns] if hasattr(example, "columns") else None,
    }
    result["example_shape"] = _save_array(os.path.join(task["out"], "example.npy"), example)
    result.update(_environment(task["path"]))
    return result


def _environment(path: str) -> dict[str, Any]:
    """Read the model's environment files as MLflow does to recreate it (``mlflow models serve``)."""
    import mlflow.pyfunc
    from mlflow.utils.environment import _PythonEnv
    from mlflow.utils.requirements_utils import _parse_requirements

    requirements = mlflow.pyfunc.get_model_dependencies(path, format="pip")
    python_env = _PythonEnv.from_yaml(os.path.join(path, "python_env.yaml"))
    return {
        "requirements": [req.req_str for req in _parse_requirements(requirements, is_constraint=False)],
        "python_env": python_env.to_dict(),
    }


OPS = {"load": op_load, "save": op_save, "save_custom": op_save_custom, "save_code": op_save_code, "meta": op_meta}


class _Records(logging.Handler):
    """Keep the messages MLflow logs (at WARNING and above) while a task runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task; never raise: a failure is returned as its traceback."""
    records = _Records()
    logger = logging.getLogger("mlflow")
    logger.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome = {"ok": True, **OPS[task["op"]](task)}
            except BaseException:  # every failure is reported to the test, which fails with it
                outcome = {"ok": False, "error": traceback.format_exc()}
    finally:
        logger.removeHandler(records)
    outcome["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    outcome["logs"] = records.messages
    return outcome


def main(plan_path: str, result_path: str) -> None:
    """Run every task of the plan in order and write all outcomes to ``result_path``."""
    import mlflow  # noqa: F401  # first: importing it configures MLflow's loggers, dropping our handlers

    with open(plan_path, encoding="utf-8") as fh:
        plan = json.load(fh)
    results = {}
    for task in plan["tasks"]:
        if task.get("out"):
            os.makedirs(task["out"], exist_ok=True)
        results[task["id"]] = run(task)
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
