"""Tables as run artifacts in MLflow's format: ``log_table`` and ``load_table``.

A table is a JSON file ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``split`` orient
without the index) or a Parquet file, and the run's ``mlflow.loggedArtifacts`` tag lists it as
``{"path": <file>, "type": "table"}``, which is how ``load_table`` (ours and MLflow's) finds the
runs holding it. Logging to an existing table of a run appends the rows. pandas is imported only
here, when a table is written or read.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from typing import TYPE_CHECKING, Any, Sequence

from fitscribe.errors import InvalidValueError, NotFoundError

if TYPE_CHECKING:
    from fitscribe.client import Client

__all__ = ["TAG_LOGGED_ARTIFACTS", "log_table", "load_table"]

TAG_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"


def _check_name(artifact_file: str) -> str:
    from fitscribe.uri import check_relative_path

    name = check_relative_path(artifact_file, "artifact file")
    if not name.endswith((".json", ".parquet")):
        raise InvalidValueError(f"A table file must end in .json or .parquet, not {artifact_file!r}.")
    return name


def _frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.copy()
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError:  # all scalars: one row
            return pd.DataFrame([data])
    raise InvalidValueError(f"A table must be a pandas DataFrame or a dict of columns, not {type(data).__name__}.")


def _read(path: str) -> Any:
    import pandas as pd

    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    with open(path, encoding="utf-8") as fh:
        split = json.load(fh)
    return pd.DataFrame(split.get("data", []), columns=split.get("columns"))


def _existing(client: "Client", run_id: str, name: str, tmp: str) -> Any:
    """The table already logged under ``name`` in the run, or None."""
    folder = posixpath.dirname(name) or None
    if name not in {f.path for f in client.list_artifacts(run_id, folder) if not f.is_dir}:
        return None
    return _read(client.download_artifacts(run_id, name, tmp))


def log_table(client: "Client", run_id: str, data: Any, artifact_file: str) -> None:
    """Write ``data`` (a DataFrame or a dict of columns) as the table ``artifact_file`` of a run,
    appending to the rows already there, and list it in the run's ``mlflow.loggedArtifacts`` tag.

    Raises:
        InvalidValueError: ``data`` is not a table, or the name does not end in .json or .parquet.
    """
    import pandas as pd

    name = _check_name(artifact_file)
    frame = _frame(data)
    with tempfile.TemporaryDirectory(prefix="fitscribe-table-") as tmp:
        before = _existing(client, run_id, name, os.path.join(tmp, "old"))
        if before is not None:
            frame = pd.concat([before, frame], ignore_index=True)
        local = os.path.join(tmp, posixpath.basename(name))
        if name.endswith(".json"):
            frame.to_json(local, orient="split", index=False, date_format="iso")
        else:
            frame.to_parquet(local, index=False)
        client.log_artifact(run_id, local, posixpath.dirname(name) or None)
    tags = client.get_run(run_id).data.tags
    listed = json.loads(tags.get(TAG_LOGGED_ARTIFACTS, "[]"))
    entry = {"path": name, "type": "table"}
    if entry not in listed:
        client.set_tag(run_id, TAG_LOGGED_ARTIFACTS, json.dumps(listed + [entry]))


def load_table(client: "Client", experiment_id: str, artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """Return one DataFrame joining the table ``artifact_file`` of every run of the experiment (or
    of ``run_ids``) that logged it, with ``extra_columns`` (e.g. ``["run_id"]``) added per run.

    Raises:
        NotFoundError: No run has logged this table.
    """
    import pandas as pd

    name = _check_name(artifact_file)
    needle = json.dumps({"path": name, "type": "table"})[1:-1]
    filter_string = f"tags.`{TAG_LOGGED_ARTIFACTS}` LIKE '%{_like_escape(needle)}%'"
    runs = list(client.search_runs([experiment_id], filter_string, max_results=50_000))
    if run_ids is not None:
        wanted = set(run_ids)
        runs = [r for r in runs if r.info.run_id in wanted]
    if not runs:
        raise NotFoundError(f"No run of experiment {experiment_id} has logged the table {name!r}.")
    frames = []
    with tempfile.TemporaryDirectory(prefix="fitscribe-table-") as tmp:
        for i, run in enumerate(runs):
            frame = _read(client.download_artifacts(run.info.run_id, name, os.path.join(tmp, str(i))))
            for column in extra_columns or ():
                value = getattr(run.info, column, None)
                frame[f"{column}_" if column in frame.columns else column] = value
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _like_escape(text: str) -> str:
    """Quote a literal for a LIKE pattern in a search filter (single quotes doubled)."""
    return text.replace("'", "''")
