"""The lecture's training options whose results are pinned bit for bit (tests/training/data/pin_main.npz,
made by `python tests/training/pin_cases.py` at main 1dc2ec6, before optimizers and schedules existed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import graphc
from graphc.data import load_npz

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PIN = Path(__file__).resolve().parent / "data" / "pin_main.npz"


def cases():
    """name -> (model, data, options): GD and SGD, constant and halve (halving and redoing), L2, tol, patience."""
    digits = graphc.load(EXAMPLES / "digits_mlp.gc")
    dtrain = load_npz(str(EXAMPLES / "digits_train.npz"))
    dval = load_npz(str(EXAMPLES / "digits_test.npz"))
    small = {k: v[:300] for k, v in dtrain.items()}
    lsq = graphc.load(EXAMPLES / "least_squares.gc")
    ldata = load_npz(str(EXAMPLES / "least_squares.npz"))
    quad = graphc.compile("input x: [N]\nparam w = 1\nL = 0.5 * mean(x) * w^2\n")
    return {
        "sgd": (digits, small, dict(lr=0.5, epochs=3, batch_size=32, seed=1)),
        "sgd_halve_l2": (digits, small, dict(lr=3.0, epochs=8, batch_size=50, schedule="halve", l2=1e-3)),
        "sgd_patience": (digits, small, dict(lr=0.5, epochs=4, batch_size=64, val=dval, patience=1, metric="accuracy")),
        "gd": (digits, small, dict(lr=0.5, epochs=5)),
        "gd_halve": (lsq, ldata, dict(lr=4.0, epochs=12, schedule="halve")),
        "gd_tol_l2": (lsq, ldata, dict(lr=0.3, epochs=50, tol=1e-3, l2=0.01)),
        "gd_redo": (quad, {"x": np.ones(4)}, dict(lr=1e300, epochs=3, schedule="halve")),
        "sgd_redo": (quad, {"x": np.ones(4)}, dict(lr=1e300, epochs=3, batch_size=2, schedule="halve")),
    }


def results() -> dict[str, np.ndarray]:
    out = {}
    for name, (model, data, kw) in cases().items():
        r = model.train(data, quiet=True, **kw)
        for p, v in r.params.items():
            out[f"{name}/param/{p}"] = v
        for k, v in r.history.items():
            out[f"{name}/history/{k}"] = np.array(v, dtype=np.float64)
        out[f"{name}/steps"] = np.array(r.steps)
    return out


if __name__ == "__main__":
    np.savez(PIN, **results())
    print(f"wrote {PIN}")
