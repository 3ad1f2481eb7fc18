"""Train a tiny Lightning MLP, log it with fitscribe, and load it back in a fresh Python process.

Run it from anywhere: ``python examples/pytorch_model.py`` (needs torch and lightning). The run and
the model go to ./fitruns; the class below lives in ``__main__`` and is stored with the model
(cloudpickle), so the fresh process loads it without this script.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings

import lightning.pytorch as pl
import numpy as np
import torch

import fitscribe
import fitscribe.flavors.pytorch

# Lightning's own start-up chatter and a deprecation inside Lightning itself; neither is about this script.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)

LOAD_IN_FRESH_PROCESS = """
import json, sys
import numpy as np, torch
import fitscribe.flavors.pytorch
model = fitscribe.flavors.pytorch.load_model(sys.argv[1])
x = torch.as_tensor(np.array(json.loads(sys.argv[2]), dtype=np.float32))
with torch.no_grad():
    print(json.dumps({"class": type(model).__name__, "hparams": dict(model.hparams),
                      "training": model.training, "predictions": model(x).squeeze(1).tolist()}))
"""


class MLP(pl.LightningModule):
    """A two-layer regressor whose constructor arguments are saved as hparams."""

    def __init__(self, n_in: int = 4, hidden: int = 16, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(128, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(128, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    model = MLP()
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )
    with fitscribe.start_run(run_name="lightning-mlp") as run:
        trainer.fit(model, loader)
        fitscribe.log_params(dict(model.hparams))
        fitscribe.log_metric("train_loss", float(trainer.callback_metrics["train_loss"]))
        info = fitscribe.flavors.pytorch.log_model(model, "model", input_example=x[:3].numpy())
    print(f"Logged {info.model_uri} (run {run.info.run_id}) with files:",
          ", ".join(sorted(info.descriptor.fitscribe["files"])))

    sample = x[:5]
    model.eval()
    with torch.no_grad():
        here = model(sample).squeeze(1).tolist()
    env = {**os.environ, "FITSCRIBE_TRACKING_URI": fitscribe.get_tracking_uri()}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, info.model_uri, json.dumps(sample.tolist())],
        env=env, capture_output=True, text=True, check=True,
    )
    there = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"Fresh process loaded a {there['class']} (hparams {there['hparams']}, training={there['training']})")
    for a, b in zip(here, there["predictions"]):
        print(f"  this process {a:+.6f}   fresh process {b:+.6f}")
    if not np.array_equal(np.array(here), np.array(there["predictions"])):
        raise SystemExit("The reloaded model predicts differently!")
    print("Predictions match exactly.")


if __name__ == "__main__":
    main()
