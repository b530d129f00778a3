"""Measure the peak resident-set growth of two real training steps, one case after another.

Run as ``python -m tests.space.rss_probe '[{"spec": "...", "batch": 64}, ...]'`` in a FRESH
process (``tests/space/test_memory.py`` does); prints one JSON line per case with the measured
bytes and ``space.memory``'s estimate.

Per case: a warm-up step of the same block type at 16 px loads the code paths (library pages and
oneDNN kernels count as resident memory too, and are no part of a training step's memory); then
freed heap memory is returned (``malloc_trim``), the kernel's high-water mark is reset
(``echo 5 > /proc/self/clear_refs``) and ``VmRSS`` is the baseline; the model, the optimizer and
two steps of ``trainers.steps.train_epoch`` on uint8 images (augmentation included) run; the
measured peak is ``VmHWM - baseline``.

Run it with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc otherwise serves allocations below its
dynamic mmap threshold (which grows up to 32 MiB) from heaps that keep freed memory mapped, so the
high-water mark depends on the order of allocations rather than on the bytes alive at once.
Pinning the threshold makes every tensor its own mapping, unmapped when freed, so the high-water
mark is the live bytes that the estimate counts. (The trainer itself runs with glibc's defaults;
its RSS was measured up to 1.3x the estimate at the batches where planning binds, which is why
``trainers.device.available_memory_bytes`` plans for half the available memory on the CPU.)
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys

import torch
from torch import nn

from space import ArchSpec, build_model, resolve
from space.memory import estimate_memory
from trainers.augment import BatchTransform, channel_stats
from trainers.speed import to_channels_last
from trainers.steps import train_epoch

STEPS = 2


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_of_steps(spec: ArchSpec, batch: int, steps: int = STEPS) -> int:
    """Bytes the process's resident set grew by, at its peak, over ``steps`` training steps."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch * steps, 1, 28, 28), generator=generator).byte()
    labels = torch.randint(0, spec.classes, (batch * steps,), generator=generator)
    transform = BatchTransform(
        resolve(spec).resolution, channel_stats(images), images.device, channels_last=True
    )
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    model = to_channels_last(build_model(spec))  # as the trainer runs (trainers.speed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-5
    )
    loss_fn = nn.CrossEntropyLoss()
    train_epoch(
        model, optimizer, loss_fn, images, labels, transform, generator, batch,
        lambda step: 0.01, 0, False,
    )  # fmt: skip
    return _status("VmHWM") - baseline


def main(cases: list[dict[str, object]]) -> None:
    torch.set_num_threads(1)  # measured: the peak is the same with 2 threads
    for case in cases:
        spec = ArchSpec.parse(str(case["spec"]))
        batch = int(str(case["batch"]))
        peak_of_steps(spec.replace(resolution=16), 2, steps=1)
        measured = peak_of_steps(spec, batch)
        estimate = estimate_memory(spec).bytes_at(batch)
        print(json.dumps({**case, "measured": measured, "estimate": estimate}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
