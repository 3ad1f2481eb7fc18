#!/usr/bin/env bash
# Run the whole test suite, installing what it needs: a virtual environment in .venv with
# fitscribe and its dev extras, and running PostgreSQL and MariaDB servers on 127.0.0.1.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${FITSCRIBE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# PyTorch first, pinned: the CPU build of 2.13.0 is on this machine's disk; any other release
# would download a multi-GB CUDA build when lightning asks for torch.
"$VENV/bin/python" -m pip install --quiet "torch==${FITSCRIBE_TORCH_VERSION:-2.13.0}"
"$VENV/bin/python" -m pip install --quiet -e ".[dev]"
# The real MLflow in its own venv, for tests/test_mlflow_interop.py (returns at once when up to date).
bash scripts/mlflow_venv.sh "$VENV/bin/python" >/dev/null
export FITSCRIBE_MLFLOW_PYTHON="$(cd "${FITSCRIBE_MLFLOW_VENV:-.venv-mlflow}" && pwd)/bin/python"

# The UI's browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q chromium fonts-liberation >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-liberation >/dev/null; }
fi

# The store suite runs on SQLite, PostgreSQL and MariaDB: start the servers if they are down.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if command -v mariadb-admin >/dev/null && ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done
fi

exec "$VENV/bin/python" -m pytest "$@"
