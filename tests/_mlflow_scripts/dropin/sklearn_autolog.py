"""mlflow.sklearn.autolog() with a plain fit and a grid search, read back at once."""
import json

import fitscribe as mlflow
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

mlflow.set_experiment("dropin-sklearn-autolog")
mlflow.sklearn.autolog(log_input_examples=True)

X, y = make_classification(n_samples=60, n_features=4, random_state=0)
LogisticRegression(C=0.5, max_iter=200).fit(X, y)
single = mlflow.last_active_run()

search = GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}, cv=2)
search.fit(X, y)
parent = mlflow.last_active_run()
children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list")
model = mlflow.sklearn.load_model(f"runs:/{single.info.run_id}/model")
print(json.dumps({
    "single": single.info.run_id,
    "single_params": single.data.params,
    "single_metrics": sorted(single.data.metrics),
    "search": parent.info.run_id,
    "children": len(children),
    "predict": model.predict(X[:3]).tolist(),
}))
