"""The layout every emitted module shares: forward() and loss_and_grad() (hvp() and hessian() at order 2),
one readable line per step, whatever the array library.

Values keep their model names, error signals are `<name>_bar`, each step says which model line it comes
from, and the helpers the code calls are copied in from the target's runtime.py. A target (its folder's
module.py) is a `Target`: its dialect and runtime, and how its functions begin (the library, the
arguments as its arrays, the defaults of omitted params) -- the NumPy target is the worked example.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import textwrap
from collections.abc import Callable
from typing import NamedTuple

from ..data import option
from ..errors import GraphcError
from ..ir import ops as O
from ..ir.graph import LEAVES, Graph, paused_gc
from ..transforms import pipeline
from ..transforms.autodiff import hvp_input_name
from . import checks, targets
from .numpy.kernels import evaluate
from .printer import ATOM, Printer, number_text

WIDTH = 88  # ruff's default line length: the output passes `ruff format --check` unchanged


class Target:
    """What a target says about its modules; the rest of a module's layout is shared. Its methods write
    code in the module's names (`ns.np` is the library, `ns.py[name]` a model name's Python name)."""

    name = ""  # as --target spells it
    dialect = runtime = None  # its dialect (see backends/printer.py) and the module of its helpers
    aliases: tuple[str, ...] = ()  # the spellings the code may call the library, in order of preference
    modules: tuple[str, ...] = ()  # the modules its code and helpers import, besides the library
    locals: tuple[str, ...] = ()  # the names its functions' prologues set, besides the library's alias
    local_alias = False  # True: the library is a local of each function (and a parameter of each helper)
    local_consts = False  # True: each function makes the named constants (after begin), not the module
    needs = ""  # the module docstring's sentence on what it imports
    helpers: frozenset[str] = frozenset()  # the helpers every module calls (in its prologue)

    def imports(self, ns) -> str:
        """The module's import lines."""
        raise NotImplementedError

    def begin(self, ns, args: list[str]) -> list[str]:
        """A function's first lines, given its arguments' Python names (before any is converted)."""
        return []

    def convert(self, ns, name: str, dtype: str | None) -> str:
        """Argument `name` as an array (of the dtype; None: of its own, integer, dtype)."""
        raise NotImplementedError

    def full(self, ns, shape: str, value: str, dtype: str) -> str:
        """An array of the shape (a tuple's text) filled with the value: an omitted param's default."""
        raise NotImplementedError

    def scalar(self, ns, value: str, dtype: str) -> str:
        """A scalar param's default: the library's scalar of the dtype, not a Python float (b / 0.0 is inf)."""
        raise NotImplementedError

    def shape(self, ns, name: str) -> str:
        """The shape of an argument not converted yet (maybe a list)."""
        raise NotImplementedError

    def number(self, ns, value: float, dtype: str) -> str:
        """A named constant's value (at module level, or in each function: local_consts)."""
        raise NotImplementedError

    def hessian(self, ns, w: str, dtype: str) -> list[str]:
        """hessian(**values)'s body: the columns hvp(e_k) of the Hessian w.r.t. w, shaped w.shape * 2."""
        raise NotImplementedError

    def function(self, f: Function) -> str:
        """A function's source."""
        return _function(f.name, f.sig, f.doc, f.head + f.body + [f.result(f.returned)])


class Function(NamedTuple):
    """An emitted function: its prologue (head: the library found, the arguments converted) runs on the
    arguments as given; its body (the dims read, then the steps) on the arrays the head made of them."""

    name: str
    sig: str  # its signature's text
    args: list[str]  # its arguments' names, in order
    doc: str
    head: list[str]
    body: list[str]
    returned: list[str]  # the expressions it returns
    result: Callable[[list[str]], str]  # its return statement's text, from (those) expressions


class _Names:
    """The emitted module's Python names. The model's keep their spelling (a Python keyword gets a trailing
    `_`); graphc's own -- the library's alias, the helpers, dims, temporaries, hvp's direction -- are picked around
    every name the model has, so that no model name can hit one (SPEC §3: `np` is an ordinary name)."""

    def __init__(self, graphs: list[Graph], dims, target: Target):
        model = list(dict.fromkeys(name for g in graphs for name in g.names))
        consts = {n for g in graphs for n, i in g.names.items() if g[i]["op"] == "const"}
        self.taken = set(model) | set(dims)
        self.py = {}  # model name -> Python name
        for name in model:  # a const is a module-level name: it must not hide a function or a builtin
            clash = keyword.iskeyword(name) or (name in consts and name in _MODULE_LEVEL)
            if not name.isidentifier():  # a value of a call, `H1.z`: `H1_z`
                self.py[name] = self.fresh(re.sub(r"\W", "_", name))
                continue
            self.py[name] = self.fresh(name + "_") if clash else name
        self.dim = {d: d if d not in self.py and not keyword.iskeyword(d) else self.fresh(f"{d}_dim") for d in dims}
        alias = target.dialect.ALIAS  # what the code calls the array library: its first free spelling
        self.np = next((a for a in target.aliases if a not in self.taken), None) or self.fresh(alias + "_")
        self.taken.add(self.np)
        self.alias, self.local_alias = alias, target.local_alias
        self.module = {alias: self.np}  # graphc's module-level names, as runtime.py spells them -> here
        for m in target.modules + target.locals:  # the modules the helpers import, and the functions' locals
            self.module[m] = m if m not in self.taken else self.fresh(m + "_")
            self.taken.add(self.module[m])
        for h in _helpers(target.runtime):
            self.module[h] = h if h not in self.taken else self.fresh(h + "_")
            self.taken.add(self.module[h])
        self.renamed = any(k != v for k, v in self.module.items())  # (the usual case: none)

    def fresh(self, name: str) -> str:
        while name in self.taken or keyword.iskeyword(name):
            name += "_"
        self.taken.add(name)
        return name

    def rename(self, code: str, helper: bool = False) -> str:
        """Code written with runtime.py's names (np.exp, _sigmoid(...)) with this module's. A helper's own
        parameter that holds the library (the array-api target's `xp`) keeps its name."""
        if not self.renamed:
            return code
        keep = self.alias if helper and self.local_alias else None
        code = _MODULE_REF.sub(lambda m: m[1] if m[1] == keep else self.module.get(m[1], m[1]), code)
        if self.local_alias and not helper:  # the library passed to a helper, _sigmoid(xp, x): the local
            code = re.sub(rf"(?<![\w.]){self.alias}(?!\w)", self.np, code)
        return code


_MODULE_LEVEL = frozenset({"forward", "loss_and_grad", "hvp", "hessian", *dir(builtins)})
_MODULE_REF = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?=[.(])")  # a name used as a module or called


def _dims_of(g: Graph) -> list[str]:
    """The symbolic dims of g's declared leaves, in order."""
    out = []
    for i in g.names.values():
        n = g[i]
        if n["op"] in ("input", "param"):
            dims = (g.dims.resolve(d) for d in n["attrs"]["declared"] or ())  # (a const's dim is its number)
            out += [d for d in dims if isinstance(d, str) and d not in out]
    return out


class _Prologue:
    """The first lines of every function: arguments as arrays of the dtype (lists, numbers and bools as
    NumPy users pass them), params not passed made from their declared number, and symbolic dims read
    from any argument that carries them -- inputs and params alike."""

    def __init__(self, g: Graph, ns: _Names, dtype: str, target: Target):
        self.ns, self.dtype = ns, dtype
        free = [n for n, i in g.names.items() if g[i]["op"] in ("input", "param")]
        number = {n: g[g.names[n]]["attrs"]["init"] for n in free if g[g.names[n]]["op"] == "param"}
        self.optional = [n for n in free if n in number and number[n][0] == "number"]
        self.required = [n for n in free if n not in self.optional]
        args = [ns.py[n] for n in self.required] + [f"{ns.py[n]}=None" for n in self.optional]
        self.sig = ", ".join(["*", *args]) if args else ""  # (def f(*) is a SyntaxError)
        self.declared = {n: g.dims.shape(g[g.names[n]]["attrs"]["declared"] or ()) for n in free}
        self.carriers = {}  # dim -> [(name, axis)], required arguments first
        for n in self.required + self.optional:
            for k, d in enumerate(self.declared[n]):
                if isinstance(d, str):
                    self.carriers.setdefault(d, []).append((n, k))
        self.target = target
        integers = O.integer_inputs(g)  # indices and labels stay integers, not the dtype's floats
        lines = []
        for n in self.required:
            lines.append(f"{ns.py[n]} = {target.convert(ns, ns.py[n], None if n in integers else dtype)}")
        for pos, n in enumerate(self.optional):
            value = number_text(number[n][1], ns.np)
            shape = self.declared[n]
            if shape:
                dims = [str(d) if isinstance(d, int) else self._dim(d, n, self.optional[:pos]) for d in shape]
                made = target.full(ns, f"({', '.join(dims)}{',' * (len(dims) == 1)})", value, dtype)
            else:
                made = target.scalar(ns, value, dtype)
            checks = [c for d in shape if isinstance(d, str) for c in self._guards(d, n, self.optional[:pos])]
            py, given = ns.py[n], target.convert(ns, ns.py[n], dtype)
            line = f"{py} = {made} if {py} is None else {given}"
            if any(c.startswith("raise") for c in checks):  # nothing else carries a dim of it: pass it
                line = f"if {py} is None:\n    {next(c for c in checks if c.startswith('raise'))}\n{py} = {given}"
            elif checks or len(line) + 4 > WIDTH:
                guards = "".join(f"    {c}\n" for c in dict.fromkeys(checks))
                line = f"if {py} is None:\n{guards}    {py} = {made}\nelse:\n    {py} = {given}"
            lines.append(line)
        self.args = [ns.py[n] for n in self.required + self.optional]
        self.lines = lines
        self.consts = []  # the named constants, where a target makes them in each function
        # the shapes the arguments must have (an input declared without one: any), which each function tests
        declared = [  # (a param declared without a shape is a number; an input, of any shape)
            n
            for n in self.required + self.optional
            if g[g.names[n]]["op"] == "param" or g[g.names[n]]["attrs"]["declared"] is not None
        ]
        self.checked = {ns.py[n]: self.declared[n] for n in declared}  # (in the carriers' order)
        self.shapes_name = ns.fresh("_DECLARED")

    def head(self, first: tuple[str, str] | None, used: set[str]) -> list[str]:
        """The target's first lines, the named constants the function uses, then the arguments converted
        (`first` too: hvp's direction, as (its name, the model name whose shape it has)) and their shapes
        tested."""
        ns, target = self.ns, self.target
        given = [f"{first[0]} = {target.convert(ns, first[0], self.dtype)}"] if first else []
        begin = target.begin(ns, [first[0], *self.args] if first else self.args)
        return begin + [c for c in self.consts if _defined(c) in used] + given + self.lines + self.check(first)

    def _checked(self, first: tuple[str, str] | None) -> dict:
        """Python name -> the shape it must have, for a function's arguments (hvp's direction last: its dims
        are read from the others)."""
        if first and self.ns.py[first[1]] in self.checked:
            return {**self.checked, first[0]: self.checked[self.ns.py[first[1]]]}
        return self.checked

    def declared_line(self, first: tuple[str, str] | None) -> str | None:
        """The module's line of the shapes the model declares for the arguments, which the error reads."""
        items = [
            f'"{n}": {_tuple(f"{d!r}".replace(chr(39), chr(34)) for d in s)}' for n, s in self._checked(first).items()
        ]
        return _bracketed(f"{self.shapes_name} = {{", items, "}", 0, call=False) if items else None

    def check(self, first: tuple[str, str] | None) -> list[str]:
        """The arguments' shapes tested against the model's in one condition; where it fails, an error that
        names the first that differs. A symbolic dim is read from the first argument that has it, once that
        argument's number of dims is tested (so that no test reads past the end of a shape)."""
        checked = self._checked(first)
        if not checked:
            return []
        py, tests = self.ns.py, []
        for n, shape in checked.items():
            reads = []
            for k, d in enumerate(shape):
                c, at = (n, k) if isinstance(d, int) else next((py[c], at) for c, at in self.carriers[d])
                reads.append(str(d) if isinstance(d, int) else f"{c}.shape[{at}]")
            if any(isinstance(d, str) and py[self.carriers[d][0][0]] == n for d in shape):  # its dims are read
                tests.append(f"{n}.ndim != {len(shape)}")
            if not reads or any(
                r != f"{n}.shape[{k}]" for k, r in enumerate(reads)
            ):  # (else its ndim is all there is to test)
                tests.append(f"{n}.shape != {_tuple(reads)}")
        items = [self.shapes_name, *(f"{n}.shape" for n in checked)]
        error = _bracketed(f"raise {self.ns.module['_wrong_shape']}(", items, ")", 8)
        return [f"{_condition('if ', tests, ':')}\n" + textwrap.indent(error, "    ")]

    def _dim(self, d: str, of: str, filled: list[str]) -> str:
        """Dim d's size for making param `of`, from a required argument, a param made before it, or else
        (a conditional expression) the first given of the params after it."""
        ns = self.ns
        sources = [(n, k) for n, k in self.carriers[d] if n != of]
        for n, k in sources:
            if n in self.required or n in filled:
                return f"{ns.py[n]}.shape[{k}]"
        if not sources:
            return "None"  # (never run: the guard raises first)
        # the guard has raised unless one of them is given: the last needs no test
        shape = self.target.shape
        later = [f"{shape(ns, ns.py[n])}[{k}] if {ns.py[n]} is not None else " for n, k in sources[:-1]]
        n, k = sources[-1]
        return "".join(later) + f"{shape(ns, ns.py[n])}[{k}]"  # (not converted yet: maybe a list)

    def _guards(self, d: str, of: str, filled: list[str]) -> list[str]:
        """A line that raises when nothing passed fixes dim d, which param `of` needs to be made."""
        sources = [n for n, _ in self.carriers[d] if n != of]
        if any(n in self.required or n in filled for n in sources):
            return []
        py = self.ns.py
        given = " and ".join(f"{py[n]} is None" for n in sources)
        others = "".join(f" or `{py[n]}`" for n in sources)
        message = f"pass `{py[of]}`{others}: nothing else given fixes the model's dim {d}, which `{py[of]}` has"
        if not sources:
            return [f"raise TypeError({message!r})"]
        return [f"if {given}:\n        raise TypeError({message!r})"]

    def dim_lines(self, used) -> list[str]:
        """`N = X.shape[0]` for each symbolic dim a function's body uses (every argument is an array now)."""
        out = []
        for d in sorted(used):
            n, k = self.carriers[d][0]
            out.append(f"{self.ns.dim[d]} = {self.ns.py[n]}.shape[{k}]  # the model's dim {d}")
        return out


@paused_gc()
def emit(
    target: Target,
    fwd: Graph,
    wrt: list[str] | None = None,
    dtype: str = "float64",
    module_name: str = "model",
    order: int = 1,
) -> str:
    """The source text of a standalone module for the forward graph fwd (with order=2, also hvp and hessian).

    With order=2, hvp and hessian are w.r.t. the one name in wrt (default: the first param, else input),
    and loss_and_grad keeps every gradient it has at order 1."""
    if dtype not in ("float64", "float32"):
        raise GraphcError(f"{option('dtype')} must be float64 or float32, not {dtype}", usage=True)
    graphs = [fwd, pipeline.gradient_graph(fwd.copy(), wrt, evaluate)]
    if order == 2:
        hvp_wrt = wrt or (fwd.params or fwd.inputs)[:1]
        if not hvp_wrt:
            raise GraphcError(
                f"{option('order', 2)} needs a param or an input to take the Hessian for: the model has none"
            )
        if len(hvp_wrt) != 1:
            raise GraphcError(f"{option('order', 2)} takes exactly one name in {option('wrt')}", usage=True)
        vname = hvp_input_name(fwd)
        graphs.append(pipeline.hvp_graph(fwd.copy(), hvp_wrt[0], vname, evaluate))
    _check_ops(target, graphs)
    gb = graphs[1]
    dims = _dims_of(fwd)
    ns = _Names(graphs, dims, target)
    pro = _Prologue(fwd, ns, dtype, target)

    consts = _named_consts(fwd, ns)
    const_lines = [
        f"{name} = {target.number(ns, fwd[i]['attrs']['value'], dtype)}  # line {fwd[i]['span'].lines()}"
        for i, name in sorted(consts.items(), key=lambda kv: fwd[kv[0]]["span"].line)
    ]
    if target.local_consts:
        pro.consts, const_lines = const_lines, []
    declared = pro.declared_line((ns.py[vname], hvp_wrt[0]) if order == 2 else None)
    if declared:  # (module level on every target: only a wrong call reads it)
        const_lines.append(
            f"# the arguments' shapes as the model declares them, for the error a wrong one gets\n{declared}"
        )

    # One printing of the gradient graph (simplified once): loss_and_grad's forward pass -- the values the
    # loss or the backward pass read -- is forward()'s too, which then adds the values neither reads
    steps = gb.order()
    values = gb.upstream([i for i in gb.names.values() if not gb[i].get("signal")])
    needed = gb.upstream([gb.loss, *gb.grads.values()])
    loss_ids = gb.upstream([gb.loss])
    forward_ids = loss_ids | (values & needed)
    printer = _Body(gb, dtype, ns, _named_consts(gb, ns), target)
    body_f = printer.statements([i for i in steps if i in forward_ids], needed | values)
    body_b = printer.statements([i for i in steps if i not in forward_ids and i in needed], needed)
    fwd_body = body_f + printer.statements([i for i in steps if i in values and i not in forward_ids], values)
    values = [ns.py[n] for n in fwd.names]
    grads = [printer.expr(gb.loss)[0], *(printer.expr(i)[0] for i in gb.grads.values())]
    second = _second_order(graphs[2], hvp_wrt[0], vname, pro, ns, dtype, target) if order == 2 else None
    checks = {"_wrong_shape"} if pro.checked else set()
    helpers = sorted(printer.helpers | target.helpers | checks | (second[1] if second else set()))
    runtime = target.runtime
    helper_src = [
        ns.rename(inspect.getsource(_helpers(runtime)[h]), helper=True) for h in _with_dependencies(runtime, helpers)
    ]

    example_args = ", ".join(f"{ns.py[n]}=..." for n in pro.required)
    wrt_names = ", ".join(gb.grads)
    model_text = textwrap.indent("\n".join(line.rstrip() for line in fwd.source.splitlines() if line.strip()), "    ")
    L = gb.label(gb.loss)
    usage = [
        f"values = {module_name}.forward({example_args})  # every named value",
        f"loss, grads = {module_name}.loss_and_grad({example_args})  # d{L}/d({wrt_names})",
    ]
    if second:
        w = hvp_wrt[0]
        usage += [
            f"hv = {module_name}.hvp(direction, {example_args})  # d²{L}/d{w}² times direction, shaped like {w}",
            f"hessian = {module_name}.hessian({example_args})  # d²{L}/d{w}²",
        ]
    parts = [
        f'"""Gradient code for {fwd.path}, generated by graphc. {target.needs}\n\n'
        f"The model:\n\n{model_text}\n\nUsage:\n\n    import {module_name}\n"
        + "".join(f"    {u}\n" for u in usage)
        + '"""\n',
        target.imports(ns),
    ]
    if const_lines:
        parts.append("\n".join(const_lines) + "\n")
    parts += [h.rstrip() + "\n" for h in helper_src]
    doc_f = '"""Every named value of the forward pass."""'
    doc_b = (
        f'"""The loss and its gradients w.r.t. {wrt_names}.\n\n'
        f"    Error signals are named <value>_bar: y_bar = d{L}/dy.\n"
        '    """'
    )
    dims = pro.dim_lines(printer.used_dims)

    def result_f(exprs):
        return _call_lines("return {", [f'"{n}": {e}' for n, e in zip(fwd.names, exprs)], "}")

    def result_b(exprs):
        return _call_lines(f"return {exprs[0]}, {{", [f'"{w}": {e}' for w, e in zip(gb.grads, exprs[1:])], "}")

    parts.append(target.function(_parts("forward", pro.sig, pro.args, doc_f, pro, dims, fwd_body, values, result_f)))
    backward = ["# forward pass"] + body_f + ["", "# backward pass"] + body_b
    parts.append(
        target.function(_parts("loss_and_grad", pro.sig, pro.args, doc_b, pro, dims, backward, grads, result_b))
    )
    if second:
        parts += second[0]
    head = parts[:3] if const_lines else parts[:2]
    rest = parts[len(head) :]
    return "\n".join(p.rstrip("\n") + "\n" for p in head) + "".join("\n\n" + p.rstrip("\n") + "\n" for p in rest)


def _check_ops(target: Target, graphs: list[Graph]) -> None:
    """A located error for the first op the target's dialect cannot write, before any is printed."""
    code = target.dialect.CODE
    refuses = getattr(target.dialect, "refuses", None)  # (what of an op it has it cannot compute)
    for g in graphs:
        for i in g.order():
            n = g[i]
            why = f"`{n['op']}`" if n["op"] not in code else refuses(g, i) if refuses else None
            if why:
                others = ", ".join(t for t in targets() if t != target.name)
                raise GraphcError(f"the {target.name} target cannot compute {why}", n["span"], f"emit it for {others}")


def _named_consts(g: Graph, ns: _Names) -> dict[int, str]:
    """The model's named constants (`const c = 2`), by node id: the module defines them once, by name."""
    return {i: ns.py[n["name"]] for i, n in g._node.items() if n["op"] == "const" and n["name"]}


def _second_order(gh: Graph, w: str, vname: str, pro: _Prologue, ns: _Names, dtype: str, target: Target):
    """hvp() -- the Hessian of the loss w.r.t. w times a direction, by differentiating the backward graph
    again -- and hessian(), its columns H·e_k: ([the two functions' source], helpers they use). The
    direction is hvp's one positional(-only) argument: its name can never meet a model name's keyword."""
    loss, hv = gh.label(gh.loss), gh.grads[w]
    printer = _Body(gh, dtype, ns, _named_consts(gh, ns), target)
    needed = printer.upstream([hv])  # (not the loss: its mean's 1 / N reads only its shape)
    body = printer.statements([i for i in gh.order() if i in needed], needed)
    v = ns.py[vname]
    doc = (
        f'"""The Hessian of {loss} w.r.t. {w} times {v} (shaped like {w}): the derivative of\n'
        f"    {w}_bar · {v} w.r.t. {w}, through the backward pass (signals of signals: x_bar_bar).\n"
        '    """'
    )
    sig, dims, returned = f"{v}, /, {pro.sig}".rstrip(", "), pro.dim_lines(printer.used_dims), [printer.expr(hv)[0]]
    hvp = target.function(_parts("hvp", sig, [v, *pro.args], doc, pro, dims, body, returned, _return_one, first=(v, w)))
    doc = f'"""The Hessian of {loss} w.r.t. {w}, shaped {w}.shape * 2: one column per H·e_k (see hvp)."""'
    hessian = _function("hessian", "**values", doc, target.hessian(ns, w, dtype))
    return [hvp, hessian], printer.helpers


def _parts(name, sig, args, doc, pro: _Prologue, dims, steps, returned, result, first=None) -> Function:
    """A Function whose prologue reads only the dims, and makes only the named constants, that its steps and
    results use."""
    used = set(re.findall(r"[A-Za-z_]\w*", "\n".join(steps + returned)))
    dims = [d for d in dims if _defined(d) in used]
    return Function(name, sig, args, doc, pro.head(first, used), dims + steps, returned, result)


def _defined(line: str) -> str:
    """The name a `name = ...` line defines."""
    return line.split(" = ", 1)[0]


def _return_one(exprs: list[str]) -> str:
    return f"return {exprs[0]}"


def _condition(opening: str, tests: list[str], closing: str) -> str:
    """`if a or b:` as ruff formats it: on one line; else in parentheses, on a line of its own; else one
    test a line, each after the first starting with `or`."""
    one = " or ".join(tests)
    if 4 + len(opening) + len(one) + len(closing) <= WIDTH:
        return opening + one + closing
    if 8 + len(one) <= WIDTH:
        return f"{opening}(\n    {one}\n){closing}"
    return f"{opening}(\n    " + "\n    or ".join(tests) + f"\n){closing}"


def _tuple(items) -> str:
    items = list(items)
    return f"({', '.join(items)}{',' * (len(items) == 1)})"


def _bracketed(opening: str, items: list[str], closing: str, indent: int, call: bool = True) -> str:
    """A call or a literal as ruff formats it at this column: on one line; else (a call) its items on a
    line of their own; else one item a line, with a trailing comma."""
    one = ", ".join(items)
    if indent + len(opening) + len(one) + len(closing) <= WIDTH:
        return opening + one + closing
    if call and indent + 4 + len(one) <= WIDTH:
        return f"{opening}\n    {one}\n{closing}"
    return opening + "\n" + "".join(f"    {item},\n" for item in items) + closing


def _call_lines(opening: str, items: list[str], closing: str) -> str:
    """`return {a, b}` on one line when it fits, else one item a line with a trailing comma (ruff's style)."""
    one = opening + ", ".join(items) + closing
    if len(one) + 4 <= WIDTH:
        return one
    return opening + "\n" + "".join(f"    {item},\n" for item in items) + closing


def _helpers(runtime) -> dict[str, Callable]:
    """The helpers a module of this runtime may copy in: its own, and checks.py's, which every target's share."""
    return {h: f for m in (runtime, checks) for h, f in vars(m).items() if h.startswith("_") and callable(f)}


def _with_dependencies(runtime, helpers: list[str]) -> list[str]:
    """The helpers and every helper they call, and those call, ...: the runtime functions a module needs."""
    found = _helpers(runtime)
    names = list(found)
    out, todo = set(helpers), list(helpers)
    while todo:
        src = inspect.getsource(found[todo.pop()])
        for d in names:
            if d not in out and re.search(rf"(?<![\w.]){d}\(", src):
                out.add(d)
                todo.append(d)
    return sorted(out)


def _function(name: str, sig: str, doc: str, body: list[str]) -> str:
    lines = [f"def {name}({sig}):", f"    {doc}"]
    for stmt in body:
        lines += ["    " + ln if ln else "" for ln in stmt.split("\n")]
    return "\n".join(lines) + "\n"


class _Body(Printer):
    """Statements for a list of nodes: named values, values used twice or more, and long expressions."""

    def __init__(self, g: Graph, dtype: str, ns: _Names, consts: dict[int, str], target):
        node = g._node
        dialect, self.target = target.dialect, target
        names = {i: ns.py[n["name"]] for i, n in node.items() if n["name"] and n["op"] in LEAVES}
        names.update(consts)
        for i in [i for i in names if node[i].get("signal") and node[i]["op"] == "const"]:
            del names[i]  # a gradient that is a constant (b_bar = 2.0): no line defines it, so print its number
        super().__init__(g, names, dialect, dtype, ns.dim, ns)
        self.taken = ns.taken
        self.temps = 0

    def temp(self) -> str:
        while True:
            self.temps += 1
            name = f"tmp{self.temps}"
            if name not in self.taken:
                return name

    def statements(self, nodes: list[int], needed: set[int]) -> list[str]:
        g = self.g
        node, succ = g._node, g._succ
        out = []
        # a dialect may write a node's step as statements of its own (the numba target's loops): it says
        # which nodes need a line for them (never inlined), and writes them, given the nodes still to come
        own_line = getattr(self.dialect, "own_line", None)
        statement = getattr(self.dialect, "statement", None)
        later = set(nodes) & needed
        for i in nodes:
            n = node[i]
            if n["op"] in LEAVES or i in self.names:
                continue
            # its arguments are done (named or inlined), so its expression is final: users reuse it
            e = self.expr(i)
            named = n["name"] is not None
            if not named and i != g.loss and len(e[0]) <= 48 and not (own_line and own_line(self, i)):
                users = 0
                for u in succ[i]:
                    if u in needed and (node[u]["op"] != "size_ratio" or not self.shape_only(u)):
                        users += 1
                if users == 1:
                    self.inline(i, e)
                    continue  # inlined into its one user
            name = self.ns.py[n["name"]] if named else self.temp()
            lines = statement(self, i, name, later) if statement else None
            if lines:  # (its first line says which model line the step comes from)
                comment = f"  # line {n['span'].lines()}" if n["span"] else ""
                if len(lines[0]) + len(comment) + 4 > WIDTH and comment:
                    out.append(comment.strip())
                    comment = ""
                out.append("\n".join([lines[0] + comment, *lines[1:]]))
                self.names[i] = name
                continue
            number = self.number_of(i)
            if number is not None:  # a value that is a number (c = 0): the library's scalar, not a Python float
                e = (self.target.scalar(self.ns, number_text(number, self.lib), self.dtype), ATOM)  # (1 / c is inf)
            text = self._fit(i, name, e[0], out)
            line = f"{name} = {text}"
            comment = f"  # line {n['span'].lines()}" if n["span"] else ""
            if len(line) + len(comment) + 4 > WIDTH and comment:
                out.append(comment.strip())
                comment = ""
            out.append(line + comment)
            self.names[i] = name
        return out

    def number_of(self, i: int) -> float | None:
        """The number node i is (a constant, or an alias of one), else None."""
        node = self.g._node
        while node[i]["op"] == "identity":
            i = node[i]["args"][0]
        return node[i]["attrs"]["value"] if node[i]["op"] == "const" else None

    def upstream(self, roots: list[int]) -> set[int]:
        """The nodes roots' values are computed from, but not through an argument whose shape alone is read
        (a size ratio known when printing: 1 / N)."""
        seen, todo = set(roots), list(roots)
        while todo:
            u = todo.pop()
            if self.shape_only(u):
                continue
            for a in self.g[u]["args"]:
                if a not in seen:
                    seen.add(a)
                    todo.append(a)
        return seen

    def _fit(self, i: int, name: str, text: str, out: list[str]) -> str:
        """Node i's text for `name = text` in 88 columns: while it is longer, its longest inlined argument
        gets a line of its own first (as a temporary; an inlined text is at most 48 characters, so that
        line fits)."""
        while len(name) + len(text) + 7 > WIDTH:
            spill = [
                a
                for a in self.g[i]["args"]
                if a in self.inlined and self.inlined[a][0] in text and self.g[a]["op"] != "const"
            ]  # (a number's line would gain nothing)
            if not spill:
                break
            a = max(spill, key=lambda a: len(self.inlined[a][0]))
            tmp = self.temp()
            out.append(f"{tmp} = {self.inlined.pop(a)[0]}")
            self.names[a] = tmp
            text = self.expr(i)[0]
        return text
