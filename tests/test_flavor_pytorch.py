"""The pytorch flavor: plain nn.Modules and Lightning modules, saved whole or as a state_dict."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from _require import require_module
import yaml

torch = require_module("torch")
pl = require_module("lightning.pytorch")

import fitscribe  # noqa: E402
import fitscribe.flavors  # noqa: E402
from fitscribe.errors import InvalidValueError  # noqa: E402
from fitscribe.flavors import pyfunc  # noqa: E402
from fitscribe.flavors import pytorch as fpt  # noqa: E402
from fitscribe.flavors.model import ModelIntegrityError  # noqa: E402

# These tests load model folders they have just saved; tests/test_model_integrity.py checks the
# warning that loading an unverifiable pickle-based folder gives.
pytestmark = pytest.mark.filterwarnings("ignore::fitscribe.flavors.model.UnverifiedModelWarning")

# Lightning 2.6 on torch 2.13 warns from its own pytree helper during fit; nothing else is filtered.
LIGHTNING_WARNINGS = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
TORCHSCRIPT_WARNINGS = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

HELPER_SOURCE = textwrap.dedent(
    """
    import torch


    class TwoLayer(torch.nn.Module):
        def __init__(self, n_in, hidden):
            super().__init__()
            self.first = torch.nn.Linear(n_in, hidden)
            self.second = torch.nn.Linear(hidden, 2)

        def forward(self, x):
            return self.second(torch.tanh(self.first(x)))
    """
)


class Regressor(pl.LightningModule):
    """A tiny Lightning MLP that records its constructor arguments."""

    def __init__(self, n_in: int = 4, hidden: int = 8, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _mlp() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _inputs(rows: int = 6) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)


def _out(model: Any, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()  # type: ignore[no-any-return]


@pytest.fixture
def lightning_model(tmp_path: Path) -> Any:
    """A Regressor(hidden=5) trained for one short epoch on random data, on the CPU."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = Regressor(hidden=5)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=str(tmp_path),
    )
    trainer.fit(model, loader)
    return model


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Any]:
    """A module of user code living in tmp_path (on sys.path only for this test), not an installed package."""
    name = f"fs_pt_helper_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "usercode"
    folder.mkdir()
    (folder / f"{name}.py").write_text(HELPER_SOURCE)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)


def test_user_class_round_trips_in_a_fresh_process(tmp_path: Path, helper: Any) -> None:
    torch.manual_seed(1)
    model = helper.TwoLayer(4, 6)
    x = _inputs()
    fpt.save_model(model, str(tmp_path / "whole"))
    fpt.save_model(model, str(tmp_path / "weights"), save_mode="state_dict", model_init_kwargs={"n_in": 4, "hidden": 6})
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        import fitscribe.flavors.pytorch as fpt
        assert "torch" not in sys.modules, "importing the flavor must not import torch"
        try:
            import {helper.__name__}
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("the helper module must not be importable here")
        import torch
        x = torch.as_tensor(np.load(sys.argv[1]))
        for name in ("whole", "weights"):
            model = fpt.load_model(sys.argv[2] + "/" + name)
            assert not model.training
            assert all(p.device.type == "cpu" for p in model.parameters())
            with torch.no_grad():
                np.save(sys.argv[2] + "/" + name + ".npy", model(x).numpy())
        """
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = _out(model, x)
    assert np.array_equal(np.load(tmp_path / "whole.npy"), expected)
    assert np.array_equal(np.load(tmp_path / "weights.npy"), expected)


def test_model_mode_writes_mlflow_layout(tmp_path: Path) -> None:
    model = _mlp()
    descriptor = fpt.save_model(model, str(tmp_path / "m"), input_example=_inputs(3))
    folder = tmp_path / "m"
    assert (folder / "data" / "model.pth").is_file()
    assert (folder / "data" / "pickle_module_info.txt").read_text() == "mlflow.pytorch.pickle_module"
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    block = mlmodel["flavors"]["pytorch"]
    assert block["model_data"] == "data" and block["pytorch_version"] == torch.__version__
    assert block["save_mode"] == "model" and block["model_class"] == "torch.nn.modules.container.Sequential"
    pyfunc_block = mlmodel["flavors"]["python_function"]
    assert pyfunc_block["loader_module"] == "mlflow.pytorch" and pyfunc_block["data"] == "data"
    assert pyfunc_block["pickle_module_name"] == "mlflow.pytorch.pickle_module"
    assert pyfunc_block["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert descriptor.flavor_name == "pytorch"
    requirements = (folder / "requirements.txt").read_text().splitlines()
    names = [line.split("==")[0] for line in requirements]
    assert {"torch", "cloudpickle", "numpy"} <= set(names) and "lightning" not in names
    torch_pin = next(line for line in requirements if line.startswith("torch=="))
    assert torch_pin.split()[0] == f"torch=={torch.__version__.split('+')[0]}"
    signature = json.loads(mlmodel["signature"]["outputs"])
    assert signature == [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]


def test_model_mode_round_trip_on_cpu_in_eval_mode(tmp_path: Path) -> None:
    model = _mlp()
    model.train()
    fpt.save_model(model, str(tmp_path / "m"))
    assert model.training, "saving must not change the caller's module"
    loaded = fpt.load_model(str(tmp_path / "m"))
    assert isinstance(loaded, torch.nn.Sequential) and not loaded.training
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x = _inputs()
    assert np.array_equal(_out(loaded, x), _out(model, x))


@LIGHTNING_WARNINGS
@pytest.mark.parametrize("save_mode", ["model", "state_dict"])
def test_lightning_module_round_trip_restores_hparams(lightning_model: Any, save_mode: str) -> None:
    x = _inputs()
    with fitscribe.start_run():
        info = fpt.log_model(lightning_model, "model", save_mode=save_mode, input_example=x[:2])
    loaded = fpt.load_model(info.model_uri)
    assert type(loaded).__name__ == "Regressor" and not loaded.training
    assert dict(loaded.hparams) == {"n_in": 4, "hidden": 5, "lr": 0.1}
    assert np.array_equal(_out(loaded, x), _out(lightning_model, x))
    block = info.flavors["pytorch"]
    assert block["save_mode"] == save_mode
    if save_mode == "state_dict":
        assert block["init_kwargs_from"] == "hparams" and "python_function" not in info.flavors
    local = fitscribe.Client().download_artifacts(info.run_id, "model/requirements.txt", ".")
    assert any(line.startswith("lightning==") for line in Path(local).read_text().splitlines())


def test_pytorch_lightning_package_is_recorded(tmp_path: Path) -> None:
    ptl = require_module("pytorch_lightning")

    class Old(ptl.LightningModule):
        def __init__(self, width: int = 3) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, width)

        def forward(self, x: Any) -> Any:
            return self.layer(x)

    model = Old(width=2)
    fpt.save_model(model, str(tmp_path / "m"), save_mode="state_dict")
    names = [line.split("==")[0] for line in (tmp_path / "m" / "requirements.txt").read_text().splitlines()]
    assert "pytorch-lightning" in names and "lightning" not in names
    loaded = fpt.load_model(str(tmp_path / "m"))
    assert dict(loaded.hparams) == {"width": 2}
    assert np.array_equal(_out(loaded, _inputs()), _out(model, _inputs()))


def test_pyfunc_predict_takes_arrays_frames_and_lists(tmp_path: Path) -> None:
    import pandas as pd

    model = _mlp()
    x = _inputs()
    expected = _out(model, x)
    fpt.save_model(model, str(tmp_path / "sig"), input_example=x[:2])
    fpt.save_model(model, str(tmp_path / "nosig"))
    with_sig = pyfunc.load_model(str(tmp_path / "sig"))
    assert with_sig.flavor == "pytorch"
    for data in (x, pd.DataFrame(x.astype(np.float64)), x.tolist()):
        prediction = with_sig.predict(data)
        assert isinstance(prediction, np.ndarray) and prediction.dtype == np.float32
        np.testing.assert_array_equal(prediction, expected)
    without = pyfunc.load_model(str(tmp_path / "nosig"))
    np.testing.assert_array_equal(without.predict(pd.DataFrame(x, columns=list("abcd"))), expected)
    with pytest.raises(InvalidValueError, match="take no inference params"):
        without.predict(x, params={"temperature": 2})
    with pytest.raises(InvalidValueError, match="numeric input"):
        without.predict(np.array([["a", "b", "c", "d"]]))


def test_float64_module_gets_float64_input(tmp_path: Path) -> None:
    model = _mlp().double()
    fpt.save_model(model, str(tmp_path / "m"))
    prediction = pyfunc.load_model(str(tmp_path / "m")).predict(_inputs())
    assert prediction.dtype == np.float64
    np.testing.assert_array_equal(prediction, _out(model, _inputs().astype(np.float64)))


@pytest.mark.parametrize(("save_mode", "target"), [("model", "data/model.pth"), ("state_dict", "data/state_dict.pth")])
def test_corrupted_model_file_is_refused(tmp_path: Path, helper: Any, save_mode: str, target: str) -> None:
    kwargs = {"model_init_kwargs": {"n_in": 4, "hidden": 3}} if save_mode == "state_dict" else {}
    fpt.save_model(helper.TwoLayer(4, 3), str(tmp_path / "m"), save_mode=save_mode, **kwargs)
    path = tmp_path / "m" / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=target):
        fpt.load_model(str(tmp_path / "m"))
    with pytest.raises(ModelIntegrityError, match=target):
        pyfunc.load_model(str(tmp_path / "m"))


def test_state_dict_mode_needs_constructor_arguments(tmp_path: Path, helper: Any) -> None:
    model = helper.TwoLayer(4, 3)
    with pytest.raises(InvalidValueError, match=r"TwoLayer\(\*\*kwargs\).*model_init_kwargs=") as info:
        fpt.save_model(model, str(tmp_path / "m"), save_mode="state_dict")
    assert "hidden" in str(info.value)
    assert not (tmp_path / "m").exists(), "a failed save must not leave a half-written folder"
    with pytest.raises(InvalidValueError, match=r"shapes differ.*first\.weight"):
        fpt.save_model(model, str(tmp_path / "m"), save_mode="state_dict", model_init_kwargs={"n_in": 4, "hidden": 7})
    with pytest.raises(InvalidValueError, match=r"not rebuilt.*save_mode='model'"):
        fpt.save_model(_mlp(), str(tmp_path / "m"), save_mode="state_dict")


def test_bad_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"'weights'.*\('model', 'state_dict'\)"):
        fpt.save_model(_mlp(), str(tmp_path / "a"), save_mode="weights")
    with pytest.raises(InvalidValueError, match="only used with save_mode='state_dict'"):
        fpt.save_model(_mlp(), str(tmp_path / "b"), model_init_kwargs={"hidden": 3})
    with pytest.raises(InvalidValueError, match="model_init_kwargs must be a dict"):
        fpt.save_model(_mlp(), str(tmp_path / "c"), save_mode="state_dict", model_init_kwargs=[4, 8])


def test_auto_detection_picks_pytorch() -> None:
    assert fpt.FLAVOR.handles(_mlp())
    assert not fpt.FLAVOR.handles(torch.zeros(2)) and not fpt.FLAVOR.handles(object())
    info = fitscribe.flavors.log_model(_mlp())
    assert info.descriptor.flavor_name == "pytorch" and "pytorch" in info.flavors
    loaded = fitscribe.flavors.load_model(info.model_uri)
    assert np.array_equal(_out(loaded, _inputs()), _out(_mlp(), _inputs()))


class _Echo(pyfunc.PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


def test_other_flavor_is_refused(tmp_path: Path) -> None:
    pyfunc.save_model(str(tmp_path / "m"), python_model=_Echo())
    with pytest.raises(InvalidValueError, match="'pyfunc' flavor, not 'pytorch'"):
        fpt.load_model(str(tmp_path / "m"))


def _mlflow_folder(folder: Path, model: Any) -> None:
    """Write a folder as mlflow.pytorch.save_model does with its default pickle serialization."""
    import cloudpickle

    (folder / "data").mkdir(parents=True)
    (folder / "data" / "pickle_module_info.txt").write_text("mlflow.pytorch.pickle_module")
    torch.save(model, str(folder / "data" / "model.pth"), pickle_module=cloudpickle)
    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.pytorch", "data": "data", "pickle_module_name": "mlflow.pytorch.pickle_module",
                "config": {"device": None}, "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "python_version": "3.11.7",
            },
            "pytorch": {"code": None, "model_data": "data", "pytorch_version": str(torch.__version__)},
        },
        "mlflow_version": "3.1.0",
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": "2025-01-01 00:00:00.000000",
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def test_loads_models_saved_by_mlflow(tmp_path: Path) -> None:
    model = _mlp()
    _mlflow_folder(tmp_path / "mlflow", model)
    loaded = fpt.load_model(str(tmp_path / "mlflow"))
    assert not loaded.training
    assert np.array_equal(_out(loaded, _inputs()), _out(model, _inputs()))
    prediction = pyfunc.load_model(str(tmp_path / "mlflow")).predict(_inputs())
    np.testing.assert_array_equal(prediction, _out(model, _inputs()))
    # MLflow 3's default format: a torch.export program in data/model.pt2 instead of the pickle.
    (tmp_path / "mlflow" / "data" / "model.pth").unlink()
    program = torch.export.export(model, (torch.as_tensor(_inputs()[:2]),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "mlflow" / "data" / "model.pt2"))
    exported = fpt.load_model(str(tmp_path / "mlflow"))
    with torch.no_grad():
        np.testing.assert_array_equal(exported(torch.as_tensor(_inputs())).numpy(), _out(model, _inputs()))
    np.testing.assert_array_equal(pyfunc.load_model(str(tmp_path / "mlflow")).predict(_inputs()), _out(model, _inputs()))


@TORCHSCRIPT_WARNINGS
def test_torchscript_module_round_trips(tmp_path: Path) -> None:
    x = _inputs()
    scripted = torch.jit.trace(_mlp(), torch.as_tensor(x))
    fpt.save_model(scripted, str(tmp_path / "m"))
    block = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["pytorch"]
    assert block["serialization"] == "torchscript"
    loaded = fpt.load_model(str(tmp_path / "m"))
    assert isinstance(loaded, torch.jit.ScriptModule)
    assert np.array_equal(_out(loaded, x), _out(_mlp(), x))
    with pytest.raises(InvalidValueError, match="ScriptModule.*save_mode='model'"):
        fpt.save_model(scripted, str(tmp_path / "s"), save_mode="state_dict")
