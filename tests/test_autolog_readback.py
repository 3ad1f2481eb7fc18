"""Read-your-writes under autolog: once a patched fit returns, every read made in the process sees
everything autolog records for that call, without ``fitscribe.flush()`` (issue 11 items 1-3, issue
17 item 5 and probe F1).

Reads are made at once after training, as a user's script does, through the fluent API, ``Client``,
``last_active_run`` and the CLI, on the embedded store, PostgreSQL, MariaDB and a REST server, and
repeated so that the answer is the same every time. The finisher is held with a gate (a job queued
ahead of autolog's own) where a test must show that a read waits instead of racing it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from _require import require_module
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import fitscribe
from fitscribe.autolog import _session
from fitscribe.errors import FitscribeError, FitscribeWarning

SKLEARN_METRICS = {"training_precision_score", "training_recall_score", "training_f1_score", "training_accuracy_score",
                   "training_log_loss", "training_roc_auc", "training_score"}
SKLEARN_ARTIFACTS = {"estimator.html", "model", "fitscribe.autolog.report.json", "training_confusion_matrix.png",
                     "training_roc_curve.png", "training_precision_recall_curve.png"}
LIGHTNING_WARNINGS = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


_CLIENTS: list[fitscribe.Client] = []
_GATES: list[threading.Event] = []


@pytest.fixture(autouse=True)
def _autolog_off_afterwards() -> Iterator[None]:
    yield
    while _GATES:  # a test that failed before its read: let the finisher go
        _GATES.pop().set()
    fitscribe.autolog(disable=True)
    fitscribe.flush()
    while _CLIENTS:
        _CLIENTS.pop().close()


def _client(uri: str) -> fitscribe.Client:
    """A new ``Client`` as a user's script makes one (closed after the test)."""
    client = fitscribe.Client(uri)
    _CLIENTS.append(client)
    return client


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=60, n_features=4, random_state=0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql), "rest"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new tracking store: an embedded folder, PostgreSQL, MariaDB, or fitscribe's server on 127.0.0.1."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
    elif request.param == "rest":
        from fitscribe.server import create_app
        from fitscribe.server.run import ThreadedServer

        monkeypatch.setenv("FITSCRIBE_REST_JOURNAL_DIR", str(tmp_path / "journal"))
        app = create_app(str(tmp_path / "server-store"), str(tmp_path / "server-artifacts"))
        with ThreadedServer(app) as server:
            yield server.url
            fitscribe.flush()
    else:
        yield str(request.getfixturevalue(f"{request.param}_uri"))


class Gate:
    """Hold autolog's background finisher until a read is blocked waiting for it.

    A job queued ahead of autolog's own blocks the finisher; a helper thread opens it as soon as a
    read waits in ``fitscribe._pending.settle`` (or once the test's read returned without waiting,
    which the test's assertions then catch). No timing is involved either way.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.read_done = threading.Event()
        _GATES.append(self.opened)
        _session.DEFERRED.submit(lambda: self.opened.wait(30))
        self._opener = threading.Thread(target=self._open_when_a_read_waits, daemon=True)

    def _open_when_a_read_waits(self) -> None:
        from fitscribe import _pending

        deadline = time.monotonic() + 30
        while not self.read_done.is_set() and _pending.waiting() == 0 and time.monotonic() < deadline:
            self.read_done.wait(0.002)
        self.opened.set()

    def read(self, fn: Callable[[], Any]) -> Any:
        """Make the read ``fn()`` while the finisher is held; the gate opens once the read waits."""
        self._opener.start()
        try:
            return fn()
        finally:
            self.read_done.set()
            self.opened.set()
            self._opener.join(30)


def _check_logreg_run(uri: str, run_id: str) -> tuple[Any, ...]:
    client = _client(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.end_time >= run.info.start_time
    assert set(run.data.metrics) == SKLEARN_METRICS
    assert len(client.get_metric_history(run_id, "training_accuracy_score")) == 1
    artifacts = {f.path for f in client.list_artifacts(run_id)}
    assert SKLEARN_ARTIFACTS <= artifacts
    html = Path(client.download_artifacts(run_id, "estimator.html")).read_text()
    assert "LogisticRegression" in html
    return run.info.status, tuple(sorted(run.data.metrics)), tuple(sorted(artifacts)), tuple(sorted(run.data.params))


def test_sklearn_fit_then_read_sees_everything_every_time(store_uri: str, data: Any) -> None:
    X, y = data
    fitscribe.set_tracking_uri(store_uri)
    fitscribe.autolog()
    seen = set()
    for i in range(3):
        LogisticRegression(C=0.5 + i).fit(X, y)
        runs = fitscribe.search_runs(output_format="list")  # at once: no flush, no last_active_run
        assert len(runs) == i + 1 and {r.info.status for r in runs} == {"FINISHED"}
        assert all(set(r.data.metrics) == SKLEARN_METRICS for r in runs)
        seen.add(_check_logreg_run(store_uri, _last_run_id()))
        last = fitscribe.last_active_run()
        assert last is not None and last.info.status == "FINISHED" and set(last.data.metrics) == SKLEARN_METRICS
    assert len(seen) == 1  # the same answer every time


def test_grid_search_parent_and_every_child_run_are_there_at_once(store_uri: str, data: Any) -> None:
    X, y = data
    fitscribe.set_tracking_uri(store_uri)
    fitscribe.autolog()
    for i in range(2):
        search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0, 100.0]}, cv=2).fit(X, y)
        client = _client(store_uri)
        parent = client.get_run(_last_run_id())
        assert parent.info.status == "FINISHED" and parent.info.end_time is not None
        assert "cv_results.csv" in {f.path for f in client.list_artifacts(parent.info.run_id)}
        children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
        assert {c.data.params["C"] for c in children} == {"0.1", "1.0", "10.0", "100.0"}
        assert all("mean_test_score" in c.data.metrics for c in children)
        assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
        assert len(fitscribe.search_runs(output_format="list")) == 5 * (i + 1)


def test_xgboost_train_and_classifier_then_read(store_uri: str, data: Any) -> None:
    xgb = require_module("xgboost")
    X, y = data
    fitscribe.set_tracking_uri(store_uri)
    fitscribe.autolog()
    dtrain = xgb.DMatrix(X, label=y)
    xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, dtrain, 3,
              evals=[(dtrain, "train")], verbose_eval=False)
    trained = _last_run_id()
    client = _client(store_uri)
    assert client.get_run(trained).info.status == "FINISHED"
    xgb.XGBClassifier(n_jobs=1, n_estimators=3, max_depth=2).fit(X, y, eval_set=[(X, y)], verbose=False)
    wrapped = _last_run_id()
    for rid, key in ((trained, "train-logloss"), (wrapped, "validation_0-logloss")):
        run = client.get_run(rid)
        assert run.info.status == "FINISHED" and run.info.end_time is not None
        assert [m.step for m in client.get_metric_history(rid, key)] == [0, 1, 2]
        artifacts = {f.path for f in client.list_artifacts(rid)}
        assert {"feature_importance_weight.json", "feature_importance_weight.png", "model"} <= artifacts
        with open(client.download_artifacts(rid, "feature_importance_weight.json")) as fh:
            assert json.load(fh)


@LIGHTNING_WARNINGS
def test_lightning_fit_then_read_sees_model_and_summary(store_uri: str) -> None:
    torch = require_module("torch")
    pl = require_module("lightning.pytorch")
    fitscribe.set_tracking_uri(store_uri)
    fitscribe.autolog()
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         accelerator="cpu")
    trainer.fit(_tiny_module(pl, torch), torch.utils.data.DataLoader(data, batch_size=16))
    client = _client(store_uri)
    run = client.get_run(_last_run_id())
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"model", "model_summary.txt", "fitscribe.autolog.report.json"} <= artifacts
    assert "Linear" in Path(client.download_artifacts(run.info.run_id, "model_summary.txt")).read_text()


def _tiny_module(pl: Any, torch: Any) -> Any:
    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Tiny()


# -- a read waits for the background work, whichever way it is made -------------------------------

def _cli_describe(uri: str, run_id: str) -> dict[str, Any]:
    from fitscribe import cli

    lines: list[str] = []
    assert cli.main(["runs", "describe", run_id, "--tracking-uri", uri, "--json"], out=lines.append) == 0
    return json.loads("\n".join(lines))


READS: dict[str, Callable[[str, str], Any]] = {
    "Client.get_run": lambda uri, rid: _client(uri).get_run(rid).info.status,
    "fitscribe.get_run": lambda uri, rid: fitscribe.get_run(rid).info.status,
    "fitscribe.search_runs": lambda uri, rid: fitscribe.search_runs(output_format="list")[0].info.status,
    "Client.search_runs": lambda uri, rid: _client(uri).search_runs(["0"])[0].info.status,
    "last_active_run": lambda uri, rid: fitscribe.last_active_run().info.status,  # type: ignore[union-attr]
    "Client.list_artifacts": lambda uri, rid: "estimator.html" in {f.path for f in _client(uri).list_artifacts(rid)},
    "fitscribe.download_artifacts": lambda uri, rid: Path(fitscribe.download_artifacts(rid, "estimator.html")).exists(),
    "Client.get_metric_history": lambda uri, rid: len(_client(uri).get_metric_history(rid, "training_score")),
    "cli runs describe": lambda uri, rid: _cli_describe(uri, rid)["info"]["status"],
}
EXPECTED = {"Client.list_artifacts": True, "fitscribe.download_artifacts": True, "Client.get_metric_history": 1}


@pytest.mark.parametrize("how", list(READS))
def test_a_read_right_after_fit_waits_for_the_background_finisher(how: str, tmp_path: Path, data: Any) -> None:
    uri = str(tmp_path / "store")
    fitscribe.set_tracking_uri(uri)
    fitscribe.autolog()
    gate = Gate()  # the finisher is busy: autolog's work for this fit is queued behind the gate
    LogisticRegression().fit(*data)
    answer = gate.read(lambda: READS[how](uri, _last_run_id()))
    assert answer == EXPECTED.get(how, "FINISHED")


def _last_run_id() -> str:
    """The id of the run autolog just opened (known without a read, so without waiting)."""
    from fitscribe import fluent

    run_id = fluent._PROCESS.last_run_id
    assert run_id is not None
    return run_id


def test_last_active_run_waits_for_autolog_probe_f1(tmp_path: Path, data: Any) -> None:
    """Probe F1: last_active_run() must not return the RUNNING, metric-less run while autolog works."""
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    fitscribe.autolog()
    gate = Gate()
    LogisticRegression().fit(*data)
    run = gate.read(fitscribe.last_active_run)
    assert run is not None and run.info.status == "FINISHED" and run.info.end_time is not None
    assert set(run.data.metrics) == SKLEARN_METRICS


@pytest.mark.timeout(120)
def test_idle_reads_do_not_wait_and_the_finishers_own_reads_do_not_deadlock(tmp_path: Path, data: Any) -> None:
    from fitscribe import _pending

    uri = str(tmp_path / "store")
    client = _client(uri)
    run = client.create_run("0")
    assert _pending.pending() == 0 and _pending.settle(timeout=0)
    fitscribe.set_tracking_uri(uri)
    fitscribe.autolog()
    # The finisher reads the parent run to write the children: it must not wait on itself.
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(*data)
    assert _pending.settle(timeout=60), "a read still waits: the finisher is stuck"
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    assert _pending.pending() == 0


# -- item 2: the deferred work uses the run's own client --------------------------------------------

def test_deferred_work_goes_to_the_runs_store_after_set_tracking_uri(tmp_path: Path, data: Any) -> None:
    first, other = str(tmp_path / "first"), str(tmp_path / "other")
    fitscribe.set_tracking_uri(first)
    fitscribe.autolog()
    gate = Gate()  # autolog's work runs only after the switch below
    LogisticRegression().fit(*data)
    fitscribe.set_tracking_uri(other)
    run_id = _last_run_id()
    gate.read(lambda: _client(first).get_run(run_id))
    _check_logreg_run(first, run_id)
    assert fitscribe.search_runs(output_format="list") == []  # nothing went to the other store


@LIGHTNING_WARNINGS
def test_lightning_model_goes_to_the_runs_store_after_set_tracking_uri(tmp_path: Path) -> None:
    torch = require_module("torch")
    pl = require_module("lightning.pytorch")
    first, other = str(tmp_path / "first"), str(tmp_path / "other")
    fitscribe.set_tracking_uri(first)
    fitscribe.autolog()
    gate = Gate()  # the model is saved only after the switch below
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(_tiny_module(pl, torch), torch.utils.data.DataLoader(data, batch_size=8))
    fitscribe.set_tracking_uri(other)
    run_id = _last_run_id()
    gate.read(lambda: _client(first).get_run(run_id))
    assert "model" in {f.path for f in _client(first).list_artifacts(run_id)}
    with open(_client(first).download_artifacts(run_id, "fitscribe.autolog.report.json")) as fh:
        assert json.load(fh)["skipped"] == []


# -- item 3: the user's exception always comes out unchanged ----------------------------------------

def _sabotaged_pipeline(error: Exception) -> Pipeline:
    """A pipeline whose first step deletes and purges the run autolog opened, then raises ``error``:
    ending the run then fails in the store (RunNotFound), while the user's fit raised."""

    def step(X: Any) -> Any:
        active = fitscribe.active_run()
        assert active is not None
        client = fitscribe.get_client()
        client.delete_run(active.info.run_id)
        client.purge_run(active.info.run_id)
        raise error

    return Pipeline([("sabotage", FunctionTransformer(step)), ("lr", LogisticRegression())])


def test_users_exception_comes_out_unchanged_and_ours_is_a_warning(
    tmp_path: Path, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FITSCRIBE_STRICT")
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    fitscribe.autolog()
    error = ValueError("the user's own error")
    with pytest.warns(FitscribeWarning, match="could not") as caught:
        with pytest.raises(ValueError) as raised:
            _sabotaged_pipeline(error).fit(*data)
    assert raised.value is error
    assert error.__context__ is None and error.__cause__ is None
    assert any("could not end run" in str(w.message) and "RunNotFound" in str(w.message) for w in caught)


def test_strict_mode_raises_ours_chained_to_the_users(tmp_path: Path, data: Any) -> None:
    fitscribe.set_tracking_uri(str(tmp_path / "store"))
    fitscribe.autolog()
    error = ValueError("the user's own error")
    with pytest.raises(FitscribeError) as raised:
        _sabotaged_pipeline(error).fit(*data)
    assert raised.value.__cause__ is error
