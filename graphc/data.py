"""Reading values (npz files, --set) and writing outputs atomically, never over an input."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GraphcError

if TYPE_CHECKING:  # NumPy is imported where it is used: `graphc check` never loads it
    import numpy as np


def load_npz(path: str) -> dict[str, np.ndarray]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: np.asarray(f[k]) for k in f.files}
    except FileNotFoundError:
        raise GraphcError(f"no such file: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise GraphcError(
            f"cannot read {path} as a .npz file ({type(e).__name__}: {e})",
            hint="make one with numpy.savez('file.npz', x=..., t=...)",
        ) from None


def parse_set(item: str) -> tuple[str, np.ndarray]:
    import numpy as np

    """NAME=VALUE, VALUE a number or a JSON list."""
    name, eq, text = item.partition("=")
    name = name.strip()
    if not eq or not name:
        raise GraphcError(f"--set expects NAME=VALUE, got {item!r}", usage=True)
    try:
        value = json.loads(text)
        arr = np.asarray(value, dtype=np.float64)
    except (json.JSONDecodeError, ValueError, TypeError):
        raise GraphcError(
            f"--set {name}: {text!r} is not a number or a JSON list of numbers",
            hint=f"e.g. --set {name}=0.5 or --set {name}='[1, 2, 3]'",
            usage=True,
        ) from None
    return name, arr


def load_values(inputs=(), sets=()) -> dict[str, np.ndarray]:
    """Values from npz files then --set items, later ones winning."""
    values: dict[str, np.ndarray] = {}
    for path in inputs or ():
        values.update(load_npz(path))
    for item in sets or ():
        name, arr = parse_set(item)
        values[name] = arr
    return values


def write_atomic(path: str, write, protect=()) -> None:
    """Write via a temporary file in the same folder, then rename: a crash never leaves half a file.

    `write(f)` gets a binary file object. Refuses to overwrite any path in `protect` (the inputs).
    """
    target = Path(path)
    for p in protect:
        if p and p != "-" and Path(p).exists() and target.exists() and target.resolve() == Path(p).resolve():
            raise GraphcError(
                f"refusing to overwrite the input file {p}", hint="choose another output path", usage=True
            )
    if target.is_dir():
        raise GraphcError(
            f"cannot write {path}: it is a folder", hint="give a file name, e.g. out/result.npz", usage=True
        )
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise GraphcError(f"cannot write {path}: no folder {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written file gets the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz(path: str, arrays: dict, protect=()) -> None:
    import numpy as np

    write_atomic(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}), protect)
