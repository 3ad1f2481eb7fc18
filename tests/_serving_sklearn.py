"""A scikit-learn estimator for the serving tests, in a module of its own (pickled by reference)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Pausing(ClassifierMixin, BaseEstimator):
    """Predicts class 1 for every row; first sleeps ``pause`` seconds when a row's first value is negative."""

    def __init__(self, pause: float = 0.3) -> None:
        self.pause = pause

    def fit(self, X: Any, y: Any) -> "Pausing":
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> Any:
        values = np.asarray(X, dtype=float)
        if (values[:, 0] < 0).any():
            time.sleep(self.pause)
        return np.ones(len(values), dtype=np.int64)
