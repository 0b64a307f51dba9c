"""Headless Chromium for the tests that open a report: where it is, and how it is launched
(flags that keep it off the network: this machine has none, and a report must need none)."""
import os

import pytest

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    """Debian's chromium, where playwright is installed too; else None."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        return None
    return next((p for p in CHROMIUM_PATHS if os.path.exists(p)), None)


needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="needs playwright and Debian's chromium (.ci/run installs both)")


def launch(playwright):
    """A headless Chromium browser from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
