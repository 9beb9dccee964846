"""The array libraries the array-api target is tested on, as the tests hand them NumPy arrays and read
their arrays back: NumPy, array-api-strict, PyTorch (CPU; CUDA where a GPU is), JAX (x64), Dask (chunked
along the example axis) and CuPy, each a pytest param skipped with its reason where it is not installed.
A helper module, not a test module."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class Library:
    """How a test hands NumPy arrays to one array library and reads its arrays back."""

    def __init__(self, name, to, back, array_type=None):
        self.name, self.to, self.back, self.array_type = name, to, back, array_type

    def __repr__(self):
        return self.name


def libraries() -> list:
    out = [pytest.param(Library("numpy", lambda a, **_: a, np.asarray, (np.ndarray, np.generic)), id="numpy")]
    skip = {}
    if _installed("array_api_strict"):
        import array_api_strict as strict

        out.append(pytest.param(Library("strict", lambda a, **_: strict.asarray(a), np.asarray), id="strict"))
    else:
        skip["strict"] = "array-api-strict is not installed"
    if _installed("torch"):
        import torch

        out.append(
            pytest.param(
                Library("torch", lambda a, **_: torch.asarray(a), lambda t: t.detach().cpu().numpy(), torch.Tensor),
                id="torch",
            )
        )
        cuda = torch.cuda.is_available()
        out.append(
            pytest.param(
                Library(
                    "cuda",
                    lambda a, **_: torch.asarray(a, device="cuda"),
                    lambda t: t.detach().cpu().numpy(),
                    torch.Tensor,
                ),
                id="cuda",
                marks=pytest.mark.skipif(not cuda, reason="no CUDA device on this machine"),
            )
        )
    else:
        skip["torch"] = "PyTorch is not installed"
    if _installed("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        out.append(pytest.param(Library("jax", lambda a, **_: jnp.asarray(a), np.asarray, jax.Array), id="jax"))
    else:
        skip["jax"] = "JAX is not installed"
    if _installed("dask"):
        import dask.array as da

        def chunked(a, data=False):
            a = np.asarray(a)  # the data in two chunks along the example axis; params whole
            chunks = tuple([max(1, (a.shape[0] + 1) // 2), *a.shape[1:]]) if data and a.ndim else a.shape
            return da.from_array(a, chunks=chunks)

        out.append(pytest.param(Library("dask", chunked, lambda x: np.asarray(x.compute()), da.Array), id="dask"))
    else:
        skip["dask"] = "Dask is not installed"
    cupy = _installed("cupy")
    out.append(
        pytest.param(
            Library("cupy", *(_cupy() if cupy else (None, None))),
            id="cupy",
            marks=pytest.mark.skipif(not cupy, reason="CuPy is not installed (it needs a GPU)"),
        )
    )
    for name, why in skip.items():
        out.append(pytest.param(None, id=name, marks=pytest.mark.skip(reason=why)))
    return out


def _cupy():
    import cupy

    return (lambda a, **_: cupy.asarray(a)), cupy.asnumpy, cupy.ndarray


def installed() -> list[Library]:
    """The libraries that run on this machine."""
    return [p.values[0] for p in LIBRARIES if p.values[0] is not None and not p.marks]


LIBRARIES = libraries()
