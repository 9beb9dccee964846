"""Bad input that used to reach a traceback or a misleading message (issue 11, items 9-14 and 16).

Every case is run as a user runs it (`python -m graphc ...` in a subprocess) or through the API,
and must end in a clear error (exit 1 for bad data, 2 for wrong usage), never an internal error.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from clitools import run_graphc

import graphc
from graphc import data
from graphc.errors import GraphcError
from graphc.training import loop as T

REPO = Path(__file__).resolve().parents[2]
EX = REPO / "examples"
LOGISTIC = EX / "logistic_least_squares.gc"  # input x, t; param w, b; z = w*x + b (line 24)
LSQ = EX / "least_squares.gc"  # input X: [N, D], t: [N]; param w: [D]


def graphc_cli(*args, cwd, stdin=None, code=None):
    r = run_graphc(*args, cwd=cwd, stdin=stdin)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert "internal error" not in r.stderr, r.stderr
    assert "Warning" not in r.stderr, r.stderr  # no NumPy warning naming graphc's insides
    if code is not None:
        assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return r


# ---- 9: data files that are not what they claim ------------------------------------------------
@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "x.npy", np.array(1.5))
    (tmp_path / "text.npz").write_text("x = 1.5\nt = 1\n")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "ok.npz", x=1.5, t=1.0)
    return tmp_path


@pytest.mark.parametrize(
    "cmd",
    [
        ["eval", LOGISTIC, "--inputs", "{f}"],
        ["grad", LOGISTIC, "--inputs", "{f}"],
        ["train", LOGISTIC, "--data", "{f}"],
        ["train", LOGISTIC, "--data", "ok.npz", "--val", "{f}"],
        ["train", LOGISTIC, "--data", "ok.npz", "--init", "{f}"],
    ],
)
def test_an_npy_file_is_not_an_npz(files, cmd):
    r = graphc_cli(*[str(a).format(f="x.npy") for a in cmd], cwd=files, code=1)
    assert "x.npy is a .npy file" in r.stderr and "not a .npz" in r.stderr
    assert "numpy.savez" in r.stderr


@pytest.mark.parametrize("name", ["text.npz", "empty.npz"])
def test_a_file_that_is_not_a_zip_says_so_without_talking_of_pickles(files, name):
    for cmd in (["eval", LOGISTIC, "--inputs", name], ["train", LOGISTIC, "--data", name]):
        r = graphc_cli(*cmd, cwd=files, code=1)
        assert f"{name} is not a .npz file" in r.stderr and "zip" in r.stderr
        assert "pickle" not in r.stderr.lower()


@pytest.mark.parametrize(
    "value, words",
    [
        (np.array(1 + 2j), "complex"),
        (np.array([1 + 0j, 2]), "complex"),
        (np.array(["a", "b"]), "text"),
        (np.array([b"a"]), "text"),
        (np.array([1, None], dtype=object), "Python objects"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "not numbers"),
        (np.zeros(2, dtype=[("a", "f8")]), "not numbers"),
    ],
)
def test_arrays_that_are_not_real_numbers_are_refused_naming_the_key(tmp_path, value, words):
    np.savez(tmp_path / "bad.npz", x=value, t=1.0, allow_pickle=True)
    for cmd in (["eval", LOGISTIC, "--inputs", "bad.npz"], ["train", LOGISTIC, "--data", "bad.npz"]):
        r = graphc_cli(*cmd, cwd=tmp_path, code=1)
        assert "`x`" in r.stderr and "bad.npz" in r.stderr and words in r.stderr


def test_keys_the_model_does_not_use_may_hold_anything(tmp_path):
    np.savez(tmp_path / "d.npz", x=1.5, t=1.0, names=np.array(["cat", "dog"]), zz=np.array(1j),
             o=np.array([None], dtype=object), allow_pickle=True)  # fmt: skip
    r = graphc_cli("eval", LOGISTIC, "--inputs", "d.npz", cwd=tmp_path, code=0)
    assert "L = 0.0712685" in r.stdout


def test_booleans_and_integers_are_numbers(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array(True), t=np.int64(1))
    graphc_cli("eval", LOGISTIC, "--inputs", "d.npz", cwd=tmp_path, code=0)


def test_training_data_from_the_api_is_checked_too():
    m = graphc.load(LOGISTIC)
    with pytest.raises(GraphcError, match="`x`.*complex"):
        T.train(m, {"x": np.array(1j), "t": np.array(1.0)}, quiet=True)


# ---- 10: outputs that cannot be written fail before the work ----------------------------------
OUTPUT_COMMANDS = [
    ["eval", LOGISTIC, "--inputs", EX / "logistic_least_squares.npz", "-o", "{o}.npz"],
    ["grad", LOGISTIC, "--inputs", EX / "logistic_least_squares.npz", "-o", "{o}.npz"],
    ["emit", LOGISTIC, "-o", "{o}.py"],
    ["render", LOGISTIC, "-o", "{o}.dot"],
    ["train", LSQ, "--data", EX / "least_squares.npz", "--epochs", "3000", "--quiet", "-o", "{o}.npz"],
    ["train", LSQ, "--data", EX / "least_squares.npz", "--epochs", "3000", "--quiet", "--plot", "{o}.png"],
]


@pytest.mark.parametrize("where", ["missing/folder/out", "/proc/nonexistent/out", "/proc/self/out"])
@pytest.mark.parametrize("cmd", OUTPUT_COMMANDS, ids=lambda c: f"{c[0]}-{c[-2]}")
def test_an_output_that_cannot_be_written_is_an_error_before_any_work(tmp_path, cmd, where):
    start = time.monotonic()
    r = graphc_cli(*[str(a).format(o=where) for a in cmd], cwd=tmp_path, code=1)
    assert "cannot write" in r.stderr, r.stderr
    assert r.stdout == ""  # nothing ran: no loss printed, no training
    assert time.monotonic() - start < 30  # 3000 epochs would take longer
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_output_in_a_read_only_folder_is_an_error_before_any_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = graphc_cli("train", LSQ, "--data", EX / "least_squares.npz", "-o", "ro/p.npz", cwd=tmp_path, code=1)
        assert "cannot write" in r.stderr and r.stdout == ""
    finally:
        ro.chmod(0o755)


def test_the_demo_checks_its_folder_before_training(tmp_path):
    r = graphc_cli("demo", "--out", "/proc/self/demo", "--quiet", cwd=tmp_path, code=1)
    assert "cannot write" in r.stderr and "held-out" not in r.stdout


# ---- 11: -o onto a symlink, FIFO, device, socket or folder ------------------------------------
def test_output_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real" / "v.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    (tmp_path / "link.npz").symlink_to(real)
    graphc_cli("eval", LOGISTIC, "--set", "x=1.5", "--set", "t=1", "-o", "link.npz", cwd=tmp_path, code=0)
    assert (tmp_path / "link.npz").is_symlink()
    with np.load(real) as f:
        assert float(f["L"]) == pytest.approx(0.0712685, rel=1e-5)
    assert sorted(p.name for p in real.parent.iterdir()) == ["v.npz"]  # no temporary file left


def test_write_atomic_through_a_chain_of_symlinks(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("c")  # c does not exist yet: written through
    data.write_atomic(str(tmp_path / "a"), lambda f: f.write(b"one"))
    data.write_atomic(str(tmp_path / "a"), lambda f: f.write(b"two"))
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert (tmp_path / "c").read_bytes() == b"two"


def _fifo(p: Path) -> Path:
    os.mkfifo(p)
    return p


def _socket(p: Path) -> Path:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


def _device(p: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
    return p


@pytest.mark.parametrize("make, words", [(_fifo, "FIFO"), (_socket, "socket"), (_device, "device")])
@pytest.mark.parametrize("cmd", OUTPUT_COMMANDS, ids=lambda c: f"{c[0]}-{c[-2]}")
def test_output_onto_a_special_file_is_refused_and_the_file_kept(tmp_path, cmd, make, words):
    name = cmd[-1].format(o="special")
    special = make(tmp_path / name)
    kind = stat.S_IFMT(special.lstat().st_mode)
    link = tmp_path / ("link" + special.suffix)
    link.symlink_to(special)
    for target in (special.name, link.name):
        r = graphc_cli(*cmd[:-1], target, cwd=tmp_path, code=1)
        assert "not a regular file" in r.stderr and words in r.stderr
        assert r.stdout == ""
        assert stat.S_IFMT(special.lstat().st_mode) == kind
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([link.name, special.name])


def test_output_onto_a_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    r = graphc_cli("eval", LOGISTIC, "--set", "x=1", "--set", "t=1", "-o", "d", cwd=tmp_path)
    assert r.returncode in (1, 2) and "folder" in r.stderr and list((tmp_path / "d").iterdir()) == []


def test_output_onto_a_hard_link_of_an_input_is_refused(tmp_path):
    np.savez(tmp_path / "in.npz", x=1.5, t=1.0)
    os.link(tmp_path / "in.npz", tmp_path / "same.npz")
    before = (tmp_path / "in.npz").read_bytes()
    r = graphc_cli("eval", LOGISTIC, "--inputs", "in.npz", "-o", "same.npz", cwd=tmp_path, code=2)
    assert "refusing to overwrite the input file" in r.stderr
    assert (tmp_path / "in.npz").read_bytes() == before


def test_two_outputs_of_one_command_must_differ(tmp_path):
    r = graphc_cli("train", LSQ, "--data", EX / "least_squares.npz", "-o", "x.png", "--plot", "x.png",
                   cwd=tmp_path, code=2)  # fmt: skip
    assert "x.png" in r.stderr and list(tmp_path.iterdir()) == []


# ---- 12: option values out of range ------------------------------------------------------------
def test_validation_data_of_the_wrong_shape_is_a_located_error(tmp_path):
    d = dict(np.load(EX / "least_squares.npz"))
    np.savez(tmp_path / "val.npz", X=d["X"][:, :2], t=d["t"])
    r = graphc_cli("train", LSQ, "--data", EX / "least_squares.npz", "--val", "val.npz", "--quiet",
                   cwd=tmp_path, code=1)  # fmt: skip
    assert "least_squares.gc:" in r.stderr and "^" in r.stderr  # at the model line, with a caret
    assert "validation data" in r.stderr and "[100, 2]" in r.stderr
    with pytest.raises(GraphcError, match="validation data"):
        T.train(graphc.load(LSQ), d, val={"X": d["X"][:, :2], "t": d["t"]}, quiet=True)


@pytest.mark.parametrize(
    "args, words",
    [
        (["gradcheck", "--max-checks", "-3"], "--max-checks"),
        (["gradcheck", "--max-checks", "0"], "--max-checks"),
        (["gradcheck", "--tol", "-1"], "--tol"),
        (["gradcheck", "--tol", "nan"], "--tol"),
        (["gradcheck", "--seed", "-1"], ">= 0"),
        (["eval", "--seed", "-1"], ">= 0"),
        (["grad", "--seed", "-1"], ">= 0"),
        (["equations", "--seed", "-1"], ">= 0"),
        (["render", "--seed", "-1"], ">= 0"),
    ],
)
def test_option_values_out_of_range_are_usage_errors(tmp_path, args, words):
    r = graphc_cli(args[0], LOGISTIC, "--inputs", EX / "logistic_least_squares.npz", *args[1:], cwd=tmp_path, code=2)
    assert words in r.stderr and "param" not in r.stderr
    assert r.stdout == ""


def test_train_seed_must_be_at_least_zero(tmp_path):
    r = graphc_cli("train", LSQ, "--data", EX / "least_squares.npz", "--seed", "-1", cwd=tmp_path, code=2)
    assert ">= 0" in r.stderr
    with pytest.raises(GraphcError, match=">= 0") as e:
        T.train(graphc.load(LSQ), dict(np.load(EX / "least_squares.npz")), seed=-1, quiet=True)
    assert e.value.usage


def test_gradcheck_api_refuses_to_check_nothing():
    from graphc.gradcheck import gradcheck

    m = graphc.load(LOGISTIC)
    for k in (0, -3):
        with pytest.raises(GraphcError, match="max_checks"):
            gradcheck(m, {"x": 1.5, "t": 1.0}, max_checks=k)


# ---- 13a: --set for a name the model computes --------------------------------------------------
def test_set_for_a_computed_name_is_an_error_at_its_line(tmp_path):
    (tmp_path / "m.gc").write_text("input x\nparam w = 1\nconst c = 2\nz = w*x\nL = c*z^2\n")
    for cmd in ("eval", "grad", "gradcheck", "equations", "render"):
        r = graphc_cli(cmd, "m.gc", "--set", "x=1", "--set", "z=3", cwd=tmp_path, code=1)
        assert "m.gc:4:5: error:" in r.stderr and "`z`" in r.stderr and "computed" in r.stderr
        assert "only inputs and params take values" in r.stderr
    r = graphc_cli("eval", "m.gc", "--set", "x=1", "--set", "c=3", cwd=tmp_path, code=1)
    assert "m.gc:3:" in r.stderr and "const" in r.stderr


def test_computed_names_in_an_inputs_file_are_not_used_and_the_user_is_told(tmp_path):
    (tmp_path / "m.gc").write_text("input x\nparam w = 1\nz = w*x\nL = z^2\n")
    graphc_cli("eval", "m.gc", "--set", "x=2", "-o", "all.npz", cwd=tmp_path, code=0)  # x, w, z and L
    np.savez(tmp_path / "d.npz", x=2.0, z=100.0, L=5.0, extra=1.0)
    r = graphc_cli("eval", "m.gc", "--inputs", "d.npz", cwd=tmp_path, code=0)
    assert "L = 4\n" in r.stdout
    assert "note:" in r.stderr and "`z`" in r.stderr and "`L`" in r.stderr and "computed" in r.stderr
    assert "extra" not in r.stderr  # keys the model does not use stay silent
    r = graphc_cli("grad", "m.gc", "--inputs", "all.npz", cwd=tmp_path, code=0)  # eval -o's output fed back
    assert "dL/dw = 8" in r.stdout


# ---- 14: a UTF-8 byte-order mark ---------------------------------------------------------------
def test_a_byte_order_mark_is_skipped(tmp_path):
    text = "input x\nparam w = 1\nL = (w*x)^2\n"
    (tmp_path / "bom.gc").write_bytes(b"\xef\xbb\xbf" + text.encode())
    r = graphc_cli("eval", "bom.gc", "--set", "x=2", cwd=tmp_path, code=0)
    assert "L = 4" in r.stdout
    r = run_graphc("eval", "-", "--set", "x=2", cwd=tmp_path, stdin="\ufeff" + text)
    assert r.returncode == 0 and "L = 4" in r.stdout, r.stderr
    assert graphc.load(tmp_path / "bom.gc").evaluate({"x": 2.0})["L"] == 4


def test_an_error_on_the_first_line_of_a_file_with_a_bom_has_the_right_column(tmp_path):
    (tmp_path / "a.gc").write_bytes(b"L = sigmoidd(x)\n")
    (tmp_path / "b.gc").write_bytes(b"\xef\xbb\xbf" + b"L = sigmoidd(x)\n")
    ra = graphc_cli("check", "a.gc", cwd=tmp_path, code=1)
    rb = graphc_cli("check", "b.gc", cwd=tmp_path, code=1)
    assert rb.stderr.replace("b.gc", "a.gc") == ra.stderr


# ---- 16: training that cannot mean what it says ------------------------------------------------
QUAD = "input x: [N]\nparam w = 1\nL = 0.5 * mean(x) * w^2\n"  # lr 2.5: the loss grows 2.25-fold a step


def test_an_exploding_loss_is_divergence_even_while_finite():
    m = graphc.compile(QUAD)
    with pytest.raises(GraphcError, match="diverged") as e:
        T.train(m, {"x": np.ones(4)}, lr=2.5, epochs=60, quiet=True)  # 0.5 * 2.25^60 = 6e20: finite
    assert "lr=" in e.value.hint  # the API's words; the CLI says --lr


@pytest.mark.parametrize("batch", [None, 10])
def test_halve_never_returns_an_exploded_loss(batch):
    m = graphc.load(LSQ)
    d = dict(np.load(EX / "least_squares.npz"))
    start = 0.5 * np.mean(d["t"] ** 2)  # w = 0
    r = T.train(m, d, lr=100, epochs=30, batch_size=batch, schedule="halve", quiet=True)  # halving recovers
    assert r.loss < 0.01 < start and max(r.history["loss"]) < 1e6 * max(start, 1)
    assert any("redone" in n for n in r.notes)


def test_cli_halve_divergence_is_not_a_silent_success(tmp_path):
    r = graphc_cli("train", LSQ, "--data", EX / "least_squares.npz", "--lr", "100", "--batch-size", "10",
                   "--schedule", "halve", "--epochs", "30", "--quiet", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0 and float(r.stdout.split("E = ")[1].split()[0]) < 0.01  # it ended at 3.6e70
    with pytest.raises(GraphcError, match="diverged"):  # no schedule to recover with: a clear stop
        T.train(graphc.load(LSQ), dict(np.load(EX / "least_squares.npz")), lr=100, epochs=30, quiet=True)


REGRESSION = "input X: [N, D]\ninput t: [N]\nparam w: [D] = 0\ny = X @ w\nL = 0.5 * mean((y - t)^2)\noutput y\n"


def test_accuracy_on_a_regression_model_is_refused(tmp_path):
    (tmp_path / "r.gc").write_text(REGRESSION)
    r = graphc_cli("train", "r.gc", "--data", EX / "least_squares.npz", "--metric", "accuracy", cwd=tmp_path, code=1)
    assert "accuracy" in r.stderr and "`t`" in r.stderr and "label" in r.stderr
    assert "trained" not in r.stdout  # refused before training


@pytest.mark.parametrize(
    "y, t, ok",
    [
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([[0.0, 1.0], [1.0, 0.0]]), 1.0),  # one-hot
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([[0.1, 0.9], [0.6, 0.4]]), 1.0),  # soft targets
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1]), 0.5),  # integer labels
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1.0, 0.0]), 1.0),  # integral floats are labels
        (np.array([0.7, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]), 2 / 3),  # one probability, 0/1 targets
        (np.array([[0.7], [0.2]]), np.array([[1.0], [0.0]]), 1.0),
        (np.array([2.5, -0.3, 0.4]), np.array([1.0, -1.0, -1.0]), 2 / 3),  # a score, ±1 labels: its sign
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([[0.3, 0.2], [1.0, 0.0]]), None),  # rows not summing to 1
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 2]), None),  # label 2 of 2 classes
        (np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([0.5, 1.0]), None),  # not integers
        (np.array([0.7, 0.2]), np.array([2.3, -0.1]), None),  # regression targets
        (np.array([0.7, 0.2]), np.array([2.0, 1.0]), None),  # integers, but not 0/1 for one output
    ],
)
def test_accuracy_needs_labels(y, t, ok):
    if ok is None:
        with pytest.raises(GraphcError, match="accuracy"):
            T.accuracy(y, t)
    else:
        assert T.accuracy(y, t) == pytest.approx(ok)


def test_mini_batches_without_an_example_axis_are_explained(tmp_path):
    (tmp_path / "v.gc").write_text("input x: [3]\ninput t: []\nparam w: [3] = 0\ny = w @ x\nL = 0.5*(y - t)^2\n")
    np.savez(tmp_path / "v.npz", x=np.array([1.0, 2.0, 3.0]), t=np.array(2.0))
    r = graphc_cli("train", "v.gc", "--data", "v.npz", "--batch-size", "1", "--quiet", cwd=tmp_path, code=1)
    assert "mini-batch" in r.stderr and "example axis" in r.stderr and "[N," in r.stderr
    graphc_cli("train", "v.gc", "--data", "v.npz", "--quiet", cwd=tmp_path, code=0)  # full batch is fine


if sys.platform == "win32":  # FIFOs, sockets and devices are POSIX things
    pytestmark = pytest.mark.skip("POSIX only")


def test_an_output_path_ending_in_a_slash_names_a_folder(tmp_path):
    model = tmp_path / "m.gc"
    model.write_text("input x: []\nL = x*x\n")
    r = run_graphc("grad", str(model), "--set", "x=3", "-o", f"{tmp_path}/newdir/")
    assert r.returncode == 2 and "it is a folder" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc"]  # (it wrote a file named newdir)


def test_a_bad_init_with_mini_batches_is_the_located_error_of_full_batches(tmp_path):
    np.savez(tmp_path / "init.npz", w=np.ones(5))
    args = ["train", str(REPO / "examples/least_squares.gc"), "--data", str(REPO / "examples/least_squares.npz")]
    args += ["--init", str(tmp_path / "init.npz")]
    full, batched = run_graphc(*args), run_graphc(*args, "--batch-size", "10")
    assert full.returncode == batched.returncode == 1
    assert "least_squares.gc:22:7" in batched.stderr and "shape [5]" in batched.stderr
    assert batched.stderr == full.stderr  # (it said "the init params hold none of the model's params")


def test_python_numbers_in_an_object_array_are_numbers():
    import graphc

    m = graphc.compile("input x: [2]\nL = sum(x)")
    assert m.evaluate({"x": np.array([1, 2.5], dtype=object)})["L"] == 3.5
    with pytest.raises(graphc.GraphcError, match="Python objects"):
        m.evaluate({"x": np.array(["a", None], dtype=object)})


# ---- found in review: gradcheck of a computed value, the --set hint ------------------------------
def test_gradcheck_of_a_computed_value_is_a_clear_error(tmp_path):
    """gradcheck perturbs inputs and params; a computed name (h, an alias, the loss) is refused at its line."""
    (tmp_path / "m.gc").write_text("param p = 1.5; y = p * p; z = y; L = sin(z)")
    for name, line in (("y", 1), ("z", 1), ("L", 1)):
        r = graphc_cli("gradcheck", "m.gc", "--wrt", name, cwd=tmp_path, code=2)
        assert f"`{name}` is computed by the model (line {line})" in r.stderr, r.stderr
        assert "hint: check the inputs and params it depends on: p" in r.stderr, r.stderr
    from graphc.gradcheck import gradcheck

    with pytest.raises(GraphcError, match="`z` is computed by the model"):
        gradcheck(graphc.compile("param p = 1.5; y = p * p; z = y; L = sin(z)"), {}, wrt=["z"])
    assert "ok: worst" in graphc_cli("gradcheck", "m.gc", "--wrt", "p", cwd=tmp_path, code=0).stdout


def test_the_set_hint_names_the_flag_and_quotes_the_list(tmp_path):
    (tmp_path / "m.gc").write_text("input x: [3]; L = sum(x)")
    r = graphc_cli("eval", "m.gc", "--set", "x=abc", cwd=tmp_path, code=2)
    assert "hint: e.g. --set x=0.5 or --set x='[1, 2, 3]'" in r.stderr, r.stderr
