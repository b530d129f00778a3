"""The search space of docs/design.md sec. 5, with pins and narrowed ranges, sampled through Optuna.

Dimensions: block {standard, se, condconv}, expansion {1, 2, 3, 4, 6}, SE ratio {2, 4, 8, 16},
experts {2, 4, 8}, middle conv {depthwise, dense}, kernel {3, 5}, and the compound-scaling
coefficients alpha, beta, gamma in [1, 2] with ``alpha * beta**2 * gamma**2 = 2`` (EfficientNet,
Tan & Le 2019, eq. 3). Any dimension can be pinned (one value) or narrowed (a subset for the
categorical ones, a ``[low, high]`` range for the coefficients); ``phi``, ``resolution``,
``base_resolution`` and ``classes`` can be pinned too.

Coefficients are feasible by construction (``space.shares``): alpha = 2**a, beta = 2**(b/2),
gamma = 2**(c/2) with shares a + b + c = 1 inside the box the ranges give; Optuna samples one unit
variable per remaining degree of freedom (``alpha_q``, then ``beta_q``; named after the first two
free coefficients), fixed ``[0, 1]`` distributions that TPE can learn, mapped onto the feasible
polygon. So every sample meets the constraint (to the 6 decimals the coefficients are stored
with, see ``PRODUCT_SLACK``) whatever the tolerance; narrowed ranges that admit no triple at all
are one UserError up front. The tolerance applies where a triple is given rather than sampled:
all three coefficients pinned, or EfficientNet-B0's start point (1.2 * 1.1**2 * 1.15**2 = 1.92).

Conditional parameters (Optuna define-by-run): ``se_ratio`` is suggested only for the se and
condconv blocks and ``experts`` only for condconv, so the sampler never learns from a value that
had no effect.
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common.errors import UserError
from space.scaling import BASE_RESOLUTION
from space.shares import NAMES, SharePolygon, coefficient_of, share_of
from space.spec import BLOCK_TYPES, KERNELS, MID_CONVS, ArchSpec

EXPANSIONS: tuple[int, ...] = (1, 2, 3, 4, 6)
SE_RATIOS: tuple[int, ...] = (2, 4, 8, 16)
EXPERTS: tuple[int, ...] = (2, 4, 8)
COEFFICIENT_RANGE: tuple[float, float] = (1.0, 2.0)
DEFAULT_TOLERANCE = 0.1
TARGET_PRODUCT = 2.0  # alpha * beta**2 * gamma**2: MACs double per unit of phi
# sampled coefficients are rounded to 6 decimals, which moves the product by < 3e-6 (relative)
PRODUCT_SLACK = 1e-5

CATEGORICAL: dict[str, tuple[Any, ...]] = {
    "block": BLOCK_TYPES,
    "expansion": EXPANSIONS,
    "se_ratio": SE_RATIOS,
    "experts": EXPERTS,
    "mid_conv": MID_CONVS,
    "kernel": KERNELS,
}
CONTINUOUS: tuple[str, ...] = ("alpha", "beta", "gamma")
PIN_ONLY: tuple[str, ...] = ("phi", "resolution", "base_resolution", "classes")
KNOWN_KEYS: tuple[str, ...] = (*CATEGORICAL, *CONTINUOUS, *PIN_ONLY, "tolerance")
EFFICIENTNET_B0_START = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}


class Suggester(Protocol):
    """The part of ``optuna.Trial`` the space needs (define-by-run suggestions)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float) -> float: ...


class RandomDraws:
    """A seeded :class:`Suggester` that draws uniformly: the space sampled without Optuna, as a
    random-search trial would sample it (benchmarks draw their networks so)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.rng.choice(list(choices))

    def suggest_float(self, name: str, low: float, high: float) -> float:
        return self.rng.uniform(low, high)


@dataclass(frozen=True)
class Sample:
    """One sampled point: the spec fields (phi not yet fitted) and why it is infeasible, if so."""

    values: dict[str, Any]
    violation: str | None = None


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per dimension; a dimension with one value (or an empty range) is pinned."""

    block: tuple[str, ...] = BLOCK_TYPES
    expansion: tuple[int, ...] = EXPANSIONS
    se_ratio: tuple[int, ...] = SE_RATIOS
    experts: tuple[int, ...] = EXPERTS
    mid_conv: tuple[str, ...] = MID_CONVS
    kernel: tuple[int, ...] = KERNELS
    alpha: tuple[float, float] = COEFFICIENT_RANGE
    beta: tuple[float, float] = COEFFICIENT_RANGE  # the constraint caps beta and gamma at sqrt 2
    gamma: tuple[float, float] = COEFFICIENT_RANGE
    tolerance: float = DEFAULT_TOLERANCE
    pins: dict[str, Any] = field(default_factory=dict)  # phi, resolution, base_resolution, classes

    # ----- construction ---------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "the space") -> SearchSpace:
        """Build from ``{"block": ["se", "condconv"], "alpha": [1.0, 1.5], "se_ratio": 4, ...}``.

        Lists narrow a dimension (a ``[low, high]`` range for alpha/beta/gamma), scalars pin it.
        Unknown keys and values outside docs/design.md's sets raise :class:`UserError` naming them.
        """
        unknown = sorted(set(data) - set(KNOWN_KEYS))
        if unknown:
            raise UserError(
                f"unknown search-space key(s) {unknown} in {source}; known keys are "
                f"{list(KNOWN_KEYS)}"
            )
        kwargs: dict[str, Any] = {}
        for name, allowed in CATEGORICAL.items():
            if name in data:
                kwargs[name] = _choices(name, data[name], allowed, source)
        for name in CONTINUOUS:
            if name in data:
                kwargs[name] = _range(name, data[name], source)
        if "tolerance" in data:
            kwargs["tolerance"] = _tolerance(data["tolerance"], source)
        pins = {name: data[name] for name in PIN_ONLY if name in data}
        if pins:
            # ArchSpec validates phi / resolution / classes with its own messages
            ArchSpec(**pins)
            kwargs["pins"] = pins
        space = cls(**kwargs)
        space.check_coefficients()
        return space

    def check_coefficients(self) -> None:
        """Some triple in the ranges must meet the constraint; a pinned triple, the tolerance."""
        if all(self.is_pinned(name) for name in CONTINUOUS):
            a, b, g = (getattr(self, name)[0] for name in CONTINUOUS)
            violation = product_violation(a, b, g, self.tolerance)
            if violation:
                raise UserError(
                    f"pinned coefficients violate the compound constraint: {violation}; "
                    "change --alpha/--beta/--gamma or raise `tolerance` in the space file"
                )
            return
        if self.polygon.is_empty():
            ranges = ", ".join(
                f"{n} in [{getattr(self, n)[0]:g}, {getattr(self, n)[1]:g}]" for n in NAMES
            )
            low = math.prod(getattr(self, n)[0] ** (2 if n != "alpha" else 1) for n in NAMES)
            high = math.prod(getattr(self, n)[1] ** (2 if n != "alpha" else 1) for n in NAMES)
            raise UserError(
                f"no coefficients with {ranges} satisfy alpha*beta^2*gamma^2 = 2 (the product "
                f"ranges over [{low:.3g}, {high:.3g}]); widen or move these ranges"
            )

    @property
    def polygon(self) -> SharePolygon:
        """The feasible shares of the coefficient ranges (``space.shares``)."""
        return SharePolygon.of([getattr(self, name) for name in CONTINUOUS])

    # ----- queries --------------------------------------------------------------------------
    def is_pinned(self, name: str) -> bool:
        if name in CONTINUOUS:
            low, high = getattr(self, name)
            return low == high
        if name in CATEGORICAL:
            return len(getattr(self, name)) == 1
        return name in self.pins

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the study's config, so equal spaces compare equal)."""
        data: dict[str, Any] = {name: list(getattr(self, name)) for name in CATEGORICAL}
        data.update({name: list(getattr(self, name)) for name in CONTINUOUS})
        data["tolerance"] = self.tolerance
        data.update(self.pins)
        return data

    def smallest_spec(self, classes: int) -> ArchSpec:
        """The cheapest network of the space at phi = 0 (or the pinned phi, smallest coefficients).

        Every MAC term grows with expansion, kernel, experts, dense grouping and block richness
        (standard < se < condconv) and shrinks with the SE ratio, so the cheapest choice per
        dimension gives the cheapest network.
        """
        return ArchSpec(
            block=self.block[0] if len(self.block) == 1 else _first(BLOCK_TYPES, self.block),
            expansion=min(self.expansion),
            se_ratio=max(self.se_ratio),
            experts=min(self.experts),
            mid_conv=_first(MID_CONVS, self.mid_conv),
            kernel=min(self.kernel),
            alpha=self.alpha[0],
            beta=self.beta[0],
            gamma=self.gamma[0],
            phi=self.pins.get("phi", 0.0),
            resolution=self.pins.get("resolution"),
            base_resolution=self.pins.get("base_resolution", BASE_RESOLUTION),
            classes=self.pins.get("classes", classes),
        )

    def start_point(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(Optuna params, user attrs) that make the first trial EfficientNet-B0's coefficients.

        B0's alpha = 1.2 and beta = 1.1 become the unit variables that map onto them; B0's
        gamma = 1.15 is off the constraint plane (the product is 1.92), so it travels as the user
        attr "start_gamma", which :meth:`sample` honours (``gamma_override``) when the triple is
        within the tolerance. Needs all three coefficients free and B0's values in their ranges.
        """
        for name, value in EFFICIENTNET_B0_START.items():
            low, high = getattr(self, name)
            if low == high or not (low <= value <= high):
                raise UserError(
                    f"--b0 starts at {name}={value} but the space has {name} in [{low}, {high}]; "
                    f"drop --b0 or widen {name}"
                )
        alpha, beta, gamma = (EFFICIENTNET_B0_START[name] for name in CONTINUOUS)
        violation = product_violation(alpha, beta, gamma, self.tolerance)
        if violation:
            raise UserError(
                f"--b0's coefficients are outside the tolerance: {violation}; drop --b0 or "
                "raise `tolerance` in the space file"
            )
        polygon = self.polygon
        a, b = share_of("alpha", alpha), share_of("beta", beta)
        units = polygon.units((a, b, 1.0 - a - b))
        shares = polygon.point(units)
        if (coefficient_of("alpha", shares[0]), coefficient_of("beta", shares[1])) != (alpha, beta):
            raise UserError(
                f"--b0's alpha={alpha}, beta={beta} need gamma="
                f"{coefficient_of('gamma', 1 - a - b):g} on the constraint, outside the gamma "
                f"range [{self.gamma[0]:g}, {self.gamma[1]:g}]; drop --b0 or widen gamma"
            )
        params = {f"{name}_q": unit for name, unit in zip(CONTINUOUS, units, strict=False)}
        return params, {"start_gamma": gamma}

    # ----- sampling ---------------------------------------------------------------------------
    def sample(self, trial: Suggester, gamma_override: float | None = None) -> Sample:
        """Suggest every free dimension on ``trial`` (conditionally) and return the point.

        ``gamma_override`` (a start point's or a replayed trial's gamma) replaces the derived
        gamma when it lies in the gamma range; that triple is then checked against the tolerance.
        """
        values: dict[str, Any] = {}
        values["block"] = self._categorical(trial, "block")
        values["expansion"] = self._categorical(trial, "expansion")
        if values["block"] in ("se", "condconv"):
            values["se_ratio"] = self._categorical(trial, "se_ratio")
        if values["block"] == "condconv":
            values["experts"] = self._categorical(trial, "experts")
        values["mid_conv"] = self._categorical(trial, "mid_conv")
        values["kernel"] = self._categorical(trial, "kernel")
        alpha, beta, gamma = self._coefficients(trial)
        violation = None
        if all(self.is_pinned(name) for name in CONTINUOUS):  # checked up front by from_mapping
            violation = product_violation(alpha, beta, gamma, self.tolerance)
        override = None if gamma_override is None else float(gamma_override)
        if (
            override is not None
            and override != gamma
            and self.gamma[0] <= override <= self.gamma[1]
        ):
            gamma = override
            violation = product_violation(alpha, beta, gamma, self.tolerance)
        values.update(alpha=alpha, beta=beta, gamma=gamma)
        values.update(self.pins)
        return Sample(values, violation)

    def _categorical(self, trial: Suggester, name: str) -> Any:
        choices = getattr(self, name)
        if len(choices) == 1:
            return choices[0]
        return trial.suggest_categorical(name, list(choices))

    def _coefficients(self, trial: Suggester) -> tuple[float, float, float]:
        """(alpha, beta, gamma) on the constraint: pinned ones as given, the others mapped from
        ``[0, 1]`` unit variables (``space.shares``) and stored to 6 decimals."""
        if all(self.is_pinned(name) for name in CONTINUOUS):
            return self.alpha[0], self.beta[0], self.gamma[0]
        polygon = self.polygon
        free = [CONTINUOUS[i] for i in polygon.free][: polygon.unit_variables]
        units = [float(trial.suggest_float(f"{name}_q", 0.0, 1.0)) for name in free]
        shares = polygon.point(units)
        return tuple(  # type: ignore[return-value]
            getattr(self, name)[0] if self.is_pinned(name) else coefficient_of(name, share)
            for name, share in zip(CONTINUOUS, shares, strict=True)
        )


def product_violation(alpha: float, beta: float, gamma: float, tolerance: float) -> str | None:
    """None when ``alpha * beta**2 * gamma**2`` is within ``tolerance`` of 2, else the reason.

    ``PRODUCT_SLACK`` on top absorbs the 6-decimal storage of sampled coefficients, so
    ``tolerance = 0`` accepts every sampled triple.
    """
    product = alpha * beta**2 * gamma**2
    if abs(product / TARGET_PRODUCT - 1.0) <= tolerance + PRODUCT_SLACK:
        return None
    return (
        f"alpha*beta^2*gamma^2 = {product:.3f} (alpha={alpha:.4g}, beta={beta:.4g}, "
        f"gamma={gamma:.4g}) is not within {tolerance:g} of 2"
    )


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON file of pins / narrowed ranges as a plain mapping."""
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except OSError as exc:
        raise UserError(f"cannot read --space file {str(file)!r}: {exc.strerror}") from exc
    return parse_space_text(text, path)


def parse_space_text(text: str, path: str | Path) -> dict[str, Any]:
    """The mapping in a space file's ``text``, already read from ``path`` (whose suffix picks JSON
    or TOML), so that a caller that has read and checked the file does not read it again."""
    file = Path(path).expanduser()
    try:
        data: Any = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if file.suffix == ".json" else "TOML"
        raise UserError(f"--space file {str(file)!r} is not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"--space file {str(file)!r} must hold a table of key = value pins")
    return data


def _first(order: tuple[Any, ...], allowed: tuple[Any, ...]) -> Any:
    return next(value for value in order if value in allowed)


def _choices(name: str, raw: Any, allowed: tuple[Any, ...], source: str) -> tuple[Any, ...]:
    values = raw if isinstance(raw, list | tuple) else [raw]
    if not values:
        raise UserError(f"{name} in {source} is an empty list; give at least one of {allowed}")
    bad = [v for v in values if isinstance(v, bool) or v not in allowed]
    if bad:
        raise UserError(
            f"{name} value(s) {bad} in {source} are not in docs/design.md's set {list(allowed)}"
        )
    # keep docs/design.md's order and drop duplicates, so equal spaces have equal configs
    return tuple(v for v in allowed if v in values)


def _range(name: str, raw: Any, source: str) -> tuple[float, float]:
    values = raw if isinstance(raw, list | tuple) else [raw, raw]
    if len(values) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise UserError(
            f"{name} in {source} must be a number (pin) or [low, high] (range), got {raw!r}"
        )
    low, high = float(values[0]), float(values[1])
    lo_limit, hi_limit = COEFFICIENT_RANGE
    if not (lo_limit <= low <= high <= hi_limit):
        raise UserError(
            f"{name} range [{low:g}, {high:g}] in {source} must satisfy "
            f"{lo_limit:g} <= low <= high <= {hi_limit:g}"
        )
    return low, high


def _tolerance(raw: Any, source: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not (0.0 <= raw < 1.0):
        raise UserError(
            f"tolerance={raw!r} in {source} must be a relative tolerance in [0, 1), e.g. 0.1"
        )
    return float(raw)
