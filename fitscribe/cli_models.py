"""``fitscribe models ...``: the model registry from a shell, and serving.

Registry: ``list``, ``describe NAME``, ``register RUN_URI NAME``, ``transition NAME VERSION STAGE``,
``alias NAME ALIAS VERSION`` (``--delete`` removes it), ``history NAME [--version N]`` (the audit
trail: who changed what, when, old -> new). Serving: ``serve -m URI``,
``predict -m URI -i FILE``, ``generate-dockerfile -m URI``. Flags follow ``mlflow models``
(``-m/--model-uri``, ``-p/--port``, ``-h/--host`` is ``--host`` here since ``-h`` is help,
``-w/--workers``, ``-t/--timeout``, ``--env-manager``, ``-i/--input-path``, ``-o/--output-path``,
``-d/--output-directory``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from fitscribe.client import Client
    from fitscribe.entities import ModelVersion, RegisteredModel

__all__ = ["add_models_parser", "run_models_command"]

Out = Callable[[str], None]


def add_models_parser(groups: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``models`` command group to the ``fitscribe`` parser (``command`` makes one subcommand)."""
    models = groups.add_parser(
        "models", help="the model registry (list, describe, register, transition, alias, history) and serving"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        p = command(models, name, "models", help_text)
        p.set_defaults(models_action=name.replace("-", "_"))
        return p

    p = sub("list", "List registered models with their latest versions and aliases.")
    p.add_argument("--filter", help="e.g. \"name LIKE 'churn%%'\"")
    p.add_argument("--max-results", "-n", type=int, default=100, help="at most this many models (default 100)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub("describe", "Show a registered model: description, tags, aliases and every version.")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub("register", "Register a logged model as a new version (creating the registered model if needed).")
    p.add_argument("model_uri", metavar="RUN_URI", help="e.g. runs:/<run id>/model")
    p.add_argument("name")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag for the version (repeatable)")
    p.add_argument("--description", help="the version's description")
    p = sub("transition", "Move a version to a stage: None, Staging, Production or Archived.")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("stage")
    p.add_argument("--archive-existing", action="store_true", help="archive the model's other versions in that stage")
    p.add_argument("--comment", help="why, kept in the audit trail (see `models history`)")
    p = sub("alias", "Point an alias (e.g. champion) at a version; --delete removes it.")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version", nargs="?", help="the version (omit with --delete)")
    p.add_argument("--delete", action="store_true", help="remove the alias")
    p = sub("history", "Show the audit trail of a model (or one version): who changed what, when, old -> new.")
    p.add_argument("name")
    p.add_argument("--version", help="only this version's changes")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_serving(sub)


def _add_serving(sub: Callable[[str, str], argparse.ArgumentParser]) -> None:
    env_help = "local: this Python environment (default); virtualenv: one built from the model's requirements.txt"
    p = sub("serve", "Serve a model over MLflow's scoring protocol (POST /invocations; GET /ping, /health, /version).")
    p.add_argument("--model-uri", "-m", required=True, help="runs:/..., models:/name/1, models:/name@alias, a folder...")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", "-p", type=int, default=5000, help="TCP port (default 5000; 0 picks a free one)")
    p.add_argument("--workers", "-w", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--timeout", "-t", type=float, default=60.0, help="seconds one prediction may take (default 60; 504 past it)")
    p.add_argument("--max-request-mb", type=float, default=64.0, help="larger request bodies get 413 (default 64)")
    p.add_argument("--env-manager", choices=("local", "virtualenv"), default="local", help=env_help)
    p = sub("predict", "Predict on a request file (JSON as /invocations takes it, or CSV) and print the answer.")
    p.add_argument("--model-uri", "-m", required=True)
    p.add_argument("--input-path", "-i", help="JSON or CSV file (default: standard input)")
    p.add_argument("--output-path", "-o", help="write the answer here (default: print it)")
    p.add_argument("--content-type", "-t", choices=("json", "csv"), default="json", help="input format (default json; .csv files are CSV)")
    p.add_argument("--env-manager", choices=("local", "virtualenv"), default="local", help=env_help)
    p = sub("generate-dockerfile", "Write a Dockerfile and build context that serve the model on port 8080.")
    p.add_argument("--model-uri", "-m", required=True)
    p.add_argument("--output-directory", "-d", default="fitscribe-dockerfile", help="where to write (default ./fitscribe-dockerfile)")


def run_models_command(args: argparse.Namespace, client: "Client", out: Out) -> None:
    """Run the ``models`` subcommand named by ``args.models_action``."""
    action = args.models_action
    if action in ("serve", "predict") and args.env_manager == "virtualenv":
        _rerun_in_virtualenv(args, client)
        return
    handlers: dict[str, Callable[[argparse.Namespace, "Client", Out], None]] = {
        "list": _list, "describe": _describe, "register": _register, "transition": _transition,
        "alias": _alias, "history": _history, "serve": _serve, "predict": _predict, "generate_dockerfile": _dockerfile,
    }
    handlers[action](args, client, out)


def _uses_client(client: "Client") -> None:
    """Make model URIs (``runs:/``, ``models:/``) resolve against the CLI's tracking store."""
    from fitscribe import fluent

    fluent.set_tracking_uri(client.tracking_uri)


def _version_line(v: "ModelVersion") -> list[str]:
    from fitscribe.cli import _time

    return [str(v.version), v.current_stage, ", ".join(v.aliases), v.run_id or "", _time(v.creation_timestamp), v.source]


def _list(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.cli import _cut, _table

    models = client.search_registered_models(filter_string=args.filter, max_results=args.max_results)
    if args.json:
        out(json.dumps([_model_dict(m) for m in models], indent=2))
        return
    rows = []
    for m in models:
        latest = ", ".join(f"v{v.version} {v.current_stage}" for v in sorted(m.latest_versions, key=lambda v: v.version))
        aliases = ", ".join(f"{a}=v{n}" for a, n in sorted(m.aliases.items()))
        tags = ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items()))
        rows.append([m.name, latest, aliases, _cut(tags, 40), _cut(m.description or "", 40)])
    _table(["name", "latest versions", "aliases", "tags", "description"], rows, out)


def _all_versions(client: "Client", name: str) -> list["ModelVersion"]:
    quoted = name.replace("'", "\\'")
    return sorted(client.search_model_versions(f"name = '{quoted}'"), key=lambda v: v.version)


def _model_dict(m: "RegisteredModel", versions: list["ModelVersion"] | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(m)
    if versions is not None:
        data["versions"] = [asdict(v) for v in versions]
    return data


def _describe(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.cli import _table, _time

    model = client.get_registered_model(args.name)
    versions = _all_versions(client, args.name)
    if args.json:
        out(json.dumps(_model_dict(model, versions), indent=2))
        return
    out(f"name:        {model.name}")
    out(f"created:     {_time(model.creation_timestamp)}")
    out(f"description: {model.description or ''}")
    out("aliases:     " + (", ".join(f"{a} -> v{n}" for a, n in sorted(model.aliases.items())) or "(none)"))
    out("tags:        " + (", ".join(f"{k}={v}" for k, v in sorted(model.tags.items())) or "(none)"))
    out("")
    _table(["version", "stage", "aliases", "run", "created", "source"], [_version_line(v) for v in versions], out)


def _register(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.errors import AlreadyExistsError, InvalidValueError
    from fitscribe.flavors.loading import parse_runs_uri

    tags = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidValueError(f"--tag takes KEY=VALUE, not {item!r}.")
        tags[key] = value
    parsed = parse_runs_uri(args.model_uri)
    run_id = parsed[0] if parsed else None
    if run_id is not None:
        client.get_run(run_id)  # a clear RunNotFound before anything is created
    try:
        client.create_registered_model(args.name)
    except AlreadyExistsError:
        pass
    version = client.create_model_version(args.name, args.model_uri, run_id=run_id, tags=tags or None,
                                          description=args.description)
    out(f"Registered {args.model_uri} as {args.name} version {version.version} "
        f"(load it with models:/{args.name}/{version.version}).")


def _transition(args: argparse.Namespace, client: "Client", out: Out) -> None:
    version = client.transition_model_version_stage(args.name, args.version, args.stage,
                                                    archive_existing_versions=args.archive_existing,
                                                    comment=args.comment)
    out(f"{args.name} version {version.version} is now in stage {version.current_stage}.")


def _alias(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.errors import InvalidValueError

    if args.delete:
        client.delete_registered_model_alias(args.name, args.alias)
        out(f"Removed alias {args.alias!r} of {args.name}.")
        return
    if args.version is None:
        raise InvalidValueError("Give the VERSION the alias points at (or --delete to remove it).")
    client.set_registered_model_alias(args.name, args.alias, args.version)
    out(f"{args.name}@{args.alias} -> version {args.version}.")


def _history(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from dataclasses import asdict

    from fitscribe.cli import _table, _time

    if args.version is not None:
        events = client.get_model_version_history(args.name, args.version)
    else:
        events = client.get_registered_model_history(args.name)
    if args.json:
        out(json.dumps([asdict(e) for e in events], indent=2))
        return
    if not events:
        out(f"No recorded changes of {args.name}" + (f" version {args.version}." if args.version else "."))
        return
    rows = [[_time(e.timestamp), e.user_id or "", e.action, "" if e.version is None else str(e.version), e.key or "",
             f"{e.old_value if e.old_value is not None else '-'} -> {e.new_value if e.new_value is not None else '-'}",
             e.comment or ""] for e in events]
    _table(["when", "who", "action", "version", "key", "old -> new", "comment"], rows, out)


def _serve(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.serving.run import serve

    _uses_client(client)
    serve(args.model_uri, host=args.host, port=args.port, workers=args.workers, timeout=args.timeout,
          max_request_mb=args.max_request_mb, announce=lambda line: (out(line), sys.stdout.flush()))


def _predict(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.serving.run import predict_file

    _uses_client(client)
    answer = predict_file(args.model_uri, args.input_path, args.output_path, args.content_type)
    if not args.output_path:
        out(answer.decode("utf-8"))


def _dockerfile(args: argparse.Namespace, client: "Client", out: Out) -> None:
    from fitscribe.serving.run import generate_dockerfile

    _uses_client(client)
    generate_dockerfile(args.model_uri, args.output_directory, announce=out)


def _rerun_in_virtualenv(args: argparse.Namespace, client: "Client") -> None:
    """Run the same command with ``--env-manager local`` in an environment made from the model's
    requirements (the model is downloaded once here and served from that folder)."""
    from fitscribe.flavors.loading import resolve_model_uri
    from fitscribe.serving.run import virtualenv_python

    _uses_client(client)
    folder = resolve_model_uri(args.model_uri)
    python = virtualenv_python(folder)
    code = subprocess.call([python, "-m", "fitscribe", *_local_argv(args, folder)])
    if code:
        from fitscribe.errors import FitscribeError

        raise FitscribeError(f"The command in the model's virtual environment exited with status {code}.")


def _local_argv(args: argparse.Namespace, folder: str) -> list[str]:
    """The same ``models serve|predict`` command, on the downloaded folder, in this environment."""
    argv = ["models", args.models_action, "--model-uri", folder, "--env-manager", "local"]
    if args.models_action == "serve":
        argv += ["--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
                 "--timeout", str(args.timeout), "--max-request-mb", str(args.max_request_mb)]
    else:
        argv += ["--content-type", args.content_type]
        argv += ["--input-path", os.path.abspath(args.input_path)] if args.input_path else []
        argv += ["--output-path", os.path.abspath(args.output_path)] if args.output_path else []
    return argv
