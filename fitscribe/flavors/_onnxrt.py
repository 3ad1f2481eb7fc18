"""Running ONNX models with onnxruntime: session options, execution providers, feeds and outputs.

Private helper of :mod:`fitscribe.flavors.onnx` (which documents the behaviour). Imports onnx and
onnxruntime only inside functions.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

from fitscribe.errors import FitscribeWarning, InvalidValueError, MissingDependencyError

__all__ = [
    "ONNX_EXECUTION_PROVIDERS",
    "OnnxPredictor",
    "check_providers",
    "import_onnx",
    "import_ort",
    "is_frame",
    "make_session",
    "ort_errors",
    "session_options",
]

ONNX_EXECUTION_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
CPU = "CPUExecutionProvider"
_EXTRA_CONFIG = "extra_session_config"
_EXECUTION_MODES = ("parallel", "sequential")
_OPTIMIZATION_LEVELS = (0, 1, 2, 99)
_THREAD_KEYS = ("intra_op_num_threads", "inter_op_num_threads")
_EXACT_INT_BITS = {"float16": 11, "float32": 24, "float64": 53}
_ONNX_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def import_onnx(purpose: str) -> Any:
    """Return the ``onnx`` module, or raise MissingDependencyError naming the ``onnx`` extra."""
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError.for_package("onnx", "onnx", purpose) from exc
    return onnx


def import_ort(purpose: str) -> Any:
    """Return the ``onnxruntime`` module, or raise MissingDependencyError naming the ``onnx`` extra."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError.for_package("onnxruntime", "onnx", purpose) from exc
    return onnxruntime


def ort_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """Return onnxruntime's own exception classes (plain ``Exception`` subclasses) and the builtin ones it raises."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    own = tuple(v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception))
    return (*own, RuntimeError, ValueError, TypeError, OSError)


def check_providers(providers: Any) -> list[str]:
    """Return the execution providers to record (default: CUDA, then CPU), refusing unknown names."""
    if providers is None:
        return list(ONNX_EXECUTION_PROVIDERS)
    if isinstance(providers, str) or not isinstance(providers, Sequence) or not providers or not all(
        isinstance(p, str) and p for p in providers
    ):
        raise InvalidValueError(
            f"onnx_execution_providers must be a non-empty list of provider names, got {providers!r}; "
            f"e.g. {list(ONNX_EXECUTION_PROVIDERS)}."
        )
    try:
        known = list(import_ort("Checking execution providers").get_all_providers())
    except MissingDependencyError:  # names are checked when onnxruntime is there; saving does not need it
        return list(providers)
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise InvalidValueError(f"Unknown onnxruntime execution provider(s) {unknown}; known providers: {known}.")
    return list(providers)


def _settable_keys(ort: Any) -> list[str]:
    cls = ort.SessionOptions
    return sorted(a for a in dir(cls) if not a.startswith("_") and isinstance(getattr(cls, a, None), property))


def _option_value(ort: Any, key: str, value: Any, default: Any) -> Any:
    """Return the onnxruntime value for one session option, or raise naming the key, value and allowed values."""
    def bad(allowed: str) -> InvalidValueError:
        return InvalidValueError(f"onnx_session_options[{key!r}] = {value!r} is not allowed; use {allowed}.")

    if key == "execution_mode":
        if not isinstance(value, str) or value.lower() not in _EXECUTION_MODES:
            raise bad(" or ".join(repr(m) for m in _EXECUTION_MODES))
        return ort.ExecutionMode.ORT_PARALLEL if value.lower() == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
    if key == "graph_optimization_level":
        if isinstance(value, bool) or value not in _OPTIMIZATION_LEVELS:
            raise bad("one of 0 (disable all), 1 (basic), 2 (extended), 99 (all)")
        return ort.GraphOptimizationLevel(value)
    if key in _THREAD_KEYS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("an integer >= 0 (0 lets onnxruntime choose)")
        return value
    members = getattr(type(default), "__members__", None)
    if members:  # another onnxruntime enum (execution_order): its member names
        names = {name.lower(): member for name, member in members.items()}
        if not isinstance(value, str) or value.lower() not in names:
            raise bad(f"one of {sorted(names)}")
        return names[value.lower()]
    for kind in (bool, int, str):
        if isinstance(default, kind):
            if not isinstance(value, kind) or kind is int and isinstance(value, bool):
                raise bad(f"a {kind.__name__}")
            return value
    return value


def session_options(ort: Any, options: Any) -> Any:
    """Build ``onnxruntime.SessionOptions`` from the saved dict, validating every key and value."""
    built = ort.SessionOptions()
    if options is None:
        return built
    if not isinstance(options, Mapping):
        raise InvalidValueError(
            f"onnx_session_options must be a dict, got {type(options).__name__}: {options!r}; "
            "e.g. {'intra_op_num_threads': 1, 'execution_mode': 'sequential'}."
        )
    allowed = _settable_keys(ort)
    for key, value in options.items():
        if key == _EXTRA_CONFIG:
            _add_config_entries(built, value)
            continue
        if key not in allowed:
            raise InvalidValueError(
                f"Unknown onnx_session_options key {key!r}; use attributes of onnxruntime.SessionOptions "
                f"({', '.join(allowed)}) or {_EXTRA_CONFIG!r} (a dict of config entries)."
            )
        setattr(built, key, _option_value(ort, key, value, getattr(built, key)))
    return built


def _add_config_entries(session_options: Any, entries: Any) -> None:
    if not isinstance(entries, Mapping):
        raise InvalidValueError(
            f"onnx_session_options[{_EXTRA_CONFIG!r}] must be a dict of config entries, got {entries!r}; "
            "e.g. {'session.intra_op.allow_spinning': '0'}."
        )
    for name, value in entries.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidValueError(
                f"onnx_session_options[{_EXTRA_CONFIG!r}] entry {name!r}: {value!r} must map a string to a "
                "string, e.g. {'session.intra_op.allow_spinning': '0'}."
            )
        session_options.add_session_config_entry(name, value)


# --- running a model -------------------------------------------------------------------------


def _select_providers(ort: Any, requested: Sequence[str], stacklevel: int) -> list[str]:
    available = list(ort.get_available_providers())
    usable = [p for p in requested if p in available]
    missing = [p for p in requested if p not in available]
    if missing and tuple(requested) != ONNX_EXECUTION_PROVIDERS:
        warnings.warn(
            f"The ONNX model asks for the execution provider(s) {missing}, which this onnxruntime does not "
            f"offer (available: {available}); running on {usable or [CPU]}. Install an onnxruntime build "
            f"with them (e.g. onnxruntime-gpu for CUDA) or pass providers=[...] to load_session.",
            FitscribeWarning, stacklevel=stacklevel,
        )
    return usable or [CPU]


def make_session(path: str, section: Mapping[str, Any], providers: Sequence[str] | None, stacklevel: int) -> Any:
    """Create the InferenceSession for a saved model; ``stacklevel`` points warnings raised here at the user."""
    ort = import_ort("Running an ONNX model")
    requested = list(providers or section.get("providers") or ONNX_EXECUTION_PROVIDERS)
    options = section.get("onnx_session_options")
    chosen = _select_providers(ort, requested, stacklevel + 1)
    errors = ort_errors(ort)
    try:
        session = ort.InferenceSession(path, sess_options=session_options(ort, options), providers=chosen)
    except errors as exc:
        if chosen == [CPU]:
            raise InvalidValueError(f"onnxruntime cannot load the ONNX model at {path!r}: {exc}") from exc
        warnings.warn(
            f"Creating the onnxruntime session with {chosen} failed ({type(exc).__name__}: {exc}); retrying on {CPU}.",
            FitscribeWarning, stacklevel=stacklevel,
        )
        try:
            session = ort.InferenceSession(path, sess_options=session_options(ort, options), providers=[CPU])
        except errors as again:
            raise InvalidValueError(f"onnxruntime cannot load the ONNX model at {path!r}: {again}") from again
        return session
    inactive = [p for p in chosen if p not in session.get_providers()]
    if inactive:
        warnings.warn(
            f"onnxruntime did not activate the execution provider(s) {inactive} (active: {session.get_providers()}); "
            "the model runs without them.",
            FitscribeWarning, stacklevel=stacklevel,
        )
    return session


def is_frame(data: Any) -> bool:
    """True for a pandas DataFrame (checked without importing pandas)."""
    return type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "columns")


def _cast(array: Any, onnx_type: str, name: str) -> Any:
    """Convert ``array`` to the dtype of the graph input when no value changes beyond float rounding."""
    import numpy as np

    target_name = _ONNX_TYPES.get(onnx_type)
    if target_name is None or array.dtype == np.dtype(target_name):
        return array
    target = np.dtype(target_name)
    source = array.dtype
    what = f"Input {name!r} ({source.name}, the model takes {onnx_type})"
    if source.kind == "O" and target.kind in "fiub":
        if any(isinstance(v, (str, bytes)) for v in array.ravel().tolist()):
            raise InvalidValueError(f"{what} holds text; pass numbers.")
        array = np.asarray(array.tolist())  # mixed-type DataFrame columns: let numpy find the number type
        source = array.dtype
        if array.dtype == target:
            return array
    if array.size == 0:
        return array.astype(target)
    if source.kind == "f" and target.kind == "f":
        finite = array[np.isfinite(array)]
        if finite.size and float(np.max(np.abs(finite))) > float(np.finfo(target).max):
            largest = np.max(np.abs(finite))
            raise InvalidValueError(f"{what} has values too large for {target.name} (largest {largest}).")
        return array.astype(target)
    if source.kind in "iub" and target.kind == "f":
        limit = 2 ** _EXACT_INT_BITS[target.name]
        if int(np.max(np.abs(array.astype(np.int64)))) > limit:
            raise InvalidValueError(f"{what} has integers beyond +-{limit}, which {target.name} cannot hold exactly.")
        return array.astype(target)
    if source.kind in "iu" and target.kind in "iu":
        info = np.iinfo(target)
        if int(np.min(array)) < info.min or int(np.max(array)) > info.max:
            raise InvalidValueError(f"{what} has values outside {target.name}'s range [{info.min}, {info.max}].")
        return array.astype(target)
    return array  # anything else goes as is; onnxruntime names the mismatch


def _fit_rank(array: Any, shape: Any) -> Any:
    """Reshape a 1-D column to ``[n, 1]`` when the graph input is ``[n, 1]``."""
    if array.ndim == 1 and isinstance(shape, list) and len(shape) == 2 and shape[1] == 1:
        return array.reshape(-1, 1)
    return array


class OnnxPredictor:
    """pyfunc's ``predict`` for an ONNX model: one InferenceSession, MLflow's input and output rules."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self._errors = ort_errors(import_ort("Running an ONNX model"))

    def describe(self) -> str:
        """The graph's inputs as ``name: type shape`` for error messages."""
        return ", ".join(f"{n!r}: {t} {s}" for n, t, s in self.inputs)

    def __call__(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        if params:
            warnings.warn(
                f"ONNX models take no inference parameters; ignoring {sorted(params)}.", FitscribeWarning, stacklevel=3
            )
        outputs = self.run(data)
        if is_frame(data):
            return self._frame(outputs, data)
        return dict(zip(self.output_names, outputs))

    def run(self, data: Any) -> list[Any]:
        """Map ``data`` to the feed, cast it to the graph's types and return the outputs in graph order."""
        import numpy as np

        raw = self._feed(data)
        feed = {}
        for name, onnx_type, shape in self.inputs:
            value = raw[name]
            array = value if isinstance(value, np.ndarray) else np.asarray(value)
            feed[name] = _cast(_fit_rank(array, shape), onnx_type, name)
        try:
            return list(self.session.run(self.output_names, feed))
        except self._errors as exc:
            raise InvalidValueError(
                f"onnxruntime could not run the model: {exc}. The model takes {self.describe()}."
            ) from exc

    def _feed(self, data: Any) -> Mapping[str, Any]:
        names = [n for n, _, _ in self.inputs]
        if isinstance(data, Mapping):
            missing = [n for n in names if n not in data]
            extra = [k for k in data if k not in names]
            if missing or extra:
                raise InvalidValueError(
                    f"The input dict has keys {list(data)} but the model takes the inputs {names}"
                    + (f" (missing {missing})" if missing else "") + (f" (unknown {extra})" if extra else "") + "."
                )
            return data
        if is_frame(data):
            if len(names) == 1:
                return {names[0]: data.to_numpy()}
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise InvalidValueError(
                    f"The DataFrame has no column(s) {missing}; this model takes one column per input: {names}."
                )
            return {n: data[n].to_numpy() for n in names}
        array_like = type(data).__module__.split(".")[0] == "numpy" or isinstance(data, (list, tuple))
        if array_like or hasattr(data, "to_numpy"):
            if len(names) != 1:
                raise InvalidValueError(
                    f"This ONNX model has {len(names)} inputs {names}; an array can only feed a model with one "
                    "input. Pass a dict {input name: array} or a DataFrame with one column per input."
                )
            return {names[0]: data.to_numpy() if hasattr(data, "to_numpy") else data}
        raise InvalidValueError(
            f"An ONNX model takes a dict {{input name: array}}, a numpy array or a pandas DataFrame, got "
            f"{type(data).__name__}."
        )

    def _frame(self, outputs: list[Any], data: Any) -> Any:
        import numpy as np
        import pandas as pd

        rows = len(data)
        columns: dict[str, Any] = {}
        for name, out in zip(self.output_names, outputs):
            array = np.asarray(out)
            if array.size == rows:
                columns[name] = array.reshape(-1)
            elif array.ndim >= 2 and array.shape[0] == rows:
                columns[name] = list(array)
            else:  # not one row per input row: no DataFrame can hold it
                return dict(zip(self.output_names, outputs))
        return pd.DataFrame(columns, index=data.index)

