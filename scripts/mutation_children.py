"""Lets the child processes of a mutation run see the mutant (installed by scripts/mutation.sh).

mutmut 3 runs each test in its own process and mutates only what that process imports; a test's
child processes (``subprocess`` of ``sys.executable``, ``os.fork``, ``multiprocessing``) import the
installed package, and the functions only they call are missing from mutmut's stats, so mutmut
never runs those tests against those functions' mutants. In the private copy, scripts/mutation.sh
places this file as ``mutants/mutation_children.py`` (loaded into pytest with ``-p
mutation_children``) and as ``mutants/sitecustomize.py`` (imported by every child Python):

- pytest: ``PYTHONPATH`` starts with the mutants folder, so an exec'd child imports the mutated
  package and this hook; ``MUTANT_UNDER_TEST`` reaches it through the environment.
- Stats collection (``MUTANT_UNDER_TEST=stats``): a child, exec'd or forked, appends each mutated
  function it calls to ``$MUTATION_CHILD_HITS`` at once (one line, O_APPEND, so a SIGKILLed child
  has reported already); the pytest process adds them to the test's hits before mutmut reads them.

A child whose environment drops ``PYTHONPATH`` (or an interpreter without mutmut) runs the installed
package as before: that is still a blind spot.
"""

from __future__ import annotations

import os
from typing import Any

ENV_HITS = "MUTATION_CHILD_HITS"
_FOLDER = os.path.dirname(os.path.abspath(__file__))
_seen: set[str] = set()
_pytest_pid = -1  # the process running the tests: it records hits the usual way
_installed = False


def _write_hit(name: str) -> None:
    path = os.environ.get(ENV_HITS)
    if path and name not in _seen:
        _seen.add(name)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)


def _install_recorder() -> None:
    """Make the trampolines of this process (and of its forks) report hits to the file."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import mutmut.mutation.trampoline as trampoline
    except ImportError:  # an interpreter without mutmut: the installed package runs
        return
    original = trampoline.record_trampoline_hit

    def record(name: str, caller: str | None = None) -> None:
        if os.getpid() == _pytest_pid:
            original(name, caller)
        else:
            _write_hit(name)

    trampoline.record_trampoline_hit = record


def _after_fork_in_child() -> None:
    _seen.clear()  # the parent's file lines are for the parent's test; report again


# -- pytest plugin (the process mutmut runs the tests in) ---------------------------------------
def pytest_configure(config: Any) -> None:
    """Put the mutants folder first on the children's path and hook the recorder."""
    global _pytest_pid
    _pytest_pid = os.getpid()
    if not os.environ.get("PYTHONPATH", "").startswith(_FOLDER + os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_FOLDER, os.environ.get("PYTHONPATH")]))
    if not _installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
    _install_recorder()


def pytest_runtest_setup(item: Any) -> None:
    """Give the test's children a fresh hits file (stats collection only)."""
    global _pytest_pid
    _pytest_pid = os.getpid()  # mutmut forks the workers after the plugin is loaded
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        os.environ[ENV_HITS] = os.path.join(_FOLDER, f".child-hits-{os.getpid()}")
    else:
        os.environ.pop(ENV_HITS, None)


def _collect_child_hits() -> None:
    path = os.environ.get(ENV_HITS)
    if not path or not os.path.exists(path):
        return
    from mutmut.state import state

    with open(path, encoding="utf-8") as hits:
        state()._stats.update(line.strip() for line in hits if line.strip())
    os.unlink(path)


if __name__ == "sitecustomize":  # an exec'd child
    if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get(ENV_HITS):
        _install_recorder()
else:
    import pytest

    @pytest.hookimpl(tryfirst=True)  # before mutmut's collector reads the test's hits
    def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
        """Add the functions the test's children called to the test's hits."""
        _collect_child_hits()
