"""The serving start: modules deferred while a model loads keep their import semantics.

``fitscribe models serve`` loads the model with pandas deferred (fitscribe.serving.deferred), so
``/ping`` answers before pandas has run; these tests use real packages written to a temporary
folder and imported from it, and pandas itself in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from _require import require_module  # noqa: E402
from fitscribe.serving import deferred


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where a test writes packages; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _package(root: Path, name: str, body: str) -> Path:
    """Write package ``name`` whose import appends a line to ``<root>/<name>.ran``; return that file."""
    ran = root / f"{name}.ran"
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(
        f"with open({str(ran)!r}, 'a') as _fh:\n    _fh.write('ran\\n')\n" + textwrap.dedent(body))
    return ran


def test_a_deferred_module_runs_on_first_use_once(packages: Path) -> None:
    ran = _package(packages, "fs_defer_a", "VALUE = 41 + 1\n")
    with deferring(["fs_defer_a"]):
        import fs_defer_a
    assert not ran.exists(), "imported inside the block: found, not run"
    assert deferred.still_deferred(["fs_defer_a"]) == ["fs_defer_a"]
    assert fs_defer_a.VALUE == 42  # the first attribute access runs it
    assert ran.read_text() == "ran\n" and deferred.still_deferred(["fs_defer_a"]) == []
    import fs_defer_a as again

    assert again is fs_defer_a and ran.read_text() == "ran\n"


def test_a_module_used_while_the_model_loads_runs_there(packages: Path) -> None:
    ran = _package(packages, "fs_defer_b", "VALUE = 'b'\n")
    with deferring(["fs_defer_b"]):
        from fs_defer_b import VALUE
    assert VALUE == "b" and ran.exists() and deferred.still_deferred(["fs_defer_b"]) == []


def test_import_errors_still_surface(packages: Path) -> None:
    """A missing module fails where it is imported; a broken one fails when finished."""
    with deferring(["fs_defer_missing"]), pytest.raises(ModuleNotFoundError):
        import fs_defer_missing  # noqa: F401
    _package(packages, "fs_defer_broken", "raise ImportError('fs_defer_broken needs libfoo')\n")
    with deferring(["fs_defer_broken"]):
        import fs_defer_broken  # noqa: F401
    with pytest.raises(ImportError, match="needs libfoo"):
        deferred.finish(["fs_defer_broken"])


def test_only_named_modules_and_only_inside_the_block_are_deferred(packages: Path) -> None:
    other = _package(packages, "fs_defer_other", "")
    later = _package(packages, "fs_defer_later", "")
    with deferring(["fs_defer_later"]):
        import fs_defer_other  # noqa: F401
    assert other.exists()
    import fs_defer_later  # noqa: F401

    assert later.exists(), "imported after the block: run at once"


def test_finish_runs_what_is_still_deferred(packages: Path) -> None:
    ran = _package(packages, "fs_defer_c", "")
    with deferring(["fs_defer_c"]):
        import fs_defer_c  # noqa: F401
    deferred.finish(["fs_defer_c"])
    assert ran.exists() and deferred.still_deferred(["fs_defer_c"]) == []
    deferred.finish(["fs_defer_c"])  # nothing left: nothing happens
    assert ran.read_text() == "ran\n"


def test_a_scikit_learn_model_loads_with_pandas_deferred(tmp_path: Path) -> None:
    """What ``models serve`` does, in a fresh interpreter: unpickling a LogisticRegression imports
    pandas without running it; the warm-up runs it; the predictions are those of the fitted model."""
    require_module("pandas")
    require_module("sklearn")
    import json
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import fitscribe.flavors.sklearn as fsk

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fsk.save_model(model, str(tmp_path / "model"), input_example=X.head(2))
    rows = {"columns": list(X.columns), "data": X.iloc[::10].to_numpy().tolist()}
    code = textwrap.dedent(f"""
        import json, sys
        from fitscribe.serving import deferred
        from fitscribe.serving.run import _load_deferring
        model, warm_up = _load_deferring({str(tmp_path / "model")!r})
        print(json.dumps([deferred.still_deferred(), warm_up is deferred.finish, "sklearn" in sys.modules]))
        warm_up()
        import pandas as pd
        rows = json.loads({json.dumps(json.dumps(rows))})
        predictions = model.predict(pd.DataFrame(rows["data"], columns=rows["columns"])).tolist()
        print(json.dumps([deferred.still_deferred(), predictions]))
    """)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads(line) for line in done.stdout.splitlines()[:2])
    assert first == [["pandas"], True, True]
    assert second == [[], model.predict(X.iloc[::10]).tolist()]


deferring = deferred.deferring
