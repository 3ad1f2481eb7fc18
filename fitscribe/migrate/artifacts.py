"""Copying a run's artifacts from a local folder into the destination's artifact store."""

from __future__ import annotations

import os
import posixpath
from typing import Any

__all__ = ["copy_run_artifacts"]


def copy_run_artifacts(folder: str, dest_uri: str, open_store: Any = None) -> tuple[int, int]:
    """Copy the files of ``folder`` missing at ``dest_uri`` (or of another size); return (files, bytes).

    A local destination is compared file by file, so a copy interrupted midway completes when run
    again; a remote one (S3...) receives every file when its root is empty. ``open_store(uri)``
    returns the artifact store of a URI (default: ``get_artifact_store``; a server passes its own,
    which resolves ``mlflow-artifacts:`` URIs inside its artifact destination).
    """
    from fitscribe.backends import get_artifact_store

    from .plan import local_files

    if not os.path.isdir(folder):
        return 0, 0
    store = (open_store or get_artifact_store)(dest_uri)
    root = store.local_path("")
    if root is None and store.list(""):
        return 0, 0
    files = size = 0
    for path, relative, nbytes in local_files(folder):
        if root is not None:
            target = os.path.join(root, *relative.split("/"))
            if os.path.isfile(target) and os.path.getsize(target) == nbytes:
                continue
        store.put(path, posixpath.dirname(relative) or None)
        files += 1
        size += nbytes
    return files, size
