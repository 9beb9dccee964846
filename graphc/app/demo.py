"""The demo (`graphc demo`, `make demo`): train the lecture's two-layer network on the shipped 8x8
digits, report held-out accuracy, and write everything graphc makes of it into one folder.

    graphc.app.demo.run(out="out")      # what `graphc demo --out out` does; returns {path: what it is}
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import api, data
from ..errors import GraphcError
from ..training import train
from ..training.plot import require_matplotlib

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = EXAMPLES / "digits_mlp.gc"
LR, BATCH, EPOCHS = 0.5, 32, 30  # as in examples/README.md


def _rel(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run(
    out: str | Path = "out",
    epochs: int = EPOCHS,
    seed: int = 0,
    model=None,
    quiet: bool = False,
    progress: bool | None = None,
    file=None,
) -> dict[str, str]:
    """Train the digits network and write its params, loss plot, pictures and gradient code to `out`.

    Returns {path written: what it holds}. Parts whose tools are missing (matplotlib, Graphviz's
    `dot`, `graphc render`) are skipped with a message saying so and how to get them.
    """
    file = file if file is not None else sys.stdout

    def say(text: str = "") -> None:
        print(text, file=file, flush=True)

    if not (EXAMPLES / "digits_train.npz").exists():
        raise GraphcError(
            f"the demo needs the shipped examples, and there are none in {EXAMPLES}",
            hint="run it from a graphc checkout (git clone ...; make demo)",
        )
    m = model if model is not None else api.load(MODEL)
    train_data = data.load_npz(str(EXAMPLES / "digits_train.npz"))
    test_data = data.load_npz(str(EXAMPLES / "digits_test.npz"))
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise GraphcError(
            f"cannot write into {folder}: it is a file",
            hint=f"choose a folder: {data.option('out', 'DIR')}",
            usage=True,
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GraphcError(
            f"cannot write into {folder}: {e.strerror}", hint=f"choose another folder: {data.option('out', 'DIR')}"
        ) from None
    data.check_output(str(folder / "digits_params.npz"), [str(MODEL)])  # before training, not after
    written: dict[str, str] = {}
    skipped: list[str] = []

    n_params = sum(
        int(v.size)
        for k, v in m.evaluate({k: v[:1] for k, v in train_data.items() if k in m.inputs}, seed=seed).items()
        if k in m.params
    )
    say("graphc demo: the lecture's two-layer network learns to read 8x8 handwritten digits")
    say(f"  model   {_rel(MODEL)}: X @ W1 + b1 -> sigmoid -> @ W2 + b2 -> softmax ({n_params} params)")
    say(
        f"  data    {_rel(EXAMPLES / 'digits_train.npz')}: {len(train_data['X'])} images to learn from; "
        f"{_rel(EXAMPLES / 'digits_test.npz')}: {len(test_data['X'])} held out"
    )
    say(f"  method  mini-batch SGD, lr {LR}, batch {BATCH}, {epochs} epochs, seed {seed}")
    say()

    plot = folder / "loss.png"
    try:
        require_matplotlib()
    except GraphcError:
        plot = None
        skipped.append("loss.png: matplotlib is not installed (pip install 'graphc[plot]' to get the loss plot)")
    r = train(
        m,
        train_data,
        lr=LR,
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        val=test_data,
        metric="accuracy",
        quiet=quiet,
        progress=progress,
        file=file,
        plot=str(plot) if plot else None,
    )
    n_test = len(test_data["X"])
    say()
    say(
        f"held-out accuracy: {100 * r.val_metric:.1f}% ({round(r.val_metric * n_test)} of {n_test} test images "
        f"right; training accuracy {100 * r.metric:.1f}%, {r.engine} gradient step)"
    )
    say()

    params = folder / "digits_params.npz"
    data.save_npz(str(params), r.params, protect=[str(MODEL)])
    written[str(params)] = f"the trained params ({', '.join(r.params)})"
    if plot:
        written[str(plot)] = "training and held-out loss per epoch"

    protect = [str(MODEL)]
    for name, backward, what in (
        ("forward.svg", False, "the forward computation graph"),
        ("backward.svg", True, "the backward graph, with error signals ȳ"),
    ):
        try:
            m.render(folder / name, backward=backward, protect=protect)
            written[str(folder / name)] = what
        except GraphcError as e:  # e.g. Graphviz's `dot` is missing: the rest of the demo still runs
            skipped.append(f"{name}: {e.message}" + (f" ({e.hint})" if e.hint else ""))
    code_path = folder / "digits_backprop.py"
    source = m.emit(module_name=code_path.stem)
    data.write_text(str(code_path), source, protect)
    written[str(code_path)] = "the emitted NumPy module: forward() and loss_and_grad(), backprop line by line"

    say(f"wrote into {_rel(folder)}/:")
    width = max(len(Path(p).name) for p in written)
    for p, what in written.items():
        say(f"  {Path(p).name:<{width}}  {what}")
    if skipped:
        say("skipped:")
        for s in skipped:
            say(f"  {s}")
    say()
    mdl, tst, prm = _rel(MODEL), _rel(EXAMPLES / "digits_test.npz"), _rel(params)
    two = _rel(EXAMPLES / "two_layer.gc")
    say("next, try:")
    say(f"  graphc eval {mdl} --inputs {tst} --inputs {prm}")
    say("      the trained network on the test images: the loss and the class probabilities Y")
    say(
        f"  graphc train {mdl} --data {_rel(EXAMPLES / 'digits_train.npz')} --val {tst} "
        f"--lr {LR} --batch-size {BATCH} --epochs 100 --patience 5 --metric accuracy"
    )
    say("      longer, stopping when the held-out loss stops improving (--plot loss.png, -o params.npz)")
    say(f"  graphc equations {two}")
    say("      backprop for the lecture's two-layer network, in its ȳ notation")
    say(f"  graphc render {two} --inputs {_rel(EXAMPLES / 'two_layer.npz')} --backward -o two_layer.svg")
    say("      its forward and backward graphs, every value and error signal written on them")
    say(f"  every lecture model, with its command and result: {_rel(EXAMPLES / 'README.md')}")
    return written
