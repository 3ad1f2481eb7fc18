"""An ordinary scikit-learn script plus one line: `fitscribe.autolog()`.

    python examples/autolog_sklearn_iris.py

The fit below records a run in ./fitruns/ with the estimator's params, training metrics
(training_accuracy_score, training_f1_score, training_log_loss, training_roc_auc...), the
confusion matrix plot, the model with its signature, and a report of what was captured.
"""

import fitscribe

fitscribe.autolog()

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

model = LogisticRegression(max_iter=500, C=0.5)
model.fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")

# What the one line recorded:
run = fitscribe.last_active_run()
print(f"run {run.info.run_id} ({run.info.status})")
print(f"  params:    {len(run.data.params)} (C={run.data.params['C']}, max_iter={run.data.params['max_iter']})")
print("  metrics:   " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(run.data.metrics.items())))
print("  artifacts: " + ", ".join(f.path for f in fitscribe.list_artifacts(run.info.run_id)))
print(f"  load it:   fitscribe.flavors.sklearn.load_model('runs:/{run.info.run_id}/model')")
