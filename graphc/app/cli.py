"""The command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import os
import sys

from .. import api, backends, data
from ..errors import GraphcError

# Each command imports the layers it needs (NumPy, training, pictures) where it runs: `graphc check`
# starts in a tenth of a second because it loads none of them.


def _model_args(p: argparse.ArgumentParser, values: bool = True) -> None:
    p.add_argument("model", metavar="MODEL", help="a .gc model file, or - for stdin")
    if values:
        p.add_argument(
            "--inputs",
            action="append",
            default=[],
            metavar="FILE.npz",
            help="values keyed by model name (repeatable; later files win)",
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a value: a number or a JSON list (repeatable; wins over --inputs)",
        )
        p.add_argument("--seed", type=_seed, default=0, help="seed for params' initialisers (default 0)")


def _number(cast, low, strict: bool, what: str):
    """An argparse type: a finite number of `cast` that is >= low (> low when strict), else a usage error."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            v = None
        if v is None or v != v or v in (float("inf"), float("-inf")) or v < low or (strict and v == low):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v

    return parse


_seed = _number(int, 0, False, "a whole number >= 0 (seeds are >= 0)")


def _values(m: api.Model, args) -> dict:
    """--inputs files then --set items; only inputs and params take values.

    In a file, keys the model does not use are ignored (data files may carry labels and the like),
    and so are values of names the model computes (`graphc eval -o` saves every named value, and
    that file may come back as --inputs), with a note saying so. A --set for a computed name, a const
    or a name the model does not have (likely a typo) is the interpreter's error.
    """
    g = m.graph
    takes = {name for name, i in g.names.items() if g[i]["op"] in ("input", "param")}
    values = {}
    for path in args.inputs:
        found = data.load_values([path], keep=g.names)
        computed = [k for k in found if k not in takes]
        if computed:
            where = ", ".join(f"`{k}` (line {_line(g[g.names[k]])})" for k in computed)
            print(f"note: {path}: not using {where}: computed by the model, not given", file=sys.stderr)
        values.update((k, v) for k, v in found.items() if k in takes)
    sets = data.load_values(sets=args.set)  # (a computed name there is the interpreter's error, at its line)
    values.update(sets)
    return values


def _line(node) -> str:
    return str(node["span"].model_line) if node["span"] else "?"


def _wrt_arg(p: argparse.ArgumentParser, what: str = "names to differentiate w.r.t.") -> None:
    p.add_argument("--wrt", metavar="A,B", help=f"{what} (default: params, else inputs)")


def _wrt(text: str | None) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def fmt_value(a) -> str:
    import numpy as np  # imported where used: `graphc check` never loads NumPy

    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    body = np.array2string(a, precision=6, threshold=20, edgeitems=3, max_line_width=100)
    return f"shape {list(a.shape)}\n" + "\n".join("    " + line for line in body.splitlines())


def cmd_check(m: api.Model, args) -> int:
    rows = m.summary()
    w = max(4, *(len(r[0]) for r in rows))
    sw = max(5, *(len(r[2]) for r in rows))
    lines = [f"{'name':<{w}}  {'kind':<6}  {'shape':<{sw}}  line"]
    lines += [f"{name:<{w}}  {kind:<6}  {shape:<{sw}}  {line}" for name, kind, shape, line in rows]
    print("\n".join(lines))  # one write: a 10,000-value model prints 10,000 rows
    outs = ", ".join(m.output_names) or "none"
    print(f"ok: {len(rows)} values; loss {m.loss_name}; outputs {outs}; params {', '.join(m.params) or 'none'}")
    return 0


def cmd_eval(m: api.Model, args) -> int:
    values = m.evaluate(_values(m, args), seed=args.seed)
    print(f"{m.loss_name} = {fmt_value(values[m.loss_name])}")
    for name in m.output_names:
        if name != m.loss_name:
            print(f"{name} = {fmt_value(values[name])}")
    if args.output:
        data.save_npz(args.output, values, protect=_read(args))
        print(f"wrote {len(values)} values to {args.output}")
    return 0


def cmd_grad(m: api.Model, args) -> int:
    values = _values(m, args)
    wrt = _wrt(args.wrt)
    if args.order == 2:
        if wrt and len(wrt) > 1:
            raise GraphcError("--order 2 takes exactly one name in --wrt", usage=True)
        name = wrt[0] if wrt else next(iter(m.default_wrt()), None)
        h = m.hessian(values, name, seed=args.seed)
        print(f"Hessian of {m.loss_name} w.r.t. {name} = {fmt_value(h)}")
        if args.output:
            data.save_npz(args.output, {name: h}, protect=_read(args))
        return 0
    loss, grads = m.loss_and_grad(values, wrt, seed=args.seed)
    print(f"{m.loss_name} = {loss:.10g}")
    for name, gv in grads.items():
        print(f"d{m.loss_name}/d{name} = {fmt_value(gv)}")
    if args.output:
        data.save_npz(args.output, grads, protect=_read(args))
        print(f"wrote {len(grads)} gradients to {args.output}")
    return 0


def cmd_gradcheck(m: api.Model, args) -> int:
    from ..gradcheck import gradcheck

    values = _values(m, args)
    report = gradcheck(m, values, _wrt(args.wrt), seed=args.seed, max_checks=args.max_checks)
    worst = 0.0
    for name, (err, checked, total) in report.items():
        worst = max(worst, err)
        part = "" if checked == total else f" ({checked} of {total} entries sampled)"
        print(f"{name:>12}: max relative error {err:.3e}{part}  {'ok' if err <= args.tol else 'FAIL'}")
    ok = worst <= args.tol
    print(f"{'ok' if ok else 'FAILED'}: worst {worst:.3e}, tolerance {args.tol:g}")
    return 0 if ok else 1


def cmd_equations(m: api.Model, args) -> int:
    values = _values(m, args) if (args.inputs or args.set) else None
    print(m.equations(values, _wrt(args.wrt), latex=args.latex, seed=args.seed), end="")
    return 0


def cmd_cost(m: api.Model, args) -> int:
    values = _values(m, args) if (args.inputs or args.set) else None
    c = m.cost(values, _wrt(args.wrt), seed=args.seed, dtype=args.dtype)
    sys.stdout.write(c.json_text() if args.json else c.text())
    return 0


def cmd_render(m: api.Model, args) -> int:
    from ..views import render

    if args.output:
        render.format_of(args.output)  # a wrong extension is a usage error, found before any work
    dg = m.to_digraph(
        backward=args.backward,
        values=_values(m, args) if (args.inputs or args.set) else None,
        wrt=_wrt(args.wrt),
        seed=args.seed,
        rankdir=args.rankdir,
        group_by_line=args.group_by_line,
        group_by_call=args.group_by_call,
        collapse=args.collapse,
        legend=not args.no_legend,
    )
    n = render.node_count(dg)
    if n > render.LARGE and not (args.group_by_line or args.collapse):
        print(
            f"note: {n} nodes; --collapse (a box per named value) or --group-by-line make it easier to read",
            file=sys.stderr,
        )
    if not args.output:
        sys.stdout.write(dg.source)
        return 0
    render.save(dg, args.output, protect=_read(args))
    print(f"wrote {args.output} ({n} nodes)", file=sys.stderr)
    return 0


def cmd_emit(m: api.Model, args) -> int:
    from pathlib import Path

    name = Path(args.output).stem if args.output else (Path(args.model).stem if args.model != "-" else "model")
    module = name.replace("-", "_")
    source = m.emit(_wrt(args.wrt), args.dtype, module_name=module, order=args.order, target=args.target)
    if args.output:
        data.write_text(args.output, source, protect=_read(args))
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="graphc",
        description="Compile, differentiate and run models written as "
        "equations (e.g. `z = w*x + b; y = sigmoid(z); L = 0.5*(y-t)^2`).",
    )
    p.add_argument("--version", action="version", version=f"graphc {__import__('graphc').__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("check", help="parse, order and shape-check a model; print its values")
    _model_args(c, values=False)
    c.set_defaults(run=cmd_check)

    c = sub.add_parser("eval", help="run the forward pass; print the loss and outputs")
    _model_args(c)
    c.add_argument("-o", "--output", metavar="OUT.npz", help="save every named value")
    c.set_defaults(run=cmd_eval)

    c = sub.add_parser("grad", help="the loss and its gradients")
    _model_args(c)
    _wrt_arg(c)
    c.add_argument("--order", type=int, choices=(1, 2), default=1, help="2: the Hessian w.r.t. one --wrt name")
    c.add_argument("-o", "--output", metavar="GRADS.npz", help="save the gradients keyed by name")
    c.set_defaults(run=cmd_grad)

    c = sub.add_parser("gradcheck", help="compare symbolic gradients with central finite differences")
    _model_args(c)
    _wrt_arg(c, "names to check")
    c.add_argument(
        "--tol",
        type=_number(float, 0, False, "a number >= 0"),
        default=1e-6,
        help="largest relative error allowed (default 1e-6)",
    )
    c.add_argument(
        "--max-checks",
        type=_number(int, 1, False, "a whole number >= 1"),
        default=1000,
        metavar="K",
        help="entries checked per value; larger values are sampled (default 1000)",
    )
    c.set_defaults(run=cmd_gradcheck)

    targets = backends.summaries()
    c = sub.add_parser(
        "emit",
        help="write a standalone module: forward() and loss_and_grad()",
        epilog="targets:\n" + "".join(f"  {t:<11} {line}\n" for t, line in targets.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_args(c, values=False)
    c.add_argument("-o", "--output", metavar="FILE.py", help="where to write it (default: stdout)")
    _wrt_arg(c)
    c.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="arithmetic precision")
    c.add_argument(
        "--target", choices=list(targets), default="numpy", help="the array library the module is written for"
    )
    c.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also hvp(direction, **values) and hessian(**values) w.r.t. the --wrt name (default: the first param)",
    )
    c.set_defaults(run=cmd_emit)

    c = sub.add_parser("equations", help="the forward and backward passes as equations (ȳ = dL/dy)")
    _model_args(c)
    _wrt_arg(c)
    c.add_argument("--latex", action="store_true", help="an align* block for LaTeX")
    c.set_defaults(run=cmd_equations)

    c = sub.add_parser(
        "cost",
        help="FLOPs and bytes moved per node; forward and backward totals and their ratio",
        description="FLOPs and bytes moved by every node of the forward and backward passes (the gradient graph "
        "graphc runs), their totals and the ratio backward/forward (the lecture's 'a backward pass costs about "
        "two forward passes'). With --inputs/--set, numbers; without, formulas in the symbolic dims (N, D, ...). "
        "Counting rules: a matmul of [m, k] by [k, n] is 2mkn FLOPs, an elementwise op (exp, sigmoid too) 1 per "
        "element, a reduction of n elements n, views 0; bytes: each argument read plus the result written.",
    )
    _model_args(c)
    _wrt_arg(c)
    c.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="bytes per element: 8 or 4")
    c.add_argument("--json", action="store_true", help='print {"forward": ..., "backward": ..., "nodes": [...]}')
    c.set_defaults(run=cmd_cost)

    c = sub.add_parser(
        "render",
        help="draw the computation graph with Graphviz (svg, png, pdf or dot)",
        description="Draw the forward graph, and with --backward the backward graph beside it (error signals "
        "ȳ = dL/dy). With --inputs/--set every node shows its value and, with --backward, its error signal.",
    )
    _model_args(c)
    c.add_argument(
        "-o",
        "--output",
        metavar="GRAPH.svg",
        help="the picture; its extension picks the format: svg, png, pdf, dot (default: DOT on stdout)",
    )
    c.add_argument("--backward", action="store_true", help="add the backward graph: error signals, dashed reuses")
    _wrt_arg(c)
    c.add_argument(
        "--rankdir",
        type=str.upper,
        choices=("LR", "TB", "RL", "BT"),
        default="LR",
        help="LR: left to right (default); TB: top to bottom",
    )
    c.add_argument("--group-by-line", action="store_true", help="cluster the nodes by model line (large graphs)")
    c.add_argument("--group-by-call", action="store_true", help="draw each call of the model's own functions as a box")
    c.add_argument(
        "--collapse",
        action="store_true",
        help="one box per named value, its expression inside, instead of a node per operation",
    )
    c.add_argument("--no-legend", action="store_true", help="leave out the legend")
    c.set_defaults(run=cmd_render)

    c = sub.add_parser(
        "train",
        help="fit the params: gradient descent or mini-batch SGD on --data",
        description="Fit the model's params to the data by full-batch gradient descent (no --batch-size, "
        "or one >= the number of examples) or mini-batch SGD (reshuffled each epoch from --seed). "
        "The data file's arrays are the model's inputs, one example per row (axis 0).",
    )
    _model_args(c, values=False)
    c.add_argument("--data", required=True, metavar="TRAIN.npz", help="the training data, keyed by input name")
    c.add_argument("--val", metavar="VAL.npz", help="validation data: loss (and metric) reported each epoch")
    c.add_argument("--lr", type=float, default=0.1, help="learning rate: the step size (default 0.1)")
    c.add_argument("--epochs", type=int, default=10, help="passes over the data (default 10)")
    c.add_argument("--batch-size", type=int, metavar="B", help="mini-batch size (default: all, full-batch GD)")
    c.add_argument("--seed", type=_seed, default=0, help="seeds the params' initialisers and the shuffling (default 0)")
    c.add_argument(
        "--schedule",
        choices=("constant", "halve", "step", "cosine"),
        default="constant",
        help="halve: halve the learning rate when the epoch loss goes up; step: times --gamma every --step-size "
        "epochs; cosine: to 0 over the run (default constant)",
    )
    c.add_argument("--warmup", type=int, default=0, metavar="EPOCHS", help="rise linearly to --lr over EPOCHS first")
    c.add_argument("--step-size", type=int, metavar="EPOCHS", help="--schedule step: epochs between drops (default 1)")
    c.add_argument("--gamma", type=float, help="--schedule step: the factor of each drop (default 0.1)")
    c.add_argument(
        "--optimizer",
        choices=("sgd", "momentum", "nesterov", "adam", "adamw"),
        default="sgd",
        help="the update, as torch.optim's (default sgd: the lecture's theta -= lr * gradient)",
    )
    c.add_argument("--momentum", type=float, help="momentum, nesterov: the momentum (default 0.9)")
    c.add_argument("--beta1", type=float, help="adam, adamw: the first moment's decay (default 0.9)")
    c.add_argument("--beta2", type=float, help="adam, adamw: the second moment's decay (default 0.999)")
    c.add_argument("--eps", type=float, help="adam, adamw: added to the denominator (default 1e-8)")
    c.add_argument(
        "--weight-decay",
        type=float,
        metavar="WD",
        help="the optimizer's weight decay: decoupled for adamw, wd*param added to the gradient otherwise (default 0)",
    )
    c.add_argument("--clip-norm", type=float, metavar="C", help="scale each gradient to global norm at most C")
    c.add_argument("--checkpoint", metavar="DIR", help="save the run's state to DIR after every epoch (atomically)")
    c.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR (--epochs: the whole run)")
    c.add_argument("--log", metavar="METRICS.jsonl", help="append one JSON record per epoch")
    c.add_argument(
        "--backend",
        choices=("numpy", "numba", "torch", "jax", "dask"),
        default="numpy",
        help="the step's code: numpy (the emitted NumPy module, default), numba (the numba target), torch or jax "
        "(the array-api module, the whole loop on --device); dask: full-batch gradient descent data-parallel on a "
        "Dask cluster (--data: .npz or a Zarr store)",
    )
    c.add_argument("--device", choices=("cpu", "cuda"), help="--backend torch, jax: where the loop runs (default cpu)")
    c.add_argument("--scheduler", metavar="ADDRESS", help="--backend dask: the cluster (default: a local one)")
    c.add_argument("--workers", type=int, metavar="N", help="--backend dask: the local cluster's worker processes")
    c.add_argument("--chunk", type=int, metavar="N", help="--backend dask: examples per chunk")
    c.add_argument("--tol", type=float, metavar="T", help="stop when the gradient norm falls below T")
    c.add_argument(
        "--patience",
        type=int,
        metavar="P",
        help="with --val: stop after P epochs without a lower val loss, keeping the best params",
    )
    c.add_argument(
        "--l2",
        type=float,
        default=0.0,
        metavar="λ",
        help="weight decay: add λ/2·Σ‖p‖² over all params to the objective (default 0)",
    )
    c.add_argument("--metric", choices=("accuracy",), help="report accuracy of the model's first output")
    c.add_argument(
        "--target",
        metavar="NAME",
        help="the data key holding the metric's targets (default: the input the loss uses and the output does not)",
    )
    c.add_argument("--init", metavar="PARAMS.npz", help="start from these params (e.g. a previous -o) to resume")
    c.add_argument("--quiet", action="store_true", help="no progress bar or log lines; only the result")
    c.add_argument("--plot", metavar="LOSS.png", help="draw training and val loss per epoch (needs matplotlib)")
    c.add_argument("-o", "--output", metavar="PARAMS.npz", help="save the trained params (written atomically)")
    c.set_defaults(run=cmd_train)

    c = sub.add_parser("plot", help="draw a training log (graphc train --log) after the fact")
    c.add_argument("metrics", metavar="METRICS.jsonl", help="the log: one JSON record per epoch")
    c.add_argument("-o", "--output", required=True, metavar="LOSS.png", help="the picture (png, svg, pdf, jpg)")
    c.set_defaults(run=cmd_plot)

    c = sub.add_parser(
        "demo",
        help="train the digits network and write params, loss plot, pictures and code to a folder",
        description="Train the lecture's two-layer network on the shipped 8x8 digits with a progress bar, "
        "print the held-out accuracy, and write the trained params, the loss plot, the forward and backward "
        "pictures and the emitted gradient module into --out.",
    )
    c.add_argument("--out", default="out", metavar="DIR", help="the output folder (default out/)")
    c.add_argument("--epochs", type=int, default=30, help="passes over the training images (default 30)")
    c.add_argument("--seed", type=_seed, default=0, help="seeds the initial weights and the shuffling (default 0)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(run=cmd_demo)  # no MODEL: the demo trains its own

    c = sub.add_parser(
        "serve",
        help="the playground: a local web page where a model is edited and its pictures, equations and code follow",
        description="Serve the playground on http://HOST:PORT/ (default http://127.0.0.1:8765/): an editor, and "
        "beside it the shapes, errors, forward and backward pictures with values, equations, cost and code of "
        "the model as it is typed. Needs the serve extra: pip install 'graphc[serve]'.",
    )
    c.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine)")
    c.add_argument("--port", type=_number(int, 0, False, "a port number"), default=8765, help="default 8765")
    c.add_argument(
        "--timeout",
        type=_number(float, 0, True, "a number of seconds > 0"),
        default=10.0,
        metavar="SECONDS",
        help="stop an analysis that takes longer (default 10)",
    )
    c.add_argument(
        "--workers",
        type=_number(int, 1, False, "a whole number >= 1"),
        default=2,
        metavar="N",
        help="analyses at once, each in a process of its own (default 2)",
    )
    c.add_argument("--quiet", action="store_true", help="no log line per request")
    c.set_defaults(run=cmd_serve)  # no MODEL: the page edits its own
    return p


# ---- train and demo (graphc/training, graphc/app/demo.py) ------------------------------------------
# the options `--backend dask` (full-batch gradient descent on a cluster) does not take, and their defaults
_NOT_ON_DASK = {
    "batch_size": None, "val": None, "patience": None, "tol": None, "metric": None, "schedule": "constant",
    "optimizer": "sgd", "clip_norm": None, "checkpoint": None, "resume": None, "log": None, "plot": None, "warmup": 0,
    "device": None,
}  # fmt: skip


def _train_dask(m: api.Model, args):
    from ..training.distributed import train_dask

    given = [k for k, default in _NOT_ON_DASK.items() if getattr(args, k) != default]
    if given:
        raise GraphcError(
            f"--backend dask runs full-batch gradient descent: it takes no --{given[0].replace('_', '-')}",
            hint="drop it, or train with --backend numpy",
            usage=True,
        )
    return train_dask(
        m, args.data, lr=args.lr, epochs=args.epochs, scheduler=args.scheduler, n_workers=args.workers,
        chunk=args.chunk, seed=args.seed, l2=args.l2, init=args.init, quiet=args.quiet, handle_signals=True,
    )  # fmt: skip


def cmd_train(m: api.Model, args) -> int:
    from ..training import train

    protect = _read(args)
    for flag, given in (("--scheduler", args.scheduler), ("--workers", args.workers), ("--chunk", args.chunk)):
        if given is not None and args.backend != "dask":
            raise GraphcError(f"{flag} is for the Dask cluster", hint="add --backend dask", usage=True)
    keep = {*m.graph.names, args.target}  # the data's other keys may hold anything
    r = (
        _train_dask(m, args)
        if args.backend == "dask"
        else train(
            m,
            data.load_npz(args.data, keep),
            lr=args.lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            schedule=args.schedule,
            tol=args.tol,
            val=data.load_npz(args.val, keep) if args.val else None,
            patience=args.patience,
            l2=args.l2,
            metric=args.metric,
            metric_target=args.target,
            init=args.init,
            quiet=args.quiet,
            plot=args.plot,
            protect=protect,
            optimizer=args.optimizer,
            momentum=args.momentum,
            beta1=args.beta1,
            beta2=args.beta2,
            eps=args.eps,
            weight_decay=args.weight_decay,
            warmup=args.warmup,
            step_size=args.step_size,
            gamma=args.gamma,
            clip_norm=args.clip_norm,
            checkpoint=args.checkpoint,
            resume=args.resume,
            log=args.log,
            handle_signals=True,
            backend=args.backend,
            device=args.device,
        )
    )
    how = r.method + (f", batch {r.batch_size}" if r.method != "gradient descent" else "")
    how += f", {r.optimizer}" if r.optimizer != "sgd" else ""
    lr = f"lr {r.history['lr'][0]:g}" + (f" -> {r.lr:g}" if r.lr != r.history["lr"][0] else "")
    stop = ""
    if r.stopped == "tol":
        stop = f", stopped early: gradient norm {r.grad_norm:.3g} < tol {args.tol:g}"
    elif r.stopped == "patience":
        stop = f", stopped early: no lower val loss for {args.patience} epochs"

    def count(k: int, what: str) -> str:
        return f"{k} {what}" + ("" if k == 1 else "s")

    print(
        f"trained {count(r.epochs, 'epoch')} ({count(r.steps, 'step')}) of {how} on "
        f"{count(r.n_examples, 'example')}, {lr}, {r.engine} gradient step{stop}"
    )
    print(f"{m.loss_name} = {r.loss:.10g}")
    if r.metric is not None:
        print(f"{args.metric} = {r.metric:.6g}")
    if r.val_loss is not None:
        print(f"val {m.loss_name} = {r.val_loss:.10g}")
        if r.val_metric is not None:
            print(f"val {args.metric} = {r.val_metric:.6g}")
        kept = "kept" if args.patience else "final params are from the last epoch"
        print(f"best epoch = {r.best_epoch} (lowest val {m.loss_name}; {kept})")
    for name, v in r.params.items():
        print(f"{name} = {fmt_value(v)}" if v.size <= 10 else f"{name}: shape {list(v.shape)}")
    if args.plot:
        print(f"wrote the loss plot to {args.plot}")
    if args.output:
        data.save_npz(args.output, r.params, protect=protect)
        print(f"wrote {len(r.params)} params to {args.output}")
    if r.checkpoint:
        print(f"wrote the checkpoint of epoch {r.epochs} to {r.checkpoint}")
    if args.log:
        print(f"appended to the log {args.log}")
    if r.stopped == "interrupted":
        print(f"interrupted: stopped after epoch {r.epochs} of {args.epochs}", file=sys.stderr)
        return 130
    return 0


def cmd_plot(_: None, args) -> int:
    from ..training.log import read
    from ..training.plot import check_format, plot_history

    check_format(args.output, "-o")
    history = read(args.metrics)
    plot_history(history, args.output, title=os.path.basename(args.metrics), protect=[args.metrics])
    print(f"wrote the loss plot of {len(history['loss'])} epochs to {args.output}")
    return 0


def cmd_demo(_: None, args) -> int:
    from .demo import run

    run(out=args.out, epochs=args.epochs, seed=args.seed, quiet=args.quiet)
    return 0


def cmd_serve(_: None, args) -> int:
    from .serve import Limits, serve

    if args.port > 65535:
        raise GraphcError(f"--port must be a port number (0 to 65535), got {args.port}", usage=True)
    serve(args.host, args.port, Limits(seconds=args.timeout, workers=args.workers), quiet=args.quiet)
    return 0


def console() -> None:
    """The `graphc` command: main(), then exit at once. A big model is hundreds of thousands of small
    objects, and freeing them one by one at interpreter shutdown costs a quarter of a second."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that left (`graphc ... | head`): nothing more to say
        pass
    os._exit(code)


OUTPUTS = ("output", "plot", "log")  # every option that names a file a command writes (the log: appends)


def _read(args) -> list[str]:
    """The files a command reads: no output may replace one of them."""
    one = [getattr(args, k, None) for k in ("model", "data", "val", "init", "metrics")]
    return [p for p in one + list(getattr(args, "inputs", None) or []) if p]


def _check_outputs(args) -> None:
    """Every output path checked before the work starts (data.check_output), and no two alike: nor one of
    the files a checkpoint folder holds."""
    outputs = {FLAGS.get(k, "-o"): getattr(args, k, None) for k in OUTPUTS}
    folder = getattr(args, "checkpoint", None) or getattr(args, "resume", None)
    held = {}  # (and the files a checkpoint folder holds)
    if folder:
        from ..training import checkpoints

        held = checkpoints.files(folder)
    data.distinct_outputs({**outputs, **held})
    for key in ("output", "plot"):  # (the log, appended to, is checked by train: in a folder it may make)
        if getattr(args, key, None):
            data.check_output(getattr(args, key), _read(args))


# The library's errors name options by their API keywords (data.option); here, by these flags.
FLAGS = {
    "lr": "--lr",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "schedule": "--schedule",
    "tol": "--tol",
    "val": "--val",
    "patience": "--patience",
    "l2": "--l2",
    "metric": "--metric",
    "metric_target": "--target",
    "init": "--init",
    "plot": "--plot",
    "optimizer": "--optimizer",
    "momentum": "--momentum",
    "beta1": "--beta1",
    "beta2": "--beta2",
    "eps": "--eps",
    "weight_decay": "--weight-decay",
    "warmup": "--warmup",
    "step_size": "--step-size",
    "gamma": "--gamma",
    "clip_norm": "--clip-norm",
    "checkpoint": "--checkpoint",
    "resume": "--resume",
    "log": "--log",
    "chunk": "--chunk",
    "n_workers": "--workers",
    "backend": "--backend",
    "device": "--device",
    "wrt": "--wrt",
    "max_checks": "--max-checks",
    "dtype": "--dtype",
    "order": "--order",
    "out": "--out",
    "inputs": "--inputs",
    "sets": "--set",
}


def main(argv=None) -> int:
    """Parse the command line; load the model (for the commands that take one: all but demo) and run."""
    args = build_parser().parse_args(argv)
    model = getattr(args, "model", None)
    path = ("<stdin>" if model == "-" else model) or f"graphc {args.command}"
    source_text = None
    try:
        with data.flag_words(FLAGS):
            m = None
            if model is not None:
                from ..frontend import read_source

                source_text = read_source(model)
                m = api.compile(source_text, path)
            _check_outputs(args)
            return args.run(m, args)
    except GraphcError as e:
        print(e.render(path, source_text), file=sys.stderr)
        return 2 if e.usage else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `graphc ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug in graphc, not in the user's input
        if os.environ.get("GRAPHC_DEBUG"):
            raise
        print(
            f"graphc: internal error: {type(e).__name__}: {e}\n"
            "This is a bug in graphc; rerun with GRAPHC_DEBUG=1 for a traceback and please report it.",
            file=sys.stderr,
        )
        return 3
