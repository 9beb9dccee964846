"""The command line end to end (SPEC §2, issue 2 item 6): `python -m graphc check|eval`.

Every run goes through a real subprocess; expected numbers are computed with NumPy.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clitools import run_graphc
from goldens import example_models

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def graphc(*args, cwd, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = run_graphc(*args, cwd=cwd, stdin=stdin)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    assert "internal error" not in r.stderr, r.stderr
    return r


def ok(*args, cwd, stdin=None) -> subprocess.CompletedProcess:
    r = graphc(*args, cwd=cwd, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r


def printed(stdout: str, name: str) -> float:
    """The number printed as `name = value`."""
    m = re.search(rf"^{re.escape(name)} = ([-+0-9.eE]+|nan|inf)\s*$", stdout, re.MULTILINE)
    assert m, f"no `{name} = ...` line in:\n{stdout}"
    return float(m.group(1))


def table(stdout: str) -> dict:
    """The check table: {name: (kind, shape-without-spaces, line)}."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^\s*name\s+kind\s+shape\s+line\s*$", line))
    rows = {}
    for line in lines[header + 1 :]:
        m = re.match(r"^\s*(\S+)\s+(input|param|const|value)\s+(.*?)\s+(\d+)\s*$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).replace(" ", ""), int(m.group(4)))
    return rows


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def model(tmp_path):
    def write(text: str, name: str = "m.gc") -> Path:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p

    return write


# ---- check ---------------------------------------------------------------------------------

CHECK_MODEL = """\
input X: [N, 3]     # data
param w: [3] = 0
const c = 2

r = X @ w           # line 5
input t             # unknown shape
u = t * c
L = c * sum(r^2)
loss L
output r, u
"""


def test_check_prints_a_table_of_every_value(tmp_path, model):
    r = ok("check", model(CHECK_MODEL), cwd=tmp_path)
    rows = table(r.stdout)
    assert set(rows) == {"X", "w", "c", "r", "t", "u", "L"}
    assert rows["X"] == ("input", "[N,3]", 1)
    assert rows["w"] == ("param", "[3]", 2)
    assert rows["c"] == ("const", "[]", 3)
    assert rows["r"] == ("value", "[N]", 5)
    assert rows["t"][0] == "input" and rows["t"][2] == 6
    assert rows["u"][0] == "value" and rows["u"][2] == 7
    assert rows["L"] == ("value", "[]", 8)
    assert r.stderr == ""


def _defined_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for stmt in code.split(";"):
            m = re.match(r"^\s*(?:input|param|const)\s+(\w+)", stmt) or re.match(r"^\s*(\w+)\s*=", stmt)
            if m:
                names.add(m.group(1))
    return names


@pytest.mark.parametrize("path", example_models(), ids=lambda p: p.name)
def test_check_every_example(tmp_path, path):
    r = ok("check", path, cwd=tmp_path)
    rows = table(r.stdout)
    assert _defined_names(path.read_text(encoding="utf-8")) <= set(rows)
    for name, (_kind, _shape, line) in rows.items():
        source_line = path.read_text(encoding="utf-8").splitlines()[line - 1]
        call = name.split(".")[0]  # a value of a call, H1.z, is on the call's line
        assert re.search(rf"(?<!\w){re.escape(call)}(?!\w)", source_line), f"{name} is not on line {line}"


def test_check_exit_code_on_error(tmp_path, model):
    r = graphc("check", model("y = (x +\n"), cwd=tmp_path)
    assert r.returncode == 1 and "error:" in r.stderr


# ---- eval ----------------------------------------------------------------------------------

LOGISTIC = "input x\ninput t\nparam w = 1\nparam b = -1\nz = w*x + b\ny = sigmoid(z)\nL = 0.5*(y - t)^2\noutput y\n"


def test_eval_prints_loss_and_outputs(tmp_path, model):
    r = ok("eval", model(LOGISTIC), "--set", "x=2", "--set", "t=1", cwd=tmp_path)
    y = sigmoid(1.0 * 2 - 1)
    assert printed(r.stdout, "L") == pytest.approx(0.5 * (y - 1) ** 2, rel=1e-5)
    assert printed(r.stdout, "y") == pytest.approx(y, rel=1e-5)


def test_eval_shipped_example_with_its_data(tmp_path):
    data = np.load(EXAMPLES / "logistic_least_squares.npz")
    out = tmp_path / "out.npz"
    r = ok(
        "eval",
        EXAMPLES / "logistic_least_squares.gc",
        "--inputs",
        EXAMPLES / "logistic_least_squares.npz",
        "-o",
        out,
        cwd=tmp_path,
    )
    x, t = float(data["x"]), float(data["t"])
    y = sigmoid(1.0 * x - 1.0)
    L = 0.5 * (y - t) ** 2
    assert printed(r.stdout, "L") == pytest.approx(L, rel=1e-5)
    with np.load(out) as saved:
        assert set(saved.files) == {"x", "t", "w", "b", "z", "y", "L"}
        assert float(saved["L"]) == pytest.approx(L, rel=1e-12)
        assert float(saved["z"]) == pytest.approx(x - 1.0, rel=1e-12)


def test_eval_output_saves_every_named_value(tmp_path, model):
    src = "input X: [N, 3]\nparam W: [3, 2]\nparam b: [2] = 0.5\nconst k = 3\nH = tanh(X @ W + b)\nL = k * mean(H)\n"
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.savez(tmp_path / "in.npz", X=X)
    ok("eval", model(src), "--inputs", "in.npz", "-o", "out.npz", cwd=tmp_path)
    with np.load(tmp_path / "out.npz") as f:
        saved = {k: f[k] for k in f.files}
    assert set(saved) == {"X", "W", "b", "k", "H", "L"}
    np.testing.assert_array_equal(saved["X"], X)
    np.testing.assert_array_equal(saved["b"], [0.5, 0.5])
    assert saved["W"].shape == (3, 2) and np.all(np.abs(saved["W"]) <= np.sqrt(6 / 5))  # glorot
    H = np.tanh(X @ saved["W"] + saved["b"])
    np.testing.assert_allclose(saved["H"], H, rtol=1e-12)
    assert float(saved["L"]) == pytest.approx(3 * H.mean(), rel=1e-12)
    assert float(saved["k"]) == 3.0


def test_eval_two_layer_example_matches_numpy(tmp_path):
    ok("eval", EXAMPLES / "two_layer.gc", "--inputs", EXAMPLES / "two_layer.npz", "-o", "out.npz", cwd=tmp_path)
    with np.load(tmp_path / "out.npz") as f:
        s = {k: f[k] for k in f.files}
    h = sigmoid(s["W1"] @ s["x"] + s["b1"])
    y = s["W2"] @ h + s["b2"]
    np.testing.assert_allclose(s["y"], y, rtol=1e-12)
    assert float(s["L"]) == pytest.approx(0.5 * np.sum((s["t"] - y) ** 2), rel=1e-12)


def test_inputs_is_repeatable_and_later_files_win(tmp_path, model):
    np.savez(tmp_path / "a.npz", x=np.array(1.0), t=np.array(0.5))
    np.savez(tmp_path / "b.npz", x=np.array(4.0))
    m = model("input x\ninput t\nL = (x - t)^2\n")
    r = ok("eval", m, "--inputs", "a.npz", "--inputs", "b.npz", cwd=tmp_path)
    assert printed(r.stdout, "L") == pytest.approx((4.0 - 0.5) ** 2)
    r = ok("eval", m, "--inputs", "b.npz", "--inputs", "a.npz", cwd=tmp_path)
    assert printed(r.stdout, "L") == pytest.approx((1.0 - 0.5) ** 2)


@pytest.mark.parametrize(
    "value, x",
    [
        ("2", np.array(2.0)),
        ("-0.5", np.array(-0.5)),
        ("1e-3", np.array(1e-3)),
        ("[1, 2, 3]", np.array([1.0, 2.0, 3.0])),
        ("[[1, 2], [3, 4.5]]", np.array([[1.0, 2.0], [3.0, 4.5]])),
    ],
)
def test_set_number_and_json_list(tmp_path, model, value, x):
    r = ok("eval", model("input x\nL = sum(x^2) + 1\n"), "--set", f"x={value}", "-o", "o.npz", cwd=tmp_path)
    assert printed(r.stdout, "L") == pytest.approx(np.sum(x**2) + 1, rel=1e-5)
    with np.load(tmp_path / "o.npz") as f:
        np.testing.assert_array_equal(f["x"], x)


def test_later_set_wins(tmp_path, model):
    r = ok("eval", model("input x\nL = 3*x\n"), "--set", "x=1", "--set", "x=5", cwd=tmp_path)
    assert printed(r.stdout, "L") == 15.0


def test_set_after_inputs_wins(tmp_path, model):
    np.savez(tmp_path / "a.npz", x=np.array(1.0), t=np.array(2.0))
    r = ok("eval", model("input x\ninput t\nL = x*t\n"), "--inputs", "a.npz", "--set", "x=7", cwd=tmp_path)
    assert printed(r.stdout, "L") == 14.0


def test_set_gives_a_param_value(tmp_path, model):
    r = ok("eval", model("param w: [2] = 0\nL = sum(w * x)\n"), "--set", "w=[2, 3]", "--set", "x=[1, 10]", cwd=tmp_path)
    assert printed(r.stdout, "L") == 32.0


SEED_MODEL = "param W: [3, 4] = normal(0, 1)\nparam G: [4, 2]\nL = sum(W @ G)\n"


def test_seed_same_seed_same_params_different_seed_different(tmp_path, model):
    m = model(SEED_MODEL)
    for name, seed in (("a", 1), ("b", 1), ("c", 2), ("d", 0)):
        ok("eval", m, "--seed", seed, "-o", f"{name}.npz", cwd=tmp_path)
    ok("eval", m, "-o", "default.npz", cwd=tmp_path)
    load = lambda n: dict(np.load(tmp_path / f"{n}.npz"))
    a, b, c, d, default = (load(n) for n in ("a", "b", "c", "d", "default"))
    for p in ("W", "G"):
        np.testing.assert_array_equal(a[p], b[p])
        assert not np.allclose(a[p], c[p])
        np.testing.assert_array_equal(d[p], default[p])  # the default seed is 0
    assert a["W"].std() > 0.3  # normal(0, 1), not a constant


def test_eval_reads_the_model_from_stdin(tmp_path):
    r = ok("eval", "-", "--set", "x=3", cwd=tmp_path, stdin="y = 2*x\nL = y^2\n")
    assert printed(r.stdout, "L") == 36.0


def test_check_reads_the_model_from_stdin(tmp_path):
    r = ok("check", "-", cwd=tmp_path, stdin="input v: [4]\nL = sum(v)\n")
    assert table(r.stdout) == {"v": ("input", "[4]", 1), "L": ("value", "[]", 2)}


def test_error_from_stdin_is_rendered(tmp_path):
    r = graphc("check", "-", cwd=tmp_path, stdin="a = 1\ny = sigmoud(x)\n")
    assert r.returncode == 1
    assert re.search(r"^\S*:2:5: error: unknown function `sigmoud`", r.stderr, re.MULTILINE), r.stderr
    assert "y = sigmoud(x)" in r.stderr and "did you mean `sigmoid`?" in r.stderr


# ---- --help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        ([], ["check", "eval"]),
        (["check"], ["MODEL"]),
        (["eval"], ["MODEL", "--inputs", "--set", "--seed", "-o"]),
        (["grad"], ["MODEL", "--wrt"]),
        (["gradcheck"], ["MODEL"]),
    ],
)
def test_help(tmp_path, args, words):
    r = ok(*args, "--help", cwd=tmp_path)
    assert "usage:" in r.stdout.lower()
    for w in words:
        assert w in r.stdout


# ---- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate", "m.gc"],  # unknown command
        [],  # no command
        ["check"],  # no model
        ["eval", "m.gc", "--bogus"],  # unknown option
        ["check", "m.gc", "--set", "x=1"],  # option of another command
        ["eval", "m.gc", "--set", "x"],  # --set without =
        ["eval", "m.gc", "--set", "=3"],  # --set without a name
        ["eval", "m.gc", "--seed", "abc"],  # not an integer
        ["eval", "m.gc", "--inputs"],  # option without its value
    ],
)
def test_usage_errors_exit_2(tmp_path, model, args):
    model("input x\nL = 2*x\n")
    r = graphc(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() and r.stdout == ""


@pytest.mark.parametrize(
    "src, args",
    [
        ("y = (x + \n", ["check"]),  # bad syntax
        ("y = sigmoud(x)\n", ["check"]),  # unknown function
        ("input x: [3]\ny = 2*x\n", ["check"]),  # non-scalar loss
        ("", ["check"]),  # empty model
        ("input x: [3]\nL = sum(x)\n", ["eval"]),  # missing input
        ("input x: [3]\nL = sum(x)\n", ["eval", "--set", "x=[1, 2]"]),  # wrong shape
        ("input x: [3]\nL = sum(x)\n", ["eval", "--inputs", "missing.npz"]),  # missing npz
        ("input x: [3]\nL = sum(x)\n", ["eval", "--set", "x=[1, 2, 3]", "--set", "zz=1"]),  # unknown name
        ("input X: [N, D]\ninput w: [D]\nL = sum(X @ w)\n", ["eval", "--set", "X=[[1, 2], [3, 4]]", "--set", "w=[1]"]),
        ("param W: [99999999999999999999, 2]\nL = sum(W)\n", ["eval"]),  # a param too big to make
        ("L = max(x)\n", ["eval", "--set", "x=[]"]),  # max of nothing
        ("L = logsumexp(x)\n", ["eval", "--set", "x=[]"]),
    ],
)
def test_model_and_data_errors_exit_1(tmp_path, model, src, args):
    m = model(src)
    r = graphc(args[0], m, *args[1:], cwd=tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "error:" in r.stderr


def test_npz_keys_the_model_does_not_use_are_ignored(tmp_path, model):
    np.savez(tmp_path / "d.npz", x=np.array([1.0, 2.0]), labels=np.array([0, 1]))
    r = ok("eval", model("input x: [2]\nL = sum(x)\n"), "--inputs", "d.npz", cwd=tmp_path)
    assert printed(r.stdout, "L") == 3.0


def test_missing_model_file_exits_1(tmp_path):
    r = graphc("check", "nope.gc", cwd=tmp_path)
    assert r.returncode == 1 and "nope.gc" in r.stderr


def test_binary_model_file_exits_1(tmp_path):
    (tmp_path / "m.gc").write_bytes(b"\x00\x01\x02\xff")
    r = graphc("eval", "m.gc", cwd=tmp_path)
    assert r.returncode == 1 and "binary" in r.stderr


def test_empty_stdin_exits_1(tmp_path):
    r = graphc("check", "-", cwd=tmp_path, stdin="")
    assert r.returncode == 1 and "error:" in r.stderr


@pytest.mark.parametrize("value", ["abc", "[1, [2, 3]]", '"text"', "{}", "[1, 2"])
def test_set_with_a_non_number_is_an_error(tmp_path, model, value):
    r = graphc("eval", model("input x\nL = sum(x)\n"), "--set", f"x={value}", cwd=tmp_path)
    assert r.returncode in (1, 2) and "x" in r.stderr and "error:" in r.stderr


# ---- -o: never over an input, atomically --------------------------------------------------------


def test_output_refuses_to_overwrite_the_model(tmp_path, model):
    m = model("input x\nL = 2*x\n")
    before = m.read_bytes()
    for target in ("m.gc", "./m.gc", str(m), "sub/../m.gc"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        r = graphc("eval", "m.gc", "--set", "x=1", "-o", target, cwd=tmp_path)
        assert r.returncode in (1, 2), target
        assert "error:" in r.stderr
        assert m.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc", "sub"]


def test_output_refuses_to_overwrite_an_input_file(tmp_path, model):
    m = model("input x\ninput t\nL = x*t\n")
    np.savez(tmp_path / "a.npz", x=np.array(2.0))
    np.savez(tmp_path / "b.npz", t=np.array(3.0))
    before = {n: (tmp_path / n).read_bytes() for n in ("a.npz", "b.npz")}
    for target in ("a.npz", "b.npz", "./b.npz"):
        r = graphc("eval", m, "--inputs", "a.npz", "--inputs", "b.npz", "-o", target, cwd=tmp_path)
        assert r.returncode in (1, 2) and "error:" in r.stderr
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "m.gc"]


def test_output_through_a_symlink_to_the_model_is_refused(tmp_path, model):
    m = model("input x\nL = 2*x\n")
    (tmp_path / "link.gc").symlink_to(m)
    before = m.read_bytes()
    r = graphc("eval", "m.gc", "--set", "x=1", "-o", "link.gc", cwd=tmp_path)
    assert r.returncode in (1, 2) and m.read_bytes() == before


def test_output_leaves_no_temporary_files(tmp_path, model):
    model("input x\nL = 2*x\n")
    ok("eval", "m.gc", "--set", "x=1", "-o", "out.npz", cwd=tmp_path)
    ok("eval", "m.gc", "--set", "x=2", "-o", "out.npz", cwd=tmp_path)  # overwriting an earlier output is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc", "out.npz"]
    with np.load(tmp_path / "out.npz") as f:
        assert float(f["L"]) == 4.0


def test_failed_eval_writes_nothing(tmp_path, model):
    model("input x: [3]\nL = sum(x)\n")
    r = graphc("eval", "m.gc", "-o", "out.npz", cwd=tmp_path)  # missing input
    assert r.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc"]


def test_failed_eval_keeps_an_earlier_output(tmp_path, model):
    model("input x: [3]\nL = sum(x)\n")
    ok("eval", "m.gc", "--set", "x=[1, 2, 3]", "-o", "out.npz", cwd=tmp_path)
    before = (tmp_path / "out.npz").read_bytes()
    r = graphc("eval", "m.gc", "--set", "x=[1, 2]", "-o", "out.npz", cwd=tmp_path)
    assert r.returncode == 1
    assert (tmp_path / "out.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc", "out.npz"]


def test_output_into_a_missing_folder_is_an_error(tmp_path, model):
    model("input x\nL = 2*x\n")
    r = graphc("eval", "m.gc", "--set", "x=1", "-o", "nowhere/out.npz", cwd=tmp_path)
    assert r.returncode in (1, 2) and "error:" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc"]


def test_output_onto_a_directory_is_an_error(tmp_path, model):
    model("input x\nL = 2*x\n")
    (tmp_path / "outdir").mkdir()
    r = graphc("eval", "m.gc", "--set", "x=1", "-o", "outdir", cwd=tmp_path)
    assert r.returncode in (1, 2) and "error:" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gc", "outdir"]
    assert list((tmp_path / "outdir").iterdir()) == []


def test_json_list_value_round_trips(tmp_path, model):
    x = [[0.1, 0.2, 0.3], [1e-8, -2.5, 3e5]]
    ok("eval", model("input X: [N, 3]\nL = sum(X)\n"), "--set", f"X={json.dumps(x)}", "-o", "o.npz", cwd=tmp_path)
    with np.load(tmp_path / "o.npz") as f:
        np.testing.assert_array_equal(f["X"], np.array(x))
        assert float(f["L"]) == pytest.approx(np.sum(x), rel=1e-12)


def test_check_loads_neither_numpy_nor_networkx():
    """`graphc check` is what users run on every edit: its start-up stays light (bench/compile_time.py)."""
    import sys

    heavy = (
        "numpy",
        "networkx",
        "graphc.backends.numpy.plan",
        "graphc.transforms.autodiff",
        "graphc.transforms.simplify",
    )
    code = (
        # (cli.main, not `python -m graphc`: its console() ends the process with os._exit, before any check)
        "import sys\nfrom graphc.app import cli\nassert cli.main(['check', 'examples/two_layer.gc']) == 0\n"
        f"heavy = [m for m in {heavy!r} if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ok: 10 values" in done.stdout
