"""Parse and normalise store URIs, and redact credentials from them."""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fitscribe.errors import InvalidValueError

__all__ = [
    "scheme_key",
    "redact",
    "is_local_path",
    "path_to_file_uri",
    "file_uri_to_path",
    "join_uri",
    "check_relative_path",
]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def scheme_key(uri: str) -> str:
    """Return the registry key of a URI: the lower-cased scheme without any ``+driver`` suffix.

    A bare path, or a one-letter scheme (a Windows drive letter), means ``file``.

    >>> scheme_key("postgresql+psycopg://u@h/db")
    'postgresql'
    >>> scheme_key("./fitruns")
    'file'
    """
    match = _SCHEME_RE.match(uri)
    if not match or len(match.group(1)) == 1:
        return "file"
    return match.group(1).split("+", 1)[0].lower()


def redact(uri: str) -> str:
    """Return ``uri`` with any password replaced by ``***``, for messages and logs.

    >>> redact("postgresql://bob:secret@db:5432/x")
    'postgresql://bob:***@db:5432/x'
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def is_local_path(uri: str) -> bool:
    """Return True when ``uri`` is a bare path or a ``file:`` URI."""
    return scheme_key(uri) == "file"


def path_to_file_uri(path: str) -> str:
    """Return the absolute ``file://`` URI of a local path.

    >>> path_to_file_uri("/tmp/a b")
    'file:///tmp/a%20b'
    """
    absolute = os.path.abspath(os.path.expanduser(path))
    return "file://" + quote(absolute.replace(os.sep, "/"))


def file_uri_to_path(uri: str) -> str:
    """Return the local path of a ``file:`` URI or bare path.

    >>> file_uri_to_path("file:///tmp/a%20b")
    '/tmp/a b'
    """
    if _SCHEME_RE.match(uri) and scheme_key(uri) == "file" and uri.lower().startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidValueError(
                f"The file URI {uri!r} names the host {parts.netloc!r}; only local paths are supported. "
                "Use file:///absolute/path."
            )
        return unquote(parts.path)
    return os.path.expanduser(uri)


def join_uri(base: str, *parts: str) -> str:
    """Append POSIX path segments to a URI or path, keeping its scheme and query.

    >>> join_uri("s3://bucket/root", "1", "abc")
    's3://bucket/root/1/abc'
    """
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    if not cleaned:
        return base
    if not _SCHEME_RE.match(base) or scheme_key(base) == "file" and not base.lower().startswith("file:"):
        return os.path.join(base, *cleaned)
    split = urlsplit(base)
    path = posixpath.join(split.path or "/", *cleaned)
    return urlunsplit(split._replace(path=path))


def check_relative_path(path: str, what: str = "artifact path") -> str:
    """Validate a relative POSIX path that must stay inside its root; return it normalised.

    Raises:
        InvalidValueError: The path is absolute, climbs out with ``..``, or holds a NUL byte.

    >>> check_relative_path("plots/./a.png")
    'plots/a.png'
    """
    if "\x00" in path:
        raise InvalidValueError(f"The {what} {path!r} contains a NUL byte.")
    posix = path.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise InvalidValueError(
            f"The {what} {path!r} is absolute; give a path relative to the run's artifact folder, "
            "e.g. 'plots/loss.png'."
        )
    normalised = posixpath.normpath(posix) if posix else ""
    if normalised in (".", ""):
        return ""
    if normalised == ".." or normalised.startswith("../") or "/../" in f"/{posix}/":
        raise InvalidValueError(
            f"The {what} {path!r} climbs out of the run's artifact folder with '..'; "
            "give a path inside it, e.g. 'plots/loss.png'."
        )
    return normalised
