"""PyTorch models: any ``torch.nn.Module``, Lightning modules included, saved whole or as a state_dict.

Two ways to save (``save_mode``):

- ``"model"`` (default): the whole module with ``torch.save`` and cloudpickle into
  ``data/model.pth``. Classes defined in ``__main__`` or in your own local modules (not installed
  packages) travel by value, so the model loads in another process without your code. A
  ``torch.jit.ScriptModule`` is written with ``torch.jit.save`` instead (no pickle).
- ``"state_dict"``: the weights (``data/state_dict.pth``, loaded with ``weights_only=True``) plus
  the class and its constructor arguments (``data/model_class.pkl``). Loading builds
  ``cls(**kwargs)`` and calls ``load_state_dict``. The arguments are ``model_init_kwargs`` when
  given, else a LightningModule's ``hparams`` (from ``save_hyperparameters()``). At save time the
  class is built once on the ``meta`` device (no memory, no init cost) to check that the arguments
  rebuild a module with the same parameter names and shapes.

A model saved on a GPU loads on the CPU when no GPU is present; ``load_model`` returns the module
in eval mode. The folder follows MLflow's pytorch flavor layout (``data/model.pth``,
``data/pickle_module_info.txt``, ``flavors.pytorch`` and ``flavors.python_function`` blocks), so
``mlflow.pytorch.load_model`` reads models saved with ``save_mode="model"``, and this module loads
models MLflow saved with its pickle serialization. Our loader never imports the pickle module named
in ``pickle_module_info.txt``.

Security: ``data/model.pth`` and ``data/model_class.pkl`` are pickles, which run code when loaded.
fitscribe unpickles them only after their sha256 matched the one recorded at save time, which
refuses a changed file but cannot vouch for its author: load only models you or a trusted colleague
saved. MLflow-saved folders carry no hashes and are unpickled as they are. The state_dict file
itself is always loaded with ``weights_only=True``. For models from elsewhere prefer ONNX.

>>> info = fitscribe.flavors.pytorch.log_model(module, "model", input_example=x[:3])   # doctest: +SKIP
>>> fitscribe.flavors.pytorch.load_model(info.model_uri)(torch.as_tensor(x))           # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import pickle
import sys
from typing import Any, Callable, Iterator, Mapping, Sequence

from fitscribe.errors import InvalidValueError
from fitscribe.flavors.base import ModelInfo, SavedFlavor
from fitscribe.flavors.environment import INSPECTOR, env_section
from fitscribe.flavors.model import HashingWriter, Model, ModelIntegrityError, python_version
from fitscribe.flavors.signature import ModelSignature

__all__ = ["save_model", "log_model", "load_model", "FLAVOR", "SAVE_MODES"]

SAVE_MODES = ("model", "state_dict")
DATA_DIR = "data"
MODEL_FILE = "model.pth"
STATE_DICT_FILE = "state_dict.pth"
CLASS_FILE = "model_class.pkl"
PICKLE_MODULE_INFO_FILE = "pickle_module_info.txt"
PT2_FILE = "model.pt2"  # MLflow 3's default pytorch format (torch.export.save)
# What MLflow's loader imports to unpickle data/model.pth (a cloudpickle alias); we never import it.
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
_LIGHTNING = {"lightning": "lightning", "pytorch_lightning": "pytorch-lightning"}


def _is_module(model: Any) -> bool:
    """True when ``torch.nn.Module`` is in the class hierarchy (checked without importing torch)."""
    return any(
        getattr(cls, "__module__", "") == "torch.nn.modules.module" and cls.__qualname__ == "Module"
        for cls in type(model).__mro__
    )


def _lightning_distribution(model: Any) -> str | None:
    """The distribution providing the model's LightningModule base class, or None."""
    for cls in type(model).__mro__:
        top = (getattr(cls, "__module__", "") or "").split(".")[0]
        if cls.__qualname__ == "LightningModule" and top in _LIGHTNING:
            return _LIGHTNING[top]
    return None


def _classes(model: Any) -> Iterator[type]:
    """Yield every class in the MRO of the model and of each of its submodules."""
    seen: set[type] = set()
    for sub in model.modules():
        for cls in type(sub).__mro__:
            if cls not in seen:
                seen.add(cls)
                yield cls


def _model_modules(model: Any) -> set[str]:
    modules: set[str] = set()
    for cls in _classes(model):
        modules.add((getattr(cls, "__module__", "") or "").split(".")[0])
    # pytorch_lightning's base classes come partly from lightning_fabric, which the pytorch-lightning
    # wheel ships; the environment module maps that name to "lightning", so leave it to the
    # distribution we add for the LightningModule itself.
    return modules - {"builtins", "__main__", "", "lightning_fabric"}


def _local_modules(classes: Iterator[type]) -> list[Any]:
    """Modules of the given classes that belong to no installed distribution (the user's code)."""
    found: list[Any] = []
    for cls in classes:
        name = getattr(cls, "__module__", "") or ""
        module = sys.modules.get(name)
        top = name.split(".")[0]
        if module is None or name == "__main__" or top in sys.stdlib_module_names:
            continue
        if INSPECTOR.distribution_of(top) is None and module not in found:
            found.append(module)
    return found


def _cloudpickle_by_value(classes: list[type], dump: Callable[[Any], None]) -> None:
    """Run ``dump(cloudpickle)`` with the user's local modules registered to pickle by value."""
    import cloudpickle

    local = _local_modules(iter(classes))
    for module in local:
        cloudpickle.register_pickle_by_value(module)
    try:
        dump(cloudpickle)
    finally:
        for module in local:
            cloudpickle.unregister_pickle_by_value(module)


def _map_location() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "cpu"


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _FlushingWriter(HashingWriter):
    """A :class:`HashingWriter` with the ``flush`` that ``torch.save`` calls on file objects."""

    def __init__(self, fh: Any) -> None:
        super().__init__(fh)
        self._file = fh

    def flush(self) -> None:
        """Flush the wrapped file."""
        self._file.flush()


def _write(data: str, name: str, hashes: dict[str, str], dump: Callable[[Any], Any]) -> None:
    """Write ``data/<name>`` with ``dump(file)``, recording its sha256 as it is written."""
    with open(os.path.join(data, name), "wb") as fh:
        writer = _FlushingWriter(fh)
        dump(writer)
    hashes[f"{DATA_DIR}/{name}"] = writer.hexdigest()


# --- state_dict mode: checking that the class can be rebuilt --------------------------------------

def _init_kwargs(model: Any, given: Any) -> tuple[dict[str, Any], str]:
    """Return the constructor kwargs for state_dict mode and where they came from."""
    if given is not None:
        if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
            raise InvalidValueError(
                f"model_init_kwargs must be a dict of constructor argument names to values, got {given!r}."
            )
        return dict(given), "model_init_kwargs"
    hparams = getattr(model, "hparams", None) if _lightning_distribution(model) else None
    if hparams:
        return dict(hparams), "hparams"
    return {}, "none"


def _check_signature(cls: type, kwargs: dict[str, Any], source: str) -> None:
    try:
        params = inspect.signature(cls)
    except (TypeError, ValueError):  # no introspectable signature: the meta-device build decides
        return
    try:
        params.bind(**kwargs)
    except TypeError as exc:
        have = f"hparams {sorted(kwargs)}" if source == "hparams" else f"kwargs {sorted(kwargs)}"
        raise InvalidValueError(
            f"save_mode='state_dict' rebuilds the model on load as {cls.__qualname__}(**kwargs), but "
            f"{cls.__qualname__}{params} cannot be called with the {have}: {exc}. Pass "
            "model_init_kwargs={...} with its constructor arguments (or call self.save_hyperparameters() "
            "in a LightningModule's __init__), or use save_mode='model'."
        ) from exc


def _check_rebuild(cls: type, kwargs: dict[str, Any], state: Mapping[str, Any]) -> None:
    """Build ``cls(**kwargs)`` on the meta device and compare its state_dict keys and shapes."""
    import torch

    try:
        with torch.device("meta"):
            probe = cls(**kwargs)
        expected = probe.state_dict()
    except Exception:  # a constructor that cannot run on the meta device: load_state_dict checks later
        return
    missing = sorted(set(state) - set(expected))
    extra = sorted(set(expected) - set(state))
    shapes = [
        f"{key}: saved {tuple(value.shape)}, rebuilt {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and isinstance(value, torch.Tensor) and isinstance(expected[key], torch.Tensor)
        and value.shape != expected[key].shape
    ]
    if missing or extra or shapes:
        problems = "; ".join(
            part for part in (
                f"not rebuilt: {missing[:5]}" if missing else "",
                f"unexpected: {extra[:5]}" if extra else "",
                f"shapes differ: {shapes[:5]}" if shapes else "",
            ) if part
        )
        raise InvalidValueError(
            f"save_mode='state_dict': {cls.__qualname__}(**{sorted(kwargs)}) builds a module whose "
            f"state_dict does not match the model's ({problems}). Pass the model's real constructor "
            "arguments as model_init_kwargs={...}, or use save_mode='model'."
        )


# --- the flavor --------------------------------------------------------------------------------

class _PyTorchFlavor:
    name = "pytorch"
    format_version = 1
    frameworks = ("torch",)

    def handles(self, model: Any) -> bool:
        return _is_module(model)

    def executes_code(self, descriptor: Model) -> bool:
        """Every PyTorch layout unpickles something (the module, its class, or pt2's payloads)."""
        return True

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        import torch

        mode = options.get("save_mode", "model")
        if mode not in SAVE_MODES:
            raise InvalidValueError(f"Unknown save_mode {mode!r} for a PyTorch model; use one of {SAVE_MODES}.")
        if not isinstance(model, torch.nn.Module):
            raise InvalidValueError(
                f"The pytorch flavor saves torch.nn.Module objects, got {type(model).__qualname__}."
            )
        if mode == "model" and options.get("model_init_kwargs") is not None:
            raise InvalidValueError(
                "model_init_kwargs is only used with save_mode='state_dict'; drop it or set save_mode='state_dict'."
            )
        data = os.path.join(folder, DATA_DIR)
        os.makedirs(data)
        section: dict[str, Any] = {
            "pytorch_version": str(torch.__version__),
            "model_data": DATA_DIR,
            "code": options.get("code"),
            "save_mode": mode,
            "model_class": _class_name(type(model)),
        }
        sections: dict[str, dict[str, Any]] = {"pytorch": section}
        hashes: dict[str, str] = {}
        if mode == "model":
            section.update(self._save_whole(model, data, hashes))
            sections["python_function"] = {
                "loader_module": "mlflow.pytorch",
                "python_version": python_version(),
                "data": DATA_DIR,
                "pickle_module_name": MLFLOW_PICKLE_MODULE,
                "config": {"device": None},
                "env": env_section(),
            }
        else:
            section.update(self._save_state_dict(model, data, options.get("model_init_kwargs"), hashes))
        distributions = ["torch", "cloudpickle", "numpy"]
        lightning = _lightning_distribution(model)
        if lightning:
            distributions.append(lightning)
        return SavedFlavor(sections, _model_modules(model), distributions, hashes)

    @staticmethod
    def _save_whole(model: Any, data: str, hashes: dict[str, str]) -> dict[str, Any]:
        import torch

        with open(os.path.join(data, PICKLE_MODULE_INFO_FILE), "w", encoding="utf-8") as fh:
            fh.write(MLFLOW_PICKLE_MODULE)  # no newline: MLflow imports the file's exact content
        if isinstance(model, torch.jit.ScriptModule):
            _write(data, MODEL_FILE, hashes, lambda fh: torch.jit.save(model, fh))
            return {"model_file": f"{DATA_DIR}/{MODEL_FILE}", "serialization": "torchscript"}
        _cloudpickle_by_value(
            list(_classes(model)),
            lambda cp: _write(
                data, MODEL_FILE, hashes,
                lambda fh: torch.save(model, fh, pickle_module=cp, pickle_protocol=pickle.DEFAULT_PROTOCOL),
            ),
        )
        return {"model_file": f"{DATA_DIR}/{MODEL_FILE}", "serialization": "cloudpickle"}

    @staticmethod
    def _save_state_dict(model: Any, data: str, given: Any, hashes: dict[str, str]) -> dict[str, Any]:
        import torch

        if isinstance(model, torch.jit.ScriptModule):
            raise InvalidValueError(
                "A torch.jit.ScriptModule cannot be rebuilt from its class; save it with save_mode='model'."
            )
        cls = type(model)
        kwargs, source = _init_kwargs(model, given)
        _check_signature(cls, kwargs, source)
        state = model.state_dict()
        _check_rebuild(cls, kwargs, state)
        _write(data, STATE_DICT_FILE, hashes, lambda fh: torch.save(state, fh))
        saved = {"class": cls, "init_kwargs": kwargs}
        _cloudpickle_by_value(
            list(cls.__mro__),
            lambda cp: _write(
                data, CLASS_FILE, hashes, lambda fh: cp.dump(saved, fh, protocol=pickle.DEFAULT_PROTOCOL)
            ),
        )
        return {
            "state_dict": f"{DATA_DIR}/{STATE_DICT_FILE}",
            "class_file": f"{DATA_DIR}/{CLASS_FILE}",
            "init_kwargs_from": source,
        }

    def example_output(self, model: Any, example: Any) -> Any:
        was_training = bool(getattr(model, "training", False))
        try:
            return _predict(model, example)
        except Exception:  # signature inference is best effort: an example the model rejects
            return None
        finally:
            model.train(was_training)

    def load(self, folder: str, descriptor: Model) -> Any:
        """Return the saved module in eval mode (called after ``open_model`` checked the sha256s)."""
        section = descriptor.flavors.get("pytorch")
        if section is None:
            raise InvalidValueError(
                f"The model at {folder!r} has no 'pytorch' flavor block; load it with the flavor it was saved with "
                "(see its MLmodel file) or with fitscribe.flavors.pyfunc.load_model."
            )
        ours = descriptor.flavor_name == self.name
        if ours and section.get("save_mode") == "state_dict":
            model = _load_state_dict(folder, descriptor, section)
        elif ours:
            model = _load_whole(folder, descriptor, str(section.get("model_file", f"{DATA_DIR}/{MODEL_FILE}")),
                                section.get("serialization"))
        else:
            model = _load_mlflow(folder, str(section.get("model_data", DATA_DIR)))
        _eval(model)
        return model

    def predictor(self, native: Any, folder: str, descriptor: Model) -> Callable[..., Any]:
        def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
            if params:
                raise InvalidValueError(
                    f"PyTorch models take no inference params; got {sorted(params)}. Call predict(data) only."
                )
            return _predict(native, data)

        return predict


def _recorded(folder: str, descriptor: Model, rel: str) -> str:
    """Return the path of one of our pickles, refusing it unless open_model verified its sha256."""
    files = descriptor.fitscribe.get("files")
    if not isinstance(files, dict) or rel not in files:
        raise ModelIntegrityError(
            f"The model at {folder!r} records no sha256 for {rel!r}, so fitscribe will not unpickle it. "
            "Save the model again with fitscribe."
        )
    return os.path.join(folder, *rel.split("/"))


def _load_whole(folder: str, descriptor: Model, rel: str, serialization: Any) -> Any:
    import torch

    path = _recorded(folder, descriptor, rel)
    if serialization == "torchscript":
        return torch.jit.load(path, map_location=_map_location())
    return torch.load(path, map_location=_map_location(), pickle_module=pickle, weights_only=False)


def _load_state_dict(folder: str, descriptor: Model, section: dict[str, Any]) -> Any:
    import torch

    with open(_recorded(folder, descriptor, str(section.get("class_file", f"{DATA_DIR}/{CLASS_FILE}"))), "rb") as fh:
        saved = pickle.load(fh)
    cls, kwargs = saved["class"], saved["init_kwargs"]
    state_path = _recorded(folder, descriptor, str(section.get("state_dict", f"{DATA_DIR}/{STATE_DICT_FILE}")))
    state = torch.load(state_path, map_location=_map_location(), weights_only=True)
    model = cls(**kwargs)
    model.load_state_dict(state)
    return model


def _load_mlflow(folder: str, data: str) -> Any:
    """Load a folder saved by ``mlflow.pytorch``, pickle or pt2 (torch.export), never importing mlflow."""
    import torch

    base = os.path.join(folder, *data.split("/"))
    path = os.path.join(base, MODEL_FILE)
    if not os.path.isfile(path):
        exported = os.path.join(base, PT2_FILE)
        if os.path.isfile(exported):  # MLflow 3's default: a torch.export program
            return torch.export.load(exported).module()
        raise InvalidValueError(f"The PyTorch model at {folder!r} has no {data}/{MODEL_FILE} or {data}/{PT2_FILE} file.")
    return torch.load(path, map_location=_map_location(), pickle_module=pickle, weights_only=False)


def _as_tensor(model: Any, data: Any) -> Any:
    """Convert a DataFrame, Series, ndarray, list or tensor into a tensor of the model's dtype and device."""
    import numpy as np
    import torch

    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    if isinstance(data, dict):
        if len(data) != 1:
            raise InvalidValueError(
                f"A PyTorch model takes one input tensor, got a dict with keys {sorted(data)}; "
                "pass an array or a DataFrame."
            )
        data = next(iter(data.values()))
    if isinstance(data, torch.Tensor):
        return data.to(device=device, dtype=dtype)
    if hasattr(data, "to_numpy"):  # pandas DataFrame or Series
        data = data.to_numpy()
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise InvalidValueError(
            f"PyTorch models take numeric input; got values of dtype {array.dtype}. Convert them to numbers first."
        )
    # C order: a DataFrame's values come out column-major, and torch's kernels then sum in another order.
    return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)


def _to_numpy(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, dict):
        return {key: _to_numpy(value) for key, value in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(_to_numpy(value) for value in output)
    return output


def _predict(model: Any, data: Any) -> Any:
    import torch

    _eval(model)
    with torch.no_grad():
        return _to_numpy(model(_as_tensor(model, data)))


def _eval(model: Any) -> None:
    """Switch to eval mode; a torch.export program (MLflow's pt2) has no modes and refuses the call."""
    try:
        model.eval()
    except NotImplementedError:
        pass


FLAVOR = _PyTorchFlavor()


def save_model(
    pytorch_model: Any,
    path: str,
    save_mode: str = "model",
    model_init_kwargs: dict[str, Any] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
) -> Model:
    """Save a ``torch.nn.Module`` (a LightningModule too) into a new folder.

    Args:
        pytorch_model: The module.
        path: A folder that does not exist yet.
        save_mode: ``"model"`` (default; the whole module, cloudpickled) or ``"state_dict"`` (the
            weights plus the class and its constructor arguments).
        model_init_kwargs: With ``save_mode="state_dict"``: the constructor arguments that rebuild
            the module; by default a LightningModule's ``hparams``, else none.
        signature: A ModelSignature; None infers it from ``input_example``; False stores none.
        input_example: A few input rows (ndarray or DataFrame), saved as ``input_example.json``.
        pip_requirements: Replace the inferred requirements.
        extra_pip_requirements: Add to the inferred requirements.
        metadata: A free-form dict stored in ``MLmodel``.
        code_paths: Local code the model needs, copied into ``code/``.

    Returns:
        The saved ``MLmodel`` descriptor.

    Raises:
        InvalidValueError: ``save_mode`` is unknown, or in state_dict mode the class cannot be
            rebuilt from the constructor arguments.
    """
    from fitscribe.flavors.saving import save_model as _save

    return _save(
        pytorch_model, path, flavor=FLAVOR, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
        metadata=metadata, code_paths=code_paths, save_mode=save_mode, model_init_kwargs=model_init_kwargs,
    )


def log_model(
    pytorch_model: Any,
    name: str = "model",
    save_mode: str = "model",
    model_init_kwargs: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Log a PyTorch or Lightning module into the active run (or a new one); see :func:`save_model`.

    Returns:
        ModelInfo whose ``model_uri`` (``runs:/<run_id>/<name>``) loads the model back.
    """
    from fitscribe.flavors.saving import log_model as _log

    return _log(
        pytorch_model, name, flavor=FLAVOR, registered_model_name=registered_model_name, run_id=run_id,
        signature=signature, input_example=input_example, pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements, metadata=metadata, code_paths=code_paths,
        save_mode=save_mode, model_init_kwargs=model_init_kwargs,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load a PyTorch model (saved by fitscribe, or by MLflow with pickle) as an nn.Module in eval mode.

    The module is mapped to the CPU when no GPU is present.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A model file changed since it was saved.
        InvalidValueError: The model is of another flavor.
    """
    from fitscribe.flavors.loading import load_native

    return load_native(model_uri, "pytorch", dst_path)
