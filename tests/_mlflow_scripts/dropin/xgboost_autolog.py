"""mlflow.xgboost.autolog() with xgb.train and the scikit-learn wrapper."""
import json

import fitscribe as mlflow
import numpy as np
import xgboost as xgb

mlflow.set_experiment("dropin-xgboost-autolog")
mlflow.xgboost.autolog()

rng = np.random.default_rng(0)
X = rng.normal(size=(80, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
dtrain, dvalid = xgb.DMatrix(X[:60], label=y[:60]), xgb.DMatrix(X[60:], label=y[60:])
with mlflow.start_run() as run:
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, dtrain, num_boost_round=3,
                        evals=[(dvalid, "valid")])
xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
wrapper = mlflow.last_active_run()
loaded = mlflow.xgboost.load_model(f"runs:/{run.info.run_id}/model")
print(json.dumps({
    "train_run": run.info.run_id,
    "wrapper_run": wrapper.info.run_id,
    "same_prediction": bool(np.allclose(loaded.predict(dvalid), booster.predict(dvalid))),
}))
