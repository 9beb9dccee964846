"""The lecture's options (plain GD and SGD, constant and halve, L2, tol, patience) give the params,
histories and step counts that main gave before optimizers, schedules and checkpoints existed: the
counts exactly, the floats to a few units in the last place (bit for bit on the machine that pinned them;
another CPU's BLAS kernels round matrix products differently, by 1e-16)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("pin_cases", Path(__file__).with_name("pin_cases.py"))
pin_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_cases)


def _same(pinned, now) -> bool:
    if pinned.dtype.kind != "f":
        return np.array_equal(pinned, now)
    return pinned.shape == now.shape and np.allclose(now, pinned, rtol=1e-13, atol=1e-13 * np.abs(pinned).max())


def test_the_lectures_options_give_mains_results():
    pinned, now = np.load(pin_cases.PIN), pin_cases.results()
    assert sorted(pinned.files) == sorted(now)
    differ = [k for k in pinned.files if not _same(pinned[k], np.asarray(now[k]))]
    assert differ == []
