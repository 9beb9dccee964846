"""What the browser tests share: the system's Chromium driven by Playwright, skipped with a reason where
either is missing (CI installs both, and there a missing one is a failure, not a skip)."""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # (on a closed network its connections are refused, and slow it)
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TWO_LAYER = """input x: [2]
input t: [2]
param W1: [3, 2]
param b1: [3] = 0
param W2: [2, 3]
param b2: [2] = 0

z = W1 @ x + b1
h = sigmoid(z)
y = W2 @ h + b2
L = 0.5*sum((t - y)^2)

loss L
output y
"""


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if CHROMIUM is None:
        return "no Chromium on this machine (apt-get install chromium)"
    return None


why = _missing()
if why and os.environ.get("CI"):
    pytest.fail(f"CI runs the browser tests: {why}", pytrace=False)
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")


@contextlib.contextmanager
def watched(browser, base: str, what: str, statuses_ok: bool = False):
    """A fresh tab that records every request: on exit none may have left `base` (127.0.0.1), and the tab
    may have reported no error. statuses_ok: a console error for an HTTP status (a 409 for a superseded
    edit, say) is the network's, not the page's."""
    pg = browser.new_page()
    requests, problems = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: problems.append(str(e)))
    network = "Failed to load resource" if statuses_ok else None
    pg.on("console", lambda m: m.type == "error" and not (network and network in m.text) and problems.append(m.text))
    pg.requests = requests
    yield pg
    pg.close()
    assert requests, f"the {what} made no request"
    elsewhere = [u for u in requests if not u.startswith(base + "/") and not u.startswith(("data:", "blob:"))]
    assert elsewhere == [], f"requests left {base}: {elsewhere}"
    assert problems == [], f"the {what} reported errors: {problems}"
