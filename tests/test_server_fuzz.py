"""Fuzz the tracking server from its own OpenAPI description with schemathesis: no request, however
malformed, may get a 5xx (MLflow's clients retry 5xx for minutes, so a user error must be a 4xx).

schemathesis runs as a subprocess (its CLI), against the real app served on a loopback port by
uvicorn, over a real SQLite store. All phases run: the coverage phase (boundary and wrong-type values
for every field), random fuzzing, and the stateful phase, which follows the OpenAPI links from
experiments/create, runs/create and registered-models/create to reach existing resources. The hooks
in ``tests/_fuzz_hooks.py`` also send, in generated requests, the inputs that once got a 5xx: JSON
nested hundreds of levels deep, lone surrogates, 40-digit ids, 400-digit numbers, ``"²"``, and
filters of 330 nested parentheses or 1,000 terms.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fitscribe.server.app import create_app
from fitscribe.server.run import ThreadedServer

pytestmark = pytest.mark.slow


def _schemathesis() -> str:
    found = shutil.which("st", path=os.path.dirname(sys.executable)) or shutil.which("st")
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def test_no_request_generated_from_the_openapi_document_gets_a_server_error(tmp_path: Path) -> None:
    app = create_app(str(tmp_path / "store"), str(tmp_path / "artifacts"))
    with ThreadedServer(app) as server:
        done = subprocess.run(
            [_schemathesis(), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "8", "--workers", "1", "--seed", "20261123", "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "_fuzz_hooks", "PYTHONPATH": str(Path(__file__).parent)},
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None, output[-3000:]
    assert int(generated.group(1)) >= 500 and generated.group(1) == generated.group(2), output[-3000:]
    assert "Stateful" in output  # the links were followed, not only random ids that answer 404
