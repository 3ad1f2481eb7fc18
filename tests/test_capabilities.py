"""Declared capabilities: stores subclass ``TrackingStore``/``ArtifactStore`` and override the optional
capabilities they do better; everything else gets the base's fallbacks, plugins that do not subclass
included, and nothing in the package probes a store to find out what it can do."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import fitscribe
from fitscribe.backends import get_artifact_store, get_tracking_store, tracking_stores
from fitscribe.backends.base import ArtifactStore, TrackingStore
from fitscribe.entities import Metric
from fitscribe.errors import ConfigError, InvalidValueError, RegistryNotSupportedError

PACKAGE = Path(fitscribe.__file__).parent
HIDDEN = frozenset({"flush", "sync", "count_runs", "record_logged_model", "delete_experiment_tag", "registry",
                    "metric_arrays", "run_start_times", "accepts_request_ids"})


class _PluginStore:
    """A third-party store written against the old structural interface: it does not subclass
    ``TrackingStore`` and has none of the optional capabilities (here: a SQL store with them hidden)."""

    def __init__(self, uri: str, **options: Any) -> None:
        self._inner = get_tracking_store(uri.split("://", 1)[1], **options)

    def __getattr__(self, name: str) -> Any:
        if name in HIDDEN:
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[str]:
    undo = tracking_stores.register("capplug", _PluginStore)
    yield f"capplug://{tmp_path / 'store'}"
    undo()


def _entry(run_id: str, path: str) -> dict[str, Any]:
    return {"run_id": run_id, "artifact_path": path, "utc_time_created": "2026-12-07 00:00:00.000000",
            "flavors": {"python_function": {}}}


def test_built_in_stores_subclass_their_base_and_declare_what_they_do_better(tmp_path: Path) -> None:
    sql = get_tracking_store(str(tmp_path / "store"))
    rest = get_tracking_store("http://127.0.0.1:9")  # constructors do no I/O: nothing is contacted
    assert isinstance(sql, TrackingStore) and isinstance(rest, TrackingStore)
    assert sql.accepts_request_ids and not rest.accepts_request_ids
    assert sql.registry is not None and rest.registry is rest
    with pytest.raises(ConfigError, match="not a tracking server"):
        sql.sync()  # an embedded store keeps no journal to send
    local = get_artifact_store(str(tmp_path / "artifacts"))
    s3 = get_artifact_store("s3://bucket/prefix")
    proxy = get_artifact_store("mlflow-artifacts:/1/a/artifacts", tracking_uri="http://127.0.0.1:9")
    assert all(isinstance(store, ArtifactStore) for store in (local, s3, proxy))
    assert local.local_path("a/b.txt") == str(tmp_path / "artifacts" / "a" / "b.txt")
    assert s3.local_path("a") is None and proxy.scratch_folder() is None and not proxy.adopt_folder("x", "y")
    assert s3.reports_progress and not local.reports_progress and not proxy.reports_progress
    sql.close()


def test_a_plugin_store_that_does_not_subclass_gets_the_fallbacks(plugin: str) -> None:
    client = fitscribe.Client(plugin)
    store = client.store
    assert isinstance(store, TrackingStore) and type(store).__name__ == "_PluginStore"
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("m", v, 1000 + i, i) for i, v in enumerate([0.5, math.nan, math.inf])])
    client.flush()  # the fallback: nothing queued
    assert store.count_runs(["0"]) is None and not store.accepts_request_ids
    with pytest.raises(ConfigError, match=r"\(_PluginStore\) is not a tracking server"):
        store.sync()
    for path in ("model", "model2"):
        store.record_logged_model(run_id, _entry(run_id, path))  # the fallback: read, append, write back
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "model2"]
    arrays = store.metric_arrays([run_id], "m")
    assert arrays[run_id].steps.tolist() == [0, 1, 2] and store.metric_arrays([run_id], "nope")[run_id].steps.size == 0
    assert np.array_equal(arrays[run_id].values, [0.5, math.nan, math.inf], equal_nan=True)
    assert store.run_start_times([run_id, "f" * 32]) == {run_id: client.get_run(run_id).info.start_time}
    with pytest.raises(InvalidValueError, match=r"_PluginStore\) cannot delete experiment tags"):
        store.delete_experiment_tag("0", "k")
    with pytest.raises(RegistryNotSupportedError, match=r"\(_PluginStore\) has no model registry"):
        client.create_registered_model("m")
    client.close()


def test_the_generic_metric_arrays_read_the_same_as_the_sql_columnar_one(tmp_path: Path) -> None:
    store = get_tracking_store(str(tmp_path / "store"))
    run_id = store.create_run("0", "u", 1).info.run_id
    steps = [5, 1, 3, 1, 9, 0, 7]  # out of order, one step twice
    values = [0.1, math.nan, -math.inf, 2.0, math.inf, -0.0, 1e308]
    store.log_batch(run_id, metrics=[Metric("loss", v, 2000 + i, s) for i, (s, v) in enumerate(zip(steps, values))])
    store.log_batch(run_id, metrics=[Metric("other", 1.0, 3000, 0)])
    fast = store.metric_arrays([run_id], "loss")[run_id]
    generic = TrackingStore.metric_arrays(store, [run_id], "loss")[run_id]
    for a, b in zip(fast, generic):
        assert np.array_equal(a, b, equal_nan=True)
    assert fast.steps.tolist() == sorted(steps)
    store.close()


def test_the_server_on_a_plugin_store_answers_with_the_fallbacks(plugin: str, tmp_path: Path) -> None:
    import httpx

    from fitscribe.server import create_app
    from fitscribe.server.run import ThreadedServer

    client = fitscribe.Client(plugin)
    for _ in range(3):
        client.create_run("0")
    client.close()
    with ThreadedServer(create_app(plugin, str(tmp_path / "served"))) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            summary = http.get("/ui/api/experiments/summary", params={"ids": "0"})
            assert summary.status_code == 200 and summary.json()["experiments"]["0"]["runs"] == 3  # counted by paging
            deleted = http.post("/api/2.0/mlflow/experiments/delete-experiment-tag",
                                json={"experiment_id": "0", "key": "k"})
            assert deleted.status_code == 400 and "cannot delete experiment tags" in deleted.text
            registry = http.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"})
            assert registry.status_code == 400 and "no model registry" in registry.text


_CAPABILITIES = "|".join(sorted(HIDDEN | {"local_path", "scratch_folder", "adopt_folder", "reports_progress"}))
_PROBES = {
    "a getattr/hasattr probe of a capability": re.compile(rf"""(?:getattr|hasattr)\([^()]*,\s*["'](?:{_CAPABILITIES})["']"""),
    "an isinstance check for the SQL store": re.compile(r"isinstance\([^()]*,\s*SqlTrackingStore\)"),
    "a call of a store's private reader": re.compile(r"\bstore\._(?:read|hot_read|write)\("),
    "a call of the client's private artifact store": re.compile(r"client\._artifact_store\("),
    "a signature inspection of a store method": re.compile(r"signature\(store\."),
}


def test_nothing_in_the_package_probes_a_store_for_a_capability() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "backends/base.py" or relative.startswith("backends/sql/"):
            continue  # the bases define the capabilities; the SQL store reads its own connections
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{relative}:{number}: {what}: {line.strip()}" for what, probe in _PROBES.items()
                      if probe.search(line)]
    assert not found, "\n".join(found)
