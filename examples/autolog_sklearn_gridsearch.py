"""A hyperparameter search with `fitscribe.autolog()`: one parent run and a child run per top candidate.

    python examples/autolog_sklearn_gridsearch.py

The parent run gets the best params (best_C, ...), best_cv_score, cv_results.csv, the whole
search object as `model` and the refitted best estimator as `best_estimator`; the 5 best
candidates get child runs with their params and cross-validation scores.
"""

import fitscribe

fitscribe.autolog()

from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

X, y = load_iris(return_X_y=True)
pipeline = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
search = GridSearchCV(pipeline, {"svc__C": [0.1, 1.0, 10.0], "svc__kernel": ["linear", "rbf"]}, cv=3)
search.fit(X, y)
print(f"best params: {search.best_params_}, best cv score: {search.best_score_:.3f}")

parent = fitscribe.last_active_run()
children = fitscribe.search_runs(
    filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    order_by=["metrics.rank_test_score ASC"], output_format="list",
)
print(f"parent run {parent.info.run_id}: best_cv_score={parent.data.metrics['best_cv_score']:.3f}")
print("  artifacts: " + ", ".join(f.path for f in fitscribe.list_artifacts(parent.info.run_id)))
for child in children:
    print(f"  child {child.info.run_id[:8]}: C={child.data.params['svc__C']:>5} kernel={child.data.params['svc__kernel']:<6} "
          f"mean_test_score={child.data.metrics['mean_test_score']:.3f} rank={child.data.metrics['rank_test_score']:.0f}")
