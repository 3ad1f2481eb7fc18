"""MlflowClient's tables and time-stepped images, and the registry's entities imported from
mlflow.entities.model_registry. Only the import differs from an MLflow script."""
import json

import fitscribe as mlflow
import numpy as np
import pandas as pd
from fitscribe.entities.model_registry import ModelVersion, RegisteredModel

client = mlflow.MlflowClient()
exp_id = client.create_experiment("dropin-tables")
run_ids = []
for shift in (0, 10):
    run_id = client.create_run(exp_id).info.run_id
    client.log_table(run_id, {"x": [1 + shift, 2 + shift], "tag": ["a", "b"]}, "eval/scores.json")
    client.log_table(run_id, data=pd.DataFrame({"x": [3 + shift], "tag": ["c"]}), artifact_file="eval/scores.json")
    for step in range(2):
        frame = np.full((8, 4, 3), 100 * step, dtype=np.uint8)
        client.log_image(run_id, frame, key="val/pred", step=step, timestamp=1_000 + step)
    client.log_image(run_id, np.zeros((4, 4, 3), dtype=np.uint8), "static/zero.png")
    client.set_terminated(run_id)
    run_ids.append(run_id)

table = client.load_table(exp_id, "eval/scores.json", extra_columns=["run_id"])
second = client.load_table(exp_id, artifact_file="eval/scores.json", run_ids=[run_ids[1]])

registered = client.create_registered_model("dropin-tables-model")
version = client.create_model_version("dropin-tables-model", f"runs:/{run_ids[0]}/model", run_ids[0])
print(json.dumps({
    "run_ids": run_ids,
    "rows": {rid: sorted(table[table.run_id == rid]["x"].tolist()) for rid in run_ids},
    "second": second.to_dict("list"),
    "entities": [isinstance(registered, RegisteredModel), isinstance(version, ModelVersion)],
}))
