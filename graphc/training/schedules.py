"""Learning-rate schedules: the multiple of the base rate each epoch runs at.

- constant: 1; halve: 1 (the loop halves the base rate itself when the epoch loss goes up);
- step: gamma^⌊t / step_size⌋ (torch.optim.lr_scheduler.StepLR);
- cosine: (1 + cos(π t / T)) / 2 over the T epochs after the warmup, reaching 0 after the last
  (torch.optim.lr_scheduler.CosineAnnealingLR with T_max = T, eta_min = 0);
- warmup W: epochs 1..W run at k/W of the rate (torch's LinearLR(start_factor=1/W, total_iters=W-1)),
  then the schedule starts, t counting from 0.

The schedule is a pure function of the epoch, so a resumed run needs only the epoch counter (and,
for halve, the base rate reached, which the loop saves).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "halve", "step", "cosine")


def factor(schedule: str, epoch: int, epochs: int, warmup: int = 0, step_size: int = 1, gamma: float = 0.1) -> float:
    """The rate's multiple in epoch `epoch` (0-based) of a run of `epochs`."""
    if epoch < warmup:
        return (epoch + 1) / warmup
    t = epoch - warmup
    if schedule == "step":
        return gamma ** (t // step_size)
    if schedule == "cosine":
        return (1 + math.cos(math.pi * t / (epochs - warmup))) / 2
    return 1.0
