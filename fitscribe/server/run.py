"""Running the server with uvicorn: ``serve`` (what ``fitscribe server`` calls) and
``ThreadedServer`` (a server in a background thread on a loopback port, for tests and notebooks)."""

from __future__ import annotations

import importlib.util
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from fitscribe.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import socket

    from fitscribe.server.security import SecurityConfig

__all__ = ["serve", "ThreadedServer", "run_worker_processes"]


def _require_server_packages() -> None:
    for package in ("starlette", "uvicorn"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError.for_package(package, "server", "fitscribe server")


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="on", ws="none", server_header=False,
                          loop="asyncio", http="h11")  # as tested, even where uvloop/httptools are installed


def serve(
    tracking_uri: str,
    artifact_uri: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    serve_artifacts: bool = True,
    log_level: str = "info",
    announce: Callable[[str], None] = print,
    security: "SecurityConfig | None" = None,
    name: str = "fitscribe server",
) -> None:
    """Serve the tracking API until interrupted (Ctrl-C or SIGTERM).

    The socket is bound first, then ``announce`` receives the URL (with the real port when ``port``
    is 0). With ``workers`` > 1, that many processes share the socket, each with its own app.

    Args:
        tracking_uri: The tracking store (see :func:`~fitscribe.server.app.create_app`).
        artifact_uri: The artifact destination of the proxy.
        host: The interface to listen on; the default serves this machine only.
        port: The TCP port (0: any free port).
        workers: Server processes.
        serve_artifacts: Serve the artifact proxy.
        log_level: uvicorn's log level.
        announce: Receives one line naming the URL being served (then one on security).
        security: Host check, CORS, authentication and size limits (default
            :class:`~fitscribe.server.security.SecurityConfig`); ``host`` is added to the allowed
            Host names when it is a specific address.
        name: The command named in the announcement (``fitscribe ui`` for the UI command).

    Raises:
        MissingDependencyError: starlette or uvicorn is not installed (``fitscribe[server]``).
        ConfigError: ``workers`` is below 1.
    """
    _require_server_packages()
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    from fitscribe.server.app import create_app
    from fitscribe.server.security import SecurityConfig
    from fitscribe.uri import redact

    security = (security or SecurityConfig()).bound_to(host)
    options = {"tracking_uri": tracking_uri, "artifact_uri": artifact_uri, "serve_artifacts": serve_artifacts,
               "security": security}
    app = create_app(**options) if workers == 1 else None  # type: ignore[arg-type]
    if app is not None:
        app.state.server.warm_up()  # opens the store while uvicorn loads
    import uvicorn

    config = _uvicorn_config(app, host, port, log_level)
    sock = config.bind_socket()
    _no_delay(sock)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    announce(f"{name}: tracking store {redact(tracking_uri)} at http://{shown_host}:{bound_port} "
             f"({workers} worker{'s' if workers > 1 else ''}; Ctrl-C to stop)")
    announce(_security_summary(security, host))
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        _run_workers(options, sock, workers, log_level)


def _security_summary(security: "SecurityConfig", host: str) -> str:
    """One line saying what the security layer enforces (no secrets: counts only)."""
    credentials = security.credentials
    auth = (f"auth on ({len(credentials.users)} users, {len(credentials.tokens)} tokens)" if credentials
            else "no auth (--auth-file)")
    hosts = ", ".join(security.allowed_hosts)
    hint = " (add the names clients use with --allowed-hosts)" if host.strip() in ("0.0.0.0", "::", "") else ""
    return f"security: {auth}; Host names allowed: {hosts}{hint}"


def _no_delay(sock: "socket.socket") -> None:
    """Turn Nagle's algorithm off for the connections this listening socket accepts (inherited).

    asyncio does so itself only for sockets created with ``proto=IPPROTO_TCP``; uvicorn's
    ``bind_socket`` creates them with ``proto=0``, and every small answer then waits ~40 ms for a
    delayed ACK (22 requests/s instead of hundreds).
    """
    import socket

    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _worker(options: dict[str, Any], sock: "socket.socket", log_level: str) -> None:  # pragma: no cover - child
    """One worker process: build its own app and serve the shared socket."""
    import uvicorn

    from fitscribe.server.app import create_app

    app = create_app(**options)
    app.state.server.warm_up()
    uvicorn.Server(_uvicorn_config(app, "", 0, log_level)).run(sockets=[sock])


def _run_workers(options: dict[str, Any], sock: "socket.socket", workers: int, log_level: str) -> None:
    """Start the tracking server's worker processes on the shared socket."""
    run_worker_processes(_worker, options, sock, workers, log_level)


def run_worker_processes(target: Callable[..., None], options: dict[str, Any], sock: "socket.socket",
                         workers: int, log_level: str) -> None:
    """Run ``target(options, sock, log_level)`` in ``workers`` spawned processes sharing ``sock``;
    stop them all when this process is interrupted (Ctrl-C or SIGTERM)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no state inherited: each worker builds its app
    processes = [context.Process(target=target, args=(options, sock, log_level), name=f"fitscribe-worker-{i}")
                 for i in range(workers)]

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
        sock.close()


class ThreadedServer:
    """A uvicorn server for an ASGI app in a background thread, on a loopback port chosen by the OS.

    Args:
        app: The ASGI application (e.g. from :func:`~fitscribe.server.app.create_app`).
        host: The interface (default 127.0.0.1).
        port: The port (default 0: any free port; read :attr:`url` after :meth:`start`).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and return the base URL (``http://127.0.0.1:<port>``).

        Raises:
            RuntimeError: The server did not start within ``timeout`` seconds.
        """
        import uvicorn

        policy = getattr(getattr(self.app, "state", None), "security", None)
        if policy is not None:  # an app of create_app: requests to the address served are allowed
            policy.allow_bind_host(self.host)
        self._server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port, "warning"))
        self._thread = threading.Thread(target=self._server.run, name="fitscribe-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The server on {self.host}:{self.port} did not start within {timeout} s.")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (runs the app's shutdown, which closes its stores) and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            self._server = self._thread = None

    def __enter__(self) -> "ThreadedServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
