"""Fluent functions that read and manage experiments and runs in the current tracking store.

Each one calls the matching ``Client`` method on ``fitscribe.get_client()``; ``search_runs``
also pages through results and can return a pandas DataFrame, as ``mlflow.search_runs`` does.
"""

from __future__ import annotations

from typing import Any, Sequence

from fitscribe.entities import Experiment, Metric, PagedList, Run, ViewType
from fitscribe.errors import ExperimentNotFound, InvalidValueError, MissingDependencyError
from fitscribe.fluent import active_run, get_client

__all__ = [
    "create_experiment",
    "get_experiment",
    "get_experiment_by_name",
    "search_experiments",
    "delete_experiment",
    "restore_experiment",
    "get_run",
    "delete_run",
    "restore_run",
    "get_metric_history",
    "list_artifacts",
    "download_artifacts",
    "search_runs",
]


def create_experiment(name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
    """Create an experiment and return its id."""
    return get_client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """Return an experiment by id."""
    return get_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """Return an experiment by name, or None."""
    return get_client().get_experiment_by_name(name)


def search_experiments(
    view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """Return all experiments matching the filter (every page), e.g. ``"name LIKE 'cv-%'"``."""
    client = get_client()
    found: list[Experiment] = []
    token = None
    while True:
        page_size = min(1000, max_results - len(found)) if max_results else 1000
        page = client.search_experiments(view_type, page_size, filter_string, order_by, token)
        found.extend(page)
        token = page.token
        if not token or (max_results and len(found) >= max_results):
            return found


def delete_experiment(experiment_id: str) -> None:
    """Move an experiment and its runs to the trash."""
    get_client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    """Restore a deleted experiment and its runs."""
    get_client().restore_experiment(experiment_id)


def get_run(run_id: str) -> Run:
    """Return a run by id."""
    return get_client().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Move a run to the trash."""
    get_client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Restore a deleted run."""
    get_client().restore_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Return every point of a metric of a run."""
    return get_client().get_metric_history(run_id, key)


def list_artifacts(run_id: str | None = None, path: str | None = None) -> list[Any]:
    """List a run's artifacts under ``path`` (the current run by default)."""
    return get_client().list_artifacts(run_id or _current_run_id(), path)


def download_artifacts(run_id: str | None = None, artifact_path: str = "", dst_path: str | None = None) -> str:
    """Download a run's artifact file or folder and return the local path."""
    return get_client().download_artifacts(run_id or _current_run_id(), artifact_path, dst_path)


def _current_run_id() -> str:
    current = active_run()
    if current is None:
        raise InvalidValueError("No run is active; pass run_id.")
    return current.info.run_id


def _experiment_ids(
    experiment_ids: Sequence[str] | str | None, experiment_names: Sequence[str] | None, search_all: bool
) -> list[str]:
    client = get_client()
    if search_all:
        return [e.experiment_id for e in search_experiments(ViewType.ALL)]
    ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(e) for e in experiment_ids or ()]
    for name in experiment_names or ():
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise ExperimentNotFound(f"No experiment is named {name!r}.")
        ids.append(exp.experiment_id)
    if not ids and experiment_names is None:
        from fitscribe.fluent import _current_experiment_id

        ids = [_current_experiment_id(client)]  # the set experiment, read now (reset() rebinds fluent's state)
    return ids


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType | str | int = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Search runs of one or more experiments; return a pandas DataFrame or a list of Run.

    Args:
        experiment_ids: Experiments to search (default: the current experiment).
        filter_string: e.g. ``"metrics.rmse < 0.5 AND params.model IN ('rf', 'gbm')"``.
        run_view_type: ACTIVE_ONLY, DELETED_ONLY or ALL.
        max_results: Most runs to return (all pages are fetched up to this many).
        order_by: e.g. ``["metrics.rmse ASC"]``.
        output_format: ``"pandas"`` (one row per run; columns ``run_id``, ``status``,
            ``metrics.<key>``, ``params.<key>``, ``tags.<key>``...) or ``"list"``.
        search_all_experiments: Search every experiment.
        experiment_names: Experiments to search, by name.

    Raises:
        MissingDependencyError: ``output_format="pandas"`` and pandas is not installed.
    """
    if output_format not in ("pandas", "list"):
        raise InvalidValueError(f"output_format must be 'pandas' or 'list', not {output_format!r}.")
    if output_format == "pandas":
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                'search_runs(output_format="pandas") needs pandas: pip install "fitscribe[pandas]", '
                'or pass output_format="list".', extra="pandas", package="pandas"
            ) from None
    ids = _experiment_ids(experiment_ids, experiment_names, search_all_experiments)
    client = get_client()
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page: PagedList[Run] = client.search_runs(
            ids, filter_string, run_view_type, min(50_000, max_results - len(runs)), order_by, token
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs if output_format == "list" else runs_to_dataframe(runs)


def runs_to_dataframe(runs: Sequence[Run]) -> Any:
    """Return runs as a pandas DataFrame with MLflow's column names."""
    import pandas as pd

    records = []
    for run in runs:
        info = run.info
        record: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status.value,
            "artifact_uri": info.artifact_uri,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True) if info.end_time else pd.NaT,
            "run_name": info.run_name,
        }
        record.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.data.params.items()})
        record.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        records.append(record)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time", "run_name"]
    frame = pd.DataFrame.from_records(records, columns=None if records else columns)
    return frame
