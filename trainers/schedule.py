"""The learning-rate schedule of the reference recipe: linear warm-up, then cosine decay.

docs/design.md sec. 6 (from the seeds' Table 2) fixes 5 warm-up epochs out of 55 and a learning rate
"0.01 falling to 0.001" without naming the curve; we use the cosine curve of SGDR (Loshchilov &
Hutter, 2017) as timm's ``CosineLRScheduler`` does, with ``lr_min = final_lr``, because it keeps
the rate high for longer than a linear fall, which matters for short search trials. The rate is
set per optimizer step, so warm-up is smooth even when an epoch is a few steps.
"""

from __future__ import annotations

import math


def learning_rate(
    step: int, total_steps: int, warmup_steps: int, lr: float, final_lr: float
) -> float:
    """The rate for 0-based ``step``: ``lr * (step+1)/warmup`` during warm-up, then cosine to
    ``final_lr``, which the last step reaches exactly."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps - 1
    progress = min(1.0, (step - warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
    return final_lr + (lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_epochs_used(warmup_epochs: int, epochs: int) -> int:
    """Warm-up clipped to leave at least one decay epoch (a 1-epoch trial does not only warm up)."""
    return max(0, min(warmup_epochs, epochs - 1))
