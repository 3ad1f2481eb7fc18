"""The SQL tracking store: SQLite (embedded default), PostgreSQL and MySQL/MariaDB from one code base.

Creating and ending runs and logging use store_core.py's ``write()``/``read()`` (plain ``sqlite3`` on
an embedded store); the rest uses ``sql_write()``/``sql_read()``, importing SQLAlchemy when first
called, so this module imports without it.
"""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from fitscribe import validation as v
from fitscribe._time import now_ms
from fitscribe.backends.base import TrackingStore
from fitscribe.backends.model_history import HISTORY_TAG, append_entry, check_entry
from fitscribe.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from fitscribe.errors import (
    AlreadyExistsError,
    ConstraintViolation,
    ExperimentNotFound,
    InvalidStateError,
    InvalidValueError,
    NotFoundError,
    RunNotFound,
)
from fitscribe.uri import join_uri

from .chunks import metric_columns
from .logged_models import SqlLoggedModels
from .store_core import StoreCore

if TYPE_CHECKING:
    from .bulk_import import BulkImporter
    from .metric_arrays import MetricArrays
    from .registry import SqlModelRegistry
    from .run_query import RunQuery
    from .writer import Writer

__all__ = ["SqlTrackingStore", "create_store"]

_ACTIVE = LifecycleStage.ACTIVE.value
_DELETED = LifecycleStage.DELETED.value


def create_store(uri: str, artifact_uri: str | None = None, **_: Any) -> "SqlTrackingStore":
    """Factory registered for the ``file``, ``sqlite``, ``postgresql`` and ``mysql`` schemes.

    Args:
        uri: The tracking URI (a folder means an embedded store: ``<folder>/tracking.db``).
        artifact_uri: Artifact root for new experiments; default beside the database.
    """
    return SqlTrackingStore(uri, artifact_uri=artifact_uri)


class SqlTrackingStore(SqlLoggedModels, StoreCore, TrackingStore):
    """A :class:`~fitscribe.backends.base.TrackingStore` on a SQL database.

    The constructor (:class:`.store_core.StoreCore`'s, which documents its arguments) does no I/O; the
    database is opened (and created if new) on first use. Each method implements the
    ``TrackingStore`` method of its name, whose docstring lists its errors.
    """

    accepts_request_ids = True
    """``log_batch`` takes a ``request_id``, so the server can apply each client request once."""

    @cached_property
    def registry(self) -> "SqlModelRegistry":
        """The model registry in this database: registered models, versions, tags and aliases."""
        from .registry import SqlModelRegistry

        return SqlModelRegistry(self)

    def _metric_key(self, key: Any) -> str:
        if key in self._valid_keys:
            return key  # type: ignore[no-any-return]
        checked = v.check_key(key, "metric key")
        if len(self._valid_keys) > 100_000:
            self._valid_keys.clear()
        self._valid_keys.add(checked)
        return checked

    # -- experiments -------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        name = v.check_experiment_name(name)
        checked_tags = {v.check_key(k, "tag key"): v.check_tag_value(k, val, experiment=True)
                        for k, val in (tags or {}).items()}
        try:
            with self.write() as w:
                self._refuse_existing_name(w, name)
                exp_id = w.insert_experiment(name, artifact_location or "", now_ms())
                if not artifact_location:
                    w.set_artifact_location(exp_id, join_uri(self.artifact_root, str(exp_id)))
                w.experiment_tags(exp_id, checked_tags)
        except ConstraintViolation as exc:  # created meanwhile by another process
            raise AlreadyExistsError(f"An experiment named {name!r} already exists.") from exc
        return str(exp_id)

    @staticmethod
    def _refuse_existing_name(w: Writer, name: str) -> None:
        found = w.experiment(name=name)
        if found is not None:
            hint = (" It is deleted: restore it (fitscribe experiments restore) or purge it first."
                    if found.lifecycle_stage == _DELETED else " Use it, or choose another name.")
            raise AlreadyExistsError(f"An experiment named {name!r} already exists (id {found.experiment_id}).{hint}")

    def _experiment_id(self, experiment_id: str) -> int:
        try:
            number = int(experiment_id)
        except (TypeError, ValueError):
            raise ExperimentNotFound(
                f"No experiment has the id {experiment_id!r}; experiment ids are integers such as '0'."
            ) from None
        bits = 63 if self.dialect == "sqlite" else 31  # the INTEGER column: 64-bit on SQLite, 32-bit elsewhere
        if not -(2**bits) <= number < 2**bits:  # the database would raise on it (PostgreSQL: a DataError)
            shown = experiment_id if len(str(experiment_id)) <= 40 else str(experiment_id)[:40] + "..."
            raise ExperimentNotFound(f"No experiment has the id {shown!r}.")
        return number

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id, active or deleted."""
        exp_id = self._experiment_id(experiment_id)
        with self.read() as w:
            found = w.experiment(experiment_id=exp_id)
        if found is None:
            raise ExperimentNotFound(
                f"No experiment has the id {experiment_id!r}. List them with: fitscribe experiments list"
            )
        return found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        with self.read() as w:
            return w.experiment(name=name)

    def search_experiments(
        self, view_type: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000, filter_string: str | None = None,
        order_by: Sequence[str] | None = None, page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Return one page of experiments (filter on ``name`` and ``tags.<key>``)."""
        from .reads import read_experiments
        from .search import experiment_query

        view = ViewType.parse(view_type)
        limit = _check_max_results(max_results)
        query, offset = experiment_query(view, filter_string, order_by, page_token)
        with self.sql_read() as w:
            found = read_experiments(w.sa, query.limit(limit + 1).offset(offset))
        return _page(found, limit, offset)

    def update_experiment(
        self, experiment_id: str, *, new_name: str | None = None, lifecycle_stage: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Rename, delete/restore (with its runs) or tag an experiment."""
        from . import tables as t

        exp = self.get_experiment(experiment_id)
        exp_id = int(exp.experiment_id)
        values: dict[str, Any] = {"last_update_time": now_ms()}
        if new_name is not None and new_name != exp.name:
            values["name"] = v.check_experiment_name(new_name)
        if lifecycle_stage is not None:
            lifecycle_stage = LifecycleStage.parse(lifecycle_stage).value
            if exp_id == 0 and lifecycle_stage == _DELETED:
                raise InvalidStateError("The Default experiment (id 0) cannot be deleted.")
            values["lifecycle_stage"] = lifecycle_stage
        checked = {v.check_key(k, "tag key"): v.check_tag_value(k, val, experiment=True)
                   for k, val in (tags or {}).items()}
        with self.sql_write() as w:
            if "name" in values:
                self._refuse_existing_name(w, values["name"])
            w.sa.execute(t.experiments.update().where(t.experiments.c.experiment_id == exp_id).values(**values))
            if lifecycle_stage is not None:
                w.sa.execute(
                    t.runs.update().where(t.runs.c.experiment_id == exp_id)
                    .values(lifecycle_stage=lifecycle_stage,
                            deleted_time=now_ms() if lifecycle_stage == _DELETED else None)
                )
            w.experiment_tags(exp_id, checked)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment (no error if it has none)."""
        from . import tables as t

        exp_id = int(self.get_experiment(experiment_id).experiment_id)
        with self.sql_write() as w:
            w.sa.execute(t.experiment_tags.delete().where(
                t.experiment_tags.c.experiment_id == exp_id, t.experiment_tags.c.key == key))

    def purge_experiment(self, experiment_id: str) -> None:
        """Erase a deleted experiment with no runs left, with its tags and datasets."""
        from . import tables as t
        from .run_query import RunQuery

        exp = self.get_experiment(experiment_id)
        if exp.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidStateError(f"Experiment {exp.experiment_id} ({exp.name!r}) is not deleted; delete it before "
                                    "purging it.")
        exp_id = int(exp.experiment_id)
        with self.sql_write() as w:
            left = RunQuery([t.runs.c.experiment_id == exp_id], [], self.dialect).count(w.sa)
            if left:
                raise InvalidStateError(f"Experiment {exp.experiment_id} still has {left} run(s); purge them first "
                                        "(fitscribe gc purges both).")
            for table in (t.datasets, t.experiment_tags, t.experiments):
                w.sa.execute(table.delete().where(table.c.experiment_id == exp_id))

    # -- runs ------------------------------------------------------------------------------------
    def create_run(
        self, experiment_id: str, user_id: str, start_time: int, tags: Sequence[RunTag] = (),
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run in an active experiment and return it."""
        exp_id = self._experiment_id(experiment_id)
        run_name = v.check_run_name(run_name)
        tag_list = [RunTag(v.check_key(tg.key, "tag key"), v.check_tag_value(tg.key, tg.value)) for tg in tags]
        run_id = uuid.uuid4().hex
        start = v.check_int(start_time, "start time")
        with self.write() as w:
            exp = w.experiment_row(exp_id)
            if exp is None:
                raise ExperimentNotFound(
                    f"No experiment has the id {experiment_id!r}. List them with: fitscribe experiments list"
                )
            name, location, stage = exp
            if stage != _ACTIVE:
                raise InvalidStateError(
                    f"The experiment {name!r} (id {exp_id}) is deleted; restore it before creating runs in it."
                )
            info = RunInfo(run_id, str(exp_id), run_name, user_id or "", RunStatus.RUNNING, start, None,
                           join_uri(location, run_id, "artifacts"), _ACTIVE)
            w.insert_run((run_id, exp_id, run_name, info.user_id, RunStatus.RUNNING.value, start,
                          None, _ACTIVE, info.artifact_uri))
            w.tags(run_id, tag_list)
        return Run(info, RunData(tags={tg.key: tg.value for tg in tag_list}))

    def get_run(self, run_id: str) -> Run:
        """Return the run with its latest metrics, params, tags and inputs."""
        import sqlalchemy as sa

        from . import tables as t
        from .reads import read_runs

        v.check_run_id(run_id)
        with self.sql_read() as w:
            found = read_runs(w.sa, sa.select(t.runs).where(t.runs.c.run_uuid == run_id))
        if not found:
            raise RunNotFound(f"No run has the id {run_id!r}. Find run ids with: fitscribe runs list")
        return found[0]

    def update_run_info(
        self, run_id: str, *, status: RunStatus | None = None, end_time: int | None = None,
        run_name: str | None = None, lifecycle_stage: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time, name or lifecycle stage; return the new info."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = RunStatus.parse(status).value
        if end_time is not None:
            values["end_time"] = v.check_int(end_time, "end time")
        if run_name is not None:
            values["name"] = v.check_run_name(run_name)
        if lifecycle_stage is not None:
            lifecycle_stage = LifecycleStage.parse(lifecycle_stage).value
            values["lifecycle_stage"] = lifecycle_stage
            values["deleted_time"] = now_ms() if lifecycle_stage == _DELETED else None
        v.check_run_id(run_id)
        self.flush()  # a run marked finished has all its points stored
        self._active_runs.pop(run_id, None)
        with self.write() as w:
            info = w.update_run(run_id, values)
            self._check_stage(None if info is None else info.lifecycle_stage, run_id, active=False)
            if run_name is not None:
                w.tags(run_id, [RunTag("mlflow.runName", run_name)])
        assert info is not None
        return info

    # -- logging ---------------------------------------------------------------------------------
    def log_batch(
        self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = (),
        *, request_id: str | None = None,
    ) -> None:
        """Record metrics, params and tags in one transaction: all of them, or none.

        Args:
            request_id: The client's id for this batch: a batch whose id was applied already is
                not applied again (a retried request; see request_ids.py).
        """
        if type(metrics) is not list and type(metrics) is not tuple:
            metrics = list(metrics)
        if self._journal_folder and metrics and not params and not tags and request_id is None:
            self._journal_metrics(run_id, metrics)
            return
        v.check_run_id(run_id)
        columns = metric_columns(metrics, self._valid_keys, self._metric_key)
        params = [Param(v.check_key(p.key, "param key"), v.check_param_value(p.key, p.value)) for p in params]
        tags = [RunTag(v.check_key(tg.key, "tag key"), v.check_tag_value(tg.key, tg.value)) for tg in tags]
        if request_id is None:
            with self.write() as w:
                self._apply_batch(w, run_id, params, tags, columns)
            return
        from . import request_ids

        try:
            with self.sql_write() as w:
                if request_ids.applied(w.sa, request_ids.check_request_id(request_id)):
                    return
                self._apply_batch(w, run_id, params, tags, columns)
                request_ids.record(w.sa, request_id)
        except ConstraintViolation:
            with self.sql_read(flush=False) as w:
                if not request_ids.applied(w.sa, request_id):
                    raise  # else: the same request, applied meanwhile by another server process

    def _apply_batch(self, w: Writer, run_id: str, params: Sequence[Param], tags: Sequence[RunTag],
                     columns: tuple[Sequence[Any], ...]) -> None:
        """log_batch's statements, in the caller's transaction."""
        self._check_stage(w.run_stage(run_id), run_id)
        w.params(run_id, params)
        w.tags(run_id, tags)
        w.metric_points([(run_id, *columns)])

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Record one metric point; it is durable (survives a crash of this process) on return."""
        if self._journal_folder:
            self._journal_metrics(run_id, (metric,))
        else:
            self.log_batch(run_id, metrics=[metric])

    def _journal_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Validate metric points and append them to this process's journal (see journal.py)."""
        columns = metric_columns(metrics, self._valid_keys, self._metric_key)
        self._check_active_run(run_id)
        self._journal_for_write().append(run_id, *columns)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        from . import tables as t

        v.check_run_id(run_id)
        with self.sql_write() as w:
            self._require_run(w, run_id)
            result = w.sa.execute(t.tags.delete().where(t.tags.c.run_uuid == run_id, t.tags.c.key == key))
            if result.rowcount == 0:
                raise NotFoundError(f"The run {run_id} has no tag {key!r}.")

    def record_logged_model(self, run_id: str, entry: Mapping[str, Any]) -> None:
        """Append a logged model to the run's history tag in one transaction that locks the run, so
        concurrent appends take turns and none is lost."""
        v.check_run_id(run_id)
        entry = check_entry(entry)
        with self.write() as w:
            self._check_stage(w.run_stage(run_id, lock=True), run_id)
            value = append_entry(w.tag_value(run_id, HISTORY_TAG), entry)
            w.tags(run_id, [RunTag(HISTORY_TAG, value)])

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets used by a run (the same dataset twice is recorded once)."""
        import sqlalchemy as sa

        from . import tables as t
        from .inputs import write_inputs

        v.check_run_id(run_id)
        with self.sql_write() as w:
            self._require_run(w, run_id)
            exp_id = w.sa.execute(sa.select(t.runs.c.experiment_id).where(t.runs.c.run_uuid == run_id)).scalar_one()
            write_inputs(w.sa, exp_id, run_id, datasets)

    # -- reads -----------------------------------------------------------------------------------
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Return the points of one metric ordered by step, then timestamp (then logging order)."""
        from fitscribe.search import decode_page_token

        v.check_run_id(run_id)
        offset = decode_page_token(page_token)
        self.flush()
        with self.read() as w:
            self._require_run(w, run_id, active=False)
            points = w.metric_history(run_id, key, max_results, offset)
        return PagedList(points, None) if max_results is None else _page(points, max_results, offset)

    def search_runs(
        self, experiment_ids: Sequence[str], filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY, max_results: int = 1000,
        order_by: Sequence[str] | None = None, page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs of the given experiments matching the filter."""
        from fitscribe.search import decode_page_token

        from .reads import read_runs

        limit = _check_max_results(max_results)
        offset = decode_page_token(page_token)
        query = self._run_query(experiment_ids, filter_string, run_view_type, order_by)
        with self.sql_read() as w:
            found = query.page(w.sa, read_runs, limit + 1, offset)
        return _page(found, limit, offset)

    def count_runs(
        self, experiment_ids: Sequence[str], filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int:
        """Return how many runs of the given experiments match the filter (as ``search_runs`` would list)."""
        query = self._run_query(experiment_ids, filter_string, run_view_type)
        with self.sql_read() as w:
            return query.count(w.sa)

    def bulk_importer(self) -> "BulkImporter":
        """Bulk writes of imported experiments, runs, histories and registry entries (``fitscribe import``)."""
        from .bulk_import import BulkImporter

        return BulkImporter(self)

    def metric_arrays(
        self, run_ids: Sequence[str], key: str, min_step: int | None = None, max_step: int | None = None
    ) -> dict[str, "MetricArrays"]:
        """Return metric histories as arrays (only the chunks overlapping a step range are read)."""
        from .metric_arrays import read_metric_arrays

        return read_metric_arrays(self, run_ids, key, min_step, max_step)

    def run_start_times(self, run_ids: Sequence[str]) -> dict[str, int | None]:
        """Return the start time (epoch ms) of each run that exists, in one query."""
        with self.read() as w:
            return w.run_start_times(run_ids)

    def _run_query(self, experiment_ids: Sequence[str], filter_string: str | None, run_view_type: ViewType,
                   order_by: Sequence[str] | None = None) -> RunQuery:
        """Return the query on ``runs`` of some experiments, a lifecycle view, a filter and an order."""
        from fitscribe.search import parse_filter, parse_order_by

        from . import tables as t
        from .run_query import RunQuery
        from .search import filter_clause

        condition = filter_clause(parse_filter(filter_string))
        exp_ids = [self._experiment_id(e) for e in experiment_ids]
        view = ViewType.parse(run_view_type)
        where = [t.runs.c.experiment_id.in_(exp_ids), t.runs.c.lifecycle_stage.in_(view.stages())]
        orders = parse_order_by(order_by) if order_by else []
        return RunQuery(where if condition is None else [*where, condition], orders, self.dialect)

    # -- garbage collection ----------------------------------------------------------------------
    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        """Return ids of deleted runs (deleted before the epoch-ms time ``older_than_ms`` if given)."""
        import sqlalchemy as sa

        from . import tables as t

        query = sa.select(t.runs.c.run_uuid).where(t.runs.c.lifecycle_stage == _DELETED)
        if older_than_ms is not None:
            query = query.where(sa.func.coalesce(t.runs.c.deleted_time, 0) < older_than_ms)
        with self.sql_read() as w:
            return [r[0] for r in w.sa.execute(query)]

    def purge_run(self, run_id: str) -> None:
        """Erase a deleted run and all it recorded."""
        from . import tables as t

        v.check_run_id(run_id)
        self.flush()
        with self.sql_write() as w:
            stage = w.run_stage(run_id, lock=True)
            if stage is None:
                raise RunNotFound(f"No run has the id {run_id!r}.")
            if stage != _DELETED:
                raise InvalidStateError(f"The run {run_id} is not deleted; delete it before purging it.")
            for table in (t.input_tags, t.inputs, t.metric_chunks, t.latest_metrics, t.params, t.tags):
                w.sa.execute(table.delete().where(table.c.run_uuid == run_id))
            w.sa.execute(t.runs.delete().where(t.runs.c.run_uuid == run_id))


def _check_max_results(max_results: int) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 50000:
        raise InvalidValueError(f"max_results must be an integer from 1 to 50000, not {max_results!r}.")
    return max_results


def _page(items: list[Any], limit: int, offset: int) -> PagedList[Any]:
    from fitscribe.search import encode_page_token

    if len(items) > limit:
        return PagedList(items[:limit], encode_page_token(offset + limit))
    return PagedList(items, None)
