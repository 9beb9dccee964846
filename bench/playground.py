"""The playground's update latency: an edit in the page's editor -> every panel redrawn, in headless Chromium.

    python bench/playground.py [--edits 10] [--screenshot docs/img/playground.png]

Starts `graphc serve` on a free port, opens each model (examples/two_layer.gc, examples/digits_mlp.gc),
makes --edits edits (a character typed at the end of a line, the way a user types), and prints the
median and worst time from the edit to the panels showing it, measured in the page (performance.now()),
the page's 120 ms wait for more keystrokes included; and the server's own analysis time. Needs the
serve extra, Playwright and the system's Chromium (see .ci/run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EDIT = """async (line) => {
  const p = window.graphcPlayground, cm = p.cm;
  const t0 = performance.now();
  const n = cm.getLine(line).length;
  if (cm.getLine(line).endsWith(" ")) cm.replaceRange("", {line, ch: n - 1}, {line, ch: n});  // (taken back)
  else cm.replaceRange(" ", {line, ch: n}, {line, ch: n});  // (a space typed at the end of the line)
  while (!p.ready()) await new Promise(r => setTimeout(r, 2));
  return [performance.now() - t0, p.state.lastSeconds, p.state.timings];
}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--screenshot", metavar="PNG", help="also save a screenshot of the page with two_layer.gc")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "graphc", "serve", "--quiet", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=chromium, args=ARGS, headless=True, viewport={"width": 1600, "height": 1000}
            )
            page = ctx.new_page()
            for name in ("two_layer", "digits_mlp"):
                page.goto(f"{base}/#{name}")
                page.wait_for_function("() => window.graphcPlayground && window.graphcPlayground.ready()")
                lines = page.evaluate("window.graphcPlayground.cm.lineCount()")
                times, server_times, parts = [], [], []
                for k in range(args.edits):
                    ms, secs, timings = page.evaluate(EDIT, (k * 7) % (lines - 1))
                    times.append(ms)
                    server_times.append(secs * 1000)
                    parts.append(timings)
                print(
                    f"{name}.gc: edit -> panels updated: median {statistics.median(times):.0f} ms, "
                    f"worst {max(times):.0f} ms over {args.edits} edits "
                    f"(the analysis itself: median {statistics.median(server_times):.0f} ms, the request in all "
                    f"{statistics.median(p['fetch'] for p in parts):.0f} ms, drawing the panels "
                    f"{statistics.median(p['render'] for p in parts):.0f} ms; "
                    "the page waits 120 ms for more keystrokes first)"
                )
            if args.screenshot:
                page.goto(f"{base}/#two_layer")
                page.wait_for_function("() => window.graphcPlayground && window.graphcPlayground.ready()")
                for _ in range(6):
                    page.click("[data-test=step]")
                time.sleep(0.3)
                page.screenshot(path=args.screenshot)
                print(f"wrote {args.screenshot}")
            ctx.close()
    finally:
        server.terminate()
        server.wait(10)
    return 0


def _wait(base: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/api/examples", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
