"""Searching runs and experiments, with the experiment and run chosen by MLflow's variables
(MLFLOW_EXPERIMENT_NAME is set by the test; MLFLOW_RUN_ID is set here for a child process)."""
import json
import os
import subprocess
import sys

import fitscribe as mlflow
from fitscribe.entities import ViewType

for i in range(5):
    with mlflow.start_run(run_name=f"trial-{i}"):
        mlflow.log_param("depth", i)
        mlflow.log_metric("score", i / 10)

with mlflow.start_run(run_name="resumed") as run:
    pass
child = "import fitscribe as mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('from_child', 1.0)\n"
subprocess.run([sys.executable, "-c", child], check=True, env={**os.environ, "MLFLOW_RUN_ID": run.info.run_id})

experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
top = mlflow.search_runs([experiment.experiment_id], filter_string="metrics.score >= 0.2 AND params.depth != '4'",
                         order_by=["metrics.score DESC"], max_results=2)
listed = mlflow.search_runs(search_all_experiments=True, output_format="list", run_view_type=ViewType.ALL)
names = [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'dropin%'")]
print(json.dumps({
    "experiment": experiment.experiment_id,
    "top": top["tags.mlflow.runName"].tolist(),
    "all_runs": len(listed),
    "experiments": names,
    "resumed": run.info.run_id,
    "resumed_metrics": mlflow.get_run(run.info.run_id).data.metrics,
}))
