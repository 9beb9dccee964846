#!/usr/bin/env python3
"""Remake the small data files of the graphc examples (everything except digits).

    python examples/make_data.py

Every file is written next to this script. The numbers are fixed or drawn from
seeded NumPy generators, so running it again gives byte-identical .npz files.
Keys are the model's input names, so a file can be passed straight to
`graphc eval MODEL --inputs FILE` or `graphc train MODEL --data FILE`.
All arrays are float64 but the embedding's token ids and labels (int64).
Only NumPy is needed.

The handwritten-digits data (digits_train.npz, digits_test.npz) comes from
scikit-learn instead; see make_digits.py.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def save(name, integers=(), **arrays):
    """Write arrays to examples/NAME, as float64 but those named in `integers` (int64)."""
    arrays = {k: np.asarray(v, dtype=np.int64 if k in integers else np.float64) for k, v in arrays.items()}
    np.savez_compressed(HERE / name, **arrays)
    shapes = ", ".join(f"{k}: {list(v.shape)}" for k, v in arrays.items())
    print(f"wrote {name:32s} {shapes}")


def least_squares():
    """N = 100 points in D = 3 dimensions, t = X w_true + small noise.

    The least-squares solution of least_squares.gc is close to
    w_true = (2, -1, 0.5).
    """
    rng = np.random.default_rng(414)
    N, D = 100, 3
    w_true = np.array([2.0, -1.0, 0.5])
    X = rng.normal(0.0, 1.0, size=(N, D))
    t = X @ w_true + rng.normal(0.0, 0.1, size=N)
    save("least_squares.npz", X=X, t=t)


def logistic_least_squares():
    """One training example (scalars): x = 1.5 with target t = 1.

    Used by logistic_least_squares.gc and logistic_least_squares_l2.gc.
    """
    save("logistic_least_squares.npz", x=1.5, t=1.0)


def chain_rule():
    """The point t = 0.7 at which chain_rule.gc evaluates f and df/dt."""
    save("chain_rule.npz", t=0.7)


def xor():
    """The four XOR points as vectors: x1, x2 and t = x1 XOR x2, each [4].

    Used by xor_threshold.gc and xor_features.gc.
    """
    x1 = np.array([0, 0, 1, 1])
    x2 = np.array([0, 1, 0, 1])
    save("xor.npz", x1=x1, x2=x2, t=np.logical_xor(x1, x2))


def xor_mlp():
    """The same four XOR points as a design matrix X: [4, 2] and t: [4]."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    t = np.array([0, 1, 1, 0])
    save("xor_mlp.npz", X=X, t=t)


def softmax_regression():
    """Three Gaussian blobs in 2-D, 50 points each (N = 150), shuffled.

    X: [150, 2], T: [150, 3] one-hot class indicators.
    """
    rng = np.random.default_rng(2104)
    centres = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    per_class, std = 50, 0.8
    labels = np.repeat(np.arange(3), per_class)
    X = centres[labels] + rng.normal(0.0, std, size=(len(labels), 2))
    order = rng.permutation(len(labels))
    X, labels = X[order], labels[order]
    T = np.eye(3)[labels]
    save("softmax_regression.npz", X=X, T=T)


def two_layer():
    """One example for the vectorised two-layer network: x: [2], t: [2]."""
    save("two_layer.npz", x=[0.5, -1.0], t=[1.0, 0.0])


def embedding():
    """Sequences of T = 8 token ids from a vocabulary of V = 24, each labelled with one of K = 3 topics.

    Tokens 6k..6k+5 are topic k's words, tokens 18..23 words of no topic. Each
    token of a sequence of topic k is one of topic k's words with probability
    0.5, else any word of the 24. 600 training and 300 held-out sequences:
    tokens [N, 8] and labels [N], both int64.
    """
    rng = np.random.default_rng(2024)
    V, T, K = 24, 8, 3
    for name, n in (("embedding_train.npz", 600), ("embedding_test.npz", 300)):
        labels = rng.integers(0, K, n)
        topical = rng.random((n, T)) < 0.5
        own = 6 * labels[:, None] + rng.integers(0, 6, (n, T))
        tokens = np.where(topical, own, rng.integers(0, V, (n, T)))
        save(name, integers=("tokens", "labels"), tokens=tokens, labels=labels)


def attention():
    """One sequence for the self-attention head: X [5, 4] (T = 5 positions, D = 4 features), and a
    target Y [5, 3] for its output."""
    rng = np.random.default_rng(1706)
    save("attention.npz", X=rng.normal(0.0, 1.0, (5, 4)), Y=rng.normal(0.0, 1.0, (5, 3)))


def main():
    least_squares()
    logistic_least_squares()
    chain_rule()
    xor()
    xor_mlp()
    softmax_regression()
    two_layer()
    embedding()
    attention()


if __name__ == "__main__":
    main()
