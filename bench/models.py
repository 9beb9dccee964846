"""Generated models for benchmarks and scale tests."""


def chain_model(n: int) -> str:
    """n statements: a chain of elementwise ops over a vector param, ending in a scalar loss."""
    ops = ["sigmoid({})", "tanh({})", "{} * 0.5 + b", "softplus({}) - 1", "{} * w"]
    lines = ["input x: [N, 16]", "param w: [16] = normal(0, 0.1)", "param b: [16] = 0", "v0 = x * w + b"]
    for i in range(1, n - 1):
        lines.append(f"v{i} = " + ops[i % len(ops)].format(f"v{i - 1}"))
    lines.append(f"L = mean(v{n - 2}^2)")
    return "\n".join(lines) + "\n"


def mixed_model(n: int, seed: int = 0, window: int = 50) -> str:
    """n statements as a real model's are, not a chain: each scales tanh, sigmoid, exp or square of one
    earlier value (or of the sum, difference or product of two) by a constant, and mostly adds, subtracts
    or multiplies another; the values read are picked at random (seeded) among the last `window`, so values
    fan out and join. (The issue's 7.2 s model: the constants and minus signs give simplify its work.)"""
    import random

    rng = random.Random(seed)
    funcs, scales = ["tanh", "sigmoid", "exp", "square"], ["0.5", "2", "0.1"]
    lines = ["input x: [N, 16]", "param w: [16] = normal(0, 0.1)", "param b: [16] = 0", "v0 = x * w + b"]
    for i in range(1, n - 1):
        recent = range(max(0, i - window), i)
        arg = f"v{rng.choice(recent)}"
        if rng.random() < 0.8:
            arg = f"{arg} {rng.choice('+-*')} v{rng.choice(recent)}"
        rhs = f"{rng.choice(scales)} * {rng.choice(funcs)}({arg})"
        if rng.random() < 0.8:
            rhs = f"{rhs} {rng.choice('+-*')} v{rng.choice(recent)}"
        lines.append(f"v{i} = {rhs}")
    lines.append(f"L = mean(v{n - 2}^2)")
    return "\n".join(lines) + "\n"


def nested_model(depth: int) -> str:
    """One expression nested `depth` parentheses deep."""
    return "y = " + "(" * depth + "x" + " + 1)" * depth + "\nL = sum(y)\n"


MLP = """
input X: [N, {D}]
input T: [N, {K}]
param W1: [{D}, {H}]
param b1: [{H}] = 0
param W2: [{H}, {K}]
param b2: [{K}] = 0
A = sigmoid(X @ W1 + b1)
Z = A @ W2 + b2
L = -mean(sum(T * log_softmax(Z), axis=1))
"""


def mlp_values(N: int, D: int, H: int, K: int, seed: int = 0) -> dict:
    """Values for MLP.format(D=D, H=H, K=K): a batch of N examples with one-hot targets, and small weights."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(N, D)),
        "T": np.eye(K)[rng.integers(0, K, N)],
        "W1": rng.normal(size=(D, H)) * 0.1,
        "b1": np.zeros(H),
        "W2": rng.normal(size=(H, K)) * 0.1,
        "b2": np.zeros(K),
    }
