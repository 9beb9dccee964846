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
