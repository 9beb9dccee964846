"""The playground in a real browser: headless Chromium (the system's, driven by Playwright) on the page
graphc serve serves. Skipped with a reason where Playwright or Chromium is missing; CI installs both
(.ci/run), and there a missing one is a failure, not a skip."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .browsertools import TWO_LAYER, pytestmark, watched  # noqa: F401 (the skip where there is no browser)
from .servetools import running

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base():
    with running() as url:
        yield url


@pytest.fixture()
def page(browser, base):
    """A fresh tab; every request it makes is recorded, and none may leave 127.0.0.1 (and this server)."""
    with watched(browser, base, "page", statuses_ok=True) as pg:
        yield pg


def ready(pg, timeout: float = 10) -> None:
    pg.wait_for_function("() => window.graphcPlayground && window.graphcPlayground.ready()", timeout=timeout * 1000)


def set_text(pg, text: str) -> None:
    pg.evaluate("t => window.graphcPlayground.cm.setValue(t)", text)


def test_typing_the_two_layer_network_shows_both_pictures_equations_and_code(page, base):
    page.goto(base + "/#no-such-example")  # (an empty editor)
    page.wait_for_selector("[data-test=examples] button")
    page.click(".CodeMirror")  # the editor: keystrokes as a user types them
    page.keyboard.type(TWO_LAYER)
    t0 = time.monotonic()
    ready(page, 2)
    page.wait_for_selector("[data-test=forward] svg", timeout=2000)
    page.wait_for_selector("[data-test=backward] svg", timeout=2000)
    seconds = time.monotonic() - t0
    assert seconds < 2, f"the panels took {seconds:.2f} s"
    assert page.evaluate("window.graphcPlayground.cm.getValue()") == TWO_LAYER
    assert page.locator("[data-test=errors] li").count() == 0
    assert page.locator("[data-test=equations] .katex").count() >= 10  # typeset, a row per equation
    assert "def loss_and_grad(" in page.inner_text("[data-test=code]")
    assert "flops" in page.inner_text("[data-test=cost]")
    shapes = page.inner_text("[data-test=shapes]")
    assert "W1" in shapes and "[3, 2]" in shapes
    assert "ok: 10 values; loss L; outputs y; params W1, b1, W2, b2" in shapes  # as `graphc check` ends
    # the backward picture draws error signals; the forward one does not
    assert page.locator("[data-test=backward] g.node.signal").count() >= 4
    assert page.locator("[data-test=forward] g.node.signal").count() == 0


def test_the_source_hook_is_the_editors_text(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    assert page.input_value("[data-test=source]") == (REPO / "examples" / "two_layer.gc").read_text()
    page.fill("[data-test=source]", TWO_LAYER)  # replaces the editor's text
    ready(page)
    assert page.evaluate("window.graphcPlayground.cm.getValue()") == TWO_LAYER
    page.type("[data-test=source]", "output h\n")  # typed at its end
    ready(page)
    assert page.evaluate("window.graphcPlayground.cm.getValue()") == TWO_LAYER + "output h\n"
    assert "outputs y, h" in page.inner_text("[data-test=shapes]")


def test_a_syntax_error_shows_at_its_line_and_column(page, base):
    page.goto(base + "/")
    ready(page)
    set_text(page, "input x: [2]\nz = x +* 2\nloss z\n")
    ready(page)
    first = page.locator("[data-test=errors] li").first
    assert first.inner_text().startswith("2:8: unexpected `*`")
    assert page.locator(".CodeMirror .cm-squiggle").count() == 1  # the squiggle under it
    assert page.locator("[data-test=forward].stale").count() == 1  # the last pictures stay, dimmed
    # fixed: the errors go and the pictures follow
    set_text(page, "input x: [2]\nz = sum(x * 2)\nloss z\n")
    ready(page)
    assert page.locator("[data-test=errors] li").count() == 0
    assert page.locator(".CodeMirror .cm-squiggle").count() == 0


def test_the_step_control_visits_every_backward_node(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    steps = page.evaluate("window.graphcPlayground.state.steps")
    assert len(steps) >= 5
    seen = []
    for k in range(len(steps)):
        page.click("[data-test=step]")
        node = page.get_attribute("[data-test=backward]", "data-step-node")
        seen.append(int(node))
        assert page.locator("[data-test=backward] g.node.hl").count() in (1, 2), f"step {k}: no node lit"  # (box, op)
        info = page.inner_text("#step-info")
        assert info.startswith(f"{k + 1}/{len(steps)}") and steps[k]["name"].strip("()") in info
        if steps[k]["row"] is not None:
            row = page.locator("[data-test=equations] .row.hl")
            assert row.count() == 1 and row.get_attribute("data-row") == str(steps[k]["row"])
        assert page.locator(".CodeMirror .cm-line-step").count() == 1  # its line in the model
    assert seen == [s["id"] for s in steps]
    page.click("[data-test=step]")  # round again
    assert page.get_attribute("[data-test=backward]", "data-step-node") == str(steps[0]["id"])
    page.click("#step-back")  # and back
    assert page.get_attribute("[data-test=backward]", "data-step-node") == str(steps[-1]["id"])


def test_every_example_is_one_click_away(page, base):
    page.goto(base + "/")
    ready(page)
    names = page.eval_on_selector_all("[data-test=examples] button", "bs => bs.map(b => b.dataset.name)")
    assert {"two_layer", "digits_mlp", "xor_mlp"} <= set(names)
    for name in ("digits_mlp", "xor_mlp"):
        page.click(f"[data-test=examples] button[data-name={name}]")
        ready(page)
        text = page.evaluate("window.graphcPlayground.cm.getValue()")
        assert text == (REPO / "examples" / f"{name}.gc").read_text()
        assert page.locator("[data-test=errors] li").count() == 0
        assert page.locator("[data-test=backward] svg").count() == 1


def test_bad_requests_leave_the_server_answering(page, base):
    page.goto(base + "/")
    ready(page)
    statuses = page.evaluate(
        """async () => {
            const post = (body) => fetch("/api/analyze", {method: "POST", body}).then(r => r.status, () => 0);
            const big = new Uint8Array(20 * 1024 * 1024);
            return [await post("garbage"), await post(big),
                    ...await Promise.all(Array.from({length: 30}, () => fetch("/").then(r => r.status)))];
        }"""
    )
    assert statuses[0] == 400 and statuses[1] in (413, 0) and statuses[2:] == [200] * 30
    set_text(page, TWO_LAYER)
    ready(page)
    assert page.locator("[data-test=forward] svg").count() == 1


def test_many_tabs_at_once(browser, base):
    pages = [browser.new_page() for _ in range(4)]
    try:
        for pg in pages:
            pg.goto(base + "/#digits_mlp")
        for pg in pages:
            ready(pg, 20)
            assert pg.locator("[data-test=backward] svg").count() == 1
    finally:
        for pg in pages:
            pg.close()


def test_values_from_an_uploaded_npz_and_a_slider(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    page.set_input_files("#npz", str(REPO / "examples" / "two_layer.npz"))
    page.wait_for_function("() => document.getElementById('upload-info').textContent.includes('x [2]')")
    ready(page)
    assert "[0.5, -1]" in page.inner_html("[data-test=forward]")  # x's value, drawn in its box
    # a scalar param: a slider, and the pictures follow it
    set_text(page, "input x: [2]\nparam a: [] = 1\nL = sum(a * x)\nloss L\n")
    ready(page)
    slider = page.locator("#sliders input[type=range][data-name=a]")
    assert slider.count() == 1
    slider.fill("2.5")
    ready(page)
    assert page.evaluate("window.graphcPlayground.state.values") == {"a": 2.5}
    assert ">2.5<" in page.inner_html("[data-test=forward]")


def test_the_code_downloads_as_a_module(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "two_layer.py"
    text = Path(download.path()).read_text()
    assert text == page.inner_text("[data-test=code]") and "def loss_and_grad(" in text
    page.select_option("#target", "array-api")  # the module for another array library
    ready(page)
    assert "array_namespace" in page.inner_text("[data-test=code]")


def test_a_symbolic_dim_the_inputs_are_made_in(page, base):
    page.goto(base + "/#digits_mlp")
    ready(page)
    assert "[4, 64]" in page.inner_html("[data-test=forward]")  # N = 4 unless set
    page.fill("#dims input", "6")
    page.dispatch_event("#dims input", "change")
    ready(page)
    assert "[6, 64]" in page.inner_html("[data-test=forward]")


def test_the_text_is_kept_for_the_next_visit(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    set_text(page, TWO_LAYER + "# mine\n")
    ready(page)
    page.goto(base + "/")  # (no example named: the last text typed here)
    ready(page)
    assert page.evaluate("window.graphcPlayground.cm.getValue()") == TWO_LAYER + "# mine\n"
    page.goto(base + "/#xor_mlp")  # an example named wins
    ready(page)
    assert page.evaluate("window.graphcPlayground.cm.getValue()").startswith("#")
    assert "xor" in page.evaluate("window.graphcPlayground.cm.getValue()").lower()


def test_an_example_shows_its_own_values(page, base):
    page.goto(base + "/#two_layer")
    ready(page)
    assert "[0.5, -1]" in page.inner_html("[data-test=forward]")  # x of examples/two_layer.npz
    page.uncheck("#use-example-data")  # generated ones instead
    ready(page)
    assert "[0.5, -1]" not in page.inner_html("[data-test=forward]")
