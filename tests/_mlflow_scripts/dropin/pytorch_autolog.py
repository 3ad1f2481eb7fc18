"""mlflow.pytorch.autolog() driving a Lightning Trainer.fit on two tiny batches."""
import json

import fitscribe as mlflow
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


mlflow.set_experiment("dropin-pytorch-autolog")
mlflow.pytorch.autolog()
torch.manual_seed(0)
data = DataLoader(TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4)
trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, accelerator="cpu")
model = Tiny()
trainer.fit(model, data)
run = mlflow.last_active_run()
loaded = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
x = torch.randn(2, 3)
print(json.dumps({
    "run": run.info.run_id,
    "metrics": sorted(run.data.metrics),
    "params": sorted(run.data.params),
    "same_prediction": bool(torch.allclose(loaded(x), model(x))),
}))
