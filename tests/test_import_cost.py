"""`import fitscribe` stays cheap: no database toolkit, numeric library or ML framework is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DENYLIST = ["sqlalchemy", "alembic", "numpy", "pandas", "yaml", "cloudpickle", "matplotlib", "PIL",
            "sklearn", "xgboost", "torch", "lightning", "pytorch_lightning", "onnx", "onnxruntime",
            "psycopg", "pymysql", "httpx"]


def _modules_after(code: str) -> set[str]:
    probe = f"import sys; {code}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    "code",
    [
        "import fitscribe",
        "import fitscribe; fitscribe.Client; fitscribe.start_run; fitscribe.log_metric; fitscribe.search_runs",
        "import fitscribe; fitscribe.Client('/nonexistent/never/created')",
        "import fitscribe.cli",
        # the MLflow-named modules (issue 12 item 2) load their framework only when a function needs it
        "import fitscribe as mlflow; mlflow.sklearn; mlflow.xgboost; mlflow.pytorch; mlflow.onnx; mlflow.pyfunc; "
        "mlflow.models; mlflow.data; mlflow.artifacts; mlflow.tracking.MlflowClient; mlflow.MlflowClient; "
        "mlflow.entities.SourceType; mlflow.register_model; mlflow.log_table",
    ],
)
def test_import_loads_no_heavy_package(code: str) -> None:
    loaded = _modules_after(code)
    heavy = sorted(name for name in DENYLIST if name in loaded)
    assert heavy == [], f"{code!r} imported {heavy}"


def test_import_adds_few_modules() -> None:
    bare = _modules_after("pass")
    loaded = _modules_after("import fitscribe; fitscribe.Client")
    added = sorted(loaded - bare)
    # The core is a handful of light modules plus stdlib; a jump here means an eager import crept in.
    assert len(added) < 80, added


def test_alias_modules_do_not_shadow_the_frameworks() -> None:
    """fitscribe/sklearn.py and friends must not hide the real packages from fitscribe's own modules."""
    probe = ("import fitscribe as mlflow, fitscribe.autolog.sklearn, fitscribe.autolog.xgboost, "
             "fitscribe.flavors.sklearn; mlflow.sklearn.autolog(); import sklearn, xgboost; "
             "print(sklearn.__name__, xgboost.__name__, mlflow.sklearn.__name__)")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["sklearn", "xgboost", "fitscribe.sklearn"]
