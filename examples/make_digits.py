#!/usr/bin/env python3
"""Remake digits_train.npz and digits_test.npz from scikit-learn's 8x8 digits.

    pip install scikit-learn      # only this script needs it, not graphc
    python examples/make_digits.py

scikit-learn ships the 1797 images of `load_digits` inside the package, so
nothing is downloaded. Each image is 8x8 pixels with values 0..16; we flatten
it to 64 numbers and divide by 16 so pixels lie in [0, 1]. The images are
shuffled with a fixed seed and split into 1437 for training and 360 for
testing (the same data every run, byte for byte).

Each file holds (all float64 except `labels`):
    X       [N, 64]  pixel values in [0, 1]
    T       [N, 10]  one-hot targets, T[n, k] = 1 if image n shows digit k
    labels  [N]      the digit 0..9 as integers (for your own checks)
with N = 1437 (train) or 360 (test). X and T are the inputs of digits_mlp.gc.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
SEED = 0
N_TRAIN = 1437  # the remaining 1797 - 1437 = 360 images form the test set


def main():
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(X))
    X, labels = X[order], labels[order]
    T = np.eye(10, dtype=np.float64)[labels]
    splits = {
        "digits_train.npz": slice(0, N_TRAIN),
        "digits_test.npz": slice(N_TRAIN, len(X)),
    }
    for name, part in splits.items():
        np.savez_compressed(HERE / name, X=X[part], T=T[part], labels=labels[part])
        size = (HERE / name).stat().st_size
        print(
            f"wrote {name}: X {list(X[part].shape)}, T {list(T[part].shape)}, "
            f"labels {list(labels[part].shape)} ({size / 1024:.0f} KiB)"
        )


if __name__ == "__main__":
    main()
