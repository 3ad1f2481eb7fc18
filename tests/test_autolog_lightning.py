"""Lightning autolog against real Trainers: what a fit records, read back through the Client."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from _require import require_module

torch = require_module("torch")
pl = require_module("lightning.pytorch")

import fitscribe  # noqa: E402
import fitscribe.flavors.pytorch  # noqa: E402
from fitscribe.errors import InvalidValueError  # noqa: E402

# Lightning 2.6 on torch 2.13 warns from its own pytree helper during fit; nothing else is filtered.
LIGHTNING_WARNINGS = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def _module_class(L: Any) -> type:
    """A 2-layer MLP LightningModule on the namespace ``L`` (lightning.pytorch or pytorch_lightning)."""

    class MLP(L.LightningModule):
        def __init__(self, n_in: int = 4, hidden: int = 8, lr: float = 0.05, extra: dict | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
            self.fail_at_batch: int | None = None

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if batch_idx == self.fail_at_batch:
                raise ValueError("bad batch in training_step")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    return MLP


MLP = _module_class(pl)


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    fitscribe.autolog(disable=True)
    fitscribe.autolog.lightning.autolog(disable=True)
    fitscribe.flush()


def _loaders() -> tuple[Any, Any]:
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    return (torch.utils.data.DataLoader(data, batch_size=16), torch.utils.data.DataLoader(data, batch_size=16))


def _trainer(L: Any = pl, **overrides: Any) -> Any:
    options = dict(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu")
    return L.Trainer(**{**options, **overrides})


def _runs() -> list[fitscribe.Run]:
    return fitscribe.search_runs(output_format="list", order_by=["attributes.start_time ASC"])


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in fitscribe.get_metric_history(run_id, key)]


def _report(run_id: str) -> dict:
    with open(fitscribe.download_artifacts(run_id, "fitscribe.autolog.report.json")) as fh:
        return json.load(fh)


class Probe(pl.Callback):
    """Notes which extra callbacks the trainer holds during fit, and what ours becomes once pickled."""

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        ours = [c for c in trainer.callbacks if c is not self]
        self.seen = [type(c).__name__ for c in ours]
        self.pickled_as = type(pickle.loads(pickle.dumps(ours[0])))


@LIGHTNING_WARNINGS
def test_fit_records_epoch_metrics_params_hparams_summary_and_model() -> None:
    train, val = _loaders()
    model = MLP(extra={"act": "relu", "sched": {"gamma": 0.5}})
    fitscribe.autolog()
    probe = Probe()
    trainer = _trainer(callbacks=[probe])
    before = list(trainer.callbacks)
    trainer.fit(model, train, val)
    assert trainer.callbacks == before  # our callback came and went
    assert probe.seen == ["FitscribeCallback"] and probe.pickled_as is pl.Callback  # inert once pickled
    (run,) = _runs()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.autologging"] == "lightning"
    params = run.data.params
    assert params["epochs"] == "2" and params["optimizer_name"] == "Adam"
    assert params["lr"] == "0.05" and params["betas"] == "(0.9, 0.999)" and params["weight_decay"] == "0"
    assert params["n_in"] == "4" and params["hidden"] == "8"
    assert params["extra.act"] == "relu" and params["extra.sched.gamma"] == "0.5"
    assert set(run.data.metrics) == {"train_loss", "train_loss_epoch", "val_loss"}
    for key in ("train_loss", "train_loss_epoch", "val_loss"):
        assert [step for step, _ in _history(run_id, key)] == [0, 1]
    assert _history(run_id, "train_loss_epoch")[-1][1] == pytest.approx(trainer.callback_metrics["train_loss_epoch"].item())
    assert _history(run_id, "val_loss")[-1][1] == pytest.approx(trainer.callback_metrics["val_loss"].item())
    artifacts = {f.path for f in fitscribe.list_artifacts(run_id)}
    assert {"model", "model_summary.txt", "fitscribe.autolog.report.json"} <= artifacts
    summary = Path(fitscribe.download_artifacts(run_id, "model_summary.txt")).read_text()
    assert "net.0" in summary and "Trainable params" in summary
    x = torch.randn(5, 4)
    loaded = fitscribe.flavors.pytorch.load_model(f"runs:/{run_id}/model")
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    signature = fitscribe.flavors.pyfunc.load_model(f"runs:/{run_id}/model").signature
    assert signature.to_dict()["inputs"] == '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
    report = _report(run_id)
    assert report["skipped"] == [] and report["notes"] == []  # nothing fell back to callback_metrics alone


@LIGHTNING_WARNINGS
def test_models_too_large_to_copy_are_logged_before_fit_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    from fitscribe.autolog import lightning as autolog_lightning

    train, val = _loaders()
    model = MLP()
    fitscribe.autolog()
    monkeypatch.setattr(autolog_lightning, "_MAX_COPIED_MODEL_BYTES", 0)
    _trainer(max_epochs=1).fit(model, train, val)
    (run,) = fitscribe.search_runs(output_format="list")  # no flush: nothing may be left for the background
    assert "model" in {f.path for f in fitscribe.list_artifacts(run.info.run_id)}
    loaded = fitscribe.flavors.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    x = torch.randn(3, 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@LIGHTNING_WARNINGS
def test_step_metrics_use_their_own_keys_and_global_step() -> None:
    train, val = _loaders()
    fitscribe.autolog.lightning.autolog(log_models=False, log_every_n_step=3)
    trainer = _trainer()
    trainer.fit(MLP(), train, val)  # 4 batches per epoch: global steps 1..8
    (run,) = _runs()
    run_id = run.info.run_id
    assert set(run.data.metrics) == {"train_loss", "train_loss_epoch", "val_loss", "step/train_loss"}
    assert [step for step, _ in _history(run_id, "step/train_loss")] == [3, 6]
    assert [step for step, _ in _history(run_id, "train_loss")] == [0, 1]


@LIGHTNING_WARNINGS
def test_early_stopping_from_lightning_pytorch_is_recognised() -> None:
    train, val = _loaders()
    fitscribe.autolog(log_models=False)
    stop = pl.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0)
    trainer = _trainer(max_epochs=5, callbacks=[stop])
    trainer.fit(MLP(), train, val)  # nothing improves by 10: stops after epoch 1
    (run,) = _runs()
    assert stop.stopped_epoch == 1
    params = run.data.params
    assert (params["monitor"], params["mode"], params["patience"], params["min_delta"]) == ("val_loss", "min", "1", "10.0")
    assert params["stopped_epoch"] == "1"
    metrics = run.data.metrics
    assert (metrics["stopped_epoch"], metrics["restored_epoch"], metrics["wait_count"]) == (1, 0, 1)
    assert metrics["best_score"] == pytest.approx(_history(run.info.run_id, "val_loss")[0][1])
    assert [s for s, _ in _history(run.info.run_id, "val_loss")] == [0, 1]


@LIGHTNING_WARNINGS
def test_pytorch_lightning_namespace_with_its_early_stopping() -> None:
    L = require_module("pytorch_lightning")
    train, val = _loaders()
    fitscribe.autolog(log_models=False)
    stop = L.callbacks.EarlyStopping(monitor="val_loss", patience=3, mode="min")
    trainer = _trainer(L, callbacks=[stop])
    trainer.fit(_module_class(L)(), train, val)
    (run,) = _runs()
    assert run.data.params["monitor"] == "val_loss" and run.data.params["patience"] == "3"
    assert run.data.params["stopped_epoch"] == "0" and "stopped_epoch" not in run.data.metrics
    assert run.data.metrics["wait_count"] == stop.wait_count
    assert [s for s, _ in _history(run.info.run_id, "train_loss_epoch")] == [0, 1]
    assert trainer.callbacks.count(stop) == 1 and not any("Fitscribe" in type(c).__name__ for c in trainer.callbacks)


@LIGHTNING_WARNINGS
def test_model_checkpoint_settings_results_and_best_file(tmp_path: Path) -> None:
    train, val = _loaders()
    fitscribe.autolog.lightning.autolog(log_models=False, log_checkpoint=True)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val_loss", save_top_k=1)
    trainer = _trainer(enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(MLP(), train, val)
    (run,) = _runs()
    params = run.data.params
    assert (params["checkpoint_monitor"], params["checkpoint_mode"], params["checkpoint_save_top_k"]) == ("val_loss", "min", "1")
    assert run.data.tags["best_model_path"] == checkpoint.best_model_path
    assert run.data.metrics["best_model_score"] == pytest.approx(checkpoint.best_model_score.item())
    name = os.path.basename(checkpoint.best_model_path)
    assert f"checkpoints/{name}" in {f.path for f in fitscribe.list_artifacts(run.info.run_id, "checkpoints")}


class TwoOptimizers(pl.LightningModule):
    """Manual optimization with two optimizers (as in a GAN)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        for opt, layer in zip(self.optimizers(), (self.a, self.b)):
            loss = torch.nn.functional.mse_loss(layer(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        self.log("loss_b", loss)

    def configure_optimizers(self) -> Any:
        return [torch.optim.Adam(self.a.parameters(), lr=0.01), torch.optim.SGD(self.b.parameters(), lr=0.1, momentum=0.9)]


@LIGHTNING_WARNINGS
def test_every_optimizer_is_described() -> None:
    train, _ = _loaders()
    fitscribe.autolog(log_models=False)
    _trainer(max_epochs=1).fit(TwoOptimizers(), train)
    (run,) = _runs()
    params = run.data.params
    assert (params["optimizer_name"], params["lr"]) == ("Adam", "0.01")
    assert (params["optimizer_1_name"], params["optimizer_1_lr"], params["optimizer_1_momentum"]) == ("SGD", "0.1", "0.9")
    assert [s for s, _ in _history(run.info.run_id, "loss_b")] == [0]


@LIGHTNING_WARNINGS
def test_injected_failure_in_our_callback_leaves_training_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FITSCRIBE_STRICT", "0")
    from fitscribe.autolog import lightning as autolog_lightning

    def broken(self: Any, trainer: Any) -> None:
        raise RuntimeError("injected failure")

    train, val = _loaders()
    torch.manual_seed(1)
    bare = MLP()
    _trainer().fit(bare, train, val)
    monkeypatch.setattr(autolog_lightning._Fit, "on_train_epoch_end", broken)
    fitscribe.autolog()
    torch.manual_seed(1)
    model = MLP()
    untrained = {k: v.clone() for k, v in model.state_dict().items()}
    _trainer().fit(model, train, val)
    trained = model.state_dict()
    assert not torch.equal(trained["net.0.weight"], untrained["net.0.weight"])
    assert all(torch.equal(trained[k], v) for k, v in bare.state_dict().items())  # as if autolog were off
    (run,) = _runs()
    assert run.info.status == "FINISHED" and "val_loss" in run.data.metrics and "train_loss" not in run.data.metrics
    skipped = [s for s in _report(run.info.run_id)["skipped"] if "injected failure" in s["reason"]]
    assert skipped == [{"item": "callback on_train_epoch_end", "reason": "RuntimeError: injected failure"}]  # once
    assert "model" in {f.path for f in fitscribe.list_artifacts(run.info.run_id)}


@LIGHTNING_WARNINGS
def test_unreadable_results_fall_back_and_non_scalars_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from fitscribe.autolog import lightning as autolog_lightning

    class Confusion(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            trainer.callback_metrics["confusion"] = torch.eye(2)

    monkeypatch.setattr(autolog_lightning, "_loop_keys", lambda trainer, on_step: None)
    train, val = _loaders()
    fitscribe.autolog(log_models=False)
    _trainer(callbacks=[Confusion()]).fit(MLP(), train, val)
    (run,) = _runs()
    assert set(run.data.metrics) == {"train_loss", "train_loss_epoch", "val_loss"}
    assert [s for s, _ in _history(run.info.run_id, "val_loss")] == [0, 1]
    report = _report(run.info.run_id)
    assert report["skipped"] == [{"item": "metric 'confusion'", "reason": "not a scalar (type Tensor, shape (2, 2))"}]
    assert any("unreadable" in note for note in report["notes"])


@LIGHTNING_WARNINGS
def test_training_step_errors_propagate_and_the_run_ends_failed() -> None:
    train, val = _loaders()
    fitscribe.autolog()
    model = MLP()
    model.fail_at_batch = 2
    trainer = _trainer()
    before = list(trainer.callbacks)
    with pytest.raises(ValueError, match="bad batch in training_step"):
        trainer.fit(model, train, val)
    assert trainer.callbacks == before
    (run,) = _runs()
    assert run.info.status == "FAILED" and fitscribe.active_run() is None


@LIGHTNING_WARNINGS
def test_user_run_gets_the_logging_and_other_ranks_log_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = _loaders()
    fitscribe.autolog(log_models=False)
    with fitscribe.start_run() as run:
        _trainer(max_epochs=1).fit(MLP(), train, val)
        assert fitscribe.get_run(run.info.run_id).info.status == "RUNNING"
    monkeypatch.setenv("RANK", "1")
    _trainer(max_epochs=1).fit(MLP(), train, val)
    (logged,) = _runs()
    assert logged.info.run_id == run.info.run_id and "mlflow.autologging" not in logged.data.tags
    assert logged.data.params["optimizer_name"] == "Adam" and "val_loss" in logged.data.metrics


def test_disable_restores_trainer_fit_in_both_namespaces() -> None:
    L = require_module("pytorch_lightning")
    owners = [pl.Trainer, L.Trainer]
    originals = [owner.__dict__["fit"] for owner in owners]
    fitscribe.autolog()
    assert all(owner.__dict__["fit"] is not original for owner, original in zip(owners, originals))
    assert pl.Trainer.fit.__name__ == "fit" and pl.Trainer.fit.__doc__ == originals[0].__doc__
    fitscribe.autolog(disable=True)
    assert all(owner.__dict__["fit"] is original for owner, original in zip(owners, originals))
    fitscribe.autolog.lightning.autolog()
    fitscribe.autolog.lightning.autolog()  # twice never wraps twice
    from fitscribe.autolog._patch import original_of

    assert original_of(pl.Trainer.__dict__["fit"]) is originals[0]
    fitscribe.autolog.lightning.autolog(disable=True)
    assert pl.Trainer.__dict__["fit"] is originals[0]


def test_options_are_validated() -> None:
    with pytest.raises(InvalidValueError, match="log_every_n_step must be None or an integer >= 1, got 0"):
        fitscribe.autolog.lightning.autolog(log_every_n_step=0)
    with pytest.raises(InvalidValueError, match="log_every_n_epoch must be an integer >= 1"):
        fitscribe.autolog.lightning.autolog(log_every_n_epoch=None)  # type: ignore[arg-type]


def test_autolog_imports_no_framework_and_patches_on_import(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("ignore")
        import fitscribe
        fitscribe.autolog(log_models=False)
        heavy = [m for m in ("torch", "lightning", "pytorch_lightning", "numpy") if m in sys.modules]
        import torch
        import lightning as L
        data = torch.utils.data.TensorDataset(torch.randn(32, 3), torch.randn(32, 1))

        class Tiny(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(3, 1)

            def training_step(self, batch, batch_idx):
                loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
                self.log("train_loss", loss)
                return loss

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, accelerator="cpu")
        trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=16))
        run = fitscribe.last_active_run()
        print(heavy, run.data.tags["mlflow.autologging"], sorted(run.data.metrics))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITSCRIBE_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "[] lightning ['train_loss']"
