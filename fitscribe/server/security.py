"""The server's security layer: one pure-ASGI middleware enforcing, in order,

1. the **Host header** (DNS-rebinding defence): only the names in ``allowed_hosts`` (default
   ``localhost``, ``127.0.0.1``, ``[::1]`` and the address the server binds, any port);
2. **CORS**: a request whose ``Origin`` is neither the server itself nor in ``cors_allowed_origins``
   may read (GET/HEAD, without CORS headers, so a browser hides the answer) but not write (403); a
   preflight is answered with CORS headers for allowed origins only;
3. **authentication** (with an auth file, see :mod:`fitscribe.server.auth`): ``Basic`` or ``Bearer``
   on every path but ``/health``; 401 ``UNAUTHENTICATED`` without valid credentials, 403
   ``PERMISSION_DENIED`` when a read-only identity calls a write endpoint. GET and HEAD are reads;
   other methods are writes unless the endpoint table marks the endpoint ``read_only`` (searches).
   Failed logins are limited per client address (:class:`~fitscribe.server.auth.LoginGuard`: 5 in a
   row, then one every 2 s): over the limit, 429 ``RESOURCE_EXHAUSTED`` with ``Retry-After``, before
   any password hashing; addresses that failed recently are checked in their own lane, so their
   flood does not delay other clients' logins;
4. **request size**: artifact uploads (PUT on the proxy) up to ``max_upload_bytes``, every other body
   up to ``max_request_bytes``; 413 before reading when ``Content-Length`` is too big, else once the
   streamed body passes the limit (nothing is buffered here).

Refusals are MLflow-style JSON (``{"error_code", "message"}``) naming the flag that changes the rule.
Credentials never appear in answers or logs. ``fitscribe server`` and ``fitscribe ui`` share the
options through :func:`add_security_arguments` and :func:`security_from_args`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, MutableMapping

from fitscribe.errors import ConfigError, InvalidValueError

if TYPE_CHECKING:
    import argparse

    from fitscribe.server.auth import Credentials, Identity
    from fitscribe.server.routes import Endpoint

__all__ = ["SecurityConfig", "SecurityPolicy", "SecurityMiddleware", "RequestTooLarge", "add_security_arguments",
           "security_from_args", "DEFAULT_ALLOWED_HOSTS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MB = 1024 * 1024
DEFAULT_MAX_REQUEST_MB = 32  # a maximal dataset profile in log-inputs is 16 MiB, before JSON escaping
DEFAULT_MAX_UPLOAD_MB = 10 * 1024
_OPEN_PATHS = frozenset({"/health"})  # no auth, no Host check (load balancers' probes)
_HOST_EXEMPT = frozenset({"/health", "/version"})
_PROXY_PREFIXES = ("/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/")
_IMPORT_PATH = "/api/2.0/fitscribe/import"  # a bundle carries artifacts: the upload limit (routes/imports.py)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HASHING_THREADS = 2  # concurrent checks of credentials not seen before (PBKDF2)
_SUSPECT_BACKLOG = 4  # checks queued for addresses with recent failures before they get 429
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})
_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, HEAD, POST, PUT, PATCH, DELETE"),
    (b"access-control-allow-headers", b"Authorization, Content-Type"),
    (b"access-control-max-age", b"600"),
]
_HOST_SYNTAX = re.compile(r"(?:[A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
"""What a Host header may look like: a name or IPv4 address, or a bracketed IPv6 one, and a port."""
_log = logging.getLogger("fitscribe.server")


class RequestTooLarge(InvalidValueError):
    """A request body is bigger than the server accepts (answered with 413)."""


@dataclass(frozen=True)
class SecurityConfig:
    """What the security middleware allows.

    Args:
        credentials: Users and tokens (:func:`fitscribe.server.auth.load_auth_file`); None: no auth.
        allowed_hosts: Host names (or ``name:port``) requests may address; ``*`` inside a pattern
            matches one DNS label or address part (``*.example.com``, ``10.0.*.*``), ``*`` alone any.
        cors_allowed_origins: Origins (``https://ui.example.com``, ``http://localhost:*``, ``*``) whose
            browser pages may call the API; the server's own pages are always allowed.
        max_request_bytes: Largest request body, except artifact uploads (0: no limit).
        max_upload_bytes: Largest artifact upload (0: no limit).
        failed_logins: Logins with wrong credentials a client address may try in a row before it
            must back off (then one every 2 s; 429 with ``Retry-After`` meanwhile). 0: no limit.
    """

    credentials: "Credentials | None" = None
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    cors_allowed_origins: tuple[str, ...] = ()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB * MB
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    failed_logins: int = 5

    def __post_init__(self) -> None:
        for flag, value in (("--max-request-mb", self.max_request_bytes), ("--max-upload-mb", self.max_upload_bytes)):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 (no limit) or more, not {value / MB:g}.")
        if self.failed_logins < 0:
            raise ConfigError(f"failed_logins must be 0 (no limit) or more, not {self.failed_logins}.")
        _patterns(self.allowed_hosts, "--allowed-hosts")
        _patterns(self.cors_allowed_origins, "--cors-allowed-origins")

    def bound_to(self, host: str) -> "SecurityConfig":
        """Return this config with the address the server listens on allowed as a Host (if specific)."""
        host = host.strip()
        if host in _ANY_ADDRESS or "*" in self.allowed_hosts:
            return self
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        if _HostPatterns(self.allowed_hosts).allows(shown):
            return self
        return replace(self, allowed_hosts=(*self.allowed_hosts, shown))


def _patterns(values: Iterable[str], flag: str) -> None:
    """Raise ConfigError for a value that cannot be a Host pattern (or, for origins, an origin pattern)."""
    origins = flag == "--cors-allowed-origins"
    for value in values:
        rest = value.partition("://")[2] if origins else value
        if value != "*" and (not rest or any(c in rest for c in " /\\@?#") or (origins and "://" not in value)):
            example = "'https://ui.example.com' or 'http://localhost:*'" if origins else "'tracking.example.com'"
            raise ConfigError(f"{flag}: {value!r} is not a valid pattern; give e.g. {example}, or '*'.")


def _split_host(host: str) -> tuple[str, str | None]:
    """Split ``name[:port]`` / ``[v6][:port]`` into the lower-cased name and the port (None if absent)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    return (name, port) if sep and name else (host, None)


def _glob(pattern: str) -> re.Pattern[str]:
    """Compile a pattern where ``*`` matches one label (no ``.``, ``:`` or ``/``)."""
    return re.compile("".join("[^./:@]*" if c == "*" else re.escape(c) for c in pattern), re.IGNORECASE)


class _HostPatterns:
    """Allowed Host header values: ``name`` (any port) or ``name:port``; ``*`` alone allows all."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.any = False
        self.rules: list[tuple[re.Pattern[str], re.Pattern[str] | None]] = []
        for pattern in patterns:
            if pattern.strip() == "*":
                self.any = True
                continue
            name, port = _split_host(pattern)
            self.rules.append((_glob(name), _glob(port) if port else None))

    def allows(self, host: str | None) -> bool:
        """Return True when a Host header value matches a pattern."""
        if self.any:
            return True
        if not host or not _HOST_SYNTAX.fullmatch(host.strip()):
            return False
        name, port = _split_host(host)
        return any(rule.fullmatch(name) and (port_rule is None or (port is not None and port_rule.fullmatch(port)))
                   for rule, port_rule in self.rules)


class _OriginPatterns:
    """Allowed CORS origins: ``scheme://name[:port|:*]`` patterns, or ``*`` for any."""

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = [p.strip().rstrip("/") for p in patterns]
        self.any = "*" in patterns
        self.rules = [_glob(p) for p in patterns if p != "*"]

    def allows(self, origin: str) -> bool:
        """Return True when an ``Origin`` header value matches a pattern."""
        return self.any or any(rule.fullmatch(origin) for rule in self.rules)


def _same_origin(origin: str, host: str | None) -> bool:
    """Return True when ``Origin`` names the host and port the request was sent to (default ports
    filled in). The scheme is not compared: behind a TLS proxy the page is https, the request http."""
    scheme, sep, netloc = origin.partition("://")
    if not sep or not host or scheme.lower() not in ("http", "https"):
        return False
    default = "443" if scheme.lower() == "https" else "80"
    o_name, o_port = _split_host(netloc)
    h_name, h_port = _split_host(host)
    return o_name == h_name and (o_port or default) == (h_port or default)


def read_routes(endpoints: Iterable["Endpoint"]) -> tuple[frozenset[tuple[str, str]], list[tuple[str, re.Pattern[str]]]]:
    """Return the (method, path) pairs of the endpoints that only read although not sent with GET."""
    from fitscribe.server.routes import API_PREFIXES

    exact: set[tuple[str, str]] = set()
    templated: list[tuple[str, re.Pattern[str]]] = []
    for ep in endpoints:
        if ep.method in _READ_METHODS or not getattr(ep, "read_only", False):
            continue
        for prefix in API_PREFIXES:
            path = f"{prefix}/{ep.path}"
            if "{" in path:
                templated.append((ep.method, re.compile(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(path)))))
            else:
                exact.add((ep.method, path))
    return frozenset(exact), templated


@dataclass
class SecurityPolicy:
    """The compiled rules one app enforces (built from a :class:`SecurityConfig` by ``create_app``)."""

    config: SecurityConfig
    endpoints: tuple["Endpoint", ...] = field(default=(), repr=False)
    hosts: _HostPatterns = field(init=False)
    origins: _OriginPatterns = field(init=False)

    def __post_init__(self) -> None:
        self.hosts = _HostPatterns(self.config.allowed_hosts)
        self.origins = _OriginPatterns(self.config.cors_allowed_origins)
        self._reads, self._templated_reads = read_routes(self.endpoints)

    def allow_bind_host(self, host: str) -> None:
        """Allow the address the server listens on as a Host (called by ``serve``/``ThreadedServer``)."""
        self.config = self.config.bound_to(host)
        self.hosts = _HostPatterns(self.config.allowed_hosts)

    def is_write(self, method: str, path: str) -> bool:
        """Return True when a request may change state: any method but GET/HEAD/OPTIONS, unless the
        endpoint table marks the endpoint read-only (searches sent with POST)."""
        if method in _READ_METHODS or (method, path) in self._reads:
            return False
        return not any(m == method and rx.fullmatch(path) for m, rx in self._templated_reads)

    def body_limit(self, method: str, path: str) -> tuple[int, str]:
        """Return the byte limit of a request body and the flag that sets it."""
        if (method == "PUT" and path.startswith(_PROXY_PREFIXES)) or (method == "POST" and path == _IMPORT_PATH):
            return self.config.max_upload_bytes, "--max-upload-mb"
        return self.config.max_request_bytes, "--max-request-mb"


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (``root_path``), as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("/", ""):
        return path[len(root):]
    return path


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope.get("headers", ())}


async def _answer(send: Send, status: int, code: str, message: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete JSON error answer."""
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *(extra or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """Pure-ASGI middleware applying a :class:`SecurityPolicy` (see the module docstring for the rules).

    Args:
        app: The ASGI application to protect.
        policy: The rules; ``create_app`` keeps the same object in ``app.state.security``.
    """

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        self._hashing: Any = None  # anyio.CapacityLimiters, made in the event loop on first use
        self._suspects: Any = None
        from fitscribe.server.auth import LoginGuard

        self.logins = LoginGuard(burst=policy.config.failed_logins) if policy.config.failed_logins else None
        """Failed logins per client address (429 with Retry-After once used up)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then pass it on (or answer the refusal)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy, path, method = self.policy, _route_path(scope), scope["method"]
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if path not in _HOST_EXEMPT and not policy.hosts.allows(host):
            shown = host[:100] or "missing"
            await _answer(send, 403, "PERMISSION_DENIED",
                          f"Invalid Host header {shown!r}: this server answers only requests addressed to an allowed "
                          "host name (a defence against DNS rebinding). If clients reach it by that name, start it "
                          "with --allowed-hosts naming it (comma-separated; '*' allows any).")
            return
        cors: list[tuple[bytes, bytes]] = []
        origin_bytes = headers.get(b"origin")
        if origin_bytes is not None:
            origin = origin_bytes.decode("latin-1")
            if not _same_origin(origin, host):
                allowed = policy.origins.allows(origin)
                if method == "OPTIONS" and b"access-control-request-method" in headers:
                    await self._preflight(send, origin, allowed)
                    return
                if not allowed and method not in ("GET", "HEAD"):
                    await _answer(send, 403, "PERMISSION_DENIED",
                                  f"Cross-origin request from {origin[:100]!r} blocked: pages of other sites may not "
                                  "change this server. To allow that site, start the server with "
                                  "--cors-allowed-origins naming it.")
                    return
                if allowed:
                    cors = [(b"access-control-allow-origin", origin_bytes), (b"vary", b"Origin")]
        if policy.config.credentials is not None and path not in _OPEN_PATHS:
            if not await self._authorized(scope, headers, send, cors):
                return
        from fitscribe import _actor

        # who the registry's audit trail records; handlers run in a threadpool that copies the context
        identity = scope.get("state", {}).get("identity")
        token = _actor.set_actor(identity.name if identity is not None else _actor.ANONYMOUS)
        try:
            await self._limited(scope, receive, send, headers, cors)
        finally:
            _actor.reset_actor(token)

    async def _preflight(self, send: Send, origin: str, allowed: bool) -> None:
        if not allowed:
            await _answer(send, 403, "PERMISSION_DENIED",
                          f"Disallowed CORS origin {origin[:100]!r}; start the server with --cors-allowed-origins "
                          "naming it to let its pages call this API.")
            return
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                   *_PREFLIGHT_HEADERS, (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _authorized(self, scope: Scope, headers: dict[bytes, bytes], send: Send,
                          cors: list[tuple[bytes, bytes]]) -> bool:
        """Authenticate and authorise; answer 401/403 (429 after repeated failures) and return False when refused."""
        client = (scope.get("client") or ("?", 0))[0]
        identity, wait = await self._identity(headers.get(b"authorization"), client)
        if wait:
            seconds = max(1, math.ceil(wait))
            _log.info("Refused %s %s from %s: too many failed logins, back off %d s",
                         scope["method"], scope["path"], client, seconds)
            await _answer(send, 429, "RESOURCE_EXHAUSTED",
                          f"Too many failed logins from this address; retry in {seconds} s with the right credentials.",
                          [(b"retry-after", str(seconds).encode()), *cors])
            return False
        if identity is None:
            sent = b"authorization" in headers  # wrong credentials are worth a warning; none is a login prompt
            _log.log(logging.WARNING if sent else logging.INFO, "Refused %s %s from %s: %s credentials",
                     scope["method"], scope["path"], client, "wrong" if sent else "missing")
            await _answer(send, 401, "UNAUTHENTICATED",
                          "This server requires credentials: send HTTP basic auth (MLFLOW_TRACKING_USERNAME and "
                          "MLFLOW_TRACKING_PASSWORD) or a bearer token (MLFLOW_TRACKING_TOKEN) listed in its "
                          "--auth-file; the ones sent, if any, were not accepted.",
                          [(b"www-authenticate", b'Basic realm="fitscribe", charset="UTF-8"'), *cors])
            return False
        scope.setdefault("state", {})["identity"] = identity
        if not identity.can_write and self.policy.is_write(scope["method"], _route_path(scope)):
            await _answer(send, 403, "PERMISSION_DENIED",
                          f"{identity.name!r} has read-only access and cannot {scope['method']} {scope['path']}; "
                          "use credentials with 'access: read-write' in the server's --auth-file.", cors)
            return False
        return True

    async def _identity(self, header: bytes | None, client: str) -> "tuple[Identity | None, float]":
        """Return who the header proves (None if nobody) and 0, or (None, seconds to wait) when the
        client address has used up its failed logins (then no PBKDF2 runs)."""
        credentials = self.policy.config.credentials
        if header is None or credentials is None:
            return None, 0.0
        value = header.decode("latin-1")
        identity = credentials.cached(value)
        if identity is not None:
            return identity, 0.0
        logins = self.logins
        suspect = logins is not None and logins.suspect(client)
        wait = logins.take(client) if logins is not None else 0.0
        if wait:
            return None, wait
        import anyio.to_thread  # PBKDF2 takes a while: off the event loop, a few at once, and addresses that
                                # failed recently in their own lane, so their flood cannot delay a fresh login
        if self._hashing is None:
            self._hashing, self._suspects = anyio.CapacityLimiter(_HASHING_THREADS), anyio.CapacityLimiter(1)
        lane = self._suspects if suspect else self._hashing
        if suspect and lane.statistics().tasks_waiting >= _SUSPECT_BACKLOG:
            return None, 1.0
        identity = await anyio.to_thread.run_sync(credentials.authenticate, value, limiter=lane)
        if identity is not None and logins is not None:
            logins.give_back(client)
        return identity, 0.0

    async def _limited(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes],
                       cors: list[tuple[bytes, bytes]]) -> None:
        """Pass the request on under the body size limit."""
        limit, flag = self.policy.body_limit(scope["method"], _route_path(scope))
        declared = headers.get(b"content-length")
        if limit and declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "BAD_REQUEST", "The Content-Length header is not a number.", cors)
            elif int(declared) > limit:
                await _answer(send, 413, "REQUEST_LIMIT_EXCEEDED", _too_large(int(declared), limit, flag), cors)
            elif cors:
                await self.app(scope, receive, _with_headers(send, cors))
            else:  # the server's HTTP parser stops the body at Content-Length: nothing to count
                await self.app(scope, receive, send)
            return
        if not limit:
            await self.app(scope, receive, _with_headers(send, cors) if cors else send)
            return
        guard = _BodyGuard(receive, send, limit, flag, cors)
        try:
            await self.app(scope, guard.receive, guard.send)
        except RequestTooLarge:
            await guard.refuse()


def _too_large(size: int, limit: int, flag: str) -> str:
    return (f"The request body ({'over ' if size > limit else ''}{size / MB:.1f} MB) exceeds this server's limit of "
            f"{limit / MB:g} MB; send less per request, or start the server with a larger {flag}.")


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """Wrap ``send`` to add headers to the response start."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_with_headers


class _BodyGuard:
    """Counts a streamed request body; past the limit, raises and answers 413 instead of the app."""

    def __init__(self, receive: Receive, send: Send, limit: int, flag: str, cors: list[tuple[bytes, bytes]]) -> None:
        self._receive, self._send = receive, send
        self.limit, self.flag, self.cors = limit, flag, cors
        self.received = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        """Receive the next message, counting body bytes."""
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise RequestTooLarge(_too_large(self.received, self.limit, self.flag))
        return message

    async def send(self, message: Message) -> None:
        """Send the app's answer, or the 413 when the body went past the limit."""
        if self.exceeded:
            if message["type"] == "http.response.start":
                await self.refuse()
            return
        if message["type"] == "http.response.start":
            self.started = True
            if self.cors:
                message = {**message, "headers": [*message.get("headers", ()), *self.cors]}
        await self._send(message)

    async def refuse(self) -> None:
        """Answer 413 unless an answer has begun."""
        if not self.started:
            self.started = True
            await _answer(self._send, 413, "REQUEST_LIMIT_EXCEEDED", _too_large(self.received, self.limit, self.flag),
                          self.cors)


# -- command-line options (shared by `fitscribe server` and `fitscribe ui`) -------------------------
def add_security_arguments(parser: "argparse.ArgumentParser") -> None:
    """Add ``--auth-file``, ``--allowed-hosts``, ``--cors-allowed-origins``, ``--max-request-mb``,
    ``--max-upload-mb``, ``--hash-secret`` and ``--new-token`` to a command's parser."""
    group = parser.add_argument_group("security")
    group.add_argument("--auth-file", metavar="PATH",
                       help="YAML file of users (basic auth) and bearer tokens with their hashes and access "
                            "(read-only or read-write); without it, no authentication")
    group.add_argument("--allowed-hosts", metavar="LIST",
                       help="comma-separated Host names clients may use ('*.example.com', 'name:port', '*' for any; "
                            "default: localhost, 127.0.0.1, [::1] and --host)")
    group.add_argument("--cors-allowed-origins", metavar="LIST",
                       help="comma-separated origins whose web pages may call the API ('https://ui.example.com', "
                            "'http://localhost:*', '*'; default: none, only this server's own pages)")
    group.add_argument("--max-request-mb", type=float, default=DEFAULT_MAX_REQUEST_MB, metavar="MB",
                       help=f"largest API request body (default {DEFAULT_MAX_REQUEST_MB}; 0: no limit)")
    group.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                       help=f"largest artifact upload (default {DEFAULT_MAX_UPLOAD_MB}; 0: no limit)")
    group.add_argument("--hash-secret", action="store_true",
                       help="read a password from the terminal (or stdin), print its hash for --auth-file, exit")
    group.add_argument("--new-token", action="store_true",
                       help="print a new random bearer token and its hash for --auth-file, exit")


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def security_from_args(args: "argparse.Namespace") -> SecurityConfig:
    """Build the :class:`SecurityConfig` from options added by :func:`add_security_arguments`.

    Raises:
        ConfigError: The auth file is unusable, or a limit or pattern is invalid.
    """
    from fitscribe.server.auth import load_auth_file

    credentials = load_auth_file(args.auth_file) if args.auth_file else None
    hosts = _csv(args.allowed_hosts)
    config = SecurityConfig(
        credentials=credentials,
        allowed_hosts=hosts if hosts is not None else DEFAULT_ALLOWED_HOSTS,
        cors_allowed_origins=_csv(args.cors_allowed_origins) or (),
        max_request_bytes=int(args.max_request_mb * MB),
        max_upload_bytes=int(args.max_upload_mb * MB),
    )
    return config


def run_secret_helpers(args: "argparse.Namespace", out: Callable[[str], None]) -> bool:
    """Do ``--hash-secret`` or ``--new-token`` if asked; return True when one ran (the command ends).

    ``--hash-secret`` asks twice on a terminal; otherwise it reads one line from stdin.
    """
    import sys

    from fitscribe.server.auth import hash_secret, new_token

    if getattr(args, "new_token", False):
        token, digest = new_token()
        out(f"token (give it to the client as MLFLOW_TRACKING_TOKEN; it is not stored): {token}")
        out(f"token_hash (put it in --auth-file): {digest}")
        return True
    if not getattr(args, "hash_secret", False):
        return False
    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != secret:
            raise ConfigError("The two passwords differ; run `fitscribe server --hash-secret` again.")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    out(hash_secret(secret))
    return True
