"""TPE's group decomposition of the search space, kept up to date trial by trial.

With ``group=True`` Optuna's TPE splits the parameters into groups that are always sampled
together (``optuna.search_space.group_decomposed``: here the block options, the SE ratio and the
expert count, which only some blocks have, and the rest), refining a list of groups with the
parameter set of every finished trial, in trial-number order, at every suggestion: a loop over
the whole study, the largest part of a suggestion's cost at 10,000 trials. A parameter set that is
already a union of groups changes nothing (each group is kept whole, in place), and once a set
has been added it stays a union of groups, so the list depends only on the first trial of each
distinct parameter set, in number order. :class:`IncrementalGroups` keeps those first trials (a
study has a handful of distinct sets) and reads each finished trial once
(``search.study.feed``), so ``calculate`` returns the very list Optuna's would, in its order,
without the loop. A test compares the two.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.search_space.group_decomposed import _SearchSpaceGroup
from optuna.trial import FrozenTrial, TrialState

from search.study.feed import TrialFeed

INCLUDED = (TrialState.COMPLETE, TrialState.PRUNED)  # TPE's include_pruned=True


class IncrementalGroups:
    """Stands for ``_GroupDecomposedSearchSpace(include_pruned=True)`` of one study, seen
    through ``view`` (how the sampler sees a trial; None hides it)."""

    def __init__(
        self, study: optuna.Study, view: Callable[[FrozenTrial], FrozenTrial | None]
    ) -> None:
        self.feed = TrialFeed(study)
        self.view = view
        # parameter names -> (the smallest number with exactly those names, their distributions)
        self.first: dict[frozenset[str], tuple[int, dict[str, BaseDistribution]]] = {}

    def calculate(self, study: Any = None, use_cache: bool = False) -> _SearchSpaceGroup:
        """The groups Optuna's ``calculate`` would return now (``study`` is not needed)."""
        new, _ = self.feed.read()
        for trial in new:
            seen = self.view(trial)
            if seen is None or seen.state not in INCLUDED:
                continue
            names = frozenset(seen.distributions)
            known = self.first.get(names)
            if known is None or seen.number < known[0]:
                self.first[names] = (seen.number, seen.distributions)
        groups = _SearchSpaceGroup()
        for _, distributions in sorted(self.first.values(), key=lambda entry: entry[0]):
            groups.add_distributions(distributions)
        return copy.deepcopy(groups)
