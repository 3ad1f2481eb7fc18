"""The real MLflow client for interoperability tests: the python of the MLflow venv.

``scripts/test.sh`` builds ``.venv-mlflow`` (mlflow-skinny, see ``scripts/mlflow_venv.sh``) and
exports ``FITSCRIBE_MLFLOW_PYTHON``. Test modules import :func:`mlflow_python`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def mlflow_python() -> str:
    """Return the MLflow venv's python, or skip (fail in CI) with the reason."""
    configured = os.environ.get("FITSCRIBE_MLFLOW_PYTHON")
    # abspath, not resolve(): a venv's bin/python is a symlink to the base interpreter.
    python = os.path.abspath(configured) if configured else str(REPO / ".venv-mlflow" / "bin" / "python")
    if not os.path.isfile(python):
        how = "from FITSCRIBE_MLFLOW_PYTHON" if configured else "the default; or set FITSCRIBE_MLFLOW_PYTHON"
        message = f"No MLflow python at {python!r} ({how}); create it with `bash scripts/mlflow_venv.sh`"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the MLflow interoperability tests)")
        pytest.skip(message)
    return python
