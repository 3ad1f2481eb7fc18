#!/usr/bin/env bash
# Create (or update) a separate virtualenv holding the real MLflow, for tests/test_mlflow_interop.py
# and the import tests (tests/test_import_mlflow*.py).
#
# The venv gets MLflow's model loaders (the light mlflow-skinny package, which has mlflow.sklearn,
# mlflow.xgboost, mlflow.pytorch, mlflow.onnx, mlflow.pyfunc and mlflow.models), skops (MLflow 3's
# default sklearn format), and exactly the versions of scikit-learn, xgboost, torch, onnx,
# onnxruntime, numpy, scipy, pandas and cloudpickle installed in the main test venv, so that models
# written on one side load on the other (torch's CPU build: its local "+cpu" tag is dropped from the
# pin, and pip picks the wheel the main venv was built from). MLflow's SQL stores need SQLAlchemy,
# Alembic and the PostgreSQL/MySQL drivers, and `mlflow server` needs Flask, Flask-CORS and aiohttp
# on top of mlflow-skinny (the full `mlflow` package would also bring matplotlib, pyarrow, graphene,
# docker, gunicorn, huey...): these come pinned to the main venv's versions too. Measured in a fresh
# venv holding mlflow-skinny and pandas: these eight add 19 s (machine at load 10). It is built from the
# same base Python as the main venv. A stamp file records what was requested: a second run with
# nothing changed returns at once.
#
# Usage: bash scripts/mlflow_venv.sh [MAIN_PYTHON]      (default: .venv/bin/python)
# Env:   FITSCRIBE_MLFLOW_VENV  where to create it (default: .venv-mlflow at the repo root)
#        FITSCRIBE_MLFLOW_SPEC  the MLflow requirement (default: "mlflow-skinny>=3,<4")
# Prints the venv's python as its last line, for FITSCRIBE_MLFLOW_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

MAIN_PYTHON=${1:-.venv/bin/python}
VENV=${FITSCRIBE_MLFLOW_VENV:-.venv-mlflow}
MLFLOW_SPEC=${FITSCRIBE_MLFLOW_SPEC:-mlflow-skinny>=3,<4}

if [ ! -x "$MAIN_PYTHON" ]; then
  echo "mlflow_venv.sh: no python at $MAIN_PYTHON; create the main venv first (scripts/test.sh)" >&2
  exit 2
fi

# "python==X.Y.Z" and name==version for each shared package of the main venv (missing ones skipped).
PINS=$("$MAIN_PYTHON" - <<'EOF'
import importlib.metadata as md
import sys

pins = []
for dist in ("scikit-learn", "xgboost", "torch", "onnx", "onnxruntime", "numpy", "scipy", "pandas",
             "cloudpickle", "sqlalchemy", "alembic", "psycopg", "psycopg-binary", "pymysql", "flask",
             "flask-cors", "aiohttp"):
    try:
        pins.append(f"{dist}=={md.version(dist).split('+')[0]}")
    except md.PackageNotFoundError:
        pass
print("python=={}.{}.{}".format(*sys.version_info[:3]), *pins)
EOF
)
WANTED="$MLFLOW_SPEC skops $PINS"
STAMP="$VENV/.fitscribe-requested"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ]; then
  echo "$VENV/bin/python"
  exit 0
fi

PY_PIN=${PINS%% *}
if [ -f "$VENV/pyvenv.cfg" ] && [ -x "$VENV/bin/python" ] && \
   [ "$("$VENV/bin/python" -c 'import sys; print("python=={}.{}.{}".format(*sys.version_info[:3]))')" != "$PY_PIN" ]; then
  rm -rf "$VENV"                        # a venv of another Python: start again
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$MAIN_PYTHON" -m venv "$VENV"         # a venv's python makes a venv of the same base interpreter
fi

# xgboost goes in without its dependencies: numpy and scipy are pinned already, and the third,
# nvidia-nccl-cu12 (470 MB, for multi-GPU training), is never used here.
REQS=() XGB=()
for pin in ${PINS#* }; do
  case $pin in xgboost==*) XGB=("$pin") ;; *) REQS+=("$pin") ;; esac
done
pip_install() {  # quiet, minus the harmless warnings about absent local index folders on some machines
  "$VENV/bin/python" -m pip install --quiet --no-compile --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install "$MLFLOW_SPEC" skops "${REQS[@]}"
if [ ${#XGB[@]} -gt 0 ]; then
  pip_install --no-deps "${XGB[@]}"
fi

# The loaders the tests use must import: fail here, not inside the tests. Bytecode is written for
# what this imports (even under PYTHONDONTWRITEBYTECODE), which halves MLflow's import time in the
# tests; --no-compile above skips compiling the rest of the venv, which the tests never import.
PYTHONDONTWRITEBYTECODE= "$VENV/bin/python" -c "
import mlflow.models, mlflow.pyfunc, mlflow.sklearn, mlflow.xgboost, skops.io
import mlflow.server.handlers, mlflow.store.tracking.sqlalchemy_store, psycopg, pymysql
import sklearn.linear_model, sklearn.pipeline, sklearn.preprocessing
$([ ${#XGB[@]} -gt 0 ] && echo 'import xgboost')
$(case " $PINS " in *" torch=="*) echo 'import mlflow.pytorch, torch' ;; esac)
$(case " $PINS " in *" onnxruntime=="*) echo 'import mlflow.onnx, onnx, onnxruntime' ;; esac)"
printf '%s' "$WANTED" > "$STAMP"
echo "$VENV/bin/python"
