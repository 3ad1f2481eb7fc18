#!/usr/bin/env bash
# Create (or update) .venv-mlflow-server: the full MLflow (with `mlflow server`), for the server
# benchmarks in benchmarks/server_*.py only. Neither CI nor scripts/test.sh runs this.
#
# Usage: bash scripts/mlflow_server_venv.sh [BASE_PYTHON]     (default: .venv/bin/python, else python3)
# Env:   FITSCRIBE_MLFLOW_SERVER_VENV  where to create it (default: .venv-mlflow-server at the repo root)
#        FITSCRIBE_MLFLOW_SERVER_SPEC  the requirements (default: mlflow==3.17.2 and psycopg[binary], its
#                                      PostgreSQL driver, for the PostgreSQL comparison)
#        FITSCRIBE_MLFLOW_EXPORT_IMPORT=1  also install mlflow-export-import (MLflow's copying tool, its
#                                      last PyPI release), for benchmarks/import_mlflow.py --export-import
# Prints the venv's python as its last line. A second run with nothing changed returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PYTHON=${1:-.venv/bin/python}
[ -x "$BASE_PYTHON" ] || BASE_PYTHON=$(command -v python3)
VENV=${FITSCRIBE_MLFLOW_SERVER_VENV:-.venv-mlflow-server}
SPEC=${FITSCRIBE_MLFLOW_SERVER_SPEC:-mlflow==3.17.2 psycopg[binary]}
if [ "${FITSCRIBE_MLFLOW_EXPORT_IMPORT:-}" = 1 ]; then
  SPEC="$SPEC mlflow-export-import==1.2.0 tabulate"   # it imports tabulate without declaring it
fi
STAMP="$VENV/.fitscribe-requested"

if [ -x "$VENV/bin/mlflow" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SPEC" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$BASE_PYTHON" -m venv "$VENV"
read -r -a SPEC_ARGS <<< "$SPEC"   # one requirement per word, never glob-expanded
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${SPEC_ARGS[@]}" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)   # harmless, about absent local indexes
"$VENV/bin/mlflow" --version >/dev/null   # fail here if the server cannot start at all
printf '%s' "$SPEC" > "$STAMP"
echo "$VENV/bin/python"
