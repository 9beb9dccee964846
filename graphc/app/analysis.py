"""What the playground shows for one model text: shapes, errors, pictures, equations, cost, code, steps.

A pure function of its request (the model text, uploaded arrays, slider values, dims), run by the
server (graphc/app/serve.py) in a worker process it can kill. It reads no file but the shipped
examples' (a `use` of another file is refused) and runs no user code: a model is data.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from ..errors import GraphcError

# the shipped examples: those an installed wheel carries, else (a checkout) the repository's
_HERE = Path(__file__).resolve()
EXAMPLES = next((p for p in (_HERE.parents[1] / "examples", _HERE.parents[2] / "examples") if p.is_dir()), _HERE)
MAX_SOURCE = 100_000  # characters of model text
MAX_NODES = 5_000  # nodes of the compiled model's forward graph
MAX_PICTURE = 1_500  # nodes of a picture's graph beyond which it is drawn collapsed (a box per named value)
MAX_DRAWN = 6_000  # ... and beyond which it is not drawn at all
MAX_ELEMENTS = 2_000_000  # entries of a generated value
TARGETS = ("numpy", "array-api", "numba")  # graphc.backends.targets(), the emitted code's (not imported here)
DEFAULT_DIM = 4  # a symbolic dim (N) no uploaded array fixes
_USE = re.compile(r'(?<![A-Za-z0-9_.])use[ \t]+"([^"\n]*)"')  # (a `use` anywhere: `x = 1; use "f.gc"` too)
_CODE = re.compile(r'(?:"[^"\n]*"|[^"#\n])*')  # a line's text before its comment


def _error(e: GraphcError | str, line: int = 0, col: int = 0) -> dict:
    """{line, col, message} (line 0: no place in the model's text)."""
    if isinstance(e, str):
        return {"line": line, "col": col, "end_line": line, "end_col": col, "message": e}
    message = e.message + (f" (hint: {e.hint})" if e.hint else "")
    span = e.span
    while span is not None and span.source is not None and span.via is not None:
        span = span.via  # an error inside a used file: at the model's call that led there
    if span is None or span.source is not None:
        return {"line": 0, "col": 0, "end_line": 0, "end_col": 0, "message": message}
    end_line = span.end_line or span.line
    end_col = span.end_col or span.col + 1
    return {"line": span.line, "col": span.col, "end_line": end_line, "end_col": end_col, "message": message}


def _check_uses(source: str) -> list[dict]:
    """A `use` may bring in a shipped example's file of functions, nothing else from the disk."""
    out = []
    for number, text in enumerate(source.splitlines(), 1):
        for m in _USE.finditer(_CODE.match(text).group(0)):
            if not _shipped(m.group(1)):
                have = ", ".join(sorted(p.name for p in _used_files())) or "none"
                what = f'the playground\'s `use` takes a shipped file of functions ({have}), not "{m.group(1)}"'
                out.append(_error(what))
                out[-1].update(line=number, col=m.start() + 1, end_line=number, end_col=m.end() + 1)
    return out


def _shipped(path: str) -> bool:
    real = Path(EXAMPLES, path).resolve()
    return real.parent == EXAMPLES and real.suffix == ".gc" and real.is_file()


def _guarded_open(path, *args, **kwargs):
    """The frontend's `open` while the playground compiles: the shipped files only (the check above
    finds every `use` in the text; this is there should one slip past it)."""
    if not _shipped(str(path)):
        raise FileNotFoundError(path)
    return open(path, *args, **kwargs)


def _used_files() -> list[Path]:
    return [p for p in EXAMPLES.glob("*.gc") if _is_library(p.read_text(encoding="utf-8"))]


def _is_library(text: str) -> bool:
    """A file of functions only (to `use`), not a model: no `loss` statement."""
    return re.search(r"^\s*loss\s", text, re.MULTILINE) is None


def examples() -> list[dict]:
    """The shipped example models: {name, title, source}, by name."""
    out = []
    for p in sorted(EXAMPLES.glob("*.gc")):
        text = p.read_text(encoding="utf-8")
        if _is_library(text):
            continue
        first = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), p.stem)
        data = p.with_suffix(".npz").is_file()  # (its values: the lecture's, as `--inputs examples/x.npz`)
        out.append({"name": p.stem, "title": first, "source": text, "data": p.stem if data else None})
    return out


def _values(m, arrays: dict, scalars: dict, dims: dict, seed: int):
    """The values the pictures show: uploaded arrays, then slider values, then generated inputs (a fixed
    normal draw; integer inputs 0 or 1) in shapes whose symbolic dims the uploads fix, else `dims`, else 4.
    Returns (values, dims used, notes, scalar sliders)."""
    import numpy as np

    from ..ir import ops as O

    g = m.graph
    takes = {n: g.names[n] for n in [*g.inputs, *g.params]}
    values = {k: np.asarray(v) for k, v in arrays.items() if k in takes}
    notes = [f"not using `{k}` from the upload: not an input or param of the model" for k in arrays if k not in takes]
    for k, v in scalars.items():
        if k in takes and g[takes[k]]["shape"] == ():
            values[k] = np.asarray(float(v))
    bound = {}
    for k, a in values.items():
        shape = g[takes[k]]["shape"]
        if shape is not None and len(shape) == a.ndim:
            bound.update((d, n) for d, n in zip(shape, a.shape) if isinstance(d, str))
    used = {}
    rng = np.random.default_rng(seed)
    integer = O.integer_inputs(g)
    for name in g.inputs:
        if name in values:
            continue
        shape = g[takes[name]]["shape"]
        if shape is None:
            notes.append(f"`{name}` has no declared shape: upload a value for it to see values")
            return None, used, notes, []
        concrete = []
        for d in shape:
            if isinstance(d, str):
                used[d] = n = int(bound.get(d, dims.get(d, DEFAULT_DIM)))
                concrete.append(n)
            else:
                concrete.append(int(d))
        if int(np.prod(concrete)) > MAX_ELEMENTS:
            notes.append(f"`{name}` would have {int(np.prod(concrete))} entries: make the dims smaller")
            return None, used, notes, []
        values[name] = (
            rng.integers(0, 2, size=concrete) if name in integer else np.round(rng.standard_normal(concrete), 3)
        )
    sliders = [
        {"name": n, "kind": g.kind(i), "value": float(values[n]) if n in values else None}
        for n, i in takes.items()
        if g[i]["shape"] == ()
    ]
    return values, used, notes, sliders


def _example_data(m, name: str | None) -> tuple[dict, list[str]]:
    """The values of a shipped example's .npz (examples/NAME.npz) that fit the model as it is now: an
    array whose shape no longer fits its declaration (the text was edited) is left out, with a note."""
    if not name or not re.fullmatch(r"[A-Za-z0-9_]+", name) or not (EXAMPLES / f"{name}.npz").is_file():
        return {}, []
    from ..data import load_npz
    from ..ir import shapes as S

    g, out, notes = m.graph, {}, []
    for k, a in load_npz(str(EXAMPLES / f"{name}.npz"), keep=g.names).items():
        i = g.names[k]
        shape = g[i]["shape"]
        if g[i]["op"] not in ("input", "param"):
            continue
        if shape is not None and (
            len(shape) != a.ndim or any(isinstance(d, int) and d != n for d, n in zip(shape, a.shape))
        ):
            notes.append(f"not using `{k}` {list(a.shape)} from {name}.npz: the model declares it {S.fmt(shape)}")
            continue
        out[k] = a
    return out, notes


def _digraph(g, vals, backward: bool):
    """(the picture's Digraph or None, a note why not)."""
    from ..views import render

    n = len(g.nx)
    if n > MAX_DRAWN:
        return None, f"the {'backward' if backward else 'forward'} picture has {n} nodes: too many to draw here"
    return render.to_digraph(g, vals, backward, collapse=n > MAX_PICTURE, title="", legend=False), None


def _svgs(digraphs: list) -> list:
    """Each Digraph as SVG text (None stays None), the dot programs run side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from ..views import render

    def one(dg):
        if dg is None:
            return None
        svg = render.pipe(dg, "svg").decode("utf-8")
        return svg[svg.index("<svg") :]

    with ThreadPoolExecutor(len(digraphs) or 1) as pool:
        return list(pool.map(one, digraphs))


def _steps(g, vals, equation_rows: list[str]) -> list[dict]:
    """The backward pass node by node, in the order it runs: {node (its id in the picture), line, row (of
    the equations, or null), name, value}."""
    from ..views.notation import Style
    from ..views.render import fmt_value

    st = Style(False)
    roots = [g.loss, *g.outputs, *(i for i in g.names.values() if not g[i].get("signal"))]
    fwd = g.upstream([r for r in roots if r is not None])
    rows = {lhs: k for k, lhs in enumerate(equation_rows)}
    signals = set(g.grads.values())
    order = [i for i in g.order() if i not in fwd or g[i].get("signal") or i in signals]
    order = [i for i in order if g[i]["op"] not in ("input", "param", "const") or i in signals]
    keep = set(order)
    # the order the backward sweep reads best in: a node that needs no error signal (σ'(z) from h) runs
    # just before the first node that uses it, not at the start
    needs: set[int] = set()
    for i in order:
        if g[i].get("signal") or i in signals or any(a in needs for a in g.nx.pred[i]):
            needs.add(i)
    swept, deferred, placed = [], [], set()
    for i in order:
        if i not in needs:
            deferred.append(i)
            continue
        stack, todo = [i], []
        while stack:  # the deferred nodes i depends on, dependencies first
            j = stack.pop()
            for a in g.nx.pred[j]:
                if a in keep and a not in placed and a not in todo and a in deferred:
                    todo.append(a)
                    stack.append(a)
        for a in sorted(todo, key=order.index):
            swept.append(a)
            placed.add(a)
        swept.append(i)
        placed.add(i)
    order = swept + [i for i in deferred if i not in placed]
    row_of: dict[int, int | None] = {}
    for i in reversed(order):  # an anonymous node is written in the row of the first named node that uses it
        n = g[i]
        own = rows.get(st.name(g, i)) if (n["name"] or n.get("signal")) else None
        if own is None:
            users = [row_of[u] for u in g.nx.succ[i] if u in keep and row_of.get(u) is not None]
            own = min(users) if users else None
        row_of[i] = own
    out = []
    for i in order:
        n = g[i]
        of = n.get("signal") or next((w for w, j in g.grads.items() if j == i), None)
        name = st.bar(of) if of else (n["name"] or f"({n['op']})")
        value = "\n".join(fmt_value(vals[i])) if i in vals else None
        line = n["span"].model_line if n["span"] else None
        out.append({"id": i, "name": name, "line": line, "row": row_of[i], "value": value, "op": n["op"]})
    return out


def _equation_rows(text: str) -> list[str]:
    """The left-hand sides of the text equations, in order (comments and blank lines left out)."""
    return [ln.split(" = ", 1)[0].strip() for ln in text.splitlines() if ln and not ln.startswith("#")]


def _latex_rows(tex: str) -> list[str]:
    body = [ln for ln in tex.splitlines() if not ln.startswith(("%", "\\begin", "\\end"))]
    return [ln.removesuffix(" \\\\").replace(" &= ", " = ", 1) for ln in body]


def _finite_dict(obj, what: str, cast, low, high, count: int = 100) -> dict:
    if obj is None:
        return {}
    if not isinstance(obj, dict) or len(obj) > count:
        raise ValueError(f"`{what}` must be an object of at most {count} names")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not low <= v <= high:
            raise ValueError(f"`{what}.{k}` must be a number from {low} to {high}")
        out[str(k)[:200]] = cast(v)
    return out


def parse_request(req) -> dict:
    """An analysis request as a page or a widget sends it (decoded JSON), checked: the request analyze()
    takes, with the tab, seq and upload id for the caller. ValueError says what is wrong with it."""
    if not isinstance(req, dict) or not isinstance(req.get("source"), str):
        raise ValueError('the body must be a JSON object with the model text as "source"')
    tab, seq, seed = req.get("tab", ""), req.get("seq", 0), req.get("seed", 0)
    if not isinstance(tab, str) or len(tab) > 100:
        raise ValueError('"tab" must be a string of at most 100 characters')
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError('"seq" must be a whole number >= 0')
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError('"seed" must be a whole number from 0 to 2^32 - 1')
    target = req.get("target", "numpy")
    if target not in TARGETS:
        raise ValueError(f'"target" must be one of {", ".join(TARGETS)}')
    example = req.get("example")
    if example is not None and (not isinstance(example, str) or not example.isidentifier() or len(example) > 100):
        raise ValueError('"example" must be the name of a shipped example')
    upload = req.get("upload")
    if upload is not None and not isinstance(upload, str):
        raise ValueError('"upload" must be the id /api/upload gave')
    return {
        "source": req["source"],
        "tab": tab,
        "seq": seq,
        "seed": seed,
        "upload": upload,
        "target": target,
        "example": example,
        "values": _finite_dict(req.get("values"), "values", float, -1e6, 1e6),
        "dims": _finite_dict(req.get("dims"), "dims", int, 1, 4096, 20),
    }


def analyze(request: dict) -> dict:
    """The playground's panels for one request: {source, arrays?, values?, dims?, seed?}."""
    t0 = time.perf_counter()
    source = request.get("source", "")
    out: dict = {"errors": [], "shapes": [], "notes": [], "sliders": [], "dims": {}, "steps": []}
    if len(source) > MAX_SOURCE:
        out["errors"].append(_error(f"the model has {len(source)} characters: the playground takes {MAX_SOURCE}"))
        return out
    out["errors"] = _check_uses(source)
    if out["errors"]:
        return out
    from .. import api
    from ..frontend import builder

    builder.open = _guarded_open  # (a module global: it comes before the builtin)
    try:
        m = api.compile(source, str(EXAMPLES / "playground.gc"))
    except GraphcError as e:
        out["errors"].append(_error(e))
        return out
    except RecursionError:
        out["errors"].append(_error("the model nests too deeply to compile"))
        return out
    finally:
        del builder.open
    if len(m.graph.nx) > MAX_NODES:
        out["errors"].append(_error(f"the model has {len(m.graph.nx)} nodes: the playground takes {MAX_NODES}"))
        return out
    out["shapes"] = [
        {"name": n, "kind": k, "shape": s, "line": ln} for n, k, s, ln in m.summary()
    ]  # as `graphc check` prints them
    out["loss"], out["outputs"] = m.loss_name, m.output_names
    outs = ", ".join(m.output_names) or "none"  # (the last line of `graphc check`)
    out["summary"] = (
        f"ok: {len(out['shapes'])} values; loss {m.loss_name}; outputs {outs}; params {', '.join(m.params) or 'none'}"
    )

    def attempt(what: str, fn):
        try:
            return fn()
        except GraphcError as e:
            out["errors"].append(_error(e))
        except (ValueError, ArithmeticError) as e:
            out["errors"].append(_error(f"{what}: {e}"))
        except MemoryError:
            out["errors"].append(_error(f"{what}: out of memory (the playground bounds it)"))
        except Exception as e:  # a bug in graphc: said in its panel's place, and the other panels still shown
            out["errors"].append(_error(f"internal error in graphc ({what}): {type(e).__name__}: {e}"))
        return None

    arrays, notes = _example_data(m, request.get("example"))
    arrays.update(request.get("arrays") or {})  # (an upload wins)
    values, out["dims"], out["notes"], out["sliders"] = _values(
        m, arrays, request.get("values") or {}, request.get("dims") or {}, request.get("seed", 0)
    )
    out["notes"][:0] = notes
    text = attempt("equations", m.equations) or ""
    tex = attempt("equations", lambda: m.equations(latex=True)) or ""
    lhs = _equation_rows(text)
    latex = _latex_rows(tex)
    out["equations"] = [
        {"text": t, "latex": x} for t, x in zip([ln for ln in text.splitlines() if ln and ln[0] != "#"], latex)
    ]
    out["equations_text"] = text
    out["forward_rows"] = sum(1 for ln in text.split("\n\n", 1)[0].splitlines() if ln and ln[0] != "#")
    target = request.get("target") or "numpy"
    out["code"] = attempt("emit", lambda: m.emit(target=target))
    out["target"] = target
    cost = attempt("cost", lambda: m.cost(values) if values else m.cost())
    out["cost"] = cost.text() if cost is not None else None
    digraphs = {}
    for backward in (False, True):
        key = "backward" if backward else "forward"
        traced = attempt(key, lambda b=backward: m.trace(values, None, backward=b))
        if traced is None:
            continue
        g, vals = traced
        if backward and not g.grads:
            out["notes"].append("the model has no params or inputs to differentiate: no backward pass")
            continue
        dg, note = attempt(f"the {key} picture", lambda b=backward, g=g, v=vals: _digraph(g, v, b)) or (None, None)
        digraphs[key] = dg
        if note:
            out["notes"].append(note)
        if backward:
            out["steps"] = _steps(g, vals, lhs)
    svgs = attempt("the pictures", lambda: _svgs(list(digraphs.values()))) or [None] * len(digraphs)
    for key, svg in zip(digraphs, svgs):
        out[f"{key}_svg"] = svg
    out["seconds"] = round(time.perf_counter() - t0, 4)
    return out


def load_npz(data: bytes, max_total: int) -> dict:
    """The arrays of an uploaded .npz (real numbers only, never a pickle), refusing one whose arrays
    would take more than max_total bytes once unpacked. {arrays: {name: array}} or {error}."""
    import io
    import zipfile

    import numpy as np

    from ..data import check_numeric

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > max_total:
                return {"error": f"the .npz holds {total} bytes unpacked: the playground takes {max_total}"}
        out = {}
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            for k in f.files:
                a = np.asarray(f[k])
                check_numeric(k, a, "the upload")
                out[k] = a
        return {"arrays": out}
    except GraphcError as e:
        return {"error": e.message}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        return {"error": f"not a .npz file of arrays: {e}"}


def warm() -> None:
    """Run every stage once (the parser's tables, the kernels, the printers are made on first use), so
    that the processes forked from one that called this answer the first edit as fast as the next."""
    from ..backends import targets

    for target in targets():  # (each target's printer, made on its first use)
        try:
            source = "input x: [2]\nparam W: [2, 2]\ny = sigmoid(W @ x)\nL = sum(y^2)\nloss L\n"
            analyze({"source": source, "target": target})
        except Exception:  # (warming is only for speed)
            pass
