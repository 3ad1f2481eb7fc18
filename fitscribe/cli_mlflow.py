"""MLflow's spellings of the ``fitscribe`` commands: where fitscribe and MLflow share a command, the
``mlflow`` flags work too, and MLflow's extra subcommands exist.

    fitscribe experiments create -n NAME [-l LOCATION]      (also: create NAME)
    fitscribe experiments delete|restore -x ID              (also: delete NAME_OR_ID)
    fitscribe experiments rename -x ID --new-name NAME
    fitscribe experiments search [-v active_only|deleted_only|all] [--max-results N]
    fitscribe experiments get -x ID | -n NAME [--output json|table]
    fitscribe experiments csv -x ID [-o FILE]
    fitscribe runs list --experiment-id ID [-v VIEW]
    fitscribe runs describe|delete|restore --run-id ID
    fitscribe runs create --experiment-id ID | --experiment-name NAME [--run-name] [-t k=v] [--status]
    fitscribe artifacts list|download -r ID [-a PATH] [-u URI] [-d DST]
    fitscribe artifacts log-artifact -l FILE -r ID [-a PATH] / log-artifacts -l DIR -r ID [-a PATH]
    fitscribe gc [--older-than 1d2h3m4s] [--run-ids a,b] [--experiment-ids 1,2] [--backend-store-uri URI]

:func:`extend_parser` adds these to the parser :func:`fitscribe.cli.build_parser` made;
:func:`normalize` folds each MLflow flag into the argument fitscribe's handler reads;
:class:`MlflowCommands` holds the handlers of the added subcommands.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from fitscribe.client import Client

__all__ = ["extend_parser", "normalize", "parse_age", "MlflowCommands"]

_VIEWS = ("active_only", "deleted_only", "all")
# positional arguments that MLflow spells as options: (command path, dest) -> (flags, option dest, help)
_AS_OPTIONS: dict[tuple[str, str], tuple[tuple[str, ...], str, str]] = {
    ("experiments create", "name"): (("--experiment-name", "-n"), "opt_name", "experiment name (MLflow's spelling)"),
    ("experiments delete", "experiment"): (("--experiment-id", "-x"), "opt_experiment", "experiment id"),
    ("experiments restore", "experiment"): (("--experiment-id", "-x"), "opt_experiment", "experiment id"),
    ("experiments rename", "experiment"): (("--experiment-id", "-x"), "opt_experiment", "experiment id"),
    ("experiments rename", "new_name"): (("--new-name",), "opt_new_name", "the new name"),
    ("runs describe", "run_id"): (("--run-id",), "opt_run_id", "run id (MLflow's spelling)"),
    ("runs delete", "run_ids"): (("--run-id",), "opt_run_ids", "run id (repeatable)"),
    ("runs restore", "run_ids"): (("--run-id",), "opt_run_ids", "run id (repeatable)"),
}


def parse_age(text: str) -> int:
    """Return milliseconds for an age such as ``30d``, ``12h``, ``2w`` or MLflow's ``1d2h3m4s`` / ``1.5d``.

    >>> parse_age("1d2h3m4s")
    93784000
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not parts or re.sub(r"\s|(\d+(?:\.\d+)?)\s*[smhdw]", "", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an age; write e.g. 30d, 12h, 15m, 45s, 2w or 1d2h3m4s")
    return int(sum(float(n) * units[u] for n, u in parts) * 1000)


def _ids(text: str) -> list[str]:
    """``--run-ids a,b c`` and MLflow's ``--run-ids 'a,b'`` alike."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def _group(parser: argparse.ArgumentParser, name: str) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action
    raise KeyError(name)


def extend_parser(parser: argparse.ArgumentParser, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add MLflow's flags and subcommands to fitscribe's parser (``command`` makes a subcommand)."""
    subs = _subparsers(parser)
    for (path, dest), (flags, option_dest, help_text) in _AS_OPTIONS.items():
        sub = subs[path]
        for action in sub._actions:
            if action.dest == dest and not action.option_strings:
                action.nargs = "*" if action.nargs == "+" else "?"
                action.required = False
                action.default = None
        kind = {"action": "append"} if option_dest == "opt_run_ids" else {}
        sub.add_argument(*flags, dest=option_dest, help=help_text, **kind)
    subs["runs list"].add_argument("--experiment-id", dest="experiment", action="append", help="experiment id (MLflow's spelling of -e)")
    for path in ("runs list", "experiments list"):
        subs[path].add_argument("--view", "-v", choices=_VIEWS, type=str.lower, help="active_only (default), deleted_only or all")
    for path in ("artifacts list", "artifacts download"):
        subs[path].add_argument("--artifact-path", "-a", dest="path", help="MLflow's spelling of --path")
    subs["artifacts download"].add_argument("--dst-path", dest="dst", help="MLflow's spelling of --dst")
    subs["artifacts download"].add_argument("--artifact-uri", "-u", help="download this URI instead (runs:/..., models:/..., s3://...)")
    for action in subs["artifacts download"]._actions:
        if action.dest == "run_id":
            action.required = False
    gc = subs["gc"]
    gc._option_string_actions["--run-ids"].nargs = "+"
    gc.add_argument("--experiment-ids", type=_ids, action="extend", help="purge these deleted experiments' runs (comma separated)")
    gc.add_argument("--backend-store-uri", metavar="URI", help="MLflow's spelling of --tracking-uri")
    gc._option_string_actions["--older-than"].type = parse_age
    gc.set_defaults(handler="gc_mlflow")
    _add_subcommands(parser, command)


def _add_subcommands(parser: argparse.ArgumentParser, command: Callable[..., argparse.ArgumentParser]) -> None:
    experiments = _group(_subparsers(parser)["experiments"], "list")
    p = command(experiments, "search", "experiments_list", "Search experiments (MLflow's name for list).")
    p.add_argument("--view", "-v", choices=_VIEWS, type=str.lower, help="active_only (default), deleted_only or all")
    p.add_argument("--max-results", type=int, help="at most this many")
    p.set_defaults(all=False, filter=None, json=False)
    p = command(experiments, "get", "experiments_get", "Show one experiment by id or name.")
    p.add_argument("--experiment-id", "-x")
    p.add_argument("--experiment-name", "-n")
    p.add_argument("--output", choices=("json", "table"), default="table")
    p = command(experiments, "csv", "experiments_csv", "Write every run of an experiment as CSV.")
    p.add_argument("--experiment-id", "-x", required=True)
    p.add_argument("--filename", "-o", help="file to write (default: standard output)")
    runs = _group(_subparsers(parser)["runs"], "list")
    p = command(runs, "create", "runs_create", "Create a run and end it at once with a status.")
    p.add_argument("--experiment-id")
    p.add_argument("--experiment-name")
    p.add_argument("--run-name")
    p.add_argument("--description")
    p.add_argument("--tags", "-t", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--status", choices=("finished", "failed", "killed"), type=str.lower, default="finished")
    p.add_argument("--parent-run-id")
    artifacts = _group(_subparsers(parser)["artifacts"], "list")
    for name, what in (("log-artifact", "file"), ("log-artifacts", "dir")):
        p = command(artifacts, name, "artifacts_upload", f"Log a local {what} as artifacts of a run (MLflow's spelling of upload).")
        p.add_argument(f"--local-{what}", "-l", dest="local_path", required=True)
        p.add_argument("--run-id", "-r", required=True)
        p.add_argument("--artifact-path", "-a")


def normalize(args: argparse.Namespace) -> None:
    """Fold MLflow's flags into the arguments fitscribe's handlers read.

    Raises:
        SystemExit: A required value was given neither way (usage error, status 2).
    """
    for (path, dest), (flags, option_dest, _) in _AS_OPTIONS.items():
        if f"{getattr(args, 'group', '')} {getattr(args, 'action', '')}" != path:
            continue
        given, option = getattr(args, dest, None), getattr(args, option_dest, None)
        if given and option:
            _usage(f"give {dest.replace('_', ' ')} once: as an argument or with {flags[0]}, not both")
        value = given or option
        if not value:
            _usage(f"{path} needs {dest.replace('_', ' ')} (an argument, or {flags[0]})")
        setattr(args, dest, value)
    view = getattr(args, "view", None)
    if view:
        args.all = view == "all"
    if getattr(args, "backend_store_uri", None) and getattr(args, "handler", "") == "gc_mlflow":
        args.tracking_uri = args.backend_store_uri
    run_ids = getattr(args, "run_ids", None)
    if getattr(args, "handler", "") == "gc_mlflow" and run_ids:
        args.run_ids = [i for text in run_ids for i in _ids(text)]
    if getattr(args, "handler", "") == "artifacts_download" and not (args.run_id or args.artifact_uri):
        _usage("artifacts download needs --run-id (with --path) or --artifact-uri")


def _usage(message: str) -> None:
    print(f"fitscribe: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class MlflowCommands:
    """Handlers of the subcommands MLflow has and fitscribe's own set lacks (mixed into the CLI's)."""

    args: argparse.Namespace
    out: Callable[[str], None]
    client: "Client"

    def _experiment_id(self, ref: str) -> str:  # provided by the CLI's command class
        raise NotImplementedError

    def experiments_get(self) -> None:
        """``experiments get -x ID`` / ``-n NAME``."""
        from fitscribe.errors import ExperimentNotFound

        a = self.args
        if bool(a.experiment_id) == bool(a.experiment_name):
            _usage("experiments get needs exactly one of --experiment-id and --experiment-name")
        exp = self.client.get_experiment(a.experiment_id) if a.experiment_id else self.client.get_experiment_by_name(a.experiment_name)
        if exp is None:
            raise ExperimentNotFound(f"No experiment is named {a.experiment_name!r}; see `fitscribe experiments list`.")
        data = {"experiment_id": exp.experiment_id, "name": exp.name, "artifact_location": exp.artifact_location,
                "lifecycle_stage": str(exp.lifecycle_stage), "creation_time": exp.creation_time,
                "last_update_time": exp.last_update_time, "tags": dict(exp.tags)}
        if a.output == "json":
            self.out(json.dumps(data, indent=2))
            return
        width = max(len(k) for k in data)
        for key, value in data.items():
            self.out(f"{key.ljust(width)}  {value}")

    def experiments_csv(self) -> None:
        """``experiments csv -x ID [-o FILE]``: one row per run, params/metrics/tags as columns."""
        from fitscribe.entities import ViewType

        exp_id = self._experiment_id(self.args.experiment_id)
        runs, token = [], None
        while True:
            page = self.client.search_runs([exp_id], "", ViewType.ACTIVE_ONLY, 50_000, None, token)
            runs += page
            token = page.token
            if not token:
                break
        rows = [{"run_id": r.info.run_id, "experiment_id": r.info.experiment_id, "run_name": r.info.run_name or "",
                 "status": r.info.status.value, "artifact_uri": r.info.artifact_uri, "start_time": r.info.start_time,
                 "end_time": r.info.end_time, **{f"metrics.{k}": v for k, v in r.data.metrics.items()},
                 **{f"params.{k}": v for k, v in r.data.params.items()},
                 **{f"tags.{k}": v for k, v in r.data.tags.items()}} for r in runs]
        columns = list(dict.fromkeys(k for row in rows for k in row)) or ["run_id"]
        if self.args.filename:
            with open(self.args.filename, "w", newline="", encoding="utf-8") as fh:
                _write_csv(fh, columns, rows)
            self.out(f"Wrote {len(rows)} run(s) to {self.args.filename}.")
        else:
            import io

            buffer = io.StringIO()
            _write_csv(buffer, columns, rows)
            self.out(buffer.getvalue().rstrip("\n"))

    def runs_create(self) -> None:
        """``runs create``: a run created and ended at once, as MLflow's command."""
        from fitscribe import run_context

        a = self.args
        if bool(a.experiment_id) == bool(a.experiment_name):
            _usage("runs create needs exactly one of --experiment-id and --experiment-name")
        exp_id = a.experiment_id or self.client.get_experiment_id(a.experiment_name, create=True)
        tags = {}
        for item in a.tags:
            key, sep, value = item.partition("=")
            if not sep or not key:
                _usage(f"--tags takes KEY=VALUE, not {item!r}")
            tags[key] = value
        if a.description:
            tags[run_context.TAG_NOTE] = a.description
        if a.parent_run_id:
            self.client.get_run(a.parent_run_id)
            tags[run_context.TAG_PARENT_RUN_ID] = a.parent_run_id
        run = self.client.create_run(self._experiment_id(exp_id), tags=tags, run_name=a.run_name)
        self.client.set_terminated(run.info.run_id, a.status.upper())
        self.out(f"Created run {run.info.run_id} in experiment {run.info.experiment_id} ({a.status.upper()}).")

    def gc_mlflow(self) -> None:
        """``gc`` as MLflow's: purge deleted runs, and deleted experiments with all their runs (all of
        them, or only ``--run-ids`` / ``--experiment-ids``), with their artifacts; a purged
        experiment's name can be used again."""
        from fitscribe._time import now_ms
        from fitscribe.entities import ViewType
        from fitscribe.errors import InvalidStateError

        a = self.args
        older = None if a.older_than is None else now_ms() - a.older_than
        chosen = a.experiment_ids
        experiments = [self.client.get_experiment(e) for e in chosen] if chosen else (
            [] if a.run_ids else list(self.client.search_experiments(ViewType.DELETED_ONLY, 50_000)))
        for exp in experiments:
            if str(exp.lifecycle_stage) != "deleted":
                raise InvalidStateError(f"Experiment {exp.experiment_id} ({exp.name!r}) is not deleted; delete it "
                                        f"first (fitscribe experiments delete {exp.experiment_id}).")
        experiments = [e for e in experiments if older is None or (e.last_update_time or 0) < older]
        run_ids = list(a.run_ids or ([] if chosen else self.client.deleted_run_ids(older)))
        for exp in experiments:
            runs = self.client.search_runs([exp.experiment_id], "", ViewType.ALL, 50_000)
            run_ids += [r.info.run_id for r in runs if r.info.run_id not in run_ids]
        if not run_ids and not experiments:
            self.out("Nothing to purge: no deleted runs or experiments" + (" that old." if older else "."))
            return
        verb = "Would purge" if a.dry_run else "Purged"
        for i, run_id in enumerate(run_ids, 1):
            if not a.dry_run:
                if str(self.client.get_run(run_id).info.lifecycle_stage) != "deleted":
                    self.client.delete_run(run_id)  # a run of a deleted experiment, restored on its own
                self.client.purge_run(run_id)
            self.out(f"{verb} run {run_id} ({i}/{len(run_ids)})")
        for exp in experiments:
            if not a.dry_run:
                self.client.purge_experiment(exp.experiment_id)
            self.out(f"{verb} experiment {exp.experiment_id} ({exp.name!r})")
        self.out(f"{verb} {len(run_ids)} run(s) and their artifacts and {len(experiments)} deleted experiment(s).")


def _write_csv(fh: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
