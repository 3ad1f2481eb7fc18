"""Tracking URIs resolved to database URLs (no SQLAlchemy import: the embedded store opens without it).

A folder path or ``file:`` URI means the embedded store ``<folder>/tracking.db`` (SQLite) beside
``<folder>/artifacts``; ``postgresql://`` and ``mysql://`` get the psycopg and PyMySQL drivers
unless a ``+driver`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fitscribe.config import ARTIFACTS_DIRNAME, DB_FILENAME
from fitscribe.errors import ConfigError, MissingDependencyError
from fitscribe.uri import file_uri_to_path, redact, scheme_key

__all__ = ["DatabaseURL", "parse_database_uri"]

_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mysql+pymysql", "pymysql", "mysql"),
}


@dataclass(frozen=True)
class DatabaseURL:
    """A tracking URI resolved to a SQLAlchemy URL, plus the embedded folder if there is one."""

    url: str
    folder: str | None

    @property
    def default_artifact_root(self) -> str | None:
        """The ``artifacts`` folder beside an embedded database, else None."""
        return os.path.join(self.folder, ARTIFACTS_DIRNAME) if self.folder else None

    @property
    def sqlite_path(self) -> str | None:
        """The file of a SQLite database given without URL options (opened by lite.py), else None."""
        if not self.url.startswith("sqlite") or ":///" not in self.url or "?" in self.url:
            return None
        return self.url.split(":///", 1)[1]


def parse_database_uri(uri: str) -> DatabaseURL:
    """Turn a tracking URI into a SQLAlchemy URL (see the module docstring).

    Raises:
        ConfigError: The URI is not a database URI.
        MissingDependencyError: The database driver is not installed.
    """
    key = scheme_key(uri)
    if key == "file":
        folder = os.path.abspath(file_uri_to_path(uri))
        if os.path.isfile(folder):
            raise ConfigError(
                f"The tracking URI {uri!r} is a file; give the folder of an embedded store "
                f"(it holds {DB_FILENAME}) or a sqlite:/// URI."
            )
        return DatabaseURL(f"sqlite:///{os.path.join(folder, DB_FILENAME)}", folder)
    if key == "sqlite":
        path = uri.split(":///", 1)[1].split("?", 1)[0] if ":///" in uri else ""
        if not path or path == ":memory:":
            raise ConfigError(
                f"The SQLite URI {uri!r} names no file; in-memory databases are not shared between "
                "connections. Use sqlite:///path/to/tracking.db."
            )
        return DatabaseURL(uri, os.path.dirname(os.path.abspath(path)))
    if key in _DRIVERS:
        default_driver, module, extra = _DRIVERS[key]
        scheme, rest = uri.split(":", 1)
        url = uri if "+" in scheme else default_driver + ":" + rest
        driver_module = module if "+" not in scheme else scheme.split("+", 1)[1]
        _require_driver(driver_module, extra, key)
        return DatabaseURL(url, None)
    raise ConfigError(f"{redact(uri)!r} is not a database URI (sqlite, postgresql, mysql).")


def _require_driver(module: str, extra: str, dialect: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError.for_package(module, extra, f"The {dialect} tracking store")
