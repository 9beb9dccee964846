"""A target is a folder of graphc/backends: found by its name, nothing else to edit."""

import pytest
from clitools import run_graphc

import graphc
import graphc.backends as backends
from graphc import GraphcError

MODEL = "z = w*x + b; y = sigmoid(z); L = 0.5*(y - t)^2"


def test_numpy_is_a_target_and_the_default():
    m = graphc.compile(MODEL)
    assert "numpy" in backends.targets()
    assert m.emit(target="numpy") == m.emit()


def test_a_new_folder_is_a_new_target(tmp_path, monkeypatch):
    folder = tmp_path / "plain_text"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "module.py").write_text(
        "def emit(graph, wrt, dtype, module_name, order):\n    return f'{module_name}: {sorted(graph.names)}'\n"
    )
    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(tmp_path)])
    assert "plain-text" in backends.targets()
    assert graphc.compile(MODEL).emit(module_name="m", target="plain-text") == "m: ['L', 'b', 't', 'w', 'x', 'y', 'z']"


def test_an_unknown_target_is_a_usage_error_naming_the_targets():
    with pytest.raises(GraphcError, match="unknown target 'cobol'") as e:
        graphc.compile(MODEL).emit(target="cobol")
    assert e.value.usage and "numpy" in e.value.hint


def test_the_command_line_offers_the_targets(tmp_path):
    (tmp_path / "m.gc").write_text(MODEL)
    r = run_graphc("emit", "m.gc", "--target", "cobol", cwd=tmp_path)
    assert r.returncode == 2 and "numpy" in r.stderr
    r = run_graphc("emit", "m.gc", "--target", "numpy", cwd=tmp_path)
    assert r.returncode == 0 and "def loss_and_grad(" in r.stdout


def test_a_target_whose_library_is_missing_says_what_to_install(tmp_path, monkeypatch):
    folder = tmp_path / "needs_lib"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "module.py").write_text('"""Needs a library."""\nimport graphc_no_such_library\n')
    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(tmp_path)])
    with pytest.raises(GraphcError, match="the needs-lib target needs the package graphc_no_such_library") as e:
        graphc.compile(MODEL).emit(target="needs-lib")
    assert "pip install 'graphc[needslib]'" in e.value.hint


def test_every_target_has_a_one_line_summary_for_the_help():
    lines = backends.summaries()
    assert set(lines) == set(backends.targets())
    assert all(line and "\n" not in line and len(line) < 110 for line in lines.values())


def test_ci_installs_every_array_library_the_tests_run_on():
    import os

    from arraylibs import LIBRARIES

    if not os.environ.get("CI"):
        pytest.skip("CI only: a machine without a library skips its tests")
    skipped = {p.id for p in LIBRARIES if p.marks and p.id not in ("cuda", "cupy")}
    assert not skipped, f"CI lacks {skipped}: .ci/run must install them"
