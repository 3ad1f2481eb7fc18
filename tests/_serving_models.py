"""Custom PythonModels for the serving tests, in a module of their own: they are pickled by
reference, and MLflow's scoring server (in .venv-mlflow, with no pytest) must import them too."""

from __future__ import annotations

from typing import Any

from fitscribe.flavors.pyfunc import PythonModel


class RowSum(PythonModel):
    """Predicts the sum of each row."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return model_input.sum(axis=1).to_numpy()


class Scale(PythonModel):
    """Predicts column ``x`` times the param ``factor``."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        factor = (params or {}).get("factor", 1.0)
        return (model_input["x"] * factor).to_numpy()


class Frame(PythonModel):
    """Predicts a DataFrame of two columns."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        return pd.DataFrame({"s": model_input["x"] * 2, "n": "x"})
