"""MLflow's fluent tracking API: experiments, nested runs, params, metrics, tags, artifacts, tables,
images, datasets and a search. Only the import differs from an MLflow script."""
import json
import os
import tempfile

import fitscribe as mlflow
import numpy as np
import pandas as pd

mlflow.set_experiment("dropin-fluent")
mlflow.set_experiment_tags({"team": "forecasting", "stage": "dev"})

with mlflow.start_run(run_name="parent", description="a sweep") as parent:
    mlflow.log_params({"optimizer": "adam", "epochs": 3})
    mlflow.set_tags({"owner": "ann"})
    for lr in (0.1, 0.01):
        with mlflow.start_run(run_name=f"lr-{lr}", nested=True):
            mlflow.log_param("lr", lr)
            for epoch in range(3):
                mlflow.log_metric("loss", lr * (3 - epoch), step=epoch)
            mlflow.log_metrics({"acc": 1 - lr, "f1": 0.5}, step=3)
    mlflow.log_dict({"classes": ["a", "b"]}, "meta/classes.json")
    mlflow.log_text("hello", "notes/readme.txt")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.yaml")
        with open(path, "w") as fh:
            fh.write("depth: 3\n")
        mlflow.log_artifact(path, artifact_path="configs")
    mlflow.log_table({"question": ["q1", "q2"], "score": [0.5, 0.9]}, artifact_file="eval/results.json")
    mlflow.log_image(np.full((16, 16, 3), 200, dtype=np.uint8), key="samples", step=1)
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    mlflow.log_input(mlflow.data.from_pandas(df, source="train.csv", targets="label", name="train"), context="training")

with mlflow.start_run(run_name="aborted") as aborted:
    mlflow.end_run("KILLED")

best = mlflow.search_runs(filter_string="metrics.acc > 0.8", order_by=["metrics.acc DESC"])
table = mlflow.load_table("eval/results.json", extra_columns=["run_id"])
print(json.dumps({
    "parent": parent.info.run_id,
    "aborted": aborted.info.run_id,
    "best_lr": best["params.lr"].tolist(),
    "table_rows": len(table),
    "last": mlflow.last_active_run().info.run_id,
}))
