"""``FITSCRIBE_OFFLINE=auto``: log into a local store when the tracking server cannot be reached.

When the variable is ``auto`` and the tracking URI is ``http(s)://``, the first time a ``Client``
(the fluent API's, autolog's or one made by the script) opens its store, the server's ``/health`` is
probed (a connection timeout of ``FITSCRIBE_OFFLINE_TIMEOUT`` seconds, default 3). Any HTTP answer
means it is there, and nothing changes. No answer (refused, timed out, name not resolved, TLS
failure) means the process logs into a local embedded store instead: ``FITSCRIBE_OFFLINE_DIR``, or
``./fitruns``; runs, metrics, params, tags, artifacts and models all go there. A
:class:`OfflineWarning` says so once, with the reason and the ``fitscribe push`` command that sends
the runs to the server later.

The decision is made once per process and server (kept with the process-wide URIs in ``config``):
if the server comes back while the process runs, the process stays local until it ends, so its runs
are never split between two stores. Child processes inherit the choice (through
``FITSCRIBE_OFFLINE_CHOSEN``, set by the process that fell back): they log into the same local store
without probing or warning again. Any other value of ``FITSCRIBE_OFFLINE`` (or none) keeps
today's behaviour: a server that is down makes ``start_run`` raise after its retries.
"""

from __future__ import annotations

import os
import warnings

from fitscribe import config
from fitscribe.errors import FitscribeWarning
from fitscribe.uri import redact, scheme_key

__all__ = ["ENV_OFFLINE", "ENV_OFFLINE_DIR", "ENV_OFFLINE_TIMEOUT", "ENV_OFFLINE_CHOSEN", "OfflineWarning", "store_uri", "probe"]

ENV_OFFLINE = "FITSCRIBE_OFFLINE"
ENV_OFFLINE_DIR = "FITSCRIBE_OFFLINE_DIR"
ENV_OFFLINE_TIMEOUT = "FITSCRIBE_OFFLINE_TIMEOUT"
ENV_OFFLINE_CHOSEN = "FITSCRIBE_OFFLINE_CHOSEN"


class OfflineWarning(FitscribeWarning):
    """The tracking server could not be reached: this process logs into a local store instead."""


def store_uri(tracking_uri: str) -> str:
    """Return the URI whose store a Client should open for ``tracking_uri``.

    ``tracking_uri`` itself, unless ``FITSCRIBE_OFFLINE=auto``, it is a server, and the server did not
    answer the first probe of this process: then the local folder (see the module docstring).
    """
    if os.environ.get(ENV_OFFLINE, "").strip().lower() != "auto" or scheme_key(tracking_uri) not in ("http", "https"):
        return tracking_uri
    return config.offline_choice(tracking_uri, lambda: _decide(tracking_uri))


def probe(tracking_uri: str, timeout: float) -> str | None:
    """Return None if the server answers ``GET /health`` (any status), else the reason it did not."""
    from fitscribe.backends.rest.http import HttpSession

    session = HttpSession(tracking_uri, timeout=timeout, connect_timeout=timeout)
    try:
        import httpx

        session.client.get(f"{session.base_url}/health")
        return None
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except OSError as exc:  # e.g. an unreadable CA bundle
        return f"{type(exc).__name__}: {exc}"
    finally:
        session.close()


def _user_stacklevel() -> int:
    """The stacklevel of the first caller outside fitscribe (the user's line that opened the store)."""
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _decide(tracking_uri: str) -> str:
    import json

    try:
        inherited = json.loads(os.environ.get(ENV_OFFLINE_CHOSEN) or "{}")
    except ValueError:
        inherited = {}
    if isinstance(inherited, dict) and inherited.get("server") == tracking_uri and inherited.get("folder"):
        return str(inherited["folder"])  # the parent process fell back: the same local store, said once there
    try:
        timeout = float(os.environ.get(ENV_OFFLINE_TIMEOUT) or 3.0)
    except ValueError:
        timeout = 3.0
    reason = probe(tracking_uri, timeout)
    if reason is None:
        return tracking_uri
    folder = os.path.abspath(os.environ.get(ENV_OFFLINE_DIR) or config.DEFAULT_FOLDER)
    config.export_variable(ENV_OFFLINE_CHOSEN, json.dumps({"server": tracking_uri, "folder": folder}))
    import shlex  # only on this rare path: a store open stays cheap

    server = redact(tracking_uri)
    warnings.warn(
        f"The tracking server {server} cannot be reached ({reason}); as FITSCRIBE_OFFLINE=auto, this process "
        f"logs into the local store {folder} until it ends. Send its runs to the server later with: "
        f"fitscribe push {shlex.quote(folder)} {shlex.quote(server)}",
        OfflineWarning, stacklevel=_user_stacklevel())
    return folder
