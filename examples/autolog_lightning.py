"""Autolog a PyTorch Lightning training: one line before an ordinary script, then see what it recorded.

Run it from anywhere: ``python examples/autolog_lightning.py`` (needs torch, lightning and
scikit-learn for the data set). ``fitscribe.autolog()`` patches ``Trainer.fit`` when Lightning is
imported; the fit below then opens a run in ./fitruns and records params (epochs, optimizer,
``save_hyperparameters()`` values, EarlyStopping settings), per-epoch metrics, the model summary
and the trained model, with no tracking code in the training script itself.
"""

from __future__ import annotations

import fitscribe

fitscribe.autolog()

import logging  # noqa: E402
import warnings  # noqa: E402

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

import fitscribe.flavors.pytorch  # noqa: E402  (to load the logged model back at the end)

# Lightning's start-up chatter and a deprecation inside Lightning itself; neither is about this script.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=r"The '\w+_dataloader' does not have many workers")


class Classifier(pl.LightningModule):
    """A two-layer MLP for binary classification."""

    def __init__(self, n_in: int, hidden: int = 32, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.binary_cross_entropy_with_logits(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.binary_cross_entropy_with_logits(logits, y))
        self.log("val_acc", ((logits > 0).float() == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    X, y = load_breast_cancer(return_X_y=True)
    x = torch.tensor((X - X.mean(axis=0)) / X.std(axis=0), dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.float32)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[:450], order[450:]
    make = torch.utils.data.DataLoader
    return (make(torch.utils.data.TensorDataset(x[train], target[train]), batch_size=32, shuffle=True),
            make(torch.utils.data.TensorDataset(x[val], target[val]), batch_size=64))


def main() -> None:
    torch.manual_seed(0)
    train, val = loaders()
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[pl.callbacks.EarlyStopping(monitor="val_loss", patience=2)],
    )
    trainer.fit(Classifier(n_in=30), train, val)

    # Everything below only reads back what autolog recorded.
    run = fitscribe.last_active_run()
    print(f"Run {run.info.run_id}: {run.info.status}, tagged mlflow.autologging={run.data.tags['mlflow.autologging']}")
    print("Params:", {k: run.data.params[k] for k in ("epochs", "optimizer_name", "lr", "hidden", "monitor", "patience")})
    for key in sorted(run.data.metrics):
        points = ", ".join(f"{m.step}: {m.value:.4f}" for m in fitscribe.get_metric_history(run.info.run_id, key))
        print(f"  {key:<18} {points}")
    print("Artifacts:", ", ".join(sorted(f.path for f in fitscribe.list_artifacts(run.info.run_id))))
    model = fitscribe.flavors.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    x, y = next(iter(val))
    with torch.no_grad():
        accuracy = ((model(x) > 0).float() == y).float().mean().item()
    print(f"The logged model, loaded back: accuracy {accuracy:.3f} on {len(y)} validation rows")


if __name__ == "__main__":
    main()
