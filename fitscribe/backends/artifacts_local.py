"""The ``file`` artifact store: artifacts kept in a folder on the local disk.

The root is a bare path or a ``file://`` URI. Nothing touches the disk until the first call; the
root folder is created by the first write. Every artifact path is relative and POSIX-style and must
stay inside the root: ``..`` that climbs out and absolute paths are refused, and so is a symlink
whose target lies outside the root.

Each file is written to a temporary file in its destination folder and then renamed over its final
name with :func:`os.replace`, so a crash never leaves a half-written artifact under its real name
(at worst a ``.fitscribe-tmp-*`` file stays behind).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from typing import Iterator

from fitscribe.backends.base import ArtifactStore, FileInfo
from fitscribe.errors import BackendError, ConfigError, InvalidValueError, NotFoundError
from fitscribe.uri import check_relative_path, file_uri_to_path

__all__ = ["LocalArtifactStore"]

_TMP_PREFIX = ".fitscribe-tmp-"


class LocalArtifactStore(ArtifactStore):
    """Artifacts stored under a local folder; implements :class:`~fitscribe.backends.base.ArtifactStore`.

    Args:
        root_uri: The root folder, as a bare path (``./fitruns/artifacts/1/abc``) or a
            ``file://`` URI. A relative path is taken relative to the current directory now.

    Raises:
        ConfigError: ``root_uri`` is empty.
        InvalidValueError: ``root_uri`` is a ``file:`` URI naming a remote host.

    >>> store = LocalArtifactStore("file:///tmp/fitscribe-doc/artifacts")
    >>> store.root
    '/tmp/fitscribe-doc/artifacts'
    """

    CHUNK_SIZE = 1024 * 1024
    """Size in bytes of the chunks :meth:`open` yields."""

    def __init__(self, root_uri: str) -> None:
        if not root_uri:
            raise ConfigError(
                "The artifact root URI is empty; give a folder path or a file:// URI, "
                "e.g. './fitruns/artifacts'."
            )
        self.root_uri = root_uri
        self.root = os.path.abspath(file_uri_to_path(root_uri))

    def __repr__(self) -> str:
        return f"LocalArtifactStore({self.root_uri!r})"

    # -- public API ---------------------------------------------------------------------------

    def put(self, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file, or a directory's contents recursively, under ``artifact_path``.

        A file lands at ``<root>/<artifact_path>/<basename>``; a directory's contents land under
        ``<root>/<artifact_path>/`` (as MLflow's ``log_artifacts``). Existing files are replaced,
        each one atomically.

        Args:
            local_path: The file or directory to copy.
            artifact_path: The destination folder, relative to the root; None or ``""`` for the root.

        Raises:
            NotFoundError: ``local_path`` does not exist.
            InvalidValueError: ``artifact_path`` is absolute, climbs out of the root, or leads
                through a symlink outside it; or the destination lies inside the directory copied.
            BackendError: The copy failed (disk full, permission denied...); the cause is chained.
        """
        dest_dir = self._path(artifact_path or "")
        if not os.path.exists(local_path):
            raise NotFoundError(
                f"The local path {local_path!r} does not exist; pass an existing file or directory "
                "to log as an artifact."
            )
        self._check_inside(dest_dir)
        if os.path.isdir(local_path):
            _check_not_within(local_path, dest_dir)
            self._copy_tree(local_path, dest_dir, into_store=True)
        else:
            target = os.path.join(dest_dir, os.path.basename(local_path))
            self._copy_file(local_path, target, into_store=True)

    def get(self, artifact_path: str, dst_dir: str) -> str:
        """Copy an artifact file or folder into ``dst_dir``, creating it; return the local path.

        Args:
            artifact_path: The file or folder to copy, relative to the root; ``""`` copies the
                whole root's contents into ``dst_dir`` itself.
            dst_dir: The local folder to copy into.

        Returns:
            The path of the copy: ``<dst_dir>/<basename of artifact_path>``, or ``dst_dir`` for
            the root.

        Raises:
            NotFoundError: No artifact exists at ``artifact_path``.
            InvalidValueError: ``artifact_path`` is absolute, climbs out of the root, or leads
                through a symlink outside it.
            BackendError: The copy failed; the cause is chained.
        """
        source = self._existing(artifact_path)
        relative = check_relative_path(artifact_path)
        target = os.path.join(dst_dir, posixpath.basename(relative)) if relative else dst_dir
        if os.path.isdir(source):
            _check_not_within(source, target)
            self._copy_tree(source, target, into_store=False)
        else:
            self._copy_file(source, target, into_store=False)
        return target

    def scratch_folder(self) -> str:
        """Create and return a hidden temporary folder inside the root (same filesystem).

        Content written there can be moved into place with :meth:`adopt_folder` instead of
        copied. The caller removes the folder; one left by a crash is hidden from :meth:`list`.
        """
        os.makedirs(self.root, exist_ok=True)
        return tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.root)

    def adopt_folder(self, local_dir: str, artifact_path: str) -> bool:
        """Move a local folder into place as ``<root>/<artifact_path>`` with one rename.

        Returns:
            True when moved; False when that is not possible (the destination exists, or the
            folder is on another filesystem): the caller then copies with :meth:`put`.

        Raises:
            InvalidValueError: ``artifact_path`` is empty, absolute or climbs out of the root.
        """
        relative = check_relative_path(artifact_path)
        if not relative:
            raise InvalidValueError("adopt_folder needs a destination folder inside the root, not the root itself.")
        dest = self._path(relative)
        self._check_inside(dest)
        if os.path.lexists(dest):
            return False
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.rename(local_dir, dest)
        except OSError:
            return False
        return True

    def list(self, path: str | None = None) -> list[FileInfo]:
        """List the direct children of a folder, sorted by path.

        Paths in the result are relative to the root (``plots/a.png``); folders have
        ``file_size`` None. Entries that are symlinks resolving outside the root, or dangling,
        are left out since they cannot be read.

        Args:
            path: The folder to list, relative to the root; None or ``""`` for the root.

        Returns:
            The children, or ``[]`` when ``path`` does not exist or is a file (as MLflow does).

        Raises:
            InvalidValueError: ``path`` is absolute, climbs out of the root, or leads through a
                symlink outside it.
        """
        relative = check_relative_path(path or "")
        folder = self._path(relative)
        if not os.path.isdir(folder):
            return []
        self._check_inside(folder)
        root = os.path.realpath(self.root)
        infos: list[FileInfo] = []
        for name in sorted(os.listdir(folder)):
            if name.startswith(_TMP_PREFIX):
                continue
            child = os.path.join(folder, name)
            if not os.path.exists(child) or not _is_within(os.path.realpath(child), root):
                continue
            child_path = posixpath.join(relative, name) if relative else name
            is_dir = os.path.isdir(child)
            infos.append(FileInfo(child_path, is_dir, None if is_dir else os.path.getsize(child)))
        return infos

    def delete(self, artifact_path: str | None = None) -> None:
        """Delete an artifact file or folder; with no path, delete everything under the root.

        Deleting something that does not exist does nothing, so deleting twice is harmless.
        A symlink is removed itself; its target is left alone.

        Args:
            artifact_path: The file or folder to delete, relative to the root; None or ``""``
                for the whole root.

        Raises:
            InvalidValueError: ``artifact_path`` is absolute, climbs out of the root, or leads
                through a symlink outside it.
            BackendError: The deletion failed; the cause is chained.
        """
        relative = check_relative_path(artifact_path or "")
        target = self._path(relative)
        if not relative:
            self._delete_root()
            return
        self._check_inside(os.path.dirname(target))
        try:
            if os.path.islink(target) or os.path.isfile(target):
                os.remove(target)
            elif os.path.isdir(target):
                shutil.rmtree(target)
        except OSError as exc:
            raise BackendError(f"Could not delete the artifact {relative!r} at {target!r}: {exc}") from exc

    def open(self, artifact_path: str) -> Iterator[bytes]:
        """Stream an artifact file's bytes in chunks of :attr:`CHUNK_SIZE` (1 MiB).

        The path is checked at once; the file is opened on the first iteration and closed when
        the iterator is exhausted or closed.

        Args:
            artifact_path: The file to read, relative to the root.

        Returns:
            An iterator of non-empty ``bytes`` chunks (none for an empty file).

        Raises:
            NotFoundError: No artifact exists at ``artifact_path``.
            InvalidValueError: The path is a folder, is absolute, climbs out of the root, or
                leads through a symlink outside it.
        """
        source = self._existing(artifact_path)
        if os.path.isdir(source):
            raise InvalidValueError(
                f"The artifact {artifact_path!r} is a folder, not a file; open a file inside it "
                "(list() shows them) or copy the whole folder with get()."
            )
        return _read_chunks(source, self.CHUNK_SIZE)

    def local_path(self, artifact_path: str = "") -> str:
        """Return the absolute path on disk of an artifact, which need not exist.

        Lets callers read local artifacts in place instead of copying them.

        Args:
            artifact_path: A path relative to the root; ``""`` for the root itself.

        Returns:
            The absolute local path.

        Raises:
            InvalidValueError: ``artifact_path`` is absolute, climbs out of the root, or leads
                through a symlink outside it.
        """
        relative = check_relative_path(artifact_path)
        path = self._path(relative)
        self._check_inside(path)
        return path

    # -- helpers ------------------------------------------------------------------------------

    def _path(self, artifact_path: str) -> str:
        """Return the local path of a checked relative artifact path (no symlink check)."""
        relative = check_relative_path(artifact_path)
        return os.path.join(self.root, *relative.split("/")) if relative else self.root

    def _check_inside(self, path: str) -> None:
        """Refuse ``path`` (lexically under the root) when its symlinks resolve outside the root."""
        real = os.path.realpath(path)
        if not _is_within(real, os.path.realpath(self.root)):
            shown = os.path.relpath(path, self.root).replace(os.sep, "/")
            raise InvalidValueError(
                f"The artifact path {shown!r} leads through a symlink to {real!r}, outside the "
                f"artifact root {self.root!r}; only files inside the root can be read or written."
            )

    def _existing(self, artifact_path: str) -> str:
        """Return the local path of an existing artifact whose symlinks stay inside the root."""
        relative = check_relative_path(artifact_path)
        path = self._path(relative)
        if not os.path.lexists(path):
            if not relative:
                raise NotFoundError(
                    f"The artifact root {self.root_uri!r} does not exist yet: nothing has been "
                    "logged there."
                )
            raise NotFoundError(
                f"No artifact exists at {artifact_path!r} under {self.root_uri!r}; "
                f"list the folder {posixpath.dirname(relative)!r} to see what is there."
            )
        self._check_inside(path)
        return path

    def _copy_tree(self, source: str, target: str, *, into_store: bool) -> None:
        """Copy a directory's contents into ``target`` file by file, following symlinks.

        Reading from the store (``into_store`` False), an entry whose symlinks resolve outside the
        root is skipped with a warning (the rest is copied), as :meth:`list` hides it.
        """
        skipped: list[str] = []
        for src, rel, is_dir in _walk(source):
            dst = os.path.join(target, *rel.split("/")) if rel else target
            if not into_store:
                if any(rel.startswith(f"{gone}/") for gone in skipped):
                    continue
                if rel and not _is_within(os.path.realpath(src), os.path.realpath(self.root)):
                    skipped.append(rel)
                    _warn_skipped(rel)
                    continue
                self._check_inside(src)
            if is_dir:
                _makedirs(dst)
            else:
                self._copy_file(src, dst, into_store=into_store)

    def _copy_file(self, source: str, target: str, *, into_store: bool) -> None:
        """Copy one file atomically: write a temp file beside ``target``, then rename it over."""
        folder = os.path.dirname(target)
        if into_store:
            self._check_inside(folder)
        _makedirs(folder)
        try:
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
        except OSError as exc:
            raise BackendError(f"Could not write into the folder {folder!r}: {exc}") from exc
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            shutil.copymode(source, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            _remove_quietly(tmp)
            raise BackendError(f"Could not copy {source!r} to {target!r}: {exc}") from exc

    def _delete_root(self) -> None:
        """Delete everything under the root, and the root folder unless it is a symlink."""
        if not os.path.isdir(self.root):
            return
        try:
            if os.path.islink(self.root):
                for name in os.listdir(self.root):
                    child = os.path.join(self.root, name)
                    if os.path.isdir(child) and not os.path.islink(child):
                        shutil.rmtree(child)
                    else:
                        os.remove(child)
            else:
                shutil.rmtree(self.root)
        except OSError as exc:
            raise BackendError(f"Could not delete the artifact root {self.root!r}: {exc}") from exc


def _is_within(path: str, root: str) -> bool:
    """Return True when the absolute ``path`` is ``root`` or lies under it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _warn_skipped(relative: str) -> None:
    """Warn that a symlink leading outside the artifact root was left out of a download."""
    import sys
    import warnings

    from fitscribe.errors import FitscribeWarning

    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fitscribe"):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"Skipped the artifact {relative!r}: it is a symlink leading outside the artifact root, "
                  "so it is not downloaded (and not listed).", FitscribeWarning, stacklevel=level)


def _check_not_within(source_dir: str, dest_dir: str) -> None:
    """Refuse to copy a directory into itself or one of its subfolders."""
    if _is_within(os.path.realpath(dest_dir), os.path.realpath(source_dir)):
        raise InvalidValueError(
            f"Cannot copy the directory {source_dir!r} into {dest_dir!r}, which lies inside it; "
            "choose a destination outside the directory being copied."
        )


def _walk(source: str) -> Iterator[tuple[str, str, bool]]:
    """Yield ``(path, relative POSIX path, is_dir)`` for a directory and everything under it.

    Symlinks are followed; a symlink back to a folder being walked is refused.
    """
    yield source, "", True
    stack = [(source, "", frozenset({os.path.realpath(source)}))]
    while stack:
        folder, rel, ancestors = stack.pop()
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            child_rel = f"{rel}/{name}" if rel else name
            if not os.path.isdir(path):
                yield path, child_rel, False
                continue
            real = os.path.realpath(path)
            if real in ancestors:
                raise InvalidValueError(
                    f"The folder {path!r} is a symlink loop back to {real!r}; remove the link or "
                    "point it elsewhere."
                )
            yield path, child_rel, True
            stack.append((path, child_rel, ancestors | {real}))


def _makedirs(folder: str) -> None:
    """Create ``folder`` and its parents, translating failures to BackendError."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise BackendError(f"Could not create the folder {folder!r}: {exc}") from exc


def _remove_quietly(path: str) -> None:
    """Remove a temporary file, ignoring that it may already be gone."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _read_chunks(path: str, chunk_size: int) -> Iterator[bytes]:
    """Yield the bytes of a file in chunks of ``chunk_size``."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk
