"""HTTP plumbing of the REST store: one lazily created ``httpx.Client``, credentials, timeouts, retries,
and the server's JSON errors raised again as the fitscribe exception the server raised.

Credentials, read when the connection is first made (never at import, never logged):

- user and password in the tracking URI (``https://user:pass@host``): HTTP basic auth;
- else ``FITSCRIBE_TRACKING_TOKEN``: a bearer token;
- else ``FITSCRIBE_TRACKING_USERNAME`` and ``FITSCRIBE_TRACKING_PASSWORD``: HTTP basic auth;
- else ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``: HTTP basic auth;
- else MLflow's credentials file ``~/.mlflow/credentials`` (section ``[mlflow]``, keys
  ``mlflow_tracking_username`` and ``mlflow_tracking_password``): HTTP basic auth;
- else ``MLFLOW_TRACKING_TOKEN``: a bearer token (MLflow's client's order).

A 401 or 403 answer raises :class:`~fitscribe.errors.ConfigError` at once (no retry), naming the
source of the credentials that were sent, or the variables to set when none were.

TLS (each ``FITSCRIBE_`` variable wins over its ``MLFLOW_`` twin, as in :mod:`fitscribe.config`):

- ``FITSCRIBE_TRACKING_INSECURE_TLS=true`` / ``MLFLOW_TRACKING_INSECURE_TLS=true``: do not verify the
  server's certificate;
- ``FITSCRIBE_TRACKING_SERVER_CERT_PATH`` / ``MLFLOW_TRACKING_SERVER_CERT_PATH``: a CA bundle file
  (or folder) to verify it with; setting it together with the insecure flag is an error, as in MLflow;
- ``FITSCRIBE_TRACKING_CLIENT_CERT_PATH`` / ``MLFLOW_TRACKING_CLIENT_CERT_PATH``: a ``.pem`` file
  holding a client certificate and its key, sent to servers that ask for one.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fitscribe import errors as e
from fitscribe.uri import redact

if TYPE_CHECKING:
    import httpx

__all__ = [
    "API_PREFIX",
    "PROXY_PREFIX",
    "ENV_TOKEN",
    "ENV_INSECURE_TLS",
    "ENV_SERVER_CERT_PATH",
    "ENV_CLIENT_CERT_PATH",
    "tls_context",
    "ServerUnavailableError",
    "HttpSession",
    "error_for",
    "is_transient",
    "split_base_url",
]

API_PREFIX = "/api/2.0/mlflow"
PROXY_PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
ENV_TOKEN = "FITSCRIBE_TRACKING_TOKEN"
ENV_INSECURE_TLS = "FITSCRIBE_TRACKING_INSECURE_TLS"
ENV_SERVER_CERT_PATH = "FITSCRIBE_TRACKING_SERVER_CERT_PATH"
ENV_CLIENT_CERT_PATH = "FITSCRIBE_TRACKING_CLIENT_CERT_PATH"
RETRY_BUDGET_S = 3.0
"""How long a request keeps retrying a server that is down or overloaded before giving up."""

SAFE, IDEMPOTENT = "safe", "idempotent"
"""Retry policies: ``SAFE`` retries only what the server surely did not process (connection refused,
429, 503), for requests that must not run twice; ``IDEMPOTENT`` also retries timeouts, dropped
connections and other 5xx."""

_TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504}
_NOT_PROCESSED_STATUSES = {429, 503}
_BY_CODE: dict[str, type[e.FitscribeError]] = {
    "RESOURCE_DOES_NOT_EXIST": e.NotFoundError,
    "NOT_FOUND": e.NotFoundError,
    "RESOURCE_ALREADY_EXISTS": e.AlreadyExistsError,
    "ALREADY_EXISTS": e.AlreadyExistsError,
    "INVALID_PARAMETER_VALUE": e.InvalidValueError,
    "BAD_REQUEST": e.InvalidValueError,
    "INVALID_STATE": e.InvalidStateError,
    "NOT_IMPLEMENTED": e.BackendError,
}


class ServerUnavailableError(e.BackendError):
    """The tracking server could not be reached, or answered that it is overloaded or failing (5xx).

    ``status`` is the HTTP status, or None when no answer came; ``processed`` is False when the
    server surely did not act on the request (so sending it again cannot apply it twice).
    """

    def __init__(self, message: str, status: int | None = None, processed: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.processed = processed


def is_transient(exc: BaseException, policy: str = IDEMPOTENT) -> bool:
    """Return True when sending the request again may succeed, under a retry policy."""
    if not isinstance(exc, ServerUnavailableError):
        return False
    return policy == IDEMPOTENT or exc.processed is False


def split_base_url(uri: str) -> tuple[str, tuple[str, str] | None]:
    """Return the server's base URL without credentials (``http://host:port/prefix``) and the
    ``(user, password)`` the URI carries, if any.

    >>> split_base_url("https://ann:pw@example.com:8443/mlflow/")
    ('https://example.com:8443/mlflow', ('ann', 'pw'))
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise e.ConfigError(f"{redact(uri)!r} is not an http(s) URL of a tracking server, e.g. http://127.0.0.1:5000.")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    base = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    credentials = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
    return base, credentials


def _class_named(name: Any) -> type[e.FitscribeError] | None:
    """The public fitscribe exception class of this name (only those listed in ``fitscribe.errors``)."""
    if not isinstance(name, str) or name not in e.__all__:
        return None
    cls = getattr(e, name, None)
    if isinstance(cls, type) and issubclass(cls, e.FitscribeError):
        return cls
    return None


def _refusal(status: int, text: str, credentials: str | None) -> str:
    """The message of a 401/403 answer: what was sent (by source, never the secret) and what to set."""
    if status == 403:
        sent = f" (credentials from {credentials})" if credentials else ""
        return f"the server refused the request{sent} (HTTP 403): {text}"
    how = (f"{ENV_TOKEN} (or MLFLOW_TRACKING_TOKEN) for a token, or FITSCRIBE_TRACKING_USERNAME and "
           "FITSCRIBE_TRACKING_PASSWORD (or the MLFLOW_ ones) for a user")
    if credentials:
        return f"the server did not accept the credentials from {credentials} (HTTP 401): {text} Check them, or set {how}."
    if credentials == "":
        return f"the server requires credentials (HTTP 401) and none were set: {text} Set {how}."
    return f"the server refused the request (HTTP 401): {text} Set {how}."


def error_for(status: int, body: Any, what: str, credentials: str | None = None) -> e.FitscribeError:
    """Return the exception answering an HTTP error: the class the server names, else by error code.

    Unreachable, overloaded or failing servers (408, 429, 5xx without a more precise class, such as
    ``SchemaVersionError``) give :class:`ServerUnavailableError`, which callers may retry.

    Args:
        status: The HTTP status.
        body: The decoded JSON body (``{"error_code", "message", "fitscribe_error"?}``), or None.
        what: The request (``"POST runs/create on http://..."``), for messages without a body.
        credentials: Where the credentials sent came from (``"MLFLOW_TRACKING_TOKEN"``; ``""``: none
            were sent; None: unknown), for a 401/403.
    """
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else f"{what} failed with HTTP {status}{f' {code}' if code else ''}."
    if code == "ENDPOINT_NOT_FOUND" or (status in (404, 405) and code is None):
        return e.BackendError(f"{what}: the server has no such endpoint ({text}). Is it a fitscribe or MLflow "
                              "tracking server of a recent version?")
    if status in (401, 403):
        return e.ConfigError(f"{what}: {_refusal(status, text, credentials)}")
    cls = _class_named(body.get("fitscribe_error") if isinstance(body, dict) else None)
    if status in _TRANSIENT_STATUSES and cls in (None, e.BackendError, e.FitscribeError):
        processed = False if status in _NOT_PROCESSED_STATUSES else None
        return ServerUnavailableError(f"{what}: HTTP {status}: {text}", status, processed)
    if cls is None:
        cls = _BY_CODE.get(str(code), e.InvalidValueError if 400 <= status < 500 else e.BackendError)
    error = cls(text)
    error.error_code = code  # type: ignore[attr-defined]
    error.http_status = status  # type: ignore[attr-defined]
    return error


def _credentials(uri_credentials: tuple[str, str] | None) -> tuple[Any, str | None]:
    """The ``auth`` for httpx and where it came from: the URI, else the environment (see the module
    docstring). The source names variables only, never their values."""
    import httpx

    if uri_credentials is not None:
        return httpx.BasicAuth(*uri_credentials), "the user and password in the tracking URI"
    token = os.environ.get(ENV_TOKEN)
    if token:
        return _bearer(token), ENV_TOKEN
    for prefix in ("FITSCRIBE", "MLFLOW"):
        user, password = os.environ.get(f"{prefix}_TRACKING_USERNAME"), os.environ.get(f"{prefix}_TRACKING_PASSWORD")
        if user and password:
            return httpx.BasicAuth(user, password), f"{prefix}_TRACKING_USERNAME and {prefix}_TRACKING_PASSWORD"
    user, password = _credentials_file()
    if user and password:
        return httpx.BasicAuth(user, password), CREDENTIALS_FILE
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return (_bearer(token), "MLFLOW_TRACKING_TOKEN") if token else (None, None)


CREDENTIALS_FILE = "~/.mlflow/credentials"


def _credentials_file() -> tuple[str | None, str | None]:
    """The user and password of MLflow's credentials file, as MLflow's client reads it."""
    import configparser

    path = os.path.expanduser(CREDENTIALS_FILE)
    if not os.path.isfile(path):
        return None, None
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise e.ConfigError(f"Cannot read {CREDENTIALS_FILE}: {exc}") from None
    if "mlflow" not in parser:
        return None, None
    section = parser["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


def tls_context(base_url: str) -> Any:
    """Return httpx's ``verify``: False for plain http (no context to build), else an
    ``ssl.SSLContext`` built from the TLS variables (see the module docstring).

    Raises:
        ConfigError: The insecure flag and a CA bundle are both set, or a certificate file is unusable.
    """
    from fitscribe.config import env_source, env_value

    insecure = (env_value(ENV_INSECURE_TLS) or "").strip().lower() in ("true", "1", "yes")
    ca_path, client_cert = env_value(ENV_SERVER_CERT_PATH), env_value(ENV_CLIENT_CERT_PATH)
    if insecure and ca_path:
        raise e.ConfigError(
            f"{env_source(ENV_INSECURE_TLS)}=true and {env_source(ENV_SERVER_CERT_PATH)} are both set: "
            "either skip certificate checks or verify with a CA bundle, not both; unset one of them."
        )
    if not base_url.startswith("https:"):
        return False
    import ssl

    try:
        if ca_path and os.path.isdir(ca_path):
            context = ssl.create_default_context(capath=ca_path)
        elif ca_path:
            context = ssl.create_default_context(cafile=ca_path)
        else:
            context = _default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if client_cert:
            context.load_cert_chain(client_cert)
    except (OSError, ssl.SSLError) as exc:
        sources = ", ".join(filter(None, (env_source(ENV_SERVER_CERT_PATH), env_source(ENV_CLIENT_CERT_PATH))))
        raise e.ConfigError(f"Cannot use the TLS certificate file(s) named by {sources}: {exc}") from exc
    return context


def _default_context() -> Any:
    """The system's CA bundle, else certifi's (httpx's own default)."""
    import ssl

    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _bearer(token: str) -> Any:
    """An httpx auth callable adding ``Authorization: Bearer <token>`` (its repr shows no token)."""
    header = f"Bearer {token}"

    def add_bearer_token(request: "httpx.Request") -> "httpx.Request":
        request.headers["Authorization"] = header
        return request

    return add_bearer_token


class HttpSession:
    """Requests to one tracking server over one ``httpx.Client``, created on first use.

    Args:
        uri: The server's URL (``http(s)://[user:password@]host[:port][/prefix]``).
        timeout: Seconds to wait for an answer (reads and writes).
        connect_timeout: Seconds to wait for a connection.
        retry_budget: Seconds a request keeps retrying transient failures.

    Raises:
        ConfigError: ``uri`` is not an http(s) URL.
    """

    def __init__(self, uri: str, *, timeout: float = 60.0, connect_timeout: float = 2.0,
                 retry_budget: float = RETRY_BUDGET_S) -> None:
        self.base_url, self._uri_credentials = split_base_url(uri)
        self.credential_source: str | None = None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_budget = retry_budget
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpSession({self.base_url!r})"

    def new_client(self) -> "httpx.Client":
        """Return a new ``httpx.Client`` for this server (the caller closes it)."""
        try:
            import httpx
        except ImportError:
            raise e.MissingDependencyError.for_package("httpx", "http", "A tracking server URI (http://...)") from None
        from fitscribe import __version__

        auth, self.credential_source = _credentials(self._uri_credentials)
        return httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            auth=auth, verify=tls_context(self.base_url),
            headers={"User-Agent": f"fitscribe/{__version__}"},
        )

    @property
    def client(self) -> "httpx.Client":
        """The shared client, created on first use."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.new_client()
                client = self._client
        return client

    def close(self) -> None:
        """Close the connections; a later request opens new ones."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def api_url(self, endpoint: str) -> str:
        """The URL of an RPC endpoint (``runs/get`` -> ``<base>/api/2.0/mlflow/runs/get``)."""
        return f"{self.base_url}{API_PREFIX}/{endpoint}"

    def proxy_url(self, path: str) -> str:
        """The artifact proxy URL of a path relative to the server's artifact destination."""
        return f"{self.base_url}{PROXY_PREFIX}/{quote(path, safe='/')}" if path else f"{self.base_url}{PROXY_PREFIX}"

    def call(self, method: str, endpoint: str, body: Mapping[str, Any] | None = None, *,
             params: Mapping[str, Any] | None = None, retry: str | None = SAFE,
             timeout: float | None = None, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Send an RPC and return its JSON answer, retrying transient failures for ``retry_budget`` s.

        Args:
            method: GET, POST, PATCH or DELETE.
            endpoint: Path under ``/api/2.0/mlflow/``.
            body: The JSON body (not for GET).
            params: The query string (GET); lists become repeated keys.
            retry: ``SAFE``, ``IDEMPOTENT`` or None (no retry).
            timeout: Overrides the read timeout.
            headers: Extra request headers (e.g. a request id).

        Raises:
            FitscribeError: The subclass the server raised (``RunNotFound``, ``InvalidValueError``...).
            ServerUnavailableError: The server could not be reached or kept failing.
        """
        what = f"{method} {endpoint} on {self.base_url}"
        deadline = time.monotonic() + self.retry_budget
        delay = 0.05
        while True:
            try:
                return self._call_once(method, endpoint, body, params, timeout, what, headers)
            except ServerUnavailableError as exc:
                if retry is None or not is_transient(exc, retry) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _call_once(self, method: str, endpoint: str, body: Mapping[str, Any] | None,
                   params: Mapping[str, Any] | None, timeout: float | None, what: str,
                   headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        import httpx

        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=self.connect_timeout)
        if body is not None:
            extra["content"] = encode_json(body)
            extra["headers"] = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = self.client.request(method, self.api_url(endpoint), params=params, **extra)
        except httpx.TransportError as exc:
            raise unavailable(exc, what) from exc
        return decode_response(response, what, self.credential_source or "")


def encode_json(body: Any) -> bytes:
    """Encode a request body (non-finite doubles must already be strings, as MLflow sends them)."""
    import json

    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def unavailable(exc: Exception, what: str) -> ServerUnavailableError:
    """Return the error for a request that got no answer (connection refused, timeout, dropped)."""
    import httpx

    processed = False if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)) else None
    return ServerUnavailableError(f"{what}: no answer from the server ({type(exc).__name__}: {exc}).",
                                  None, processed)


def _sent_credentials(response: "httpx.Response") -> str | None:
    """Where the credentials a request carried came from (variable names), ``""`` if it carried none,
    None if unknown."""
    try:
        sent = "authorization" in response.request.headers
    except RuntimeError:  # a response built without a request
        return None
    return (_credentials(None)[1] or "the tracking URI") if sent else ""


def decode_response(response: "httpx.Response", what: str, credentials: str | None = None) -> dict[str, Any]:
    """Return the JSON object of a 200 answer, or raise the error the answer describes.

    ``credentials`` names where the credentials sent came from (for a 401/403 message; ``""``: none
    were sent); by default it is worked out from the request's headers and the environment.
    """
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = None
    if response.status_code == 200:
        if not isinstance(data, dict):
            raise e.BackendError(f"{what}: the answer is not a JSON object: {response.text[:200]!r}")
        return data
    if response.status_code in (401, 403) and credentials is None:
        credentials = _sent_credentials(response)
    raise error_for(response.status_code, data, what, credentials)
