"""``fitscribe push``: send the runs of a local store (or of a bundle) to a fitscribe server, keeping
their ids, times, histories and artifacts.

The server side is a fitscribe extension of MLflow's REST API (``server/routes/imports.py``), since
MLflow's protocol cannot create a run with a given id:

1. **compare**: ``POST /api/2.0/fitscribe/import/compare`` with the run ids, experiment names and
   model names to push; the server answers what it holds of them: per run a digest (fields, params,
   tags, point count per series: :func:`run_digest`) and its artifact files with their sizes, and
   the version numbers of each model;
2. **send**: the runs that differ (new, changed, an artifact file missing or of another size, or
   the run of a model version the server lacks) go in small bundles (``bundle.py``'s format, as an
   uncompressed ``.tar``, at most :data:`RUNS_PER_REQUEST` runs and about :data:`BYTES_PER_REQUEST`
   of artifacts each), one ``POST /api/2.0/fitscribe/import`` per bundle, which the server imports
   with the same idempotent importer as ``fitscribe import``. What a request brought stays, so an
   interrupted push completes when run again, sending only the rest; a second push sends nothing;
3. **verify**: a second compare, shown as the importer's verification table.

Registered models travel with their runs (a model whose versions the server lacks is sent with the
runs of those versions); a later change of a model alone (a new alias or stage) is not detected.

Testing hook: ``FITSCRIBE_TEST_PUSH_KILL_AFTER=N`` makes the pushing process SIGKILL itself after N
requests, so tests can interrupt a push at a known point.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Sequence

from fitscribe.errors import ConfigError, InvalidValueError

from .source import Source, SourceExperiment, SourceModel, SourceRun
from .verify import Verification, run_digest

if TYPE_CHECKING:
    from fitscribe.backends.rest.http import HttpSession

__all__ = ["PushResult", "push", "source_digest", "stored_digest", "IMPORT_PATH", "COMPARE_PATH",
           "RUNS_PER_REQUEST", "BYTES_PER_REQUEST"]

IMPORT_PATH = "/api/2.0/fitscribe/import"
"""The server's endpoint taking one bundle (an uncompressed tar) per request."""
COMPARE_PATH = "/api/2.0/fitscribe/import/compare"
"""The server's endpoint telling what it holds of the given runs and models."""
RUNS_PER_REQUEST = 20
BYTES_PER_REQUEST = 64 * 2**20
"""A bundle holds at most this many runs and, unless one run alone is bigger, about this many bytes of
artifacts: small enough that an interrupted push loses little, large enough to amortise a request."""
_INFO = ("name", "user_id", "status", "start_time", "end_time", "lifecycle_stage")
_KILL_HOOK = "FITSCRIBE_TEST_PUSH_KILL_AFTER"


def source_digest(run: SourceRun, series: dict[str, int]) -> str:
    """Return the digest of a run to push (as :func:`stored_digest` computes it on the server)."""
    return run_digest(tuple(getattr(run, c) for c in _INFO), run.params, run.tags, series)


def stored_digest(row: dict[str, Any], params: dict[str, str], tags: dict[str, str], series: dict[str, int]) -> str:
    """Return the digest of a stored run (a row of ``BulkImporter.state().runs``)."""
    return run_digest(tuple(row[c] for c in _INFO), params, tags, series)


@dataclass
class PushResult:
    """What a push sent (or would send, with ``dry_run``) and the closing verification."""

    dry_run: bool = False
    runs_selected: int = 0
    runs_sent: int = 0
    requests: int = 0
    bytes_sent: int = 0
    points_added: int = 0
    runs_added: int = 0
    artifact_files: int = 0
    experiment_ids: dict[str, str] = field(default_factory=dict)  # name -> server id
    mapped: list[str] = field(default_factory=list)  # "local id -> server id" lines
    skipped: list[str] = field(default_factory=list)
    verification: Verification | None = None
    seconds: float = 0.0


class _Cached:
    """A source whose listings are read once (a push writes one bundle per request)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.description = source.description
        self._experiments = source.experiments()
        self._runs = source.runs()
        self._counts = source.metric_counts()
        self._models = source.models()

    def experiments(self) -> list[SourceExperiment]:
        """Return the experiments."""
        return self._experiments

    def runs(self) -> list[SourceRun]:
        """Return the runs."""
        return self._runs

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the point count of each series."""
        return self._counts

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Any]:
        """Yield the wanted series."""
        return self.source.metric_series(wanted)

    def models(self) -> list[SourceModel]:
        """Return the registered models."""
        return self._models

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder of a run's artifacts, or None."""
        return self.source.artifact_folder(run)

    def close(self) -> None:
        """Close the source."""
        self.source.close()


class _CachedRemote(_Cached):
    """A cached source whose files are fetched through it (an MLflow tracking server)."""

    def copy_artifacts(self, run: SourceRun, dest_uri: str) -> tuple[int, int]:
        """Copy the run's files into ``dest_uri`` (a bundle's folder); return (files, bytes)."""
        return self.source.copy_artifacts(run, dest_uri)  # type: ignore[attr-defined, no-any-return]

    def copy_logged_model_artifacts(self, model: Any, dest_uri: str) -> tuple[int, int]:
        """Copy a logged model's files into ``dest_uri``; return (files, bytes)."""
        return self.source.copy_logged_model_artifacts(model, dest_uri)  # type: ignore[attr-defined, no-any-return]


class _Pusher:
    """The steps of one push (see the module docstring)."""

    def __init__(self, source: Source, session: HttpSession, progress: IO[str] | None, out: Callable[[str], None]) -> None:
        from .source import RemoteArtifacts

        self.remote = isinstance(source, RemoteArtifacts)
        self.source = _CachedRemote(source) if self.remote else _Cached(source)
        self.session = session
        self.progress = progress
        self.out = out
        self.series: dict[str, dict[str, int]] = {}
        for (run_id, key), n in self.source.metric_counts().items():
            self.series.setdefault(run_id, {})[key] = n
        self.manifests: dict[str, dict[str, int]] = {}

    def select(self, experiments: Sequence[str], run_ids: Sequence[str]) -> tuple[list[SourceRun], list[SourceModel]]:
        """Return the runs and models to push.

        Raises:
            ConfigError: An experiment name or run id is not in the source.
        """
        names = {e.experiment_id: e.name for e in self.source.experiments()}
        missing = sorted(set(experiments) - set(names.values()))
        if missing:
            raise ConfigError(f"No experiment named {', '.join(map(repr, missing))} in {self.source.description!r}; "
                              f"it has {sorted(names.values())}.")
        runs = [r for r in self.source.runs()
                if (not experiments or names.get(r.experiment_id) in experiments) and (not run_ids or r.run_id in run_ids)]
        unknown = sorted(set(run_ids) - {r.run_id for r in runs})
        if unknown:
            raise ConfigError(f"No run {', '.join(map(repr, unknown[:5]))} in {self.source.description!r}"
                              + (" among the chosen experiments." if experiments else "."))
        chosen = {r.run_id for r in runs}
        models = [m for m in self.source.models()
                  if not (experiments or run_ids) or any(ver.run_id in chosen for ver in m.versions)]
        return runs, models

    def manifest(self, run: SourceRun) -> dict[str, int]:
        """Return the run's local artifact files: relative path -> size."""
        if run.run_id not in self.manifests:
            from .plan import local_files

            folder = self.source.artifact_folder(run)
            self.manifests[run.run_id] = ({rel: size for _, rel, size in local_files(folder)}
                                          if folder and os.path.isdir(folder) else {})
        return self.manifests[run.run_id]

    def compare(self, runs: list[SourceRun], models: list[SourceModel]) -> dict[str, Any]:
        """Ask the server what it holds of these runs, their experiments and these models."""
        names = {e.experiment_id: e.name for e in self.source.experiments()}
        body = {"run_ids": [r.run_id for r in runs], "models": [m.name for m in models],
                "experiments": sorted({names[r.experiment_id] for r in runs if r.experiment_id in names})}
        return self._post_json(COMPARE_PATH, body)

    def pending(self, runs: list[SourceRun], models: list[SourceModel], held: dict[str, Any]) -> list[SourceRun]:
        """Return the runs the server lacks or holds differently (with the runs of missing model versions)."""
        stored_runs = held.get("runs", {})
        wanted = set()
        for run in runs:
            theirs = stored_runs.get(run.run_id)
            if theirs is None or theirs.get("digest") != source_digest(run, self.series.get(run.run_id, {})):
                wanted.add(run.run_id)
            elif theirs.get("artifacts") is not None:
                files = theirs["artifacts"]
                if any(files.get(rel) != size for rel, size in self.manifest(run).items()):
                    wanted.add(run.run_id)
        chosen = {r.run_id for r in runs}
        stored_models = held.get("models", {})
        for model in models:
            have = set(stored_models.get(model.name, []))
            for version in model.versions:
                if version.current_stage != "Deleted_Internal" and version.version not in have:
                    if version.run_id in chosen:
                        wanted.add(version.run_id)
        return [r for r in runs if r.run_id in wanted]

    def batches(self, runs: list[SourceRun]) -> Iterator[list[SourceRun]]:
        """Yield the runs in groups of at most RUNS_PER_REQUEST runs and about BYTES_PER_REQUEST."""
        batch: list[SourceRun] = []
        size = 0
        for run in runs:
            nbytes = sum(self.manifest(run).values())
            if batch and (len(batch) >= RUNS_PER_REQUEST or size + nbytes > BYTES_PER_REQUEST):
                yield batch
                batch, size = [], 0
            batch.append(run)
            size += nbytes
        if batch:
            yield batch

    def send(self, batch: list[SourceRun], folder: str) -> tuple[dict[str, Any], int]:
        """Write one bundle of ``batch`` and post it; return the server's report and the bytes sent."""
        from .bundle import write_bundle

        path = os.path.join(folder, f"push-{batch[0].run_id}.tar")
        write_bundle(self.source, path, run_ids=[r.run_id for r in batch])
        try:
            size = os.path.getsize(path)
            answer = self._post(IMPORT_PATH, lambda: _chunks(path), headers={
                "Content-Type": "application/x-tar", "Content-Length": str(size)})
        finally:
            os.remove(path)
        return answer, size

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from fitscribe.backends.rest.http import encode_json

        data = encode_json(body)
        return self._post(path, lambda: data, headers={"Content-Type": "application/json"})

    def _post(self, path: str, content: Callable[[], Any], headers: dict[str, str]) -> dict[str, Any]:
        """Post ``content()`` and return the JSON answer; a request that got no answer or a 503 is sent
        again (up to 3 times, 0.5 s, 1 s, 2 s apart): the server's importer writes only what it lacks
        (its runs in one transaction, then the missing artifact files), so sending a bundle twice is harmless.

        Raises:
            ConfigError: The server has no import endpoint (not a fitscribe server of this version).
            FitscribeError: What the server answered (403 for a read-only identity, 400...).
        """
        from fitscribe.errors import BackendError

        for attempt in range(4):
            try:
                return self._post_once(path, content(), headers)
            except BackendError:
                if attempt == 3:
                    raise
                time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _post_once(self, path: str, content: Any, headers: dict[str, str]) -> dict[str, Any]:
        import httpx

        from fitscribe.backends.rest.http import decode_response, unavailable

        url = f"{self.session.base_url}{path}"
        what = f"POST {path} on {self.session.base_url}"
        try:
            response = self.session.client.post(url, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise unavailable(exc, what) from exc
        if response.status_code in (404, 405):
            raise ConfigError(f"{self.session.base_url} has no fitscribe import endpoint ({path}); push needs a "
                              "fitscribe server of this version or newer (an MLflow server cannot keep run ids).")
        return decode_response(response, what, self.session.credential_source or "")


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while True:
            data = handle.read(1 << 20)
            if not data:
                return
            yield data


def push(source: Source, url: str, *, experiments: Sequence[str] = (), run_ids: Sequence[str] = (),
         dry_run: bool = False, progress: IO[str] | None = None,
         out: Callable[[str], None] = lambda line: None) -> PushResult:
    """Push ``source`` (a local store read as a source, a bundle, or an MLflow store) to a fitscribe server.

    Args:
        source: What to push (closed by the caller).
        url: The server, ``http(s)://host:port`` (credentials as for any tracking server).
        experiments: Only the runs of these experiments (names; default all).
        run_ids: Only these runs.
        dry_run: Compare and say what would be sent; send nothing.
        progress: A stream for a progress bar (drawn only on a terminal), or None.
        out: Where a line per request (when no bar is drawn) and each skipped item go.

    Returns:
        The result, with the closing verification (None for a dry run).

    Raises:
        ConfigError: Bad selection, or the server has no import endpoint.
        FitscribeError: The server refused a request (403 for a read-only identity...).
        ServerUnavailableError: The server could not be reached; run the push again.
    """
    from fitscribe.backends.rest.http import HttpSession
    from fitscribe.uri import redact

    started = time.monotonic()
    session = HttpSession(url, timeout=600.0, connect_timeout=5.0)
    try:
        pusher = _Pusher(source, session, progress, out)
        runs, models = pusher.select(experiments, run_ids)
        result = PushResult(dry_run=dry_run, runs_selected=len(runs))
        result.skipped = [f"artifacts of run {r.run_id}: {redact(r.artifact_uri)!r} is not a local folder (not sent)"
                          for r in runs if r.artifact_uri and not pusher.remote and pusher.source.artifact_folder(r) is None]
        for line in result.skipped:
            out(f"Skipped: {line}")
        todo = pusher.pending(runs, models, pusher.compare(runs, models))
        if dry_run:
            result.runs_sent = len(todo)
            result.bytes_sent = sum(sum(pusher.manifest(r).values()) for r in todo)
            result.points_added = sum(sum(pusher.series.get(r.run_id, {}).values()) for r in todo)
            return result
        _send_all(pusher, todo, result)
        result.verification = _verify(pusher, runs, models, pusher.compare(runs, models))
        result.seconds = time.monotonic() - started
        return result
    finally:
        session.close()


def _send_all(pusher: _Pusher, todo: list[SourceRun], result: PushResult) -> None:
    kill_after = int(os.environ.get(_KILL_HOOK) or 0)
    names = {e.experiment_id: e.name for e in pusher.source.experiments()}
    with _bar(pusher.progress, len(todo)) as bar, tempfile.TemporaryDirectory(prefix="fitscribe-push-") as folder:
        for batch in pusher.batches(todo):
            answer, size = pusher.send(batch, folder)
            report = answer.get("report", {})
            result.requests += 1
            result.runs_sent += len(batch)
            result.bytes_sent += size
            result.runs_added += int(report.get("runs_added", 0))
            result.points_added += int(report.get("points_added", 0))
            result.artifact_files += int(report.get("artifact_files", 0))
            for local_id, server_id in report.get("experiment_ids", {}).items():
                result.experiment_ids[names.get(local_id, local_id)] = server_id
                line = f"Experiment {local_id} ({names.get(local_id, '?')!r}) is experiment {server_id} on the server."
                if local_id != server_id and line not in result.mapped:
                    result.mapped.append(line)
            bar.update(len(batch))
            bar.set_postfix_str(f"{result.bytes_sent / 2**20:.1f} MiB sent", refresh=False)
            if bar.silent:
                pusher.out(f"Sent {result.runs_sent}/{len(todo)} run(s), {result.bytes_sent / 2**20:.2f} MiB.")
            if kill_after and result.requests >= kill_after:
                os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _verify(pusher: _Pusher, runs: list[SourceRun], models: list[SourceModel], held: dict[str, Any]) -> Verification:
    """Build the closing table: counts per entity and run digests, local source against the server."""
    stored = held.get("runs", {})
    names = {e.experiment_id: e.name for e in pusher.source.experiments()}
    wanted_names = {names[r.experiment_id] for r in runs if r.experiment_id in names}
    result = Verification()
    here = [r for r in runs if r.run_id in stored]
    result.rows.append(("experiments", len(wanted_names), sum(1 for n in wanted_names if n in held.get("experiments", {}))))
    result.rows.append(("runs", len(runs), len(here)))
    result.rows.append(("params", sum(len(r.params) for r in runs), sum(stored[r.run_id]["params"] for r in here)))
    result.rows.append(("tags", sum(len(r.tags) for r in runs), sum(stored[r.run_id]["tags"] for r in here)))
    result.rows.append(("metric points", sum(sum(pusher.series.get(r.run_id, {}).values()) for r in runs),
                        sum(stored[r.run_id]["points"] for r in here)))
    files = [(r.run_id, rel, size) for r in runs for rel, size in pusher.manifest(r).items()]
    result.rows.append(("artifact files", len(files), sum(
        1 for run_id, rel, size in files
        if run_id in stored and (stored[run_id].get("artifacts") or {}).get(rel) == size)))
    stored_models = held.get("models", {})
    result.rows.append(("registered models", len(models), sum(1 for m in models if m.name in stored_models)))
    live = [(m.name, ver.version) for m in models for ver in m.versions if ver.current_stage != "Deleted_Internal"]
    result.rows.append(("model versions", len(live), sum(1 for name, n in live if n in stored_models.get(name, []))))
    for run in runs:
        result.runs_checked += 1
        theirs = stored.get(run.run_id, {}).get("digest")
        if theirs != source_digest(run, pusher.series.get(run.run_id, {})):
            result.mismatched_runs.append(run.run_id)
    return result


class _Bar:
    """A tqdm bar of runs on a terminal; silent (``silent`` True) elsewhere."""

    def __init__(self, stream: IO[str] | None, total: int) -> None:
        self.silent = stream is None or not getattr(stream, "isatty", lambda: False)() or not total
        self._bar: Any = None
        if not self.silent:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" runs", file=stream, desc="push")

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, n: int) -> None:
        """Count ``n`` more runs sent."""
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Show ``text`` after the bar."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=refresh)


def _bar(stream: IO[str] | None, total: int) -> _Bar:
    return _Bar(stream, total)


def check_url(url: str) -> str:
    """Return ``url`` if it is an http(s) URL.

    Raises:
        InvalidValueError: It is not.
    """
    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"{url!r} is not a server URL; give http(s)://host:port of a fitscribe server.")
    return url
