"""The paper's reference networks (docs/design.md sections 1 and 6) placed on the report's plot.

The reference setting reports accuracies for the phi=0 paper preset with the standard and the SE
block. The report marks them where the study actually measured them (a completed trial whose
network is the same), because accuracies from another data set cannot be compared; otherwise it
only shows their counted MACs, so a reader sees how the found networks' cost compares.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reports.records import TrialRecord
from space import ArchSpec, count_spec


@dataclass(frozen=True)
class Reference:
    """One reference network: its block, spec, counted MACs and the trial that measured it."""

    block: str
    spec: ArchSpec
    macs: int
    measured_by: TrialRecord | None  # the best completed trial of the same network, if any

    @property
    def label(self) -> str:
        return f"paper preset, {self.block} block"


def same_network(spec: ArchSpec) -> ArchSpec:
    """``spec`` with the fields that do not change the network set to fixed values.

    This is :meth:`ArchSpec.network_form` (the spec's own normal form, which ``spec_id`` hashes):
    at phi=0 the coefficients have no effect and the automatic resolution is 56 px; the SE ratio
    exists only for ``se``/``condconv`` blocks and the expert count only for ``condconv``
    (docs/design.md section 2). Two specs build the same network iff their normal forms are equal.
    """
    return spec.network_form()


def paper_references(classes: int, trials: Iterable[TrialRecord]) -> list[Reference]:
    """The standard and SE paper presets for ``classes`` classes, matched against ``trials``."""
    completed = [t for t in trials if t.measured and t.spec is not None]
    references = []
    for spec in (ArchSpec(classes=classes), ArchSpec(block="se", classes=classes)):
        target = same_network(spec)
        matches = [t for t in completed if t.spec is not None and same_network(t.spec) == target]
        best = max(matches, key=lambda t: (t.accuracy or 0.0, -t.number), default=None)
        references.append(Reference(spec.block, spec, count_spec(spec).macs, best))
    return references
