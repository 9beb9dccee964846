"""Training metrics: accuracy, with the label conventions it accepts, and the target it is measured on."""

from __future__ import annotations

import numpy as np

from ..data import option
from ..errors import GraphcError

METRICS = ("accuracy",)


def accuracy(y, t, name: str = "the targets") -> float:
    """The fraction of examples classified right; `t` must hold labels (`name` is for the error).

    Several outputs per example (y [..., K], K > 1): argmax over the last axis, against integer
    labels 0..K-1 of shape y.shape[:-1], or against the argmax of rows of y's shape that are class
    probabilities (one-hot, or soft: entries in [0, 1] summing to 1).
    One output per example (y [N], [N, 1] or a scalar): a probability, y > 0.5, against 0/1 targets, or
    a score, y > 0, against ±1 targets.
    Anything else (a regression's real-valued targets, say) is refused: its accuracy means nothing.
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    k = y.shape[-1] if y.ndim else 1

    def refuse(what):
        raise GraphcError(
            f"accuracy needs class labels, but {name} {what}",
            hint="targets are integer labels 0..K-1 or one-hot rows for K class scores, 0/1 for one "
            f"probability, or ±1 for one score; for a regression, leave out {option('metric')}",
        )

    if k > 1 and t.shape == y.shape[:-1]:
        if not np.all((t == np.round(t)) & (t >= 0) & (t < k)):
            refuse(f"are not integer labels 0..{k - 1} (one per row of the {k} class scores)")
        right = np.argmax(y, axis=-1) == t
    elif k > 1 and y.ndim >= 2 and t.shape == y.shape:
        if not (np.all((t >= 0) & (t <= 1)) and np.allclose(t.sum(axis=-1), 1)):
            refuse(f"are not one-hot rows (class probabilities summing to 1) for the {k} class scores")
        right = np.argmax(y, axis=-1) == np.argmax(t, axis=-1)
    elif y.size == t.size and (y.ndim < 2 or k == 1):
        if np.all((t == -1) | (t == 1)) and np.any(t == -1):  # ±1 labels: the output is a score, its sign the class
            right = (y.reshape(-1) > 0) == (t.reshape(-1) > 0)
        elif np.all((t == 0) | (t == 1)):  # 0/1 labels: the output is a probability
            right = (y.reshape(-1) > 0.5) == (t.reshape(-1) > 0.5)
        else:
            refuse("are not 0/1 labels (for a probability) or ±1 labels (for a score) for the single output")
    else:
        raise GraphcError(
            f"accuracy: cannot compare predictions of shape {list(y.shape)} with {name} of shape {list(t.shape)}",
            hint="targets are one-hot rows like the predictions, integer labels, or 0/1 for a single output",
        )
    return float(np.mean(right)) if right.size else float("nan")


def target_name(model, metric_target: str | None, data: dict) -> str:
    """The target the metric compares the first output with: given, or the one input that the
    loss uses and the output does not."""
    if metric_target is not None:
        if metric_target not in data:
            raise GraphcError(
                f"no `{metric_target}` in the data for the metric's target",
                hint=f"the data holds: {', '.join(sorted(data)) or 'nothing'}",
                usage=True,
            )
        return metric_target
    g = model.graph
    out = g.names[model.output_names[0]]
    before_loss = g.upstream([g.loss])
    before_out = g.upstream([out])
    cands = [n for n in model.inputs if g.names[n] in before_loss and g.names[n] not in before_out]
    if len(cands) != 1:
        which = f"several ({', '.join(cands)})" if cands else "none"
        raise GraphcError(
            f"cannot tell which input holds the targets for the metric: {which} of the inputs feed the loss "
            f"but not the output `{model.output_names[0]}`",
            hint=f"name it with {option('metric_target', 'NAME')}",
            usage=True,
        )
    return cands[0]
