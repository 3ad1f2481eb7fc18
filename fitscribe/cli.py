"""The ``fitscribe`` command: look at and tidy a tracking store from the shell.

    fitscribe experiments list|create|delete|restore|rename
    fitscribe runs list|describe|delete|restore
    fitscribe artifacts list|download|upload
    fitscribe db upgrade [URI]
    fitscribe gc [--older-than 30d] [--dry-run]
    fitscribe server [--backend-store-uri URI] [--artifacts-destination URI] [--host H] [--port P]

Every command takes ``--tracking-uri`` (default: ``FITSCRIBE_TRACKING_URI``, else ``./fitruns``).
Errors print ``error: <what was wrong and how to fix it>`` and exit with status 1. Importing this
module is cheap: the store and SQLAlchemy load when a command runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence

from fitscribe._time import now_ms

from fitscribe.cli_mlflow import MlflowCommands, extend_parser, normalize

if TYPE_CHECKING:
    from fitscribe.client import Client
    from fitscribe.entities import Experiment, Run

__all__ = ["main", "build_parser"]


# -- formatting ------------------------------------------------------------------------------------
def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: int | None, end: int | None) -> str:
    if start is None:
        return "-"
    seconds = ((end if end is not None else now_ms()) - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: Callable[[str], None]) -> None:
    """Print rows as aligned columns (values longer than 60 characters are cut with '...')."""
    cells = [[_cut(str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    out("  ".join("-" * w for w in widths))
    for row in cells:
        out("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _cut(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric(value: float) -> str:
    return f"{value:.6g}"


def _parse_age(text: str) -> int:
    """Return milliseconds for '30d', '12h', '15m', '45s' or '2w'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age; write e.g. 30d, 12h, 15m, 45s or 2w")
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return int(float(m.group(1)) * factor * 1000)


# -- commands --------------------------------------------------------------------------------------
class _Commands(MlflowCommands):
    """The command implementations, each reading parsed arguments and writing to ``out``."""

    def __init__(self, args: argparse.Namespace, out: Callable[[str], None]) -> None:
        from fitscribe.client import Client

        self.args = args
        self.out = out
        self.client: Client = Client(args.tracking_uri)

    def _json(self, data: Any) -> None:
        self.out(json.dumps(data, indent=2, sort_keys=False, allow_nan=True))

    def _experiment_id(self, ref: str) -> str:
        """Accept an experiment id or name."""
        exp = self.client.get_experiment_by_name(ref)
        if exp is not None:
            return exp.experiment_id
        if ref.isdigit():
            return self.client.get_experiment(ref).experiment_id
        from fitscribe.errors import ExperimentNotFound

        raise ExperimentNotFound(f"No experiment has the name or id {ref!r}; see `fitscribe experiments list`.")

    # experiments
    def experiments_list(self) -> None:
        from fitscribe.entities import ViewType

        view = ViewType.parse(self.args.view) if getattr(self.args, "view", None) else (
            ViewType.ALL if self.args.all else ViewType.ACTIVE_ONLY)
        experiments: list[Experiment] = []
        token = None
        while True:
            page = self.client.search_experiments(view, 1000, self.args.filter, ["experiment_id ASC"], token)
            experiments += page
            token = page.token
            if not token:
                break
        experiments = experiments[: getattr(self.args, "max_results", None) or len(experiments)]
        if self.args.json:
            self._json([_experiment_dict(e) for e in experiments])
            return
        rows = [(e.experiment_id, e.name, e.lifecycle_stage, _time(e.creation_time), e.artifact_location) for e in experiments]
        _table(["ID", "NAME", "STAGE", "CREATED", "ARTIFACT LOCATION"], rows, self.out)

    def experiments_create(self) -> None:
        exp_id = self.client.create_experiment(self.args.name, self.args.artifact_location)
        self.out(f"Created experiment {self.args.name!r} with id {exp_id}.")

    def experiments_delete(self) -> None:
        exp_id = self._experiment_id(self.args.experiment)
        self.client.delete_experiment(exp_id)
        self.out(f"Deleted experiment {exp_id} (restore it with `fitscribe experiments restore {exp_id}`).")

    def experiments_restore(self) -> None:
        exp_id = self._experiment_id(self.args.experiment)
        self.client.restore_experiment(exp_id)
        self.out(f"Restored experiment {exp_id}.")

    def experiments_rename(self) -> None:
        exp_id = self._experiment_id(self.args.experiment)
        self.client.rename_experiment(exp_id, self.args.new_name)
        self.out(f"Renamed experiment {exp_id} to {self.args.new_name!r}.")

    # runs
    def runs_list(self) -> None:
        from fitscribe.entities import ViewType

        from fitscribe.config import ENV_EXPERIMENT_ID, ENV_EXPERIMENT_NAME, env_value

        named = self.args.experiment or [env_value(ENV_EXPERIMENT_ID) or env_value(ENV_EXPERIMENT_NAME) or ""]
        if named[0]:
            ids = [self._experiment_id(e) for e in named]
        else:
            ids = [e.experiment_id for e in self.client.search_experiments(ViewType.ACTIVE_ONLY, 50000)]
        view = ViewType.parse(self.args.view) if getattr(self.args, "view", None) else (
            ViewType.ALL if self.args.all else ViewType.ACTIVE_ONLY)
        runs = self.client.search_runs(ids, self.args.filter or "", view, self.args.max_results, self.args.order_by or None)
        if self.args.json:
            self._json([r.to_dict() for r in runs])
            return
        metric_keys = sorted({k for r in runs for k in r.data.metrics})[: self.args.metric_columns]
        headers = ["RUN ID", "NAME", "STATUS", "STARTED", "DURATION"] + [m.upper() for m in metric_keys]
        rows = [
            [r.info.run_id, r.info.run_name or "", r.info.status.value, _time(r.info.start_time),
             _duration(r.info.start_time, r.info.end_time)]
            + [_metric(r.data.metrics[k]) if k in r.data.metrics else "-" for k in metric_keys]
            for r in runs
        ]
        _table(headers, rows, self.out)
        more = " (more exist: raise --max-results or narrow --filter)" if runs.token else ""
        self.out(f"{len(runs)} run(s){more}")

    def runs_describe(self) -> None:
        run: Run = self.client.get_run(self.args.run_id)
        if self.args.json:
            self._json(run.to_dict())
            return
        info = run.info
        exp = self.client.get_experiment(info.experiment_id)
        fields = [
            ("run id", info.run_id), ("name", info.run_name or ""), ("experiment", f"{exp.name} ({exp.experiment_id})"),
            ("status", info.status.value), ("lifecycle", info.lifecycle_stage), ("user", info.user_id),
            ("started", _time(info.start_time)), ("ended", _time(info.end_time)),
            ("duration", _duration(info.start_time, info.end_time)), ("artifacts", info.artifact_uri),
        ]
        width = max(len(k) for k, _ in fields)
        for key, value in fields:
            self.out(f"{key.ljust(width)}  {value}")
        for title, mapping in (("params", run.data.params), ("tags", run.data.tags)):
            self.out(f"\n{title} ({len(mapping)})")
            if mapping:
                _table(["KEY", "VALUE"], sorted(mapping.items()), self.out)
        self.out(f"\nmetrics ({len(run.data.metrics)})")
        if run.data.metrics:
            summaries = run.data.metric_summaries
            rows = []
            for key, value in sorted(run.data.metrics.items()):
                s = summaries.get(key)
                rows.append([key, _metric(value), "-" if s is None or s.min is None else _metric(s.min),
                             "-" if s is None or s.max is None else _metric(s.max), "-" if s is None else s.step])
            _table(["KEY", "LAST", "MIN", "MAX", "STEP"], rows, self.out)

    def runs_delete(self) -> None:
        for run_id in self.args.run_ids:
            self.client.delete_run(run_id)
            self.out(f"Deleted run {run_id}.")
        self.out("Restore with `fitscribe runs restore <id>`; `fitscribe gc` erases deleted runs for good.")

    def runs_restore(self) -> None:
        for run_id in self.args.run_ids:
            self.client.restore_run(run_id)
            self.out(f"Restored run {run_id}.")

    # artifacts
    def artifacts_list(self) -> None:
        infos = self.client.list_artifacts(self.args.run_id, self.args.path)
        if self.args.json:
            self._json([{"path": i.path, "is_dir": i.is_dir, "file_size": i.file_size} for i in infos])
            return
        if not infos:
            self.out("(no artifacts here)")
            return
        _table(["PATH", "SIZE"], [(i.path + ("/" if i.is_dir else ""), _size(i.file_size)) for i in infos], self.out)

    def artifacts_download(self) -> None:
        import tempfile

        if getattr(self.args, "artifact_uri", None):  # MLflow's --artifact-uri
            from fitscribe.artifacts import download_artifacts

            self.out(download_artifacts(artifact_uri=self.args.artifact_uri, dst_path=self.args.dst))
            return

        from fitscribe._progress import download  # a progress line on a terminal, for big transfers
        from fitscribe.backends import get_artifact_store

        store = get_artifact_store(self.client.get_artifact_uri(self.args.run_id))
        self.out(download(store, self.args.path or "", self.args.dst or tempfile.mkdtemp(prefix="fitscribe-download-")))

    def artifacts_upload(self) -> None:
        from fitscribe._progress import upload
        from fitscribe.backends import get_artifact_store

        store = get_artifact_store(self.client.get_artifact_uri(self.args.run_id))
        upload(store, self.args.local_path, self.args.artifact_path)
        self.out(self.client.get_artifact_uri(self.args.run_id, self.args.artifact_path))

    # maintenance
    def db_upgrade(self) -> None:
        from fitscribe.config import resolve_tracking_uri
        from fitscribe.uri import redact

        uri = resolve_tracking_uri(self.args.uri or self.args.tracking_uri)
        from fitscribe.backends.sql.engine import make_engine, parse_database_uri, upgrade_schema

        engine = make_engine(parse_database_uri(uri))
        try:
            before, after = upgrade_schema(engine)
        finally:
            engine.dispose()
        if before == after:
            self.out(f"{redact(uri)} is already at schema revision {after}.")
        else:
            self.out(f"Upgraded {redact(uri)} from schema revision {before or '(empty)'} to {after}.")

    def gc(self) -> None:
        older = None
        if self.args.older_than is not None:
            older = now_ms() - self.args.older_than
        run_ids = self.args.run_ids or self.client.deleted_run_ids(older)
        if not run_ids:
            self.out("Nothing to purge: no deleted runs" + (" that old." if older else "."))
            return
        verb = "Would purge" if self.args.dry_run else "Purged"
        for i, run_id in enumerate(run_ids, 1):
            if not self.args.dry_run:
                self.client.purge_run(run_id)
            self.out(f"{verb} run {run_id} ({i}/{len(run_ids)})")
        self.out(f"{verb} {len(run_ids)} run(s) and their artifacts.")

    def sync(self) -> None:
        from fitscribe.errors import ConfigError
        from fitscribe.uri import redact

        store = self.client.store
        try:
            sent = store.sync()
        except ConfigError as exc:  # the store keeps no journal: it writes straight to its database
            raise ConfigError(f"{redact(self.client.tracking_uri)!r} is not a tracking server: `fitscribe sync` sends "
                              "what waits in the journal of one; give --tracking-uri http(s)://host:port.") from exc
        self.out(f"Sent {sent / 1000:.1f} kB of journaled writes to {redact(self.client.tracking_uri)}; nothing waits.")

    def import_(self) -> None:
        from fitscribe.cli_import import run_import_command

        run_import_command(self.args, self.out)

    def models(self) -> None:
        from fitscribe.cli_models import run_models_command

        run_models_command(self.args, self.client, self.out)

    def server(self) -> None:
        from fitscribe.config import resolve_tracking_uri
        from fitscribe.server.run import serve
        from fitscribe.server.security import run_secret_helpers, security_from_args

        def announce(line: str) -> None:
            self.out(line)
            sys.stdout.flush()  # the URL must reach a pipe at once

        a = self.args
        if run_secret_helpers(a, self.out):
            return
        serve(a.backend_store_uri or resolve_tracking_uri(a.tracking_uri), a.artifacts_destination, host=a.host,
              port=a.port, workers=a.workers, serve_artifacts=not a.no_serve_artifacts, announce=announce,
              security=security_from_args(a), name=f"fitscribe {a.group}")


def _experiment_dict(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id, "name": e.name, "artifact_location": e.artifact_location,
        "lifecycle_stage": str(e.lifecycle_stage), "creation_time": e.creation_time,
        "last_update_time": e.last_update_time, "tags": dict(e.tags),
    }


# -- parser ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``fitscribe`` command."""
    from fitscribe import __version__

    uri_help = "tracking store (default: $FITSCRIBE_TRACKING_URI, else ./fitruns)"
    # accepted before or after the command; SUPPRESS keeps a subcommand from resetting it to None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tracking-uri", metavar="URI", default=argparse.SUPPRESS, help=uri_help)
    parser = argparse.ArgumentParser(prog="fitscribe", description="Look at and tidy a fitscribe tracking store.")
    parser.add_argument("--tracking-uri", metavar="URI", default=None, help=uri_help)
    parser.add_argument("--version", action="version", version=f"fitscribe {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)

    def command(sub: Any, name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    exp = groups.add_parser("experiments", help="list, create, delete, restore, rename experiments").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = command(exp, "list", "experiments_list", "List experiments.")
    p.add_argument("--all", action="store_true", help="include deleted experiments")
    p.add_argument("--filter", help="e.g. \"name LIKE 'mnist%%'\"")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command(exp, "create", "experiments_create", "Create an experiment.")
    p.add_argument("name")
    p.add_argument("--artifact-location", "-l", help="where its runs store artifacts (default: under the store)")
    for name, help_text in (("delete", "Move an experiment and its runs to the trash."), ("restore", "Restore a deleted experiment.")):
        p = command(exp, name, f"experiments_{name}", help_text)
        p.add_argument("experiment", help="experiment name or id")
    p = command(exp, "rename", "experiments_rename", "Rename an experiment.")
    p.add_argument("experiment", help="experiment name or id")
    p.add_argument("new_name")

    runs = groups.add_parser("runs", help="list, describe, delete, restore runs").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = command(runs, "list", "runs_list", "List runs, newest first.")
    p.add_argument("--experiment", "-e", action="append", help="experiment name or id (repeatable; default: $FITSCRIBE_EXPERIMENT_ID or _NAME, or "
                   "the MLFLOW_ ones, else all)")
    p.add_argument("--filter", "-f", help="e.g. \"metrics.acc > 0.9 AND params.model = 'rf'\"")
    p.add_argument("--order-by", "-o", action="append", help="e.g. \"metrics.acc DESC\" (repeatable)")
    p.add_argument("--max-results", "-n", type=int, default=100, help="at most this many runs (default 100)")
    p.add_argument("--metric-columns", type=int, default=4, help="metric columns to show (default 4)")
    p.add_argument("--all", action="store_true", help="include deleted runs")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = command(runs, "describe", "runs_describe", "Show a run's info, params, metrics and tags.")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print JSON")
    for name, help_text in (("delete", "Move runs to the trash."), ("restore", "Restore deleted runs.")):
        p = command(runs, name, f"runs_{name}", help_text)
        p.add_argument("run_ids", nargs="+", metavar="RUN_ID")

    arts = groups.add_parser("artifacts", help="list, download and upload a run's artifacts").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p = command(arts, "list", "artifacts_list", "List a run's artifacts under a path.")
    p.add_argument("--run-id", "-r", required=True)
    p.add_argument("--path", "-p", help="folder inside the run's artifacts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(arts, "download", "artifacts_download", "Download an artifact file or folder; print where it is.")
    p.add_argument("--run-id", "-r", required=True)
    p.add_argument("--path", "-p", help="file or folder (default: everything)")
    p.add_argument("--dst", "-d", help="destination folder (default: a new temporary folder)")
    p = command(arts, "upload", "artifacts_upload", "Upload a file or a folder's contents to a run's artifacts.")
    p.add_argument("--run-id", "-r", required=True)
    p.add_argument("local_path", metavar="PATH", help="file or folder to upload")
    p.add_argument("--artifact-path", "-p", help="folder inside the run's artifacts (default: the top)")

    db = groups.add_parser("db", help="database maintenance").add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(db, "upgrade", "db_upgrade", "Migrate a tracking database to this version's schema (back it up first).")
    p.add_argument("uri", nargs="?", help="database URI or store folder (default: --tracking-uri)")

    p = command(groups, "gc", "gc", "Erase deleted runs and their artifacts for good.")
    p.add_argument("--older-than", type=_parse_age, metavar="AGE", help="only runs deleted at least this long ago (30d, 12h...)")
    p.add_argument("--run-ids", nargs="+", metavar="RUN_ID", help="only these deleted runs")
    p.add_argument("--dry-run", action="store_true", help="list what would be erased, erase nothing")

    command(groups, "sync", "sync", "Send the writes journaled while a tracking server was unreachable, now.")

    p = command(groups, "server", "server", "Serve MLflow's REST API and artifact proxy (needs fitscribe[server]).")
    p.add_argument("--backend-store-uri", metavar="URI", help="tracking store (default: --tracking-uri)")
    p.add_argument("--artifacts-destination", metavar="URI", help="where proxied artifacts are kept (default: beside the store)")
    p.add_argument("--no-serve-artifacts", action="store_true", help="no artifact proxy: clients write to artifact locations directly")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5000, help="TCP port (default 5000; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    from fitscribe.server.security import add_security_arguments

    add_security_arguments(p)

    p = command(groups, "ui", "server", "Browse runs in a web browser: the server and its web UI on 127.0.0.1 (needs fitscribe[server]).")
    p.add_argument("--backend-store-uri", metavar="URI", help="tracking store (default: --tracking-uri)")
    p.add_argument("--artifacts-destination", metavar="URI", help="where proxied artifacts are kept (default: beside the store)")
    p.add_argument("--port", type=int, default=5000, help="TCP port (default 5000; 0 picks a free one)")
    p.set_defaults(host="127.0.0.1", workers=1, no_serve_artifacts=False)
    add_security_arguments(p)
    from fitscribe.cli_models import add_models_parser

    add_models_parser(groups, command)
    from fitscribe.cli_import import add_import_parser

    add_import_parser(groups, command)
    extend_parser(parser, command)  # MLflow's flags and subcommands (fitscribe.cli_mlflow)
    return parser


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the ``fitscribe`` command; return the exit status (0 ok, 1 error, 2 usage)."""
    from fitscribe.errors import FitscribeError

    args = build_parser().parse_args(argv)
    normalize(args)
    commands = _Commands(args, out)
    try:
        getattr(commands, args.handler)()
    except FitscribeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fitscribe runs list | head`
        return 0
    finally:
        commands.client.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
