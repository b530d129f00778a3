"""Claims on networks (search/study/claims.py): the no-repeat rule held by the database when
two drivers decide at the same moment, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.config import SearchConfig
from search.driver.searcher import StudySearcher
from search.strategy.planner import Planner
from search.study.claims import Claims, network_key
from search.study.database import open_storage
from search.study.schema import DIRECTIONS
from search.study.snapshot import SnapshotStorage, decision
from space.searchspace import SearchSpace
from tests.fixtures_pg import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures used by name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_one_claim_per_network_and_a_failed_claimant_gives_it_up(url: str) -> None:
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, directions=list(DIRECTIONS))
    first, second = study.ask(), study.ask()
    ours, theirs = Claims(storage), Claims(open_storage(url))  # two drivers
    net = network_key(("layout", 1))
    assert ours.claim(study._study_id, net, first._trial_id) is None
    assert ours.claim(study._study_id, net, first._trial_id) is None  # its own claim again
    assert theirs.claim(study._study_id, net, second._trial_id) == first._trial_id  # running
    study.tell(first, state=TrialState.FAIL)  # interrupted: the network is free again
    assert theirs.claim(study._study_id, net, second._trial_id) is None
    third = study.ask()
    study.tell(second, [0.5, 1e6])  # trained: claimed for good
    assert ours.claim(study._study_id, net, third._trial_id) == second._trial_id
    assert theirs.claim(study._study_id, network_key(("layout", 2)), third._trial_id) is None


def test_two_drivers_deciding_at_once_do_not_start_one_network_twice(tmp_path: Path) -> None:
    """A space with one network under the budget (everything pinned, a budget that only the
    phi = 0 network fits): driver B decides on a snapshot taken before driver A started it, so
    only the claim can tell B it is taken."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    config = SearchConfig(
        budget_macs=6_000_000,
        trials=2,
        epochs=1,
        space=SearchSpace.from_mapping(
            {
                "block": "standard",
                "expansion": 1,
                "mid_conv": "depthwise",
                "kernel": 3,
                "alpha": 1.2,
                "beta": 1.1,
                "gamma": 1.15,
                "resolution": 16,
            }
        ),
        seed=7,
    )
    studies = [
        optuna.create_study(
            study_name="race",
            storage=SnapshotStorage(open_storage(url)),
            directions=list(DIRECTIONS),
            load_if_exists=True,
        )
        for _ in range(2)
    ]
    a, b = (StudySearcher(study, Planner(config, classes=10)) for study in studies)
    with decision(b.study):
        b.study.get_trials(deepcopy=False)  # B's snapshot: an empty study
        started = a.suggest("a")
        assert isinstance(started, dict)
        assert b.suggest("b") == "FINISHED"  # every candidate was A's network: gave up
    trials = optuna.load_study(study_name="race", storage=url).trials
    trained = [t for t in trials if t.user_attrs.get("status") != "infeasible"]
    assert [t.number for t in trained] == [started["number"]]
    refused = [t for t in trials if t.user_attrs.get("status") == "infeasible"]
    assert refused and all(
        t.user_attrs["constraint"] == f"builds the same network as trial {started['number']}, "
        "which trained it"
        for t in refused
    )
