"""Reading values (npz files, NAME=VALUE items) and writing outputs atomically, never over an input;
and `option`, the one way a library error names an option (the API's keyword, or the command line's flag)."""

from __future__ import annotations

import json
import numbers
import os
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GraphcError

if TYPE_CHECKING:  # NumPy is imported where it is used: `graphc check` never loads it
    import numpy as np

NPZ_HINT = "make one with numpy.savez('file.npz', x=..., t=...)"

# ---- options, in the caller's words ----------------------------------------------------------
_FLAGS: ContextVar[dict | None] = ContextVar("graphc_flags", default=None)


def option(name: str, value=None) -> str:
    """An option as an error message names it: the API's keyword (`lr`, or with a value `lr=0.01`,
    `schedule='halve'`), or, while the command line runs (`flag_words`), its flag (`--lr`, `--lr 0.01`,
    `--schedule halve`). Library errors name their options only through this."""
    flags = _FLAGS.get()
    flag = flags.get(name) if flags else None
    if value is None:
        return flag or name
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{flag} {text}" if flag else f"{name}={value!r}" if isinstance(value, str) else f"{name}={text}"


@contextmanager
def flag_words(flags: dict[str, str]):
    """Within it, `option` names the options in `flags` (API keyword -> command-line flag) by their flags."""
    token = _FLAGS.set(flags)
    try:
        yield
    finally:
        _FLAGS.reset(token)


def check_numeric(name: str, a, where: str) -> None:
    """Refuse an array that is not real numbers (bool and integers are fine: they convert exactly)."""
    kind = getattr(getattr(a, "dtype", None), "kind", "f")
    if kind in "biuf":
        return
    if kind == "O" and all(isinstance(v, numbers.Real) for v in a.flat):
        return  # Python numbers in an object array convert exactly (None would become nan: refused)
    what = {
        "c": "complex numbers",
        "U": "text",
        "S": "text",
        "O": "Python objects",
    }.get(kind, f"values of type {a.dtype}, not numbers")
    raise GraphcError(
        f"`{name}` in {where} holds {what}" + ("" if "not numbers" in what else ", not real numbers"),
        hint="graphc computes with real numbers (float64): convert it, e.g. "
        + ("x.real or abs(x)" if kind == "c" else "x.astype(float)"),
    )


def _sniff(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(6)
    except FileNotFoundError:
        raise GraphcError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise GraphcError(f"{path} is a folder, not a .npz file", hint=NPZ_HINT) from None
    except OSError as e:
        raise GraphcError(f"cannot read {path}: {e.strerror}") from None


class Arrays(dict):
    """load_npz's arrays by name; `unread`: the file's other keys (not in `keep`), for an error's hint."""

    def __init__(self):
        super().__init__()
        self.unread: list[str] = []


def load_npz(path: str, keep=None) -> dict[str, np.ndarray]:
    """The arrays of a .npz file, each checked to hold real numbers. With `keep` (a container of
    names), only those keys are read: the others may hold anything (labels as text, say)."""
    import numpy as np

    head = _sniff(path)
    if head.startswith(b"\x93NUMPY"):
        raise GraphcError(
            f"{path} is a .npy file (one array), not a .npz (arrays keyed by name)",
            hint="make one with numpy.savez('file.npz', x=np.load('file.npy')), naming each array",
        )
    if not head.startswith(b"PK"):
        raise GraphcError(
            f"{path} is not a .npz file{' (it is empty)' if not head else ''}: a .npz is a zip archive of arrays",
            hint=NPZ_HINT,
        )
    out = Arrays()
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                if keep is not None and k not in keep:
                    out.unread.append(k)
                    continue
                try:
                    a = np.asarray(f[k])
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    a = np.array([None], dtype=object)  # an object array: refused below without unpickling
                check_numeric(k, a, path)
                out[k] = a
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise GraphcError(f"cannot read {path} as a .npz file ({type(e).__name__}: {e})", hint=NPZ_HINT) from None
    return out


def parse_set(item: str) -> tuple[str, np.ndarray]:
    """NAME=VALUE, VALUE a number or a JSON list (an item of load_values' `sets`)."""
    import numpy as np

    name, eq, text = item.partition("=")
    name = name.strip()
    if not eq or not name:
        raise GraphcError(f"{option('sets')} takes NAME=VALUE items, got {item!r}", usage=True)
    try:
        value = json.loads(text)
        arr = np.asarray(value, dtype=np.float64)
    except (json.JSONDecodeError, ValueError, TypeError):
        quoted_list = f"{name}='[1, 2, 3]'"  # (quoted: a shell expands an unquoted [1,2,3] as a pattern)
        raise GraphcError(
            f"`{name}` in {option('sets')}: {text!r} is not a number or a JSON list of numbers",
            hint=f"e.g. {option('sets', f'{name}=0.5')} or {option('sets', quoted_list)}",
            usage=True,
        ) from None
    return name, arr


def load_values(inputs=(), sets=(), keep=None) -> dict[str, np.ndarray]:
    """Values from npz files (only the keys in `keep`, when given) then NAME=VALUE items, later ones winning."""
    values: dict[str, np.ndarray] = {}
    for path in inputs or ():
        values.update(load_npz(path, keep))
    for item in sets or ():
        name, arr = parse_set(item)
        values[name] = arr
    return values


_NOT_REGULAR = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def output_target(path: str, protect=()) -> Path:
    """The file an output to `path` replaces: `path` itself, or the file its symlinks lead to (the links
    are kept). Refuses, before any work, what must not or cannot be replaced: an input (`protect`), a
    folder, a FIFO, a device, a socket, a path without a folder."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise GraphcError(f"cannot write {path}: {e.strerror}") from None
    # (a trailing slash names a folder, existing or not: realpath would drop it and write a file of that name)
    if path.endswith(("/", os.sep)) or (st is not None and stat.S_ISDIR(st.st_mode)):
        raise GraphcError(
            f"cannot write {path}: it is a folder", hint="give a file name, e.g. out/result.npz", usage=True
        )
    if st is not None:
        for p in protect:
            if p and p != "-" and os.path.exists(p) and os.path.samefile(p, real):
                raise GraphcError(
                    f"refusing to overwrite the input file {p} with {path}",
                    hint="choose another output path",
                    usage=True,
                )
        if not stat.S_ISREG(st.st_mode):
            kind = _NOT_REGULAR.get(stat.S_IFMT(st.st_mode), "a special file")
            via = "" if str(real) == os.path.abspath(path) else f" (via a symlink to {real})"
            raise GraphcError(
                f"cannot write {path}: it is {kind}{via}, not a regular file",
                hint="outputs replace regular files only; choose a file name (for no output, leave out the option)",
            )
    folder = real.parent
    if not folder.is_dir():
        shown = Path(path).parent if str(real) == os.path.abspath(path) else folder
        raise GraphcError(f"cannot write {path}: there is no folder {shown}", hint="create it first (mkdir -p)")
    return real


def check_output(path: str | None, protect=()) -> None:
    """Fail now, not after the work, when an output could not be written: output_target's checks,
    then a trial file made and removed in the folder (the one test of permissions that never lies)."""
    if not path:
        return
    fd, tmp = _temporary(path, output_target(path, protect))
    os.close(fd)
    os.unlink(tmp)


def distinct_outputs(outputs: dict) -> None:
    """Refuse, before the work, two outputs that are one file (where their symlinks lead): {what: path},
    what naming it in the message (an option, or a checkpoint's file); a path None or "" is none."""
    seen: dict[str, str] = {}
    for what, path in outputs.items():
        if not path:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise GraphcError(
                f"two outputs are one file: {seen[real]} and {what} {path}", hint="give each its own path", usage=True
            )
        seen[real] = f"{what} {path}"


def _temporary(path: str, target: Path) -> tuple[int, str]:
    """A new file beside target, for writing it atomically (or for learning that one can)."""
    try:
        return tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as e:
        raise GraphcError(f"cannot write {path}: {e.strerror}") from None


def write_atomic(path: str, write, protect=()) -> None:
    """Write via a temporary file in the same folder, then rename: a crash never leaves half a file.

    `write(f)` gets a binary file object. Through a symlink, the file it leads to is replaced and the
    link kept; an input (a path in `protect`) and anything but a regular file are refused (output_target).
    """
    target = output_target(path, protect)
    fd, tmp = _temporary(path, target)
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


def write_text(path: str, text: str, protect=()) -> None:
    """Text (UTF-8) written atomically, as write_atomic."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")), protect)


def save_npz(path: str, arrays: dict, protect=()) -> None:
    import numpy as np

    write_atomic(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}), protect)
