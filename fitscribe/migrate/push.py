"""``fitscribe push``: send the runs of a local store (or of a bundle) to a fitscribe server, keeping
their ids, times, histories and artifacts.

The server side is a fitscribe extension of MLflow's REST API (``server/routes/imports.py``), since
MLflow's protocol cannot create a run with a given id:

1. **compare**: ``POST /api/2.0/fitscribe/import/compare`` with the run ids, experiment names,
   registered model names and logged model ids to push; the server answers what it holds of them
   (``held.py``'s shape): per run a digest (fields, params, tags, point count per series) and its
   artifact files with their sizes; experiments with their stage and tags; registered models with
   their versions, stages, aliases, tags and descriptions; logged models with their fields and files;
2. **send**: the runs that differ (new, changed, an artifact file missing or of another size, or
   the run of a model version the server lacks) go in small bundles (``bundle.py``'s format, as an
   uncompressed ``.tar``, at most :data:`RUNS_PER_REQUEST` runs and about :data:`BYTES_PER_REQUEST`
   of artifacts each), one ``POST /api/2.0/fitscribe/import`` per bundle, which the server imports
   with the same idempotent importer as ``fitscribe import``; a registered model goes with the runs
   of its new versions. Then what changed apart from runs (an experiment without runs, or its tags
   or stage; a registered model's alias, stage, tags or description; a logged model, its tags,
   params, status or files) goes in bundles without runs, decided by the importer's own rules
   (``registry.model_pending``...). What a request brought stays, so an interrupted push completes
   when run again, sending only the rest; a second push sends nothing;
3. **verify**: a second compare, shown as the importer's verification table (``verify.rows``), with
   the point hash of every series on both sides when the source hashes them (fitscribe stores,
   bundles, MLflow stores), so a value that differs is found even where the counts agree.

Deletions: soft deletions (the lifecycle stage of an experiment, run or logged model) travel like any
other field. A registered model or version deleted here, or an alias or tag removed, is not removed
from the server: MLflow deletes those for good, the server's registry is shared, and a store cannot
tell a model deleted here from one it never had; delete it on the server if that is meant.

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

from .bundle import Selection
from .held import source_digest, stored_digest, stored_logged_model, stored_model
from .plan import experiment_changes, local_files
from .source import HasLoggedModels, Source, SourceExperiment, SourceLoggedModel, SourceModel, SourceRun
from .verify import Verification, rows

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
"""A bundle holds at most this many runs (or logged models) and, unless one alone is bigger, about this
many bytes of files: small enough that an interrupted push loses little, large enough to amortise a request."""
_KILL_HOOK = "FITSCRIBE_TEST_PUSH_KILL_AFTER"


@dataclass
class PushResult:
    """What a push sent (or would send, with ``dry_run``) and the closing verification."""

    dry_run: bool = False
    runs_selected: int = 0
    runs_sent: int = 0
    others_sent: int = 0  # experiments, registered models and logged models sent apart from runs
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
        self._logged = source.logged_models() if isinstance(source, HasLoggedModels) else []

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

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return the logged models (none if the source has none)."""
        return self._logged

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder of a run's artifacts, or None."""
        return self.source.artifact_folder(run)

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the local folder of a logged model's files, or None."""
        return self.source.logged_model_folder(model) if isinstance(self.source, HasLoggedModels) else None

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
        self.held_versions: dict[str, set[int]] = {}  # model name -> version numbers the server holds

    def select(self, experiments: Sequence[str], run_ids: Sequence[str]) -> Selection:
        """Return what to push: the chosen experiments (all, with those holding no run, unless runs are
        named), their runs, the registered models with a version of those runs (all models when nothing
        is chosen), and the logged models of those experiments (those the runs produced, if runs are named).

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
        used = {r.experiment_id for r in runs}
        exps = [e for e in self.source.experiments()
                if (e.experiment_id in used if run_ids else not experiments or e.name in experiments)]
        exp_ids = {e.experiment_id for e in exps}
        models = [m for m in self.source.models()
                  if not (experiments or run_ids) or any(ver.run_id in chosen for ver in m.versions)]
        logged = [m for m in self.source.logged_models()
                  if m.experiment_id in exp_ids and (not run_ids or m.source_run_id in chosen)]
        return Selection(exps, runs, models, logged)

    def manifest(self, run: SourceRun) -> dict[str, int]:
        """Return the run's local artifact files: relative path -> size."""
        if run.run_id not in self.manifests:
            self.manifests[run.run_id] = _listing(self.source.artifact_folder(run))
        return self.manifests[run.run_id]

    def compare(self, chosen: Selection, values: bool = False) -> dict[str, Any]:
        """Ask the server what it holds of the chosen runs, experiments, models and logged models (with
        ``values``, also the point hash of each run's series)."""
        body = {"run_ids": [r.run_id for r in chosen.runs], "models": [m.name for m in chosen.models],
                "experiments": sorted({e.name for e in chosen.experiments}),
                "logged_models": [m.model_id for m in chosen.logged_models], "values": values}
        return self._post_json(COMPARE_PATH, body)

    def values(self, runs: list[SourceRun]) -> dict[tuple[str, str], int] | None:
        """Return the point hash of each series of these runs, or None if the source does not hash them."""
        from .source import HasMetricHashes

        if not isinstance(self.source.source, HasMetricHashes):
            return None
        wanted = {r.run_id for r in runs}
        keys = sorted({key for run_id in wanted for key in self.series.get(run_id, {})})
        return {(run_id, key): h for key in keys
                for run_id, h in self.source.source.series_hashes(key).items() if run_id in wanted}

    def pending(self, chosen: Selection, held: dict[str, Any]) -> tuple[list[SourceRun], Selection]:
        """Return the runs the server lacks or holds differently (with the runs of model versions it
        lacks), and what else it lacks or holds differently (experiments, models, logged models)."""
        stored_runs = held.get("runs", {})
        wanted = set()
        for run in chosen.runs:
            theirs = stored_runs.get(run.run_id)
            if theirs is None or theirs.get("digest") != source_digest(run, self.series.get(run.run_id, {})):
                wanted.add(run.run_id)
            elif theirs.get("artifacts") is not None and _differ(self.manifest(run), theirs["artifacts"]):
                wanted.add(run.run_id)
        known = {r.run_id for r in self.source.runs()}
        stored_models = self.held_versions = {name: set(numbers) for name, numbers in held.get("models", {}).items()}
        from .registry import DELETED_STAGE, model_pending

        for model in chosen.models:
            have = stored_models.get(model.name, set())
            wanted.update(v.run_id for v in model.versions
                          if v.current_stage != DELETED_STAGE and v.version not in have and v.run_id in known)
        registry = held.get("registry")
        rest = Selection(
            [e for e in chosen.experiments if self._experiment_pending(e, held)],
            models=[m for m in chosen.models if registry is None or m.name not in registry
                    or model_pending(m, stored_model(registry[m.name]))],
            logged_models=[m for m in chosen.logged_models if self._logged_pending(m, held.get("logged_models"))])
        todo = [r for r in self.source.runs() if r.run_id in wanted]
        return todo, rest

    @staticmethod
    def _experiment_pending(exp: SourceExperiment, held: dict[str, Any]) -> bool:
        states = held.get("experiment_states")
        if exp.name not in held.get("experiments", {}) or states is None:
            return True
        return any(experiment_changes(exp, states[exp.name]["lifecycle_stage"], states[exp.name]["tags"]))

    def _logged_pending(self, model: SourceLoggedModel, held: dict[str, Any] | None) -> bool:
        from .logged_models import logged_model_pending

        theirs = (held or {}).get(model.model_id)
        if theirs is None:
            return True
        if logged_model_pending(model, stored_logged_model(theirs)):
            return True
        files = theirs.get("files")
        return theirs["lifecycle_stage"] == "active" and files is not None and _differ(
            _listing(self.source.logged_model_folder(model)), files)

    def batches(self, todo: list[SourceRun], rest: Selection) -> Iterator[Selection]:
        """Yield the bundles to send: the runs in groups of at most RUNS_PER_REQUEST and about
        BYTES_PER_REQUEST (each with its experiments and the registered models of its runs), then the
        rest (experiments, the registered models not sent yet, logged models in groups the same way)."""
        by_id = {e.experiment_id: e for e in self.source.experiments()}
        sent_models: set[str] = set()
        sent_experiments: set[str] = set()
        known = {r.run_id for r in self.source.runs()}
        for group in _groups(todo, lambda run: sum(self.manifest(run).values())):
            ids = {r.run_id for r in group}
            models = [self._part(m, ids, known) for m in self.source.models() if any(v.run_id in ids for v in m.versions)]
            sent_models.update(m.name for m in models)
            experiments = _experiments_of(group, by_id)
            sent_experiments.update(e.experiment_id for e in experiments)
            yield Selection(experiments, group, models)
        models = [m for m in rest.models if m.name not in sent_models]
        others = [e for e in rest.experiments if e.experiment_id not in sent_experiments]
        groups = list(_groups(rest.logged_models, lambda m: sum(_listing(self.source.logged_model_folder(m)).values())))
        if not groups and (others or models):
            groups = [[]]
        for index, logged in enumerate(groups):
            exps = {e.experiment_id: e for e in (others if index == 0 else [])}
            exps.update((e.experiment_id, e) for e in _experiments_of(logged, by_id))
            yield Selection(list(exps.values()), [], models if index == 0 else [], logged)

    def _part(self, model: SourceModel, run_ids: set[str], known: set[str]) -> SourceModel:
        """Return ``model`` with the versions a bundle of these runs may create: those the server holds,
        those of these runs, those of no run here; a version whose run goes in a later bundle waits
        for it, so its source is pointed at the server's copy of that run's artifacts."""
        from dataclasses import replace

        from .registry import DELETED_STAGE

        have = self.held_versions.get(model.name, set())
        versions = [v for v in model.versions if v.version in have or v.run_id in run_ids or v.run_id not in known
                    or v.current_stage == DELETED_STAGE]
        numbers = {v.version for v in versions}
        return replace(model, versions=versions, aliases={a: n for a, n in model.aliases.items() if n in numbers})

    def send(self, chosen: Selection, folder: str) -> tuple[dict[str, Any], int]:
        """Write one bundle of ``chosen`` and post it; return the server's report and the bytes sent."""
        from .bundle import write_selection

        path = os.path.join(folder, "push.tar")
        write_selection(self.source, path, chosen)
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


def _listing(folder: str | None) -> dict[str, int]:
    """Return the files under a local folder: relative path -> size (none if it is not one)."""
    return {rel: size for _, rel, size in local_files(folder)} if folder and os.path.isdir(folder) else {}


def _differ(mine: dict[str, int], theirs: dict[str, int]) -> bool:
    """True if a local file is missing from ``theirs`` or has another size there."""
    return any(theirs.get(rel) != size for rel, size in mine.items())


def _groups(items: list[Any], size_of: Callable[[Any], int]) -> Iterator[list[Any]]:
    """Yield ``items`` in groups of at most RUNS_PER_REQUEST and about BYTES_PER_REQUEST."""
    group: list[Any] = []
    total = 0
    for item in items:
        nbytes = size_of(item)
        if group and (len(group) >= RUNS_PER_REQUEST or total + nbytes > BYTES_PER_REQUEST):
            yield group
            group, total = [], 0
        group.append(item)
        total += nbytes
    if group:
        yield group


def _experiments_of(items: list[Any], by_id: dict[str, SourceExperiment]) -> list[SourceExperiment]:
    """Return the experiments the runs or logged models belong to, each once."""
    ids = dict.fromkeys(item.experiment_id for item in items)
    return [by_id[i] for i in ids if i in by_id]


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
        chosen = pusher.select(experiments, run_ids)
        result = PushResult(dry_run=dry_run, runs_selected=len(chosen.runs))
        result.skipped = [f"artifacts of run {r.run_id}: {redact(r.artifact_uri)!r} is not a local folder (not sent)"
                          for r in chosen.runs
                          if r.artifact_uri and not pusher.remote and pusher.source.artifact_folder(r) is None]
        for line in result.skipped:
            out(f"Skipped: {line}")
        todo, rest = pusher.pending(chosen, pusher.compare(chosen))
        if dry_run:
            result.runs_sent = len(todo)
            result.others_sent = sum(len(b.experiments) + len(b.models) + len(b.logged_models)
                                     for b in pusher.batches(todo, rest) if not b.runs)
            result.bytes_sent = sum(sum(pusher.manifest(r).values()) for r in todo)
            result.points_added = sum(sum(pusher.series.get(r.run_id, {}).values()) for r in todo)
            return result
        _send_all(pusher, todo, rest, result)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="push-hashes") as pool:  # hashed here while the server hashes
            values = pool.submit(pusher.values, chosen.runs)
            held = pusher.compare(chosen, values=True)
            result.verification = _verify(pusher, chosen, held, values.result())
        result.seconds = time.monotonic() - started
        return result
    finally:
        session.close()


def _send_all(pusher: _Pusher, todo: list[SourceRun], rest: Selection, result: PushResult) -> None:
    kill_after = int(os.environ.get(_KILL_HOOK) or 0)
    names = {e.experiment_id: e.name for e in pusher.source.experiments()}
    with _bar(pusher.progress, len(todo)) as bar, tempfile.TemporaryDirectory(prefix="fitscribe-push-") as folder:
        for batch in pusher.batches(todo, rest):
            answer, size = pusher.send(batch, folder)
            report = answer.get("report", {})
            result.requests += 1
            result.runs_sent += len(batch.runs)
            if not batch.runs:
                result.others_sent += len(batch.experiments) + len(batch.models) + len(batch.logged_models)
            result.bytes_sent += size
            result.runs_added += int(report.get("runs_added", 0))
            result.points_added += int(report.get("points_added", 0))
            result.artifact_files += int(report.get("artifact_files", 0))
            for local_id, server_id in report.get("experiment_ids", {}).items():
                result.experiment_ids[names.get(local_id, local_id)] = server_id
                line = f"Experiment {local_id} ({names.get(local_id, '?')!r}) is experiment {server_id} on the server."
                if local_id != server_id and line not in result.mapped:
                    result.mapped.append(line)
            bar.update(len(batch.runs))
            bar.set_postfix_str(f"{result.bytes_sent / 2**20:.1f} MiB sent", refresh=False)
            if bar.silent:
                others = f", {result.others_sent} other change(s)" if result.others_sent else ""
                pusher.out(f"Sent {result.runs_sent}/{len(todo)} run(s){others}, {result.bytes_sent / 2**20:.2f} MiB.")
            if kill_after and result.requests >= kill_after:
                os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _verify(pusher: _Pusher, chosen: Selection, held: dict[str, Any],
            values: dict[tuple[str, str], int] | None) -> Verification:
    """Build the closing table (``verify.rows``): counts per entity, artifact files and run digests,
    the local source against the server."""
    result = Verification()
    rows(result, chosen.experiments, chosen.runs, pusher.series, chosen.models, chosen.logged_models, held,
         {r.run_id: pusher.manifest(r) for r in chosen.runs}, values)
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
