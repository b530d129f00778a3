"""Analytic peak TRAINING memory of a candidate, from the plan alone (no model is built).

Like ``space.macs`` counts MACs, this counts bytes, reading the same resolved
:class:`~space.plan.NetworkPlan` as the model builder, so a candidate that cannot train on the
memory it may use is known before anything trains. The estimate is linear in the micro-batch:
``bytes_at(B) = fixed_bytes + B * per_image_bytes``.

What is counted, and why (the usual activation-memory accounting of Chen et al., 2016, "Training
deep nets with sublinear memory cost", section 3, applied to what PyTorch's autograd really saves,
``tools/autograd/derivatives.yaml``; checked tensor by tensor with
``torch.autograd.graph.saved_tensors_hooks`` in the tests):

- fixed: the parameters, their gradients and SGD's momentum buffer (three fp32 copies; the
  trainer's SGD has one state buffer), BatchNorm's running and saved statistics, and the
  optimizer step's temporaries. Under bf16 autocast, add the bf16 copies of the weights
  (autocast caches the cast of every leaf weight for the whole forward and conv/linear backward
  keeps it; CondConv's ``weight.flatten(1)`` is not a leaf, so its cast is made anew each forward
  and saved by the mixing matmul), and the CUDA ``foreach`` SGD step's two parameter-sized
  temporaries (weight decay and Nesterov each make a new list of gradients).
- per image, the tensors autograd keeps for backward: every conv's input, every BatchNorm's input
  (the conv output), every ReLU's output (shared with the next conv, so counted once),
  squeeze-excite's product (the project conv's input), CondConv's mixed per-sample kernels
  (``B x kernel size`` per conv, ``space.blocks.CondConv2d``: the grouped conv saves them as its
  weight), the model input (fp32 as the trainer makes it; plus its bf16 cast under autocast) and
  the small pooled vectors. The residual add and the pooling keep nothing new.
- the transient peak of backward: autograd frees a saved tensor once the last node that saved it
  has run, so when backward reaches layer ``i`` the saved tensors of layers ``<= i`` are still
  alive, plus the gradient arriving at the layer, the gradient it produces, and, inside a block
  with a shortcut, the shortcut's gradient held until the block's input gradient is summed. The
  peak is the largest such sum over the layers (often at the start of backward; for wide early
  layers, part-way through it). Parameter gradients are counted as allocated throughout: they
  are, from the second micro-batch of an accumulated step on (a single-batch step allocates them
  during backward, so there the estimate is high by up to one copy of the parameters).

Precision: ``"fp32"`` is the trainer's CPU path (everything float32). ``"bf16"`` is its CUDA path,
bf16 autocast: convolutions and linear layers run in bf16 and BatchNorm, which is not on autocast's
float32 list (``ATen/autocast_mode.h``), takes the bf16 conv output and returns bf16 with fp32
statistics, so every activation kept is 2 bytes; the loss's log-softmax runs in fp32.

Memory format: the trainer runs channels_last on both devices by default (``trainers.speed``),
which CondConv's batch-into-groups reshape cannot view: the first block's first conv keeps a
contiguous copy of its input (every later tensor of a CondConv network is contiguous).
``channels_last=False`` counts the NCHW path, without that copy.

Not counted: the data set (the trainer subtracts what it occupies), the CUDA context and cuDNN
workspaces, allocator rounding and fragmentation, and the augmentation's intermediates (freed
before the forward and smaller than one step's activations); callers keep a margin for these
(``trainers.device.available_memory_bytes``). Evaluation runs without autograd, so it needs only
the largest set of tensors alive at once in one layer (``eval_per_image_bytes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from space.macs import conv_weights, count
from space.plan import BlockPlan, ConvPlan, NetworkPlan, resolve
from space.spec import ArchSpec

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
_ACTIVATION_BYTES = {"fp32": 4, "bf16": 2}
FP32 = 4
LABEL_BYTES = 8  # int64 class index, kept by the loss


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one training step, ``fixed_bytes + micro_batch * per_image_bytes``.

    ``saved_per_image_bytes`` is the part of ``per_image_bytes`` that autograd keeps for backward
    (the rest is the transient peak of backward); ``eval_per_image_bytes`` is the inference peak
    per image of the evaluation pass, which runs after training with the same ``fixed_bytes``.
    """

    precision: str
    fixed_bytes: int
    per_image_bytes: int
    saved_per_image_bytes: int
    eval_per_image_bytes: int

    def bytes_at(self, micro_batch: int) -> int:
        """Peak bytes of one forward + backward + optimizer step at this micro-batch."""
        return self.fixed_bytes + micro_batch * self.per_image_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "precision": self.precision,
            "fixed_bytes": self.fixed_bytes,
            "per_image_bytes": self.per_image_bytes,
            "saved_per_image_bytes": self.saved_per_image_bytes,
            "eval_per_image_bytes": self.eval_per_image_bytes,
        }


def choose_micro_batch(estimate: MemoryEstimate, batch_size: int, available: int) -> int | None:
    """The largest micro-batch ``<= batch_size`` whose peak fits ``available`` bytes, or None
    when not even micro-batch 1 fits."""
    if estimate.per_image_bytes <= 0:
        return batch_size if estimate.fixed_bytes <= available else None
    fits = (available - estimate.fixed_bytes) // estimate.per_image_bytes
    return min(batch_size, int(fits)) if fits >= 1 else None


def largest_batch(per_image: int, fixed: int, batch_size: int, available: int) -> int:
    """Like :func:`choose_micro_batch` but never below 1 (for evaluation batches)."""
    if per_image <= 0:
        return batch_size
    return max(1, min(batch_size, (available - fixed) // per_image))


@dataclass
class _Tape:
    """The forward pass as a list of layers, per image: bytes each layer makes autograd keep,
    bytes of gradients alive while its backward runs, and live bytes when run without autograd."""

    act: int  # bytes per activation element
    saved: list[int] = field(default_factory=list)
    backward: list[int] = field(default_factory=list)
    inference: list[int] = field(default_factory=list)

    def layer(self, saved: int, backward: int, inference: int) -> None:
        self.saved.append(saved)
        self.backward.append(backward)
        self.inference.append(inference)

    def peaks(self, always_alive: int) -> tuple[int, int, int]:
        """(training peak, saved total, inference peak) per image."""
        prefix, train_peak = always_alive, always_alive
        for saved, grads in zip(self.saved, self.backward, strict=True):
            prefix += saved
            train_peak = max(train_peak, prefix + grads)
        saved_total = prefix
        return train_peak, saved_total, always_alive + max(self.inference, default=0)


def _stem(tape: _Tape, conv: ConvPlan, input_saved: int) -> None:
    """conv (saves the input: counted by the caller) -> BN (saves the conv output) -> ReLU in place
    (saves its output). The input needs no gradient."""
    out = conv.out_ch * conv.out_hw**2 * tape.act
    tape.layer(input_saved, out, out)
    tape.layer(out, 2 * out, 2 * out)
    tape.layer(out, 2 * out, 2 * out)


def _block(tape: _Tape, b: BlockPlan, input_saved: bool, channels_last: bool = False) -> None:
    """One MBConv / CondConv block, layer by layer (see ``space.blocks``). ``channels_last``: the
    block input is channels_last (the stem's output in the trainer's default format), which
    CondConv's batch-into-groups reshape cannot view, so its first conv keeps a contiguous copy
    (its outputs are contiguous)."""
    a = tape.act
    x = b.in_ch * b.in_hw**2 * a  # block input
    e1 = b.expanded * b.in_hw**2 * a  # expand output
    e2 = b.expanded * b.out_hw**2 * a  # middle output
    p = b.out_ch * b.out_hw**2 * a  # project output
    skip = x if b.shortcut else 0  # shortcut gradient held during the block's backward
    kernels = [0, 0, 0]
    if b.experts:
        kernels = [
            conv_weights(b.in_ch, b.expanded, 1, 1) * a,
            conv_weights(b.expanded, b.expanded, b.kernel, b.mid_groups) * a,
            conv_weights(b.expanded, b.out_ch, 1, 1) * a,
        ]
        # routing: the linear keeps the pooled input, the sigmoid its output
        tape.layer((b.in_ch + b.experts) * a, skip, x)
    # expand conv keeps its input (unless already kept) and, for CondConv, the mixed kernels
    input_bytes = (0 if input_saved else x) + (x if channels_last and b.experts else 0)
    tape.layer(input_bytes + kernels[0], e1 + x + skip + kernels[0], x + e1 + 2 * kernels[0])
    tape.layer(e1, 2 * e1 + skip, x + 2 * e1)  # BN keeps its input
    tape.layer(e1, 2 * e1 + skip, x + 2 * e1)  # ReLU keeps its output
    # without autograd the middle conv's peak shows a third copy (oneDNN reorders NCHW to its
    # blocked layout, measured) and a CondConv conv the kernels' reorder
    tape.layer(kernels[1], e2 + e1 + skip + kernels[1], x + e1 + e2 + max(e1, e2) + 2 * kernels[1])
    tape.layer(e2, 2 * e2 + skip, x + 2 * e2)
    tape.layer(e2, 2 * e2 + skip, x + 2 * e2)
    if b.se_hidden:
        # pooled input and gate (Ne each) and hidden (ReLU output) are kept; the product is kept
        # by the project conv; backward holds the product's gradient and the pooling's
        pooled = (2 * b.expanded + b.se_hidden) * a
        tape.layer(pooled + e2, 2 * e2 + skip, x + 2 * e2)
    tape.layer(kernels[2], p + e2 + skip + kernels[2], x + e2 + p + 2 * kernels[2])
    tape.layer(p, 2 * p + skip, x + 2 * p)  # BN keeps the project output
    if b.shortcut:
        tape.layer(0, skip, x + 2 * p)  # residual add keeps nothing


def _head(tape: _Tape, plan: NetworkPlan) -> None:
    """head conv keeps the last block's output; BN, ReLU in place; pool + linear keep the pooled
    vector; the loss keeps fp32 log-probabilities and the int64 labels."""
    a = tape.act
    head = plan.head
    x = head.in_ch * head.in_hw**2 * a
    out = head.out_ch * head.out_hw**2 * a
    tape.layer(x, out + x, x + out)
    tape.layer(out, 2 * out, 2 * out)
    tape.layer(out, 2 * out, 2 * out)
    tape.layer(head.out_ch * a + plan.classes * FP32 + LABEL_BYTES, out, out)


def _tape(plan: NetworkPlan, precision: str, channels_last: bool) -> tuple[_Tape, int]:
    """The tape and the bytes per image alive all step long (the fp32 model input)."""
    tape = _Tape(_ACTIVATION_BYTES[precision])
    image = plan.stem.in_ch * plan.resolution**2
    input_fp32 = image * FP32  # the trainer's augmented batch, alive through the step
    bf16 = precision == "bf16"  # the CUDA path: autocast
    cast = image * tape.act if bf16 else 0  # autocast's copy of the input, kept by the conv
    _stem(tape, plan.stem, cast)
    first = True
    for stage in plan.stages:
        for _ in range(stage.repeats):
            _block(tape, stage.block, input_saved=first, channels_last=first and channels_last)
            first = False
    _head(tape, plan)
    return tape, input_fp32


def _fixed_bytes(plan: NetworkPlan, params: int, precision: str) -> int:
    """Parameters, gradients, momentum, BN statistics, autocast weight copies, optimizer step."""
    bn_channels = plan.stem.out_ch + plan.head.out_ch
    largest = max(plan.head.in_ch * plan.head.out_ch, plan.head.out_ch * plan.classes)
    for stage in plan.stages:
        b = stage.block
        bn_channels += stage.repeats * (2 * b.expanded + b.out_ch)
        for weights in (
            conv_weights(b.in_ch, b.expanded, 1, 1),
            conv_weights(b.expanded, b.expanded, b.kernel, b.mid_groups),
            conv_weights(b.expanded, b.out_ch, 1, 1),
        ):
            largest = max(largest, max(1, b.experts) * weights)  # CondConv: one (M, ...) tensor
    state = 3 * params * FP32  # weights, gradients, momentum buffer
    statistics = 4 * bn_channels * FP32  # running mean/var, saved mean/invstd
    if precision == "bf16":
        # bf16 weight copies; CUDA foreach SGD: two gradient-sized temporaries at the step
        return state + statistics + params * 2 + 2 * params * FP32
    # CPU single-tensor SGD: two temporaries of one parameter tensor at a time
    return state + statistics + 2 * largest * FP32


def estimate_memory(
    spec: ArchSpec | NetworkPlan, precision: str = "fp32", channels_last: bool = True
) -> MemoryEstimate:
    """The peak training memory of ``spec`` at ``precision`` ("fp32": the CPU trainer, "bf16":
    the CUDA trainer's autocast) in the given memory format (the trainer's default: channels_last
    on both devices); see the module docstring for what is counted."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    plan = spec if isinstance(spec, NetworkPlan) else resolve(spec)
    tape, always_alive = _tape(plan, precision, channels_last)
    train_peak, saved, inference_peak = tape.peaks(always_alive)
    return MemoryEstimate(
        precision=precision,
        fixed_bytes=_fixed_bytes(plan, count(plan).params, precision),
        per_image_bytes=train_peak,
        saved_per_image_bytes=saved,
        eval_per_image_bytes=inference_peak,
    )
