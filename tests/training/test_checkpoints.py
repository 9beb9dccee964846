"""Checkpoints, resuming, interrupts (graphc/training/checkpoints.py) and the metric log (log.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.data import load_npz
from graphc.errors import GraphcError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DIGITS = graphc.load(EXAMPLES / "digits_mlp.gc")
DATA = {k: v[:200] for k, v in load_npz(str(EXAMPLES / "digits_train.npz")).items()}
VAL = {k: v[:100] for k, v in load_npz(str(EXAMPLES / "digits_test.npz")).items()}
RUNS = {
    "sgd": dict(lr=0.5, batch_size=32, schedule="halve", val=VAL, metric="accuracy", patience=5),
    "adam": dict(lr=0.01, batch_size=32, optimizer="adam", weight_decay=1e-3, schedule="cosine", warmup=1),
    "nesterov-gd": dict(lr=2.0, optimizer="nesterov", schedule="halve", clip_norm=1.0),
}


def state(folder):
    with np.load(Path(folder) / "state.npz") as f:
        return {k: f[k].copy() for k in f.files}


def train(**kw):
    return DIGITS.train(DATA, quiet=True, seed=2, **kw)


@pytest.mark.parametrize("name", RUNS)
def test_resuming_is_bit_for_bit_a_run_that_never_stopped(name, tmp_path):
    kw = RUNS[name]
    whole = train(epochs=6, checkpoint=str(tmp_path / "whole"), **kw)
    # stopped after epoch 3 of 6 (as an interrupt does: cosine's length is the run's --epochs)
    train(epochs=6, checkpoint=str(tmp_path / "part"), callback=lambda rec: rec["epoch"] == 3, **kw)
    resumed = train(epochs=6, resume=str(tmp_path / "part"), **kw)
    assert resumed.resumed == 3 and resumed.epochs == 6 and resumed.steps == whole.steps
    for p in DIGITS.params:
        assert np.array_equal(resumed.params[p], whole.params[p])
    assert resumed.history == whole.history
    a, b = state(tmp_path / "whole"), state(tmp_path / "part")
    assert sorted(a) == sorted(b) and any(k.startswith("opt/") for k in a) == (name != "sgd")
    for k in a:
        assert np.array_equal(a[k], b[k]) or k == "meta", k
    ma, mb = (json.loads(s["meta"].tobytes()) for s in (a, b))
    assert ma.pop("stopped") == "epochs" and mb.pop("stopped") == "epochs" and ma == mb and ma["epoch"] == 6
    # params.npz: the same epoch's params, keyed by name
    saved = load_npz(str(tmp_path / "part" / "params.npz"))
    assert all(np.array_equal(saved[p], whole.params[p]) for p in DIGITS.params) or kw.get("patience")


def test_a_crash_mid_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    folder = tmp_path / "ck"
    train(epochs=2, checkpoint=str(folder), **RUNS["adam"])
    before = state(folder)
    real = np.savez

    def half_then_crash(f, **arrays):
        real(f, **dict(list(arrays.items())[: len(arrays) // 2]))
        raise OSError("disk gone")

    monkeypatch.setattr(np, "savez", half_then_crash)
    with pytest.raises(OSError):
        train(epochs=4, resume=str(folder), **RUNS["adam"])
    monkeypatch.setattr(np, "savez", real)
    after = state(folder)
    assert sorted(after) == sorted(before) and all(np.array_equal(after[k], before[k]) for k in before)
    assert sorted(os.listdir(folder)) == ["params.npz", "state.npz"]  # no temporary file left
    resumed = train(epochs=4, resume=str(folder), **RUNS["adam"])
    whole = train(epochs=4, **RUNS["adam"])
    assert all(np.array_equal(resumed.params[p], whole.params[p]) for p in DIGITS.params)


def test_bad_checkpoint_folders_are_clear_errors(tmp_path):
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(GraphcError, match="is a file, not a folder"):
        train(epochs=1, checkpoint=str(file))
    with pytest.raises(GraphcError, match="holds no checkpoint"):
        train(epochs=1, resume=str(tmp_path))
    with pytest.raises(GraphcError, match="does not exist"):
        train(epochs=1, resume=str(tmp_path / "nowhere"))
    assert not (tmp_path / "nowhere").exists()
    train(epochs=1, checkpoint=str(tmp_path / "ck"))
    lsq = graphc.load(EXAMPLES / "least_squares.gc")
    with pytest.raises(GraphcError, match="of another model") as e:
        lsq.train(load_npz(str(EXAMPLES / "least_squares.npz")), epochs=2, quiet=True, resume=str(tmp_path / "ck"))
    assert e.value.hint
    with pytest.raises(GraphcError, match="written with optimizer='sgd'"):
        train(epochs=2, resume=str(tmp_path / "ck"), optimizer="adam")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(GraphcError, match="permission denied"):
            train(epochs=1, checkpoint=str(locked))


CHANGED = {  # (what the resumed run gives instead of RUNS["adam"]'s, the words of the error)
    "the rate": ({"lr": 0.02}, "written with lr=0.01, not with lr=0.02"),
    "a hyper-parameter": ({"weight_decay": 0.0}, "written with weight_decay=0.001, not with weight_decay=0"),
    "the batch": ({"batch_size": 50}, "written with batch_size=32, not with batch_size=50"),
    "the schedule": ({"schedule": "constant"}, "written with schedule='cosine', not with schedule='constant'"),
    "an option left out": ({"warmup": 0}, "written with warmup=1, not with warmup=0"),
    "an option added": ({"clip_norm": 1.0}, "written without clip_norm, not with clip_norm=1"),
    "the optimizer": ({"optimizer": "adamw"}, "written with optimizer='adam', not with optimizer='adamw'"),
    "the params learnt": ({"wrt": ["W1"]}, "written with wrt=['W1', 'b1', 'W2', 'b2'], not with wrt=['W1']"),
}


@pytest.mark.parametrize("case", CHANGED)
def test_resuming_with_other_settings_is_an_error_naming_the_setting(case, tmp_path):
    """A resumed run continues the run as it was: another rate, batch or schedule would make it neither
    that run nor a new one (the error says how to start a new run from its params)."""
    kw = RUNS["adam"]
    train(epochs=2, checkpoint=str(tmp_path / "ck"), **kw)
    change, words = CHANGED[case]
    with pytest.raises(GraphcError, match=re.escape(words)) as e:
        train(epochs=3, resume=str(tmp_path / "ck"), **{**kw, **change})
    assert "params.npz" in e.value.hint
    same = {**kw, "weight_decay": 1e-3, "beta1": 0.9}  # a default given is the same setting as one left out
    assert train(epochs=3, resume=str(tmp_path / "ck"), **same).resumed == 2


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "graphc", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


TRAIN = [
    "train",
    str(EXAMPLES / "digits_mlp.gc"),
    "--data",
    str(EXAMPLES / "digits_train.npz"),
    "--batch-size",
    "32",
    "--optimizer",
    "adam",
    "--lr",
    "0.003",
    "--quiet",
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_saves_the_last_epoch_and_resuming_finishes_the_same(sig, tmp_path):
    ck, out = tmp_path / "ck", tmp_path / "p.npz"
    proc = cli(*TRAIN, "--epochs", "400", "--checkpoint", str(ck), "-o", str(out))
    deadline = time.monotonic() + 120
    while not (ck / "state.npz").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: stopped after epoch" in stderr
    meta = json.loads(state(ck)["meta"].tobytes())
    done = meta["epoch"]
    assert 1 <= done < 400
    assert f"wrote the checkpoint of epoch {done} to {ck}" in stdout and f"to {out}" in stdout
    saved = load_npz(str(out))
    ck_params = load_npz(str(ck / "params.npz"))
    assert all(np.array_equal(saved[p], ck_params[p]) for p in saved)
    # resume to a few epochs past the interrupt: equal to a run that never stopped
    total = str(done + 2)
    a = cli(*TRAIN, "--epochs", total, "--resume", str(ck), "-o", str(tmp_path / "a.npz"))
    b = cli(*TRAIN, "--epochs", total, "-o", str(tmp_path / "b.npz"))
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    pa, pb = load_npz(str(tmp_path / "a.npz")), load_npz(str(tmp_path / "b.npz"))
    assert sorted(pa) == sorted(pb) and all(np.array_equal(pa[k], pb[k]) for k in pa)


# ---- the metric log ----------------------------------------------------------------------------
def test_the_log_holds_a_record_per_epoch_and_resuming_appends(tmp_path):
    log = tmp_path / "m.jsonl"
    kw = dict(val=VAL, metric="accuracy", batch_size=50, lr=0.5, log=str(log))
    r = train(epochs=2, checkpoint=str(tmp_path / "ck"), **kw)
    train(epochs=3, resume=str(tmp_path / "ck"), **kw)
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [x["epoch"] for x in recs] == [1, 2, 3] and [x["step"] for x in recs] == [4, 8, 12]
    assert set(recs[0]) == {"epoch", "step", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "seconds"}
    assert [x["loss"] for x in recs[:2]] == r.history["loss"] and recs[0]["seconds"] > 0


def test_graphc_plot_draws_a_log_and_refuses_what_is_not_one(tmp_path):
    log = tmp_path / "m.jsonl"
    train(epochs=3, batch_size=50, lr=0.5, log=str(log))
    p = cli("plot", str(log), "-o", str(tmp_path / "loss.png"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG" and "3 epochs" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"loss": 1}\nnot json\n')
    p = cli("plot", str(bad), "-o", str(tmp_path / "x.png"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "bad.jsonl:2: not JSON" in err.replace("not a JSON object", "not JSON")
    assert "Traceback" not in err
    p = cli("plot", str(log), "-o", str(log))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "refusing to overwrite" in err


def test_a_log_in_a_missing_folder_is_refused_before_training(tmp_path):
    with pytest.raises(GraphcError, match="there is no folder"):
        train(epochs=1, log=str(tmp_path / "no" / "m.jsonl"))


# ---- a run's files: the log and the checkpoint are outputs too -------------------------------------
LSQ = ["train", "least_squares.gc", "--data", "least_squares.npz", "--quiet", "--epochs", "2"]
CLASHES = {  # (options, what the error says): each refused before any training, every file as it was
    "log onto the data": (["--log", "least_squares.npz"], "refusing to overwrite the input file least_squares.npz"),
    "log onto the model": (["--log", "least_squares.gc"], "refusing to overwrite the input file least_squares.gc"),
    "log onto the init": (["--init", "p0.npz", "--log", "p0.npz"], "refusing to overwrite the input file p0.npz"),
    "log onto -o": (["-o", "p.npz", "--log", "p.npz"], "two outputs are one file: -o p.npz and --log p.npz"),
    "log onto the plot": (["--plot", "s.png", "--log", "s.png"], "two outputs are one file: --plot s.png and --log"),
    "-o onto the checkpoint": (["--checkpoint", "ck", "-o", "ck/state.npz"], "and the checkpoint's state.npz in"),
    "log onto the checkpoint": (["--checkpoint", "ck", "--log", "ck/params.npz"], "the checkpoint's params.npz in"),
    "plot onto the resumed": (["--resume", "ck", "--plot", "ck/state.npz"], "the checkpoint's state.npz in"),
    "log onto a FIFO": (["--log", "fifo"], "it is a FIFO (named pipe), not a regular file"),
    "log through a link to the model": (["--log", "link"], "refusing to overwrite the input file least_squares.gc"),
}


@pytest.mark.parametrize("case", CLASHES)
def test_the_log_and_the_checkpoint_never_write_over_another_file_of_the_run(case, tmp_path):
    for name in ("least_squares.gc", "least_squares.npz"):
        (tmp_path / name).write_bytes((EXAMPLES / name).read_bytes())
    lsq = graphc.load(EXAMPLES / "least_squares.gc")
    trained = lsq.train(load_npz(str(EXAMPLES / "least_squares.npz")), epochs=1, quiet=True)
    np.savez(tmp_path / "p0.npz", **trained.params)  # an --init file
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("least_squares.gc")
    (tmp_path / "ck").mkdir()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink()}
    options, message = CLASHES[case]
    r = subprocess.run(
        [sys.executable, "-m", "graphc", *LSQ, *options], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode in (1, 2) and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "trained" not in r.stdout  # refused before training
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before and not any((tmp_path / "ck").iterdir())


DAMAGE = {  # a checkpoint changed as a damaged file might be: each an error naming what is wrong, never a traceback
    "an optimizer buffer missing": (lambda d, m: d.pop("opt/exp_avg"), "it has no opt/exp_avg"),
    "meta a list": (lambda d, m: d.update(meta=np.frombuffer(b"[1, 2]", np.uint8)), "not a checkpoint graphc can"),
    "a negative epoch": (lambda d, m: m.update(epoch=-5), "damaged: its epoch is -5"),
    "an epoch that is text": (lambda d, m: m.update(epoch="x"), "damaged: its epoch is 'x'"),
    "no generator state": (lambda d, m: m.update(rng={}), "damaged: state must be for a PCG64"),
    "params that are text": (lambda d, m: d.update({"param/w": np.array(["a", "b", "c"])}), "holds <U1 values"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_checkpoint_is_an_error_naming_the_damage(case, tmp_path):
    lsq = graphc.load(EXAMPLES / "least_squares.gc")
    lsq_data = load_npz(str(EXAMPLES / "least_squares.npz"))
    lsq.train(lsq_data, epochs=2, quiet=True, optimizer="adam", checkpoint=str(tmp_path / "ck"))
    arrays = state(tmp_path / "ck")
    meta = json.loads(arrays["meta"].tobytes())
    damage, message = DAMAGE[case]
    damage(arrays, meta)
    if "meta" not in arrays or arrays["meta"].tobytes()[:1] == b"{":
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "ck" / "state.npz", **arrays)
    with pytest.raises(GraphcError, match=message):
        lsq.train(lsq_data, epochs=4, quiet=True, optimizer="adam", resume=str(tmp_path / "ck"))


@pytest.mark.parametrize("value", ['"x"', "[1, 2]", "true"])
def test_graphc_plot_refuses_a_record_whose_value_is_not_a_number(value, tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text(f'{{"epoch": 1, "loss": 0.5}}\n{{"epoch": 2, "loss": {value}}}\n')
    p = cli("plot", str(log), "-o", str(tmp_path / "x.png"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "m.jsonl:2: its loss is" in err and "not a number" in err and "Traceback" not in err


@pytest.mark.parametrize("blocker", ["folder", "fifo"])
def test_a_checkpoint_file_that_is_not_a_regular_file_is_refused_before_training(blocker, tmp_path):
    (tmp_path / "ck").mkdir()
    where = tmp_path / "ck" / "params.npz"
    where.mkdir() if blocker == "folder" else os.mkfifo(where)
    epochs = []
    with pytest.raises(GraphcError, match="cannot write .*params.npz: it is a"):
        train(epochs=2, batch_size=50, lr=0.5, checkpoint=str(tmp_path / "ck"), callback=epochs.append)
    assert epochs == [] and not (tmp_path / "ck" / "state.npz").exists()


def test_graphc_plot_names_its_own_option_for_a_picture_without_a_format(tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text('{"epoch": 1, "loss": 0.5}\n')
    p = cli("plot", str(log), "-o", str(tmp_path / "x.txt"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and f"-o {tmp_path / 'x.txt'}: cannot tell the picture format" in err, err
