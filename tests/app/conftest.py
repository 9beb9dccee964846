"""The browser the playground's browser tests share (browsertools.py says where it comes from)."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from .browsertools import ARGS, CHROMIUM

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1600, "height": 1000}
        )
        yield context
        context.close()
