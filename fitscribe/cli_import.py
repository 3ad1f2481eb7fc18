"""``fitscribe import mlflow SOURCE [--to URI] [--dry-run] [--keep-artifact-location]``,
``fitscribe import bundle PATH [--to URI] [--dry-run]``, ``fitscribe export [--experiment NAME]
[--runs ID...] -o PATH`` and ``fitscribe push STORE URL [--experiment NAME] [--runs ID...] [--dry-run]``.

A destination ``http(s)://`` (``--to`` or ``push``'s URL) is a fitscribe server: the runs go there
in small bundles through its import endpoint (``fitscribe.migrate.push``).

Brings an MLflow history (an MLflow SQL database or an ``mlruns`` folder) or a bundle into a
fitscribe SQL store, and writes bundles: see ``fitscribe.migrate``. ``cli.py`` adds the parser with :func:`add_import_parser` and
runs it with :func:`run_import_command`; ``python -m fitscribe.cli_import import mlflow ...`` runs
it alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from fitscribe.migrate.plan import ImportReport
    from fitscribe.migrate.source import Source

__all__ = ["add_import_parser", "run_import_command", "open_source", "import_mlflow", "export_bundle", "main",
           "open_push_source", "push_command"]

Out = Callable[[str], None]


def add_import_parser(groups: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``import`` command group and the ``export`` command (``command`` makes one
    subcommand, as in cli.py; every one has the handler ``import_``)."""
    imports = groups.add_parser("import", help="bring history from MLflow").add_subparsers(
        dest="action", metavar="SOURCE_KIND", required=True)
    p = command(imports, "mlflow", "import_",
                "Import an MLflow store (SQL database URI, mlruns folder or tracking server URL): experiments, runs, metrics, "
                "artifacts, registered models. Re-running adds only what is new.")
    p.add_argument("source", metavar="SOURCE", help="sqlite:///mlflow.db, postgresql://..., mysql://..., ./mlruns or http://mlflow-server:5000")
    p.add_argument("--to", metavar="URI", help="destination store (default: --tracking-uri)")
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--keep-artifact-location", action="store_true",
                   help="leave artifacts where they are (runs point at them) instead of copying them")
    p = command(imports, "bundle", "import_",
                "Import a bundle written by `fitscribe export` (a folder or .tar). Re-running adds only what is new.")
    p.add_argument("source", metavar="PATH", help="the bundle folder or .tar file")
    p.add_argument("--to", metavar="URI", help="destination store (default: --tracking-uri)")
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.set_defaults(keep_artifact_location=False)
    p = command(groups, "push", "import_",
                "Send the runs of a local store (or of a bundle folder/.tar carried by hand) to a fitscribe "
                "server, keeping run ids, times, metric histories and artifacts. Re-running sends only what is "
                "new; an interrupted push completes when run again.")
    p.add_argument("source", metavar="STORE", help="a store folder (./fitruns), sqlite:///... URI, or a bundle")
    p.add_argument("server", metavar="URL", help="the fitscribe server, http(s)://host:port")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME", help="only this experiment (repeatable)")
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN_ID", help="only these runs")
    p.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    p.set_defaults(push=True)
    p = command(groups, "export", "import_",
                "Write experiments, runs, metric histories, models and artifacts of the store (--tracking-uri) "
                "into a portable bundle: a folder, or a .tar file.")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="a new folder, or a file ending in .tar")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME", help="only this experiment (repeatable)")
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN_ID", help="only these runs")


def export_bundle(uri: str | None, output: str, experiments: Sequence[str] = (),
                  run_ids: Sequence[str] = ()) -> dict[str, int]:
    """Export a fitscribe SQL store (default: the current one) into a bundle; return its counts.

    Raises:
        ConfigError: The store is not a fitscribe SQL store, or ``output`` exists.
    """
    from fitscribe.migrate.bundle import write_bundle
    from fitscribe.migrate.fitscribe_sql import FitscribeSource

    source = FitscribeSource(_sql_destination(uri))
    try:
        return write_bundle(source, output, experiments, run_ids)
    finally:
        source.close()


def _sql_destination(uri: str | None) -> Any:
    """Return a BulkImporter on the SQL store at ``uri`` (default: the current tracking URI)."""
    from fitscribe.backends import get_tracking_store
    from fitscribe.config import resolve_tracking_uri
    from fitscribe.errors import ConfigError
    from fitscribe.uri import redact

    resolved = resolve_tracking_uri(uri)
    store = get_tracking_store(resolved)
    importer = store.bulk_importer()
    if importer is None:
        store.close()
        raise ConfigError(f"{redact(resolved)!r} is not a fitscribe SQL store; give a folder, sqlite:///, "
                          "postgresql:// or mysql:// store (a server is not supported yet).")
    return importer


def open_source(uri: str, progress: Any = None) -> Source:
    """Return the reader for an MLflow SQL URI, ``mlruns`` folder, tracking server URL or bundle
    (``progress``: a stream for the server reader's fetch bar).

    Raises:
        ConfigError: ``uri`` is none of these.
    """
    from fitscribe.errors import ConfigError
    from fitscribe.migrate.mlflow_sql import MlflowSqlSource, is_sql_uri
    from fitscribe.migrate.mlruns import MlrunsSource, is_mlruns_folder

    from fitscribe.migrate.bundle import BundleSource, is_bundle

    if is_bundle(uri):
        return BundleSource(uri)
    if is_sql_uri(uri):
        return MlflowSqlSource(uri)
    if is_mlruns_folder(uri):
        return MlrunsSource(uri)
    if uri.startswith(("http://", "https://")):
        from fitscribe.migrate.mlflow_rest import MlflowRestSource

        return MlflowRestSource(uri, progress=progress)
    raise ConfigError(f"{uri!r} is neither an MLflow database URI (sqlite:///mlflow.db, postgresql://..., "
                      "mysql://...) nor an mlruns folder (one holding <experiment id>/meta.yaml).")


def import_mlflow(source_uri: str, to: str | None = None, *, dry_run: bool = False,
                  keep_artifact_location: bool = False, progress: Any = None) -> tuple[ImportReport, Any]:
    """Import an MLflow store into a fitscribe SQL store; return the report and the verification.

    Args:
        source_uri: An MLflow SQL database URI, ``mlruns`` folder or tracking server URL (read, never written).
        to: The destination tracking URI (default: the current one).
        dry_run: Count what would change; write nothing (the verification is then None).
        keep_artifact_location: Leave artifacts in place instead of copying them.
        progress: A stream for a progress bar (drawn only on a terminal).

    Raises:
        ConfigError: The source is not an MLflow store, or the destination is not a SQL store.
    """
    from fitscribe.migrate.plan import Importer
    from fitscribe.migrate.verify import verify

    source = open_source(source_uri, progress)
    try:
        bulk = _sql_destination(to)
    except BaseException:
        source.close()
        raise
    try:
        importer = Importer(source, bulk, keep_artifact_location=keep_artifact_location, dry_run=dry_run,
                            progress=progress)
        report = importer.run()
        checked = None if dry_run else verify(source, bulk, importer.source_runs, importer.source_counts)
        return report, checked
    finally:
        source.close()
        bulk.store.close()


def run_import_command(args: argparse.Namespace, out: Out) -> None:
    """Run ``fitscribe import mlflow|bundle`` or ``fitscribe export`` from parsed arguments, printing
    the summary and the verification.

    Raises:
        FitscribeError: The import failed, or the verification found a difference.
    """
    from fitscribe.errors import FitscribeError

    started = time.monotonic()
    if getattr(args, "push", False):  # fitscribe push
        push_command(open_push_source(args.source), args.server, args, out)
        return
    destination = (args.to or getattr(args, "tracking_uri", None)) if hasattr(args, "to") else None
    if destination and destination.startswith(("http://", "https://")):  # import ... --to http://server
        push_command(open_source(args.source), destination, args, out)
        return
    if getattr(args, "output", None):  # fitscribe export
        counts = export_bundle(getattr(args, "tracking_uri", None), args.output, args.experiment, args.runs)
        out(f"Wrote {args.output}: " + ", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in counts.items()) + ".")
        return
    report, checked = import_mlflow(args.source, args.to or getattr(args, "tracking_uri", None),
                                    dry_run=args.dry_run, keep_artifact_location=args.keep_artifact_location,
                                    progress=sys.stderr)
    for line in summary(report):
        out(line)
    if checked is not None:
        out(checked.table())
        out(f"Done in {time.monotonic() - started:.1f} s.")
        if not checked.ok:
            raise FitscribeError("The verification found differences between the source and the destination "
                                 "(see the table); run the import again to complete it.")


def open_push_source(path: str) -> Source:
    """Return what ``fitscribe push`` reads: a bundle (folder or ``.tar``), else a fitscribe store.

    Raises:
        ConfigError: ``path`` is a folder holding no store (nothing is created there).
    """
    import os

    from fitscribe.config import DB_FILENAME
    from fitscribe.errors import ConfigError
    from fitscribe.migrate.bundle import BundleSource, is_bundle
    from fitscribe.migrate.fitscribe_sql import FitscribeSource

    if is_bundle(path):
        return BundleSource(path)
    if "://" not in path and not os.path.isfile(os.path.join(path, DB_FILENAME)):
        raise ConfigError(f"{path!r} holds no fitscribe store ({DB_FILENAME}) and is not a bundle; give the folder "
                          "the runs were logged into (e.g. ./fitruns), a sqlite:/// URI, or a bundle.")
    return FitscribeSource(_sql_destination(path))


def push_command(source: Source, url: str, args: argparse.Namespace, out: Out) -> None:
    """Push ``source`` to the server at ``url`` (closing the source), printing what was sent and the
    verification.

    Raises:
        FitscribeError: The push failed, or the verification found a difference.
    """
    from fitscribe._progress import format_bytes
    from fitscribe.errors import FitscribeError
    from fitscribe.migrate.push import check_url, push
    from fitscribe.uri import redact

    try:
        result = push(source, check_url(url), experiments=getattr(args, "experiment", []) or [],
                      run_ids=getattr(args, "runs", []) or [], dry_run=args.dry_run, progress=sys.stderr, out=out)
    finally:
        source.close()
    server = redact(url)
    others = (f" and {result.others_sent} changed experiment(s), registered model(s) or logged model(s)"
              if result.others_sent else "")
    if result.dry_run:
        out(f"Would send {result.runs_sent} of {result.runs_selected} run(s){others} to {server} "
            f"({result.points_added:,} metric point(s), {format_bytes(result.bytes_sent)} of artifacts); the rest is "
            "there already.")
        return
    for line in result.mapped:
        out(line)
    if result.requests == 0:
        out(f"Nothing new: {server} already holds all {result.runs_selected} run(s) and everything else; nothing sent.")
    else:
        out(f"Sent {result.runs_sent} of {result.runs_selected} run(s){others} to {server} in {result.requests} "
            f"request(s), {format_bytes(result.bytes_sent)}: {result.runs_added} new run(s), {result.points_added:,} "
            f"metric point(s), {result.artifact_files} artifact file(s) added.")
    assert result.verification is not None
    out(result.verification.table())
    out(f"Done in {result.seconds:.1f} s.")
    if not result.verification.ok:
        raise FitscribeError("The verification found differences between the source and the server (see the "
                             "table); run the same push again to complete it.")


def summary(report: ImportReport) -> list[str]:
    """Return the lines saying what the import added (or would add, in a dry run)."""
    from fitscribe._progress import format_bytes

    verb = "Would add" if report.dry_run else "Added"
    lines = [
        f"{verb}: {report.experiments_added} experiment(s), {report.runs_added} run(s), {report.params_added} "
        f"param(s), {report.tags_written} tag value(s), {report.inputs_added} dataset input(s), "
        f"{report.points_added:,} metric point(s), {report.models_added} registered model(s), "
        f"{report.versions_added} model version(s), {report.logged_models_added} logged model(s).",
        f"{'Would update' if report.dry_run else 'Updated'}: {report.experiments_updated} experiment(s), "
        f"{report.runs_updated} run(s), {report.models_updated} registered model(s), "
        f"{report.versions_updated} model version(s), {report.logged_models_updated} logged model(s).",
    ]
    if not report.dry_run:
        lines.append(f"Copied {report.artifact_files} artifact file(s), {format_bytes(report.artifact_bytes)}.")
    for source_id, dest_id in report.mapped_ids.items():
        lines.append(f"Experiment {source_id} is now experiment {dest_id} (its id was taken or too large).")
    lines += [f"Skipped: {item}" for item in report.skipped]
    if report.changes() == 0:
        lines.append("Nothing new: the destination already holds everything in the source.")
    return lines


def main(argv: Sequence[str] | None = None, out: Out = print) -> int:
    """Run ``import ...`` or ``export ...`` alone (as ``python -m fitscribe.cli_import``); return the exit status."""
    from fitscribe.errors import FitscribeError

    parser = argparse.ArgumentParser(prog="fitscribe")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tracking-uri", metavar="URI", default=None)

    def command(sub: Any, name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    add_import_parser(parser.add_subparsers(dest="group", required=True), command)
    args = parser.parse_args(argv)
    try:
        run_import_command(args, out)
    except FitscribeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to complete the import", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
