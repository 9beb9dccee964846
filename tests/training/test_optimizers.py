"""The optimizers (graphc/training/optimizers.py) against torch.optim, step for step, and the schedules
against torch.optim.lr_scheduler: float64, on the digits model's real gradients (each step's gradient
taken at graphc's params and given to both). Agreement after every step: max |ours - torch's| <= 1e-12 ·
max |torch's params| (relative to the params' scale: an entry passing near 0 is a difference of nearly
equal numbers, where rounding alone gives any elementwise relative error; the figures measured are
~2.5e-16, a couple of roundings)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.data import load_npz
from graphc.training.optimizers import OPTIMIZERS, clip_norm, make
from graphc.training.schedules import factor
from graphc.training.step import gradient_step

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS, RTOL = 25, 1e-12


def digits_problem():
    """The digits network's initial params as one flat vector, and f(theta, k) -> the gradient of batch k."""
    m = graphc.load(EXAMPLES / "digits_mlp.gc")
    data = load_npz(str(EXAMPLES / "digits_train.npz"))
    names = list(m.params)
    start = m.evaluate({"X": data["X"][:1], "T": data["T"][:1]}, seed=0)
    shapes = [np.shape(start[p]) for p in names]
    theta = np.concatenate([np.asarray(start[p], dtype=np.float64).reshape(-1) for p in names])
    step = gradient_step(m, names)

    def grad(theta, k):
        values, at = {"X": data["X"][32 * k : 32 * k + 32], "T": data["T"][32 * k : 32 * k + 32]}, 0
        for p, s in zip(names, shapes, strict=True):
            size = int(np.prod(s))
            values[p] = theta[at : at + size].reshape(s)
            at += size
        _, g = step(values)
        return np.concatenate([np.asarray(g[p], dtype=np.float64).reshape(-1) for p in names])

    return theta, grad


THETA0, GRAD = digits_problem()
TORCH = {
    "sgd": lambda p, wd: torch.optim.SGD([p], lr=0.1, weight_decay=wd),
    "momentum": lambda p, wd: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=wd),
    "nesterov": lambda p, wd: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=wd),
    "adam": lambda p, wd: torch.optim.Adam([p], lr=0.01, weight_decay=wd),
    "adamw": lambda p, wd: torch.optim.AdamW([p], lr=0.01, weight_decay=wd),
}


def agreement(name: str, wd: float, clip: float | None = None, lrs=None) -> float:
    """Max over STEPS steps of max |ours - torch's| / max |torch's params|."""
    theta = THETA0.copy()
    opt = make(name, theta, weight_decay=wd)
    p = torch.nn.Parameter(torch.tensor(THETA0.copy(), dtype=torch.float64))
    topt = TORCH[name](p, wd)
    worst = 0.0
    for k in range(STEPS):
        lr = lrs[k] if lrs else topt.param_groups[0]["lr"]
        for group in topt.param_groups:
            group["lr"] = lr
        g = GRAD(theta, k)
        p.grad = torch.tensor(g.copy())
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p], clip)
            clip_norm(g, clip)
        gkeep = g.copy()
        opt.step(g, lr)
        assert np.array_equal(g, gkeep), "the update must not write its gradient"
        topt.step()
        ref = p.detach().numpy()
        worst = max(worst, float(np.max(np.abs(theta - ref)) / np.max(np.abs(ref))))
    assert not np.array_equal(theta, THETA0)
    return worst


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_follows_torch_optim_step_for_step(name, wd):
    assert agreement(name, wd) <= RTOL


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_clip_norm_is_torchs_clip_grad_norm(name):
    assert agreement(name, 0.0, clip=0.05) <= RTOL


def test_a_varying_rate_is_torchs_too():
    lrs = [0.01 * factor("cosine", k, STEPS, warmup=3) for k in range(STEPS)]
    assert agreement("adamw", 0.01, lrs=lrs) <= RTOL


def test_clip_norm_leaves_a_small_gradient_alone_and_scales_a_large_one():
    g = np.array([3.0, 4.0])
    assert clip_norm(g, 10.0) is g and np.array_equal(g, [3.0, 4.0])
    assert clip_norm(g, 1.0) is g
    np.testing.assert_allclose(g, np.array([3.0, 4.0]) / (5 + 1e-6), rtol=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_step_allocates_nothing_and_writes_only_its_buffers(name, monkeypatch):
    theta = THETA0.copy()
    opt = make(name, theta, weight_decay=0.01)
    made = []
    for f in ("zeros_like", "empty_like", "zeros", "empty", "array", "copy"):
        real = getattr(np, f)
        monkeypatch.setattr(np, f, lambda *a, _r=real, _f=f, **k: made.append(_f) or _r(*a, **k))
    ids = {k: id(v) for k, v in opt.state.items()}
    g = GRAD(THETA0, 0)
    for _ in range(3):
        opt.step(g, 0.01)
    assert made == [] and {k: id(v) for k, v in opt.state.items()} == ids


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_update_runs_on_another_array_librarys_buffer(name):
    """The seam a backend uses: the same update through the namespace `xp` (here PyTorch, whose
    functions take out=) on that library's flat buffer, equal to NumPy's."""
    theta, t = THETA0.copy(), torch.tensor(THETA0.copy())
    a, b = make(name, theta, weight_decay=0.01), make(name, t, xp=torch, weight_decay=0.01)
    for k in range(5):
        g = GRAD(theta, k)
        a.step(g, 0.01)
        b.step(torch.tensor(g), 0.01)
    np.testing.assert_allclose(t.numpy(), theta, rtol=1e-13, atol=0)


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_numba_backends_compiled_update_is_numpys_to_the_bit(name, wd):
    """fused.step: the same rule compiled for one entry, in one loop; the same operations in the same
    order, so the same bits (theta and every state buffer, in the buffers it was given)."""
    fused = pytest.importorskip("graphc.training.fused", reason="numba is not installed")
    a, b = make(name, THETA0.copy(), weight_decay=wd), make(name, THETA0.copy(), weight_decay=wd)
    buffers = (b.theta, *b.state.values())
    update = fused.step(b)
    for k in range(STEPS):
        g = GRAD(a.theta, k)
        a.step(g, 0.01 * (k + 1))
        update(g, 0.01 * (k + 1))
    assert b.t == a.t == STEPS and all(x is y for x, y in zip((b.theta, *b.state.values()), buffers, strict=True))
    assert np.array_equal(b.theta, a.theta) and not np.array_equal(a.theta, THETA0)
    for k in a.state:
        assert np.array_equal(b.state[k], a.state[k]), k


# ---- schedules against torch.optim.lr_scheduler -----------------------------------------------
def torch_rates(make_scheduler, epochs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


@pytest.mark.parametrize(
    ("schedule", "kw", "scheduler"),
    [
        ("step", {"step_size": 3, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        ("cosine", {}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20)),
        (
            "constant",
            {"warmup": 5},
            lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 5, end_factor=1.0, total_iters=4),
        ),
    ],
)
def test_schedules_are_torchs_lr_schedulers(schedule, kw, scheduler):
    ours = np.array([factor(schedule, e, 20, **kw) for e in range(20)])
    np.testing.assert_allclose(ours, torch_rates(scheduler, 20), rtol=1e-12, atol=1e-15)


def test_warmup_then_cosine_runs_the_cosine_over_the_epochs_left():
    rates = [factor("cosine", e, 10, warmup=2) for e in range(10)]
    assert rates[:3] == [0.5, 1.0, 1.0]
    assert rates[-1] == pytest.approx((1 + math.cos(math.pi * 7 / 8)) / 2)
