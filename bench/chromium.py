"""Debian's chromium, driven by Playwright: shared by the player's browser tests, its bench row
and the README's screenshot (docs/player_screenshot.py).

Playwright's own browser download (``playwright install``) is never used: it needs a network the
project's machines do not have. ``make setup`` installs Debian's ``chromium`` instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["ARGS", "HINT", "executable", "launch"]

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless, and nothing the browser would fetch on its own (updates, sync, field trials)."""

HINT = "install it with 'apt-get install chromium' (make setup does) or set BACKPROPLAB_CHROMIUM"


def executable() -> Path | None:
    """The chromium to drive: $BACKPROPLAB_CHROMIUM, else chromium on PATH, else None."""
    given = os.environ.get("BACKPROPLAB_CHROMIUM")
    if given:
        return Path(given) if Path(given).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def launch(playwright: Any) -> Any:
    """A headless chromium browser from a started ``sync_playwright()``.

    Raises RuntimeError naming what is missing when chromium cannot be found.
    """
    path = executable()
    if path is None:
        raise RuntimeError(f"Debian's chromium is not installed: {HINT}")
    return playwright.chromium.launch(executable_path=str(path), args=ARGS)
