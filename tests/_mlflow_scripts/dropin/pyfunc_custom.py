"""A custom mlflow.pyfunc.PythonModel with an artifact, registered and loaded by alias."""
import json
import os
import tempfile

import fitscribe as mlflow
import pandas as pd
from fitscribe import MlflowClient


class Scaler(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["factor"]) as fh:
            self.factor = float(fh.read())

    def predict(self, context, model_input, params=None):
        return model_input * self.factor


mlflow.set_experiment("dropin-pyfunc")
with tempfile.TemporaryDirectory() as tmp:
    factor = os.path.join(tmp, "factor.txt")
    with open(factor, "w") as fh:
        fh.write("3")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="scaler", python_model=Scaler(), artifacts={"factor": factor},
                                       input_example=pd.DataFrame({"x": [1.0]}))
version = mlflow.register_model(info.model_uri, "dropin-scaler")
MlflowClient().set_registered_model_alias("dropin-scaler", "prod", version.version)
loaded = mlflow.pyfunc.load_model("models:/dropin-scaler@prod")
requirements = open(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read()
print(json.dumps({
    "run": run.info.run_id,
    "version": int(version.version),
    "prediction": loaded.predict(pd.DataFrame({"x": [1.0, 2.0]}))["x"].tolist(),
    "requirements_has_pandas": "pandas" in requirements,
}))
