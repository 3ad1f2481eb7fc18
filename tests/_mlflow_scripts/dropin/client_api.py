"""MlflowClient as MLflow scripts use it: experiments, runs, batches, history, artifacts, the registry."""
import json
import time

import fitscribe as mlflow
from fitscribe.entities import Metric, Param, RunTag, ViewType
from fitscribe.tracking import MlflowClient

client = MlflowClient()
exp_id = client.create_experiment("dropin-client", tags={"source": "client"})
run = client.create_run(exp_id, run_name="batch")
now = int(time.time() * 1000)
client.log_batch(
    run.info.run_id,
    metrics=[Metric("rmse", 1.0 / (i + 1), now + i, i) for i in range(5)],
    params=[Param("alpha", "0.5")],
    tags=[RunTag("kind", "regression")],
)
client.log_text(run.info.run_id, "report", "report.txt")
client.set_terminated(run.info.run_id)

history = client.get_metric_history(run.info.run_id, "rmse")
found = client.search_runs([exp_id], "params.alpha = '0.5'", run_view_type=ViewType.ACTIVE_ONLY)
files = [f.path for f in client.list_artifacts(run.info.run_id)]

client.create_registered_model("dropin-client-model")
version = client.create_model_version("dropin-client-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
client.set_registered_model_alias("dropin-client-model", "champion", version.version)
by_alias = client.get_model_version_by_alias("dropin-client-model", "champion")
assert isinstance(client, mlflow.MlflowClient)
print(json.dumps({
    "run_id": run.info.run_id,
    "history": [m.value for m in history],
    "found": [r.info.run_id for r in found],
    "files": files,
    "alias_version": int(by_alias.version),
}))
