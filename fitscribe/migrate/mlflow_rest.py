"""Read a running MLflow tracking server through its REST API (``fitscribe import mlflow http://host:5000``).

What is asked, all with GET or POST reads only (reference: MLflow's REST API):

- ``experiments/search`` (every lifecycle stage) and ``runs/search`` (1,000 runs a page, every
  lifecycle stage, page tokens followed): experiments, runs, params, tags, dataset inputs and the
  metric keys of each run;
- ``metrics/get-history``, one request per series without ``max_results`` (the server answers the
  whole history; a page token, which older servers may send, is followed);
- ``artifacts/list`` and ``/get-artifact``: a run's files, through the server, whatever its artifact
  root (the ``mlflow-artifacts`` proxy, a folder on the server, S3 the server can read);
- ``registered-models/search`` and ``model-versions/search``: the registry;
- ``logged-models/search``, ``logged-models/<id>/artifacts/directories`` and
  ``/ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files``: MLflow 3 logged models and their files.

Credentials, TLS and retries are those of the REST store (``fitscribe.backends.rest.http``): the
user and password in the URL, ``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``, and the rest.

Metric histories are fetched by a small pool of threads over runs (``workers``, default 8): each
request waits mostly on the server, so a few requests in flight pay. Measured with
benchmarks/import_vs_export_import.py (``mlflow server`` 3.17.2, one uvicorn worker, SQLite; 100
runs x 20 metrics x 500 steps, 2,000 history requests; this machine's 2 cores at load 7-9): 1
thread 115.3 s, 8 threads 66.3 s (the database itself, read directly: 4.1 s). The histories are held as
arrays (24 bytes a point) between the count (``metric_counts``, which needs them: the API has no
count) and the write.

What the protocol does not carry: a run's ``deleted_time`` (imported as None), and model versions
MLflow deleted (not served, so a version number freed by a deletion at the end of a model may be
handed out again by the destination).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from array import array
from typing import IO, Any, Iterator, Sequence

from fitscribe.entities.logged_model import STATUSES
from fitscribe.uri import redact

from .point_hash import series_hash
from .source import Series, SourceDataset, SourceExperiment, SourceLoggedModel, SourceModel, SourceRun, SourceVersion, unclamp

__all__ = ["MlflowRestSource"]

_RUNS_PER_PAGE = 1000
_EXPERIMENTS_PER_SEARCH = 50
_LOGGED_MODEL_STATUS = dict(enumerate(STATUSES))  # MLflow's LoggedModelStatus enum numbers


def _pairs(items: Any, key: str = "key", value: str = "value") -> dict[str, str]:
    return {str(item[key]): str(item.get(value, "")) for item in items or ()}


def _int(value: Any, default: int = 0) -> int:
    return default if value in (None, "") else int(value)


class MlflowRestSource:
    """An MLflow tracking server, read through its REST API and never written.

    The constructor does no I/O.

    Args:
        url: The server's URL (``http(s)://[user:password@]host:port[/prefix]``).
        workers: Threads fetching metric histories (files are fetched one at a time).
        progress: A stream for a progress bar while histories are fetched (drawn only on a terminal).
    """

    def __init__(self, url: str, *, workers: int = 8, progress: IO[str] | None = None) -> None:
        from fitscribe.backends.rest.http import HttpSession

        self.session = HttpSession(url, timeout=300.0, connect_timeout=5.0, retry_budget=30.0)
        self.description = redact(url)
        self.workers = max(1, workers)
        self.progress = progress
        self._runs: list[SourceRun] | None = None
        self._keys: dict[str, list[str]] = {}
        self._series: dict[tuple[str, str], tuple[array, array, array]] = {}
        self._hashes: dict[tuple[str, str], int] = {}
        self._fetched = False
        self._reached = False

    # -- requests ----------------------------------------------------------------------------------
    def _get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._call("GET", endpoint, None, params)

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", endpoint, body, None)  # searches: reads, safe to repeat

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None, params: dict[str, Any] | None) -> dict[str, Any]:
        """Send a read; transient failures are retried once the server has answered (a server that
        is not there at all is said at once)."""
        from fitscribe.backends.rest.http import IDEMPOTENT

        answer = self.session.call(method, endpoint, body, params=params, retry=IDEMPOTENT if self._reached else None)
        self._reached = True
        return answer

    def _pages(self, method: str, endpoint: str, request: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
        """Yield the items of every page of a search (``next_page_token`` followed)."""
        token = None
        while True:
            query = {**request, "page_token": token} if token else request
            answer = self._post(endpoint, query) if method == "POST" else self._get(endpoint, query)
            yield from answer.get(field) or ()
            token = answer.get("next_page_token")
            if not token:
                return

    # -- experiments and runs ---------------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        """Return every experiment, active and deleted, with its tags."""
        found = []
        for e in self._pages("POST", "experiments/search", {"max_results": 1000, "view_type": "ALL"}, "experiments"):
            created = _int(e.get("creation_time"))
            found.append(SourceExperiment(str(e["experiment_id"]), str(e["name"]), str(e.get("artifact_location") or ""),
                                          str(e.get("lifecycle_stage") or "active"), created,
                                          _int(e.get("last_update_time"), created), _pairs(e.get("tags"))))
        return sorted(found, key=lambda x: (len(x.experiment_id), x.experiment_id))

    def runs(self) -> list[SourceRun]:
        """Return every run, active and deleted, with params, tags and dataset inputs (read once)."""
        if self._runs is None:
            ids = [e.experiment_id for e in self.experiments()]
            runs = []
            for start in range(0, len(ids), _EXPERIMENTS_PER_SEARCH):
                request = {"experiment_ids": ids[start:start + _EXPERIMENTS_PER_SEARCH], "run_view_type": "ALL",
                           "max_results": _RUNS_PER_PAGE}
                runs += [self._run(r) for r in self._pages("POST", "runs/search", request, "runs")]
            self._runs = sorted(runs, key=lambda r: (r.start_time, r.run_id))
        return self._runs

    def _run(self, found: dict[str, Any]) -> SourceRun:
        info, data = found.get("info") or {}, found.get("data") or {}
        run_id = str(info.get("run_id") or info["run_uuid"])
        tags = _pairs(data.get("tags"))
        run = SourceRun(run_id, str(info.get("experiment_id", "")), info.get("run_name") or tags.get("mlflow.runName"),
                        str(info.get("user_id") or ""), str(info.get("status") or "RUNNING"),
                        _int(info.get("start_time")), _int(info["end_time"]) if info.get("end_time") else None,
                        str(info.get("lifecycle_stage") or "active"), None, str(info.get("artifact_uri") or ""),
                        _pairs(data.get("params")), tags)
        for item in (found.get("inputs") or {}).get("dataset_inputs") or ():
            d = item.get("dataset") or {}
            run.inputs.append(SourceDataset(f"{d.get('name', '')}:{d.get('digest', '')}", str(d.get("name", "")),
                                            str(d.get("digest", "")), str(d.get("source_type", "")),
                                            str(d.get("source", "")), d.get("schema"), d.get("profile"),
                                            _pairs(item.get("tags"))))
        self._keys[run_id] = sorted({str(m["key"]) for m in data.get("metrics") or ()})
        return run

    # -- metric histories --------------------------------------------------------------------------
    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of points of each series (fetching every history: the API has no count)."""
        self._fetch_all()
        return {series: len(columns[0]) for series, columns in self._series.items()}

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series, each ordered by step, then timestamp (handed over once: the copy
        held since :meth:`metric_counts` is then released)."""
        for run_id, key in wanted:
            columns = self._series.pop((run_id, key), None) or self._history(run_id, key)
            if len(columns[0]):
                yield (run_id, key, columns[0].tolist(), columns[1].tolist(), columns[2].tolist())

    def metric_columns(self, run_id: str, key: str) -> tuple[array, array, array] | None:
        """Return a fetched series as arrays (values, timestamps, steps), or None if not held."""
        return self._series.get((run_id, key))

    def _fetch_all(self) -> None:
        if self._fetched:
            return
        from concurrent.futures import ThreadPoolExecutor

        runs = self.runs()
        with self._bar(len(runs)) as bar, ThreadPoolExecutor(self.workers, thread_name_prefix="mlflow-rest") as pool:
            for run_id, histories in pool.map(self._run_histories, [r.run_id for r in runs]):
                for key, columns in histories.items():
                    self._series[(run_id, key)] = columns
                bar.update(1)
        self._fetched = True

    def _run_histories(self, run_id: str) -> tuple[str, dict[str, tuple[array, array, array]]]:
        return run_id, {key: self._history(run_id, key) for key in self._keys.get(run_id, ())}

    def _history(self, run_id: str, key: str) -> tuple[array, array, array]:
        """Fetch one whole series, ordered by step, then timestamp (NaN and +-inf restored)."""
        points = []
        for m in self._pages("GET", "metrics/get-history", {"run_id": run_id, "metric_key": key}, "metrics"):
            points.append((_int(m.get("step")), _int(m.get("timestamp")), unclamp(float(m.get("value", 0.0)))))
        points.sort(key=lambda p: (p[0], p[1]))
        columns = (array("d", [p[2] for p in points]), array("q", [p[1] for p in points]),
                   array("q", [p[0] for p in points]))
        self._hashes[(run_id, key)] = series_hash(*columns)
        return columns

    def key_hashes(self) -> dict[str, int]:
        """Return the hash (point_hash.py) of every point of each key over all runs, from the fetched series."""
        from .point_hash import by_key

        self._fetch_all()
        return by_key(self._hashes)

    def series_hashes(self, key: str) -> dict[str, int]:
        """Return run id -> the hash of its series of ``key``."""
        self._fetch_all()
        return {run_id: h for (run_id, k), h in self._hashes.items() if k == key}

    def _bar(self, total: int) -> Any:
        from .plan import _NoBar

        stream = self.progress
        if stream is None or not getattr(stream, "isatty", lambda: False)() or not total:
            return _NoBar()
        from tqdm import tqdm

        return tqdm(total=total, unit=" runs", file=stream, desc="metric histories fetched")

    # -- registry and logged models ----------------------------------------------------------------
    def models(self) -> list[SourceModel]:
        """Return the registered models with their versions, tags and aliases (deleted versions are not served)."""
        models: dict[str, SourceModel] = {}
        for m in self._pages("GET", "registered-models/search", {"max_results": 1000}, "registered_models"):
            created = _int(m.get("creation_timestamp"))
            models[m["name"]] = SourceModel(
                str(m["name"]), created, _int(m.get("last_updated_timestamp"), created), m.get("description"),
                _pairs(m.get("tags")), {str(a["alias"]): int(a["version"]) for a in m.get("aliases") or ()})
        for v in self._pages("GET", "model-versions/search", {"max_results": 10000}, "model_versions"):
            model = models.get(v.get("name"))
            if model is None:
                continue
            made = _int(v.get("creation_timestamp"))
            model.versions.append(SourceVersion(
                int(v["version"]), made, _int(v.get("last_updated_timestamp"), made), v.get("description"),
                v.get("user_id"), str(v.get("current_stage") or "None"), str(v.get("source") or ""),
                v.get("run_id") or None, v.get("run_link") or None, str(v.get("status") or "READY"),
                _pairs(v.get("tags"))))
        for model in models.values():
            model.versions.sort(key=lambda x: x.version)
        return list(models.values())

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return the MLflow 3 logged models of every experiment, with tags and params."""
        ids = [e.experiment_id for e in self.experiments()]
        found = []
        for start in range(0, len(ids), _EXPERIMENTS_PER_SEARCH):
            request = {"experiment_ids": ids[start:start + _EXPERIMENTS_PER_SEARCH], "max_results": 100}
            try:
                items = list(self._pages("POST", "logged-models/search", request, "models"))
            except Exception as exc:  # an MLflow 2 server has no logged models
                if _no_endpoint(exc):
                    return []
                raise
            for m in items:
                info, data = m.get("info") or {}, m.get("data") or {}
                created = _int(info.get("creation_timestamp_ms"))
                status = info.get("status") or "LOGGED_MODEL_PENDING"
                found.append(SourceLoggedModel(
                    model_id=str(info["model_id"]), experiment_id=str(info.get("experiment_id", "")),
                    name=str(info.get("name") or ""), artifact_location=str(info.get("artifact_uri") or ""),
                    creation_timestamp=created,
                    last_updated_timestamp=_int(info.get("last_updated_timestamp_ms"), created),
                    status=_LOGGED_MODEL_STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
                    model_type=info.get("model_type") or None, source_run_id=info.get("source_run_id") or None,
                    status_message=info.get("status_message") or None, tags=_pairs(info.get("tags")),
                    params=_pairs(data.get("params"))))
        return found

    # -- artifacts ---------------------------------------------------------------------------------
    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return None: a server's files are fetched through it (:meth:`copy_artifacts`)."""
        return None

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return None: a server's files are fetched through it (:meth:`copy_logged_model_artifacts`)."""
        return None

    def copy_artifacts(self, run: SourceRun, dest_uri: str) -> tuple[int, int]:
        """Copy the files of a run the destination lacks (or holds with another size); return (files, bytes)."""
        files = self._walk(lambda path: self._get("artifacts/list", {"run_id": run.run_id, **({"path": path} if path else {})}))
        return self._copy(files, dest_uri, f"{self.session.base_url}/get-artifact",
                          lambda path: {"path": path, "run_uuid": run.run_id})

    def copy_logged_model_artifacts(self, model: SourceLoggedModel, dest_uri: str) -> tuple[int, int]:
        """Copy the files of a logged model the destination lacks; return (files, bytes)."""
        from urllib.parse import quote

        endpoint = f"logged-models/{quote(model.model_id, safe='')}/artifacts/directories"
        files = self._walk(lambda path: self._get(endpoint, {"artifact_directory_path": path} if path else {}))
        url = f"{self.session.base_url}/ajax-api/2.0/mlflow/logged-models/{quote(model.model_id, safe='')}/artifacts/files"
        return self._copy(files, dest_uri, url, lambda path: {"artifact_file_path": path})

    def _walk(self, listing: Any) -> list[tuple[str, int]]:
        """Return every file below the root as (relative path, size), listing folder by folder."""
        files, folders = [], [""]
        while folders:
            folder = folders.pop()
            for item in listing(folder).get("files") or ():
                path = str(item["path"]).strip("/")
                if not path or path == folder:
                    continue
                if item.get("is_dir"):
                    folders.append(path)
                else:
                    files.append((path, _int(item.get("file_size"))))
        return sorted(files)

    def _copy(self, files: list[tuple[str, int]], dest_uri: str, url: str, params: Any) -> tuple[int, int]:
        import posixpath

        from fitscribe.backends import get_artifact_store

        if not files:
            return 0, 0
        store = get_artifact_store(dest_uri)
        root = store.local_path("")
        if root is None and store.list(""):
            return 0, 0
        missing = [(path, size) for path, size in files if root is None or not _same_size(root, path, size)]
        if not missing:
            return 0, 0
        scratch = tempfile.mkdtemp(prefix="fitscribe-import-")
        try:
            copied = 0
            for path, _size in missing:
                local = os.path.join(scratch, *path.split("/"))
                os.makedirs(os.path.dirname(local), exist_ok=True)
                copied += self._download(url, params(path), local)
                store.put(local, posixpath.dirname(path) or None)
                os.unlink(local)
            return len(missing), copied
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _download(self, url: str, params: dict[str, str], local: str) -> int:
        """Stream one file to ``local``; return its size."""
        import httpx

        from fitscribe.backends.rest.http import error_for, unavailable

        what = f"GET {url.rsplit('/', 1)[-1]} {params} on {self.description}"
        try:
            with self.session.client.stream("GET", url, params=params) as response:
                if response.status_code != 200:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise error_for(response.status_code, body, what)
                size = 0
                with open(local, "wb") as f:
                    for block in response.iter_bytes(1 << 20):
                        f.write(block)
                        size += len(block)
                return size
        except httpx.TransportError as exc:
            raise unavailable(exc, what) from exc

    def close(self) -> None:
        """Close the connections and drop the fetched histories."""
        self.session.close()
        self._series.clear()


def _same_size(root: str, path: str, size: int) -> bool:
    target = os.path.join(root, *path.split("/"))
    return os.path.isfile(target) and os.path.getsize(target) == size


def _no_endpoint(exc: Exception) -> bool:
    """True for the answer of a server without the endpoint (404/405 or ENDPOINT_NOT_FOUND)."""
    return getattr(exc, "http_status", None) in (404, 405) or "no such endpoint" in str(exc)
