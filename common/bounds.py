"""The sane maxima of every numeric `search` option, with the reason for each, in one place.

A value above its maximum is one ``UserError`` line naming the maximum, raised where the value
enters (a command's flags, ``SearchConfig`` for `search run`, ``ArchSpec`` for spec fields) and
before any file, database or Ray runtime is touched. The README's "Limits" table repeats these
numbers.

- ``MAX_BUDGET_MACS`` = 1e14: the largest network the default search space builds at
  phi = ``MAX_PHI`` (condconv, e=6, m=8, r=2, dense 5x5 middle conv, coefficients on the compound
  constraint within its 10 % tolerance: alpha=1.01, beta=1.02, gamma=1.447, 100 classes) counts
  1.21e13 MACs; above it every candidate scales to ``MAX_PHI`` and the budget binds nothing.
  1e14 leaves room for wider tolerances and pinned resolutions, and is ~2,700x EfficientNet-B7.
- ``MAX_BUDGET_PARAMS`` = 1e10: the same largest network has 1.93e9 parameters; above 1e10 the
  parameter budget binds nothing (EfficientNet-B7 has 6.6e7).
- ``MAX_LATENCY_BATCH`` = 4096 images per timed batch: a serving batch, not a training one;
  larger batches time the memory system, not the network.
- ``MAX_LATENCY_REPEATS`` = 10,000 timed (or warm-up) passes per network: the median of a few
  dozen is already stable, and the search times every candidate.
- ``MAX_LATENCY_MS`` = one hour per batch for ``--latency-budget-ms``: a network slower than
  that is no deployment target, and a cap above it binds nothing.
- ``MAX_PHI`` = 8: 2**8 = 256x the baseline's MACs; larger networks come from a larger budget,
  not a larger phi.
- ``MAX_RESOLUTION`` = 1024 px: 18x the 56 px baseline resolution.
- ``MAX_EPOCHS`` = 1000: EfficientNet's ImageNet recipe trains 350 epochs (Tan & Le 2019, sec. 5.2)
  and a search trial is a short proxy run; more than 1000 is a typo, not a search.
- ``MAX_TRIALS`` = 10,000: Optuna's TPE refits its Parzen estimators on every finished trial for
  each suggestion, so past ~10^4 trials a suggestion takes seconds; the search also allows up to
  20 infeasible candidates per requested trial (``MAX_ATTEMPTS_PER_TRIAL``).
- ``MAX_SUBSET`` = 10,000,000 images: a trial holds its whole data set on the device as uint8
  (10^7 CIFAR-sized images are 30 GB); ImageNet-1k has 1.28 M training images.
- ``MAX_BATCH_SIZE`` = 65,536: the largest batches in the large-batch literature (LARS / LAMB
  trained ImageNet and BERT at 32k-64k, You et al. 2017, 2020).
- ``MAX_CONCURRENCY`` = 1024: one Ray worker process per running trial, each ~0.5 GB before it
  trains; 1024 exceeds any cluster this tool targets.
- ``MAX_GPUS_PER_TRIAL`` = 8: a trial runs in one process on one node, and nodes have <= 8 GPUs.
- ``MAX_VAL_FRACTION`` = 0.5: the held-out split is a sample for ranking candidates; past half
  of the images it starves the training split it is meant to judge.
- ``MAX_SEED`` = 2**31 - 1: Optuna's samplers seed NumPy, which takes seeds below 2**32; the
  search derives seeds by adding trial counts, so the user's seed keeps 2**31 of headroom.
- ``MAX_THREADS`` = 1024 CPU threads per `search train` (no machine this tool targets has more).
- ``MAX_STUDY_NAME`` = 512 characters: Optuna's ``studies.study_name`` column length.
- ``MAX_TRIAL_TIMEOUT_S`` = one week: ``--trial-timeout`` guards against hung trials; a search
  trial is a short proxy run, so a longer limit is no limit.
- ``MAX_TEXT_BYTES`` = 1 MiB per spec, space or preset file: they are a few hundred bytes, so the
  cap refuses a weights file or a data set passed by mistake before reading it.
- ``MAX_NESTING`` = 16 levels of ``[`` / ``{`` in a spec, space or preset file: they are flat
  tables of values and short lists (two levels), while Python's JSON and TOML parsers recurse
  once per level and die with a ``RecursionError`` near 1000; the depth is counted on the text,
  before any parser runs.
- ``MAX_SE_RATIO`` = 64: squeeze-excite squeezes a block's channels by R; past 64 the squeeze
  is one or two channels (the EfficientNet and CondConv papers use R = 4 and 16).
- ``MAX_EXPERTS`` = 32 CondConv experts: every expert is one more copy of each block's kernels
  (the CondConv paper goes up to 32).
- ``MAX_REPEATS`` = 100 seeds per network in `search final`: the spread of a mean over n seeds
  shrinks as 1/sqrt(n), so past 100 another seed changes the mean by less than its noise.

Every float must be finite: NaN and infinity are refused by name.
"""

from __future__ import annotations

import math
from typing import Any

from common.errors import UserError

MAX_BUDGET_MACS = 10**14
MAX_BUDGET_PARAMS = 10**10
MAX_PHI = 8.0
MAX_LATENCY_BATCH = 4096
MAX_LATENCY_REPEATS = 10_000
MAX_LATENCY_MS = 3_600_000.0
MAX_RESOLUTION = 1024
MAX_EPOCHS = 1000
MAX_TRIALS = 10_000
MAX_SUBSET = 10_000_000
MAX_BATCH_SIZE = 65_536
MAX_CONCURRENCY = 1024
MAX_GPUS_PER_TRIAL = 8.0
MAX_VAL_FRACTION = 0.5
MAX_SEED = 2**31 - 1
MAX_THREADS = 1024
MAX_STUDY_NAME = 512
MAX_TRIAL_TIMEOUT_S = 7 * 24 * 3600.0
MAX_TEXT_BYTES = 2**20
MAX_REPEATS = 100
MAX_NESTING = 16
MAX_SE_RATIO = 64
MAX_EXPERTS = 32


def check_int(name: str, value: Any, low: int, high: int, flag: str) -> int:
    """``value`` as an int in [low, high], or a UserError naming the range (and so the maximum)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise UserError(
            f"{name}={value!r} is out of range; pass {flag} as an integer in [{low}, {high}]"
        )
    return value


def check_float(
    name: str,
    value: Any,
    low: float,
    high: float,
    flag: str,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value`` as a finite float in [low, high]; ``open_low`` / ``open_high`` exclude an end.

    ``high = math.inf`` is a lower bound only (a value with no maximum of its own, such as a
    learning rate); the message then says "a number > low" (or ">=").
    """
    number = _finite_number(name, value, flag)
    above_low = number > low if open_low else number >= low
    below_high = number < high if open_high else number <= high
    if not (above_low and below_high):
        if math.isinf(high):
            wanted = f"{'>' if open_low else '>='} {low:g}"
        else:
            wanted = f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise UserError(f"{name}={value!r} is out of range; pass {flag} as a number {wanted}")
    return number


def check_finite(name: str, value: Any, flag: str) -> float:
    """A finite number (no range): NaN, infinity and non-numbers are refused."""
    return _finite_number(name, value, flag)


def check_budget(budget_macs: float) -> int:
    """The budget as an int; UserError for non-numbers, NaN, <= 0 and above MAX_BUDGET_MACS."""
    number = math.nan
    if isinstance(budget_macs, int | float) and not isinstance(budget_macs, bool):
        try:
            number = float(budget_macs)
        except OverflowError:  # an int beyond float range: certainly above the maximum
            number = 10.0 * MAX_BUDGET_MACS
    if not math.isfinite(number) or number <= 0:
        raise UserError(
            f"budget {budget_macs!r} is not a positive number of MACs; "
            f"pass e.g. --budget-flops 2.6e9 (at most {MAX_BUDGET_MACS:.0e})"
        )
    if number > MAX_BUDGET_MACS:
        raise UserError(
            f"budget {number:.4g} MACs is above the maximum {MAX_BUDGET_MACS:.0e} (the "
            f"largest network of the search space at phi={MAX_PHI:g} has 1.2e13 MACs); pass a "
            "smaller --budget-flops"
        )
    return int(number)


def check_budget_params(budget_params: Any) -> int:
    """The parameter budget as an int; UserError for non-numbers, NaN, < 1 and above
    MAX_BUDGET_PARAMS (given as a float, e.g. 5e6, it is rounded down to whole parameters)."""
    number = check_float(
        "budget_params", budget_params, 1.0, float(MAX_BUDGET_PARAMS), "--budget-params"
    )
    return int(number)


def check_training(
    *, epochs: Any, batch_size: Any, seed: Any, subset: Any, val_fraction: Any
) -> None:
    """The training numbers that both `search run` (``SearchConfig``) and `search train` take
    from the user, checked by one rule: same ranges, same messages, same flags named.

    The trainer checks only what these cannot know: ``subset`` against the data set's size
    and a spec's classes against the data set's (``trainers.data``).
    """
    check_int("epochs", epochs, 1, MAX_EPOCHS, "--epochs")
    check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE, "--batch-size")
    check_int("seed", seed, 0, MAX_SEED, "--seed")
    if subset is not None:
        check_int("subset", subset, 2, MAX_SUBSET, "--subset")
    check_float(
        "val_fraction", val_fraction, 0.0, MAX_VAL_FRACTION, "--val-fraction", open_low=True
    )


def check_nesting(text: str, shown: str) -> None:
    """Refuse a JSON or TOML ``text`` nested deeper than ``MAX_NESTING`` before it is parsed;
    ``shown`` names the file in the message (e.g. "--space file 'deep.json'")."""
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise UserError(
            f"{shown} is nested too deeply ({depth:,} levels of brackets, at most {MAX_NESTING}); "
            "pass a flat table of values and lists"
        )


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON or TOML text, brackets inside strings and
    comments not counted; a loop over the characters, so any depth is counted without recursion."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            i = _string_end(text, i)
            continue
        if char == "#":  # a TOML comment (JSON has none: its parser refuses the '#' anyway)
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def _string_end(text: str, start: int) -> int:
    """The index just past the string that opens at ``start``: '...' or "..." (a backslash
    escapes the next character in "..."), and TOML's multi-line strings in three quotes."""
    quote = text[start]
    delimiter = quote * 3 if text.startswith(quote * 3, start) else quote
    i = start + len(delimiter)
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text.startswith(delimiter, i):
            return i + len(delimiter)
        if len(delimiter) == 1 and text[i] == "\n":  # an unclosed one-line string ends here
            return i
        i += 1
    return len(text)


def _finite_number(name: str, value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name}={value!r} is not a number; pass {flag} as a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float (TOML and JSON allow them)
        finite = False
    if not finite:
        raise UserError(f"{name}={value!r} is not a finite number; pass {flag} as a finite number")
    return float(value)
