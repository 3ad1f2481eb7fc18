"""PyTorch Lightning autologging: every ``Trainer.fit`` records one run.

``Trainer.fit`` is patched in both namespaces, ``lightning.pytorch`` and ``pytorch_lightning``,
when the module defining ``Trainer`` is imported. For the duration of one fit, a callback of ours
is added to ``trainer.callbacks`` and removed afterwards: your list ends as it would have without
autolog. The callback is exception-safe (its errors are recorded in the run's report and never
reach training; ``FITSCRIBE_STRICT=1`` re-raises them) and only global rank zero logs.

What a fit records (names as MLflow's, so dashboards port over):

- params: ``epochs``, ``optimizer_name`` and the first optimizer's ``defaults`` (``lr``,
  ``betas``...); further optimizers as ``optimizer_1_name``, ``optimizer_1_lr``...; the
  ``save_hyperparameters()`` values of the module and datamodule (nested dicts flattened with
  dots: ``optim.lr``); EarlyStopping's ``monitor``, ``mode``, ``patience``, ``min_delta`` (as you
  passed it; Lightning stores it negated for ``mode="min"``) and, after fit, ``stopped_epoch``;
  ModelCheckpoint's ``checkpoint_monitor``, ``checkpoint_mode``, ``checkpoint_save_top_k``,
  ``checkpoint_save_last``, ``checkpoint_save_weights_only``, ``checkpoint_every_n_epochs``.
  EarlyStopping and ModelCheckpoint are recognised from both namespaces.
- epoch metrics, step = epoch index: the training loop's values of ``trainer.callback_metrics``
  at the end of each training epoch (``train_loss``, ``train_loss_epoch``...) and the validation
  loop's after each validation (``val_loss``...; the sanity check is skipped), under Lightning's
  own names. Lightning's ``<name>_step`` keys (the last batch's value of a metric logged with
  ``on_step=True, on_epoch=True``) are step values and never join the epoch family.
- step metrics, only with ``log_every_n_step=N``: each time ``trainer.global_step`` reaches a new
  multiple of N, the metrics logged with ``on_step=True`` go to keys ``step/<name>`` (``step/train_loss``)
  with step = ``global_step``. Epoch series and step series therefore never share a key, so each
  metric has one step axis (MLflow mixes both in ``train_loss_step``-style series).
- results: ``stopped_epoch`` and ``restored_epoch`` (when training stopped early), ``best_score``
  and ``wait_count`` from EarlyStopping; ``best_model_score`` metric and ``best_model_path`` tag
  from ModelCheckpoint.
- artifacts: ``model_summary.txt`` (Lightning's ModelSummary, all depths); the trained module as
  ``model`` (pytorch flavor), with a signature inferred from the module's ``example_input_array``
  or the first rows of the first training batch (a model on the CPU under 256 MB is copied when
  fit ends and saved in the background, so ``fit`` returns without waiting; ``fitscribe.flush()``
  waits for it); with ``log_checkpoint=True`` the best checkpoint
  under ``checkpoints/``; and the ``fitscribe.autolog.report.json`` report.

Values that are not scalars (a tensor of several elements) are skipped with a report entry.
Under ``ddp_spawn`` the workers run a copy of the callback that does nothing: the run gets params
from the main process and the model, but no per-epoch metrics.
"""

from __future__ import annotations

import importlib
import math
import sys
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

from fitscribe.autolog._config import AutologConfig, Integration
from fitscribe.autolog._session import SkippedItem, TrainingCall, call_patched, current_call

__all__ = ["autolog", "INTEGRATION", "STEP_PREFIX"]

STEP_PREFIX = "step/"
"""Prefix of the step-level metric family (``log_every_n_step``)."""

# The module defining Trainer in each namespace, and the namespace's root package.
_TRAINER_MODULES = {
    "lightning.pytorch.trainer.trainer": "lightning.pytorch",
    "pytorch_lightning.trainer.trainer": "pytorch_lightning",
}
_ROOTS = tuple(_TRAINER_MODULES.values())
_EXAMPLE_ROWS = 5
_MAX_COPIED_MODEL_BYTES = 256 * 2**20  # larger models (or any off the CPU) are saved before fit returns
_CHECKPOINT_SETTINGS = ("monitor", "mode", "save_top_k", "save_last", "save_weights_only", "every_n_epochs")


class LightningIntegration(Integration):
    """Patches ``Trainer.fit`` of ``lightning.pytorch`` and ``pytorch_lightning``."""

    name = "lightning"
    import_name = "lightning"
    extra_import_names = ("pytorch_lightning",)
    tested_versions = ("2.4.0", "2.6.6")
    distribution = "lightning"
    defaults = {"log_every_n_epoch": 1, "log_every_n_step": None, "log_checkpoint": False}

    def __init__(self) -> None:
        super().__init__()
        self._callback_classes: dict[str, type] = {}

    def configure(self, config: AutologConfig, options: dict[str, Any]) -> AutologConfig:
        """Validate the Lightning options (positive intervals, a boolean ``log_checkpoint``)."""
        from fitscribe.errors import InvalidValueError

        merged = super().configure(config, options)
        for key, allow_none in (("log_every_n_epoch", False), ("log_every_n_step", True)):
            value = merged.options[key]
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                allowed = "None or an integer >= 1" if allow_none else "an integer >= 1"
                raise InvalidValueError(f"{key} must be {allowed}, got {value!r}.")
        if not isinstance(merged.options["log_checkpoint"], bool):
            raise InvalidValueError(f"log_checkpoint must be True or False, got {merged.options['log_checkpoint']!r}.")
        return merged

    def patch(self, module: ModuleType) -> None:
        """Patch ``Trainer.fit`` once the module defining ``Trainer`` has been imported."""
        root = _TRAINER_MODULES.get(module.__name__)
        trainer = getattr(module, "Trainer", None) if root is not None else None
        if isinstance(trainer, type):
            self.patches.patch(trainer, "fit", lambda original: self._wrapper(original, root))

    def _wrapper(self, original: Callable[..., Any], root: str) -> Callable[..., Any]:
        integration = self

        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if current_call() is not None or getattr(self, "global_rank", 0) != 0:
                return original(self, *args, **kwargs)
            session = _Fit(integration, root, original)
            return call_patched(integration, session.run, self, (self, *args), kwargs, session.before, session.after)

        return fit

    def callback_class(self, root: str) -> type:
        """Return our Callback subclass for the namespace ``root``, defined on first use."""
        if root not in self._callback_classes:
            base = importlib.import_module(f"{root}.callbacks").Callback
            self._callback_classes[root] = _define_callback(base)
        return self._callback_classes[root]


def _define_callback(base: type) -> type:
    """Define the callback on Lightning's ``Callback`` class of one namespace.

    Each hook hands over to :meth:`_Fit.dispatch`, which contains errors. Pickled (``ddp_spawn``
    sends the trainer to its workers) it becomes a plain, inert ``Callback``.
    """

    class FitscribeCallback(base):  # type: ignore[misc, valid-type]
        """fitscribe's autolog callback; present in ``trainer.callbacks`` only during ``fit``."""

        def __init__(self, fit: "_Fit") -> None:
            super().__init__()
            self._fit = fit

        def __reduce__(self) -> tuple[Any, tuple[()]]:
            return (base, ())

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self._fit.dispatch("on_train_start", trainer, pl_module)

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if self._fit.wants_example:
                self._fit.dispatch("on_train_batch_start", trainer, batch)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            every = self._fit.step_every
            if every is not None and trainer.global_step // every > self._fit.last_step_block:
                self._fit.dispatch("on_train_batch_end", trainer)

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                self._fit.dispatch("on_validation_end", trainer)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._fit.dispatch("on_train_epoch_end", trainer)

    return FitscribeCallback


class _Fit:
    """One autologged ``fit``: the callback's state and what to log before, during and after."""

    def __init__(self, integration: LightningIntegration, root: str, original: Callable[..., Any]) -> None:
        self.integration = integration
        self.root = root
        self.original = original
        self.call: TrainingCall | None = None
        self.callback: Any = None
        self.broken: set[str] = set()
        self.reported: set[str] = set()  # non-scalar keys already in the report
        self.fallback_noted = False
        self.wants_example = False
        self.example: Any = None
        self.step_every: int | None = None
        self.epoch_every = 1
        self.last_step_block = 0
        self.summary: str | None = None

    # -- around the original ------------------------------------------------------------------

    def before(self, call: TrainingCall) -> None:
        options = call.config.options
        self.call = call
        self.step_every = options["log_every_n_step"]
        self.epoch_every = options["log_every_n_epoch"]
        config = call.config
        self.wants_example = config.log_models and (config.log_input_examples or config.log_model_signatures)
        self.callback = self.integration.callback_class(self.root)(self)

    def run(self, trainer: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the original ``fit`` with our callback in ``trainer.callbacks``, then take it out."""
        callback = self.callback
        if callback is None:
            return self.original(trainer, *args, **kwargs)
        trainer.callbacks.append(callback)
        try:
            return self.original(trainer, *args, **kwargs)
        finally:
            callbacks = trainer.callbacks  # Lightning may have replaced the list during fit
            for index in range(len(callbacks) - 1, -1, -1):
                if callbacks[index] is callback:
                    del callbacks[index]

    def after(self, call: TrainingCall, result: Any) -> None:
        trainer = call.target
        model = trainer.lightning_module
        call.step("early stopping results", lambda: _early_stopping_results(call, trainer))
        call.step("checkpoint results", lambda: _checkpoint_results(call, trainer))
        if call.config.options["log_checkpoint"]:
            call.step("checkpoint file", lambda: _log_checkpoint_file(call, trainer))
        if call.config.log_models:
            snapshot = call.step("model copy", lambda: _small_cpu_copy(model))
            if snapshot is not None:  # saved after fit returns, from our own copy
                call.defer("model", lambda: _log_model(call, snapshot, self.example))
            else:
                call.step("model", lambda: _log_model(call, model, self.example))
        summary = self.summary
        if summary is not None:
            call.defer("model_summary.txt", lambda: _log_text(call, summary, "model_summary.txt"))

    # -- the callback's hooks -----------------------------------------------------------------

    def dispatch(self, hook: str, trainer: Any, *args: Any) -> None:
        """Run ``hook`` on rank zero as a best-effort step; a hook that failed is not run again."""
        call = self.call
        if call is None or hook in self.broken or not getattr(trainer, "is_global_zero", True):
            return
        handler = getattr(self, hook)
        if call.step(f"callback {hook}", lambda: handler(trainer, *args) or True) is None:
            self.broken.add(hook)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        from fitscribe.autolog import _logging as log

        call = self.call
        assert call is not None
        self.last_step_block = trainer.global_step // self.step_every if self.step_every else 0
        params: dict[str, Any] = {"epochs": trainer.max_epochs}
        for what, collect in (
            ("optimizer params", lambda: _optimizer_params(trainer.optimizers)),
            ("early stopping params", lambda: _early_stopping_params(trainer.callbacks)),
            ("checkpoint params", lambda: _checkpoint_params(trainer.callbacks)),
        ):
            params.update(call.step(what, collect) or {})
        hparams = call.step("hparams", lambda: _hparams(pl_module, trainer))
        _merge_hparams(call, params, hparams or {})
        call.step("params", lambda: log.log_params(call, params))
        self.summary = call.step("model summary", lambda: _summary_text(self.root, pl_module))
        if self.wants_example:
            self.example = call.step("input example", lambda: _rows(getattr(pl_module, "example_input_array", None)))
            self.wants_example = self.example is None

    def on_train_batch_start(self, trainer: Any, batch: Any) -> None:
        self.wants_example = False  # first batch only, whatever happens
        first = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
        self.example = _rows(first)
        if self.example is None:
            raise SkippedItem(f"the first training batch is a {type(batch).__name__}, not a tensor or (tensor, ...)")

    def on_train_batch_end(self, trainer: Any) -> None:
        assert self.call is not None and self.step_every is not None
        self.last_step_block = trainer.global_step // self.step_every  # a new multiple of N was reached
        metrics = trainer.callback_metrics
        keys = _loop_keys(trainer, on_step=True)
        if keys is None:  # Lightning's results unreadable: its forked ``_step`` names are step values
            keys = {k[: -len("_step")]: k for k in metrics if k.endswith("_step")}
        values = self.scalars(metrics, keys)
        self.log_metrics({STEP_PREFIX + name: value for name, value in values.items()}, trainer.global_step)

    def on_validation_end(self, trainer: Any) -> None:
        keys = _loop_keys(trainer, on_step=False)
        if keys is not None and self.epoch_due(trainer):
            self.log_metrics(self.scalars(trainer.callback_metrics, keys), trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any) -> None:
        if not self.epoch_due(trainer):
            return
        metrics = trainer.callback_metrics
        keys = _loop_keys(trainer, on_step=False)
        if keys is None:  # MLflow's way: everything but the step values, at the end of the epoch
            assert self.call is not None
            if not self.fallback_noted:
                self.fallback_noted = True
                self.call.notes.append("Lightning's metric results were unreadable: epoch metrics taken from "
                                       "trainer.callback_metrics at the end of each training epoch")
            keys = {k: k for k in metrics if not k.endswith("_step")}
        self.log_metrics(self.scalars(metrics, keys), trainer.current_epoch)

    # -- helpers ------------------------------------------------------------------------------

    def epoch_due(self, trainer: Any) -> bool:
        return (trainer.current_epoch + 1) % self.epoch_every == 0

    def scalars(self, metrics: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, float]:
        """Return ``{name: float}`` for ``keys`` (name -> callback_metrics key); report non-scalars once."""
        assert self.call is not None
        out: dict[str, float] = {}
        for name, key in keys.items():
            if key not in metrics:
                continue
            value = _scalar(metrics[key])
            if value is None:
                if key not in self.reported:
                    self.reported.add(key)
                    shape = tuple(getattr(metrics[key], "shape", ()))
                    self.call.skip(f"metric {key!r}", f"not a scalar (type {type(metrics[key]).__name__}, shape {shape})")
                continue
            out[name] = value
        return out

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from fitscribe.autolog import _logging as log

        if not values:
            return
        assert self.call is not None
        log.log_metrics(self.call, values, step=step)
        logged = self.call.logged.get("metrics")
        if logged is not None:  # one entry per name in the report, not one per epoch
            self.call.logged["metrics"] = list(dict.fromkeys(logged))


# --- reading Lightning's state ------------------------------------------------------------------

def _loop_keys(trainer: Any, on_step: bool) -> dict[str, str] | None:
    """Return ``{name: callback_metrics key}`` for what the running loop logged, or None.

    Reads Lightning's private result collection (``trainer._results``): it is what tells training
    values from validation values and step values from epoch values. None if that fails.
    """
    try:
        results = trainer._results
        keys: dict[str, str] = {}
        for _, metric in results.valid_items():
            meta = metric.meta
            name, forked = results._forked_name(metric, on_step)
            if on_step:
                if meta.on_step:
                    keys[name] = name
            elif meta.on_epoch:
                keys[name] = name
                keys[forked] = forked
            else:  # on_step only: its last batch's value, as MLflow logs it per epoch
                keys[name] = name
        return keys
    except Exception:  # a Lightning version without these internals: callers fall back
        return None


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    numel = getattr(value, "numel", None)
    if numel is not None:
        return float(value.item()) if numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rows(value: Any) -> Any:
    """Return a numpy copy of the first rows of a tensor, or None for anything else."""
    if value is None or not hasattr(value, "detach") or getattr(value, "ndim", 0) < 1:
        return None
    rows = value[:_EXAMPLE_ROWS].detach().cpu()
    if rows.dtype.is_floating_point and rows.dtype.itemsize < 4:  # bfloat16/half: numpy has no bfloat16
        rows = rows.float()
    return rows.numpy().copy()


def _of_kind(callbacks: Iterable[Any], module: str, name: str) -> list[Any]:
    """Return the callbacks that are instances of ``<root>.callbacks.<module>.<name>`` in either namespace.

    Only namespaces already imported are looked at: nothing is imported here.
    """
    classes = tuple(
        cls for root in _ROOTS
        if isinstance(cls := getattr(sys.modules.get(f"{root}.callbacks.{module}"), name, None), type)
    )
    return [cb for cb in callbacks if classes and isinstance(cb, classes)]


def _optimizer_params(optimizers: list[Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for index, optimizer in enumerate(optimizers):
        optimizer = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer wrapper
        prefix = "" if index == 0 else f"optimizer_{index}_"
        params[f"optimizer_{index}_name" if index else "optimizer_name"] = type(optimizer).__name__
        for key, value in dict(getattr(optimizer, "defaults", {})).items():
            params[f"{prefix}{key}"] = value
    return params


def _early_stopping_params(callbacks: list[Any]) -> dict[str, Any]:
    found = _of_kind(callbacks, "early_stopping", "EarlyStopping")
    if not found:
        return {}
    stop = found[0]
    return {"monitor": stop.monitor, "mode": stop.mode, "patience": stop.patience, "min_delta": abs(stop.min_delta)}


def _checkpoint_params(callbacks: list[Any]) -> dict[str, Any]:
    found = _of_kind(callbacks, "model_checkpoint", "ModelCheckpoint")
    if not found:
        return {}
    return {f"checkpoint_{key}": getattr(found[0], key, None) for key in _CHECKPOINT_SETTINGS}


def _hparams(model: Any, trainer: Any) -> dict[str, Any]:
    """The ``save_hyperparameters()`` values of the module and the datamodule, flattened with dots."""
    merged: dict[str, Any] = {}
    for owner in (model, getattr(trainer, "datamodule", None)):
        hparams = getattr(owner, "hparams", None) if owner is not None else None
        if hparams:
            merged.update(_flatten(hparams))
    return merged


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, Mapping) and hasattr(values, "__dict__") and type(values).__name__ == "Namespace":
        values = vars(values)
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        nested = isinstance(value, Mapping) or type(value).__name__ == "Namespace"
        if nested and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _merge_hparams(call: TrainingCall, params: dict[str, Any], hparams: Mapping[str, Any]) -> None:
    """Add hparams to ``params``; a name already taken by another value keeps the first one."""
    for key, value in hparams.items():
        if key in params and str(params[key]) != str(value):
            call.skip(f"hparam {key!r}", f"the param {key}={params[key]!r} (from the trainer) was logged instead of {value!r}")
        else:
            params[key] = value


def _summary_text(root: str, model: Any) -> str:
    summary = importlib.import_module(f"{root}.utilities.model_summary").ModelSummary
    return str(summary(model, max_depth=-1))


# --- after fit ----------------------------------------------------------------------------------

def _early_stopping_results(call: TrainingCall, trainer: Any) -> None:
    from fitscribe.autolog import _logging as log

    found = _of_kind(trainer.callbacks, "early_stopping", "EarlyStopping")
    if not found:
        return
    stop = found[0]
    log.log_params(call, {"stopped_epoch": stop.stopped_epoch})
    metrics: dict[str, Any] = {"wait_count": stop.wait_count}
    if stop.stopped_epoch > 0:
        metrics["stopped_epoch"] = stop.stopped_epoch
        metrics["restored_epoch"] = stop.stopped_epoch - max(1, stop.patience)  # as MLflow computes it
    best = _scalar(stop.best_score)
    if best is not None and math.isfinite(best):
        metrics["best_score"] = best
    else:
        call.skip("metric 'best_score'", f"EarlyStopping never saw a finite value of {stop.monitor!r}")
    log.log_metrics(call, metrics)


def _checkpoint_results(call: TrainingCall, trainer: Any) -> None:
    from fitscribe.autolog import _logging as log

    found = _of_kind(trainer.callbacks, "model_checkpoint", "ModelCheckpoint")
    if not found:
        return
    checkpoint = found[0]
    if checkpoint.best_model_path:
        log.set_tags(call, {"best_model_path": checkpoint.best_model_path})
    score = checkpoint.best_model_score
    if score is not None and (value := _scalar(score)) is not None and math.isfinite(value):
        log.log_metrics(call, {"best_model_score": value})


def _log_checkpoint_file(call: TrainingCall, trainer: Any) -> None:
    import os

    found = _of_kind(trainer.callbacks, "model_checkpoint", "ModelCheckpoint")
    path = found[0].best_model_path if found else ""
    if not path or not os.path.isfile(path):
        raise SkippedItem("no ModelCheckpoint saved a best checkpoint file in this fit")
    assert call.run_id is not None
    call.client.log_artifact(call.run_id, path, "checkpoints")
    call.record("artifacts", f"checkpoints/{os.path.basename(path)}")


def _small_cpu_copy(model: Any) -> Any:
    """Return a deep copy of a model whose tensors are all on the CPU and small, else None.

    The copy is saved on the background finisher, so ``fit`` returns without waiting for it.
    A LightningModule's copy leaves the trainer behind (its ``__getstate__`` drops it).
    """
    import copy

    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type != "cpu" for t in tensors):
        return None
    if sum(t.numel() * t.element_size() for t in tensors) > _MAX_COPIED_MODEL_BYTES:
        return None
    return copy.deepcopy(model)


def _log_model(call: TrainingCall, model: Any, example: Any) -> None:
    from fitscribe.flavors import pytorch as flavor
    from fitscribe.flavors.signature import infer_signature

    config = call.config
    signature: Any = False
    if example is None:
        if config.log_input_examples or config.log_model_signatures:
            call.notes.append("model logged without signature or input example: no example_input_array and "
                              "the first training batch was not a tensor or (tensor, ...)")
    elif config.log_input_examples:
        signature = None if config.log_model_signatures else False  # None: inferred from the example
    elif config.log_model_signatures:
        signature = infer_signature(example, flavor.FLAVOR.example_output(model, example))
    from fitscribe.flavors import saving

    # Through the run's own client, not the fluent API's current store: this usually runs on the
    # background finisher, after the user's script may have called set_tracking_uri.
    assert call.run_id is not None
    options = {"signature": signature, "input_example": example if config.log_input_examples else None}
    info = saving._log_into(call.client, call.run_id, model, "model", flavor.FLAVOR, config.registered_model_name, options)
    call.record("models", info.model_uri)


def _log_text(call: TrainingCall, text: str, name: str) -> None:
    assert call.run_id is not None
    call.client.log_text(call.run_id, text, name)
    call.record("artifacts", name)


INTEGRATION = LightningIntegration()


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_datasets: bool = True,
    log_training_metrics: bool = True,
    log_plots: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    log_every_n_epoch: int = 1,
    log_every_n_step: int | None = None,
    log_checkpoint: bool = False,
) -> None:
    """Record PyTorch Lightning training; these settings win over ``fitscribe.autolog()``'s.

    Args:
        log_models: Log the trained LightningModule as ``model`` (pytorch flavor).
        log_input_examples: Save the first 5 rows of the first training batch (or of the module's
            ``example_input_array``) with the model.
        log_model_signatures: Store the model's signature, inferred from those rows.
        log_datasets: Accepted for a uniform API; Lightning runs record no datasets.
        log_training_metrics: Accepted for a uniform API; metrics come from ``self.log`` calls.
        log_plots: Accepted for a uniform API; Lightning runs make no plots.
        disable: Switch off and restore ``Trainer.fit``.
        exclusive: Never log into a run you started.
        silent: Emit no warnings from autolog itself.
        extra_tags: Tags for every run autolog opens.
        registered_model_name: Register each logged model as a new version of this name.
        log_every_n_epoch: Log epoch metrics every N epochs.
        log_every_n_step: Also log step metrics as ``step/<name>`` each time ``global_step``
            reaches a multiple of N (None: no step metrics).
        log_checkpoint: Upload ModelCheckpoint's best checkpoint file under ``checkpoints/``.

    Raises:
        InvalidValueError: An interval is not a positive integer.
    """
    INTEGRATION.apply(locals())
