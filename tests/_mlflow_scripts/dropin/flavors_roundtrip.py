"""Log, load and register a model of each flavor, MLflow style: sklearn, xgboost, pytorch, onnx."""
import json
import tempfile

import fitscribe as mlflow
import numpy as np
import torch
import xgboost as xgb
from fitscribe.models import infer_signature
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
mlflow.set_experiment("dropin-flavors")
out = {}
with mlflow.start_run() as run:
    sk = LogisticRegression().fit(X, y)
    info = mlflow.sklearn.log_model(sk, name="sk", signature=infer_signature(X, sk.predict(X)),
                                    registered_model_name="dropin-sk")
    out["sk_version"] = info.registered_model_version
    out["sk_same"] = mlflow.sklearn.load_model("models:/dropin-sk/1").predict(X).tolist() == sk.predict(X).tolist()
    out["sk_pyfunc"] = mlflow.pyfunc.load_model(info.model_uri).predict(X).tolist() == sk.predict(X).tolist()

    booster = xgb.XGBRegressor(n_estimators=3, max_depth=2).fit(X, y)
    mlflow.xgboost.log_model(booster, name="xgb", registered_model_name="dropin-xgb")
    out["xgb_same"] = bool(np.allclose(mlflow.xgboost.load_model(f"runs:/{run.info.run_id}/xgb").predict(X),
                                       booster.predict(X)))
    out["xgb_registered"] = bool(np.allclose(mlflow.xgboost.load_model("models:/dropin-xgb/1").predict(X),
                                             booster.predict(X)))

    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    mlflow.pytorch.log_model(net, name="torch")
    mlflow.register_model(f"runs:/{run.info.run_id}/torch", "dropin-torch")
    tensor = torch.from_numpy(X)
    out["torch_same"] = bool(torch.allclose(mlflow.pytorch.load_model("models:/dropin-torch/1")(tensor),
                                            net(tensor)))

    from skl2onnx import to_onnx

    onnx_model = to_onnx(sk, X[:1])
    mlflow.onnx.log_model(onnx_model, name="onnx", registered_model_name="dropin-onnx")
    out["onnx_loaded"] = type(mlflow.onnx.load_model("models:/dropin-onnx/1")).__name__
    predicted = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/onnx").predict(X[:5])
    out["onnx_same"] = list(predicted["output_label"]) == sk.predict(X[:5]).tolist()

with tempfile.TemporaryDirectory() as tmp:
    mlflow.sklearn.save_model(sk, f"{tmp}/saved")
    out["saved_same"] = mlflow.sklearn.load_model(f"{tmp}/saved").predict(X).tolist() == sk.predict(X).tolist()
    out["saved_flavors"] = sorted(mlflow.models.Model.load(f"{tmp}/saved").flavors)
out["run"] = run.info.run_id
print(json.dumps(out))
