"""The lecture's options (plain GD and SGD, constant and halve, L2, tol, patience) give, bit for bit, the
params, histories and step counts that main gave before optimizers, schedules and checkpoints existed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("pin_cases", Path(__file__).with_name("pin_cases.py"))
pin_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_cases)


def test_the_lectures_options_give_mains_results_bit_for_bit():
    pinned, now = np.load(pin_cases.PIN), pin_cases.results()
    assert sorted(pinned.files) == sorted(now)
    differ = [k for k in pinned.files if not np.array_equal(pinned[k], now[k])]
    assert differ == []
