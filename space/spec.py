"""The architecture spec: one frozen, validated value that every layer of the project passes on.

The search space (docs/design.md section 5) samples an :class:`ArchSpec`; the scaling rules
(``space.scaling``) resolve it into a :class:`~space.plan.NetworkPlan`; the model builder and the
MAC counter both consume that plan; the trainer trains it; the study stores its canonical string;
the report prints it. Because the spec is frozen and validated at construction, nothing downstream
has to re-check it.

The canonical form is a fixed-order ``key=value`` string, e.g.
``block=se,e=4,r=4,mid=depthwise,k=3,a=1.2,b=1.1,g=1.15,phi=1,res=auto,classes=10``, in the
spirit of timm's compact arch strings; ``ArchSpec.parse`` inverts it exactly.

Fields that a block type does not have are not part of the spec: ``se_ratio`` is ``None`` for the
standard block and ``experts`` is ``None`` unless the block is condconv (docs/design.md section 2),
so the canonical string never shows an ``r=`` or ``m=`` that does nothing. The coefficients stay in
the spec even at phi = 0, because they are the direction in which the spec scales (``fit_phi``,
``replace(phi=...)``); ``spec_id`` therefore hashes :meth:`ArchSpec.network_form`, the spec with
every field that cannot change the built network set to a fixed value, so two specs that build the
same network share one id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from common.bounds import MAX_EXPERTS, MAX_PHI, MAX_RESOLUTION, MAX_SE_RATIO, check_int
from common.errors import UserError
from space.scaling import BASE_RESOLUTION, scale_network  # the automatic resolution at phi = 0

BlockType = Literal["standard", "se", "condconv"]
MidConv = Literal["depthwise", "dense"]

BLOCK_TYPES: tuple[str, ...] = ("standard", "se", "condconv")
MID_CONVS: tuple[str, ...] = ("depthwise", "dense")
KERNELS: tuple[int, ...] = (3, 5)
DEFAULT_SE_RATIO = 4  # docs/design.md's reference R
DEFAULT_EXPERTS = 4  # docs/design.md's reference M

# canonical key order and short names: (field, short key)
_KEYS: tuple[tuple[str, str], ...] = (
    ("block", "block"),
    ("expansion", "e"),
    ("se_ratio", "r"),
    ("experts", "m"),
    ("mid_conv", "mid"),
    ("kernel", "k"),
    ("alpha", "a"),
    ("beta", "b"),
    ("gamma", "g"),
    ("phi", "phi"),
    ("resolution", "res"),
    ("base_resolution", "res0"),
    ("classes", "classes"),
)
_FIELD_OF_SHORT = {short: field for field, short in _KEYS}
# keys a spec file may hold beside the spec's fields, skipped by ``ArchSpec.from_json``: "input"
# is the evaluation input contract a trainer writes next to the spec it trained
# (``trainers.augment.InputContract``); it says how to feed the network, not which network it is
SPEC_FILE_EXTRAS: tuple[str, ...] = ("input",)


def _fmt_float(value: float) -> str:
    """Shortest exact text for a float: ``1.0 -> '1'``, ``1.15 -> '1.15'``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class ArchSpec:
    """One candidate network: block options plus compound-scaling coefficients.

    Defaults are the paper preset of docs/design.md section 1: standard block, depthwise 3x3 middle
    conv, expansion 4, phi = 0 (so alpha/beta/gamma have no effect), 56 px, 100 classes.
    ``se_ratio`` exists only for the ``se`` and ``condconv`` blocks and ``experts`` only for
    ``condconv``: construction sets them to ``None`` for the other blocks (whatever was passed, so
    an old record or a re-pinned spec normalises) and to docs/design.md's reference 4 when a block
    that has them gets ``None`` (so ``spec.replace(block="se")`` works).
    ``resolution=None`` means "scaled from ``base_resolution`` by gamma**phi"; an integer pins it.
    ``base_resolution`` is the input size at phi = 0: docs/design.md's 56 px by default, lower
    for small images (a 28 px data set searched from 8 px lets gamma grow the input towards its
    native size, so resolution is a dimension the search trades like depth and width). The
    canonical string shows it (``res0=``) only when it is not 56, so older strings and ids stay.
    """

    block: BlockType = "standard"
    expansion: int = 4
    se_ratio: int | None = None
    experts: int | None = None
    mid_conv: MidConv = "depthwise"
    kernel: int = 3
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    phi: float = 0.0
    resolution: int | None = None
    base_resolution: int = BASE_RESOLUTION
    classes: int = 100

    def __post_init__(self) -> None:
        _check_choice("block", self.block, BLOCK_TYPES, "--block")
        _check_choice("mid_conv", self.mid_conv, MID_CONVS, "--mid-conv")
        _check_choice("kernel", self.kernel, KERNELS, "--kernel")
        check_int("expansion", self.expansion, 1, 16, "--expansion")
        self._block_option("se_ratio", self.block != "standard", DEFAULT_SE_RATIO, MAX_SE_RATIO)
        self._block_option("experts", self.block == "condconv", DEFAULT_EXPERTS, MAX_EXPERTS)
        check_int("classes", self.classes, 2, 100_000, "--classes")
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not (1.0 <= value <= 4.0)
            ):
                raise UserError(
                    f"{name}={value!r} is out of range: compound-scaling coefficients must lie in "
                    f"[1, 4] (EfficientNet scales up, never down); pass --{name} 1.2 or similar"
                )
            object.__setattr__(self, name, float(value))
        if (
            not isinstance(self.phi, (int, float))
            or not math.isfinite(self.phi)
            or not (0.0 <= self.phi <= MAX_PHI)
        ):
            raise UserError(
                f"phi={self.phi!r} is out of range: phi must lie in [0, {MAX_PHI:g}]; "
                "use a larger --budget-flops or larger coefficients to grow the network"
            )
        object.__setattr__(self, "phi", float(self.phi))
        if self.resolution is not None:
            check_int("resolution", self.resolution, 8, MAX_RESOLUTION, "--resolution")
        check_int("base_resolution", self.base_resolution, 8, MAX_RESOLUTION, "--base-resolution")

    def _block_option(self, name: str, has_it: bool, default: int, high: int) -> None:
        """Check a block option whenever it is given, then drop it for a block without it.

        The range is checked before the block decides: ``--se-ratio -4`` with the standard block
        is a mistake the user should hear about, not a value to drop silently (`search run`
        refuses the same pin). A block that has the option gets ``default`` when it is absent.
        """
        value = getattr(self, name)
        if value is not None:
            check_int(name, value, 1, high, "--" + name.replace("_", "-"))
        if not has_it:
            value = None
        elif value is None:
            value = default
        object.__setattr__(self, name, value)

    # ----- derived forms -------------------------------------------------------------------
    def canonical(self) -> str:
        """The fixed-order ``key=value`` string; ``ArchSpec.parse`` inverts it exactly.

        ``r=`` and ``m=`` appear only for the blocks that have them (they are ``None`` otherwise).
        """
        parts = []
        for field, short in _KEYS:
            value = getattr(self, field)
            if value is None and field in ("se_ratio", "experts"):
                continue
            if field == "base_resolution" and value == BASE_RESOLUTION:
                continue
            if value is None:
                text = "auto"
            elif isinstance(value, float):
                text = _fmt_float(value)
            else:
                text = str(value)
            parts.append(f"{short}={text}")
        return ",".join(parts)

    def network_form(self) -> ArchSpec:
        """This spec with the fields that cannot change the built network set to fixed values.

        At phi = 0 the coefficients have no effect and the automatic resolution is the base
        resolution (rounded as ``space.scaling`` rounds); with a pinned resolution gamma and the
        base have no effect. (``se_ratio``/``experts`` are already ``None``
        where the block has none.) Two specs build the same network iff their network forms are
        equal, up to the rounding of ``space.scaling``, which can map nearby phis to one network.
        """
        changes: dict[str, Any] = {}
        if self.phi == 0.0:
            changes.update(alpha=1.0, beta=1.0, gamma=1.0)
            if self.resolution is None:
                base = scale_network(1.0, 1.0, 1.0, self.base_resolution)
                changes["resolution"] = base.resolution
        elif self.resolution is not None:
            changes["gamma"] = 1.0
        if self.resolution is not None or "resolution" in changes:
            changes["base_resolution"] = BASE_RESOLUTION
        return self.replace(**changes) if changes else self

    @property
    def spec_id(self) -> str:
        """A stable 12-hex-digit id of the network: SHA-256 of the network form's string."""
        return hashlib.sha256(self.network_form().canonical().encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> ArchSpec:
        return dataclasses.replace(self, **changes)

    # ----- parsing --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(f"unknown spec field(s) {unknown}; known fields are {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        """A spec file's spec; the keys of ``SPEC_FILE_EXTRAS`` beside its fields are skipped."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"spec is not valid JSON ({exc}); write it with `search export`"
            ) from exc
        if not isinstance(data, dict):
            raise UserError('spec JSON must be an object such as {"block": "se", ...}')
        return cls.from_dict({k: v for k, v in data.items() if k not in SPEC_FILE_EXTRAS})

    @classmethod
    def parse(cls, text: str) -> ArchSpec:
        """Parse a canonical string (or any subset of its keys, in any order).

        Strings written before ``r=``/``m=`` were dropped for blocks without them still parse:
        the irrelevant values are normalised away.
        """
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            if not sep or key not in _FIELD_OF_SHORT:
                raise UserError(
                    f"bad spec item {part!r}: expected key=value with key one of "
                    f"{[short for _, short in _KEYS]}"
                )
            field = _FIELD_OF_SHORT[key]
            values[field] = _parse_value(field, raw)
        return cls(**values)


def _parse_value(field: str, raw: str) -> Any:
    if field in ("block", "mid_conv"):
        return raw
    if field == "resolution" and raw == "auto":
        return None
    try:
        number = float(raw)
    except ValueError as exc:
        raise UserError(f"spec value {field}={raw!r} is not a number") from exc
    if field in ("alpha", "beta", "gamma", "phi"):
        return number
    if not number.is_integer():
        raise UserError(f"spec value {field}={raw!r} must be an integer")
    return int(number)


def _check_choice(name: str, value: Any, choices: tuple[Any, ...], flag: str) -> None:
    if value not in choices:
        shown = ", ".join(str(c) for c in choices)
        raise UserError(f"{name}={value!r} is not supported; choose {flag} from {{{shown}}}")
