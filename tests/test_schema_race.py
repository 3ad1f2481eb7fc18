"""Server replicas started at once on an empty PostgreSQL or MariaDB database: each opens the
schema, and only one may create it. Before the schema lock, the second creator failed with a
duplicate pg_type row (PostgreSQL; 3 of 10 two-server starts in a row) and its first write then
answered 500."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fitscribe.backends import get_tracking_store

_OPENER = """
import sys
from fitscribe.backends import get_tracking_store
sys.stdin.readline()  # all started: go at once
store = get_tracking_store(sys.argv[1])
print(store.create_experiment(sys.argv[2]))
store.close()
"""


def _open_at_once(uri: str, processes: int = 4) -> list[subprocess.CompletedProcess[str]]:
    """Start ``processes`` interpreters that each open the store at the same moment and create
    one experiment; return their results."""
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, uri, f"exp-{n}"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(processes)]
    outs: list[subprocess.CompletedProcess[str]] = []
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        outs.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return outs


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
def test_processes_opening_an_empty_database_at_once_all_succeed(database: str, request: pytest.FixtureRequest) -> None:
    if database == "postgresql":
        request.applymarker(pytest.mark.postgres)
    else:
        request.applymarker(pytest.mark.mysql)
    uri = request.getfixturevalue(f"{database}_uri")
    results = _open_at_once(uri)
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
    store = get_tracking_store(uri)
    try:
        names = sorted(e.name for e in store.search_experiments())
        assert names == ["Default", "exp-0", "exp-1", "exp-2", "exp-3"]
        ids = [int(result.stdout.strip()) for result in results]
        assert len(set(ids)) == 4 and 0 not in ids
    finally:
        store.close()
