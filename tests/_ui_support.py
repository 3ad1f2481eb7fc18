"""Browser-test support for the web UI: a real server, Debian's Chromium through Playwright, screenshots.

Use it by importing the fixtures into a test module (direct import; no ``pytest_plugins``)::

    from _ui_support import browser, page, screenshot, serve_app  # noqa: F401  (fixtures)

    def test_home(page):
        with serve_app(str(tmp_path)) as url:
            page.goto(url + "/")

- :func:`serve_app` starts ``create_app(tracking_uri)`` in a :class:`~fitscribe.server.run.ThreadedServer`
  on 127.0.0.1 (port chosen by the OS) and yields its base URL; use it in a module-scoped fixture
  when several tests share one store.
- ``browser`` (session scope) launches ``/usr/bin/chromium`` headless with the flags of
  ui_tech.md (never ``playwright install``). Without chromium or playwright the UI tests are
  skipped locally, and FAIL when ``CI`` is set (any value).
- ``page`` gives a fresh browser context and page; the test fails if the page logs a console error,
  raises an uncaught exception, or opens a dialog (``alert``/``confirm``/``prompt``: an XSS payload
  firing, or a native dialog the UI must not use). ``page.fitscribe_dialogs`` lists dialogs seen; a
  test that provokes an error answer on purpose adds its status to ``page.fitscribe_expected_statuses``
  (Chromium logs every 4xx/5xx resource as a console error).
- :func:`settle` waits until the page and its frames have finished loading: call it before asserting
  that an XSS payload did NOT fire.
- :func:`screenshot` saves a full-page PNG to ``$FITSCRIBE_SCREENSHOTS`` or ``test-output/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from _require import unavailable

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "serve_app", "browser", "page", "settle", "screenshot", "screenshot_dir", "READY_TIMEOUT_MS"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READY_TIMEOUT_MS = 60_000
"""Readiness markers may take long on a busy 2-core machine (software rendering)."""

_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serve_app(tracking_uri: str, **options: Any) -> Iterator[str]:
    """Serve ``create_app(tracking_uri, **options)`` on 127.0.0.1:<free port>; yield the base URL."""
    from fitscribe.server.app import create_app
    from fitscribe.server.run import ThreadedServer

    server = ThreadedServer(create_app(tracking_uri, **options))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def _unavailable(reason: str) -> None:
    """Skip the test locally; fail it in CI (``CI`` set to any value), where the browser must be installed."""
    unavailable(f"UI tests need a browser: {reason}", ci_hint="CI must run the browser tests (.ci/run)")


@pytest.fixture(scope="session")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (one per test session).

    Every test module importing this fixture gets its own copy of it (pytest registers an
    imported fixture once per module), but Playwright's sync API allows one instance per thread:
    the first copy launches the browser and keeps it on the session's config, the others reuse it.
    """
    shared = getattr(request.config, "_fitscribe_ui_browser", None)
    if shared is not None:
        yield shared
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                     headless=True, args=CHROMIUM_FLAGS)
        request.config._fitscribe_ui_browser = launched  # type: ignore[attr-defined]
        try:
            yield launched
        finally:
            del request.config._fitscribe_ui_browser  # type: ignore[attr-defined]
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that fails the test on console errors, page errors and any dialog."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(READY_TIMEOUT_MS)
    new_page = context.new_page()
    problems: list[str] = []
    dialogs: list[str] = []

    expected: set[int] = set()

    def on_console(message: Any) -> None:
        failed = re.match(r"Failed to load resource: the server responded with a status of (\d+)", message.text)
        if failed and int(failed.group(1)) in expected:
            return
        if "because the document's frame is sandboxed" in message.text:
            return  # a sandboxed artifact preview refusing to run its scripts: the protection working
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    new_page.on("console", on_console)
    new_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    new_page.on("dialog", on_dialog)
    new_page.fitscribe_dialogs = dialogs
    new_page.fitscribe_problems = problems
    new_page.fitscribe_expected_statuses = expected
    try:
        yield new_page
    finally:
        context.close()
    assert not dialogs, f"the page opened dialogs (script injection or a native dialog): {dialogs}"
    assert not problems, "the page reported errors:\n" + "\n".join(problems)


def settle(page: Any) -> None:
    """Wait for the positive sign that ``page`` has finished: the load event of the page and of every
    frame in it (their images have loaded or failed, so any inline handler has had its chance to run),
    then one round trip to the page, so a dialog opened before it has been reported to the fixture.

    A negative check ("no payload fired") asserts only after this, never after a fixed pause.
    """
    page.wait_for_load_state("load")
    for frame in page.frames:
        frame.wait_for_load_state("load")
    page.evaluate("document.readyState")


def screenshot_dir() -> Path:
    """Return the folder screenshots go to ($FITSCRIBE_SCREENSHOTS, else test-output/screenshots/)."""
    folder = Path(os.environ.get("FITSCRIBE_SCREENSHOTS") or _ROOT / "test-output" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``<name>.png`` for reviewers; return its path."""
    path = screenshot_dir() / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
