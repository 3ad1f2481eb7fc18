"""What the UI benchmarks share: the app served on a loopback port, and Debian's Chromium (Playwright).

Same launch flags as the browser tests (tests/_ui_support.py, ui_tech.md); never ``playwright install``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def serve(tmp: str) -> Iterator[str]:
    """Serve the worker's store (``<tmp>/store``) with the web UI; yield the base URL."""
    from fitscribe.server.app import create_app
    from fitscribe.server.run import ThreadedServer

    server = ThreadedServer(create_app(os.path.join(tmp, "store")))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def launch(playwright: Any) -> Any:
    """Launch headless Chromium."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
