"""The Ray-Optuna bridge's state mapping, driven directly (no Ray) on a real temporary SQLite DB."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from common.errors import Fault, FaultKind
from search.config import SearchConfig
from search.driver.searcher import StudySearcher, classify
from search.strategy.planner import Planner
from search.study.database import open_storage
from search.study.lease import Lease
from search.study.ledger import recover_stale
from search.study.schema import DIRECTIONS, Counts
from search.study.snapshot import SnapshotStorage
from space import count_spec
from space.searchspace import SearchSpace

SPACE = SearchSpace.from_mapping(
    {
        "block": ["standard", "se"],
        "expansion": [1, 2],
        "se_ratio": 4,
        "resolution": 24,
        "mid_conv": "depthwise",
        "kernel": 3,
    }
)


def make(
    tmp_path: Path, **kw: object
) -> tuple[optuna.Study, StudySearcher, list[tuple[str, dict]]]:
    config = SearchConfig(
        budget_macs=kw.pop("budget", 25_000_000),
        epochs=3,
        trials=kw.pop("trials", 4),
        space=kw.pop("space", SPACE),
        seed=7,
        **kw,
    )
    study = optuna.create_study(
        study_name="s",
        # the driver's storage (search.driver.run): one read and one write per decision
        storage=SnapshotStorage(open_storage(f"sqlite:///{tmp_path / 's.db'}")),
        directions=list(DIRECTIONS),
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    events: list[tuple[str, dict]] = []
    searcher = StudySearcher(study, Planner(config, classes=10), lambda e, i: events.append((e, i)))
    return study, searcher, events


def epoch(n: int, accuracy: float) -> dict:
    return {"epoch": n, "done_epochs": n, "accuracy": accuracy, "loss": 1.0 / n, "final": False}


def final(accuracy: float, epochs: int = 3) -> dict:
    return {
        "epoch": epochs,
        "done_epochs": epochs,
        "accuracy": accuracy,
        "final": True,
        "accuracy_per_epoch": [0.1, 0.2, accuracy],
        "loss_per_epoch": [2.0, 1.5, 1.0],
        "seconds": 1.5,
        "images_per_second": 200.0,
        "peak_memory_bytes": 1234,
    }


def test_classify_needs_the_trainables_final_report_for_complete() -> None:
    assert classify(final(0.5), False, 3, False).state == TrialState.COMPLETE
    # the last result of a trial the scheduler stopped: never COMPLETE
    assert classify(epoch(1, 0.9), False, 3, False).state == TrialState.PRUNED
    # a "final" report that is not for all epochs is not complete either
    assert classify({**final(0.5), "done_epochs": 2}, False, 3, False).state == TrialState.PRUNED
    oom = classify({"fail_reason": "out of memory: CUDA"}, False, 3, False)
    assert (oom.state, oom.reason) == (TrialState.FAIL, "out of memory: CUDA")
    assert classify(None, True, 3, False).state == TrialState.FAIL
    segfault = Fault(FaultKind.WORKER_DIED, "worker died: process 7 crashed with SIGSEGV")
    died = classify(None, True, 3, False, segfault)
    assert (died.state, died.reason) == (
        TrialState.FAIL,
        "worker died: process 7 crashed with SIGSEGV",
    )
    # only the driver's own stop re-queues; a trial that just vanished is a plain failure
    assert classify(epoch(1, 0.5), False, 3, True).reason == "interrupted"
    assert classify(None, False, 3, True).reason == "interrupted"
    assert classify(None, False, 3, False).reason == "ended before it reported anything"
    needs = "memory: needs 9.1 GB at micro-batch 1, 4 GB free"
    too_big = classify(None, True, 3, False, Fault(FaultKind.INFEASIBLE_MEMORY, needs))
    assert (too_big.state, too_big.status) == (TrialState.PRUNED, "infeasible")


@pytest.mark.parametrize("kind", list(FaultKind))
def test_classify_decides_an_error_by_its_fault_kind_alone(kind: FaultKind) -> None:
    # the same wording under every kind: only infeasible-memory is PRUNED "infeasible"
    for reason in ("memory: needs 9.1 GB at micro-batch 1", "out of memory: CUDA", "x"):
        outcome = classify(None, True, 3, False, Fault(kind, reason))
        assert outcome.reason == reason
        if kind == FaultKind.INFEASIBLE_MEMORY:
            assert (outcome.state, outcome.status) == (TrialState.PRUNED, "infeasible")
        else:
            assert (outcome.state, outcome.status) == (TrialState.FAIL, "failed")


def test_an_infeasible_memory_fault_is_stored_pruned_with_its_constraint(tmp_path: Path) -> None:
    study, searcher, events = make(tmp_path)
    needs = "memory: needs 9.1 GiB at micro-batch 1, 4.0 GiB available"
    faults = FixedFaults({"a": Fault(FaultKind.INFEASIBLE_MEMORY, needs)})
    searcher.watch = faults  # type: ignore[assignment]
    n = searcher.suggest("a")["number"]
    searcher.on_trial_complete("a", None, error=True)
    trial = study.trials[n]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["status"] == "infeasible"
    assert trial.user_attrs["constraint"] == needs and "fail_reason" not in trial.user_attrs
    assert events[-1][0] == "infeasible"


class FixedFaults:
    """A stand-in for ``TrialWatch`` that knows each trial's fault in advance."""

    def __init__(self, faults: dict[str, Fault]) -> None:
        self.faults = faults

    def error_fault(self, trial_id: str) -> Fault:
        return self.faults[trial_id]


def test_complete_trial_has_values_and_the_schema_attrs(tmp_path: Path) -> None:
    study, searcher, events = make(tmp_path)
    config = searcher.suggest("ray-0")
    n = config["number"]  # earlier numbers, if any, were infeasible samples
    assert all(t.user_attrs["status"] == "infeasible" for t in study.trials[:n])
    running = study.trials[n]
    assert running.state == TrialState.RUNNING and running.user_attrs["status"] == "running"
    searcher.on_trial_result("ray-0", epoch(1, 0.25))
    live = study.trials[n].user_attrs
    assert live["accuracy_per_epoch"] == [0.25] and live["epochs_run"] == 1
    searcher.on_trial_complete("ray-0", final(0.6))
    trial = study.trials[n]
    attrs = trial.user_attrs
    assert trial.state == TrialState.COMPLETE
    assert trial.values == [0.6, attrs["macs"]]
    assert attrs["macs"] == count_spec(optuna_spec(attrs)).macs <= 25_000_000
    assert attrs["status"] == "complete" and attrs["stage"] == "joint"
    assert attrs["accuracy_per_epoch"] == [0.1, 0.2, 0.6] and attrs["epochs_run"] == 3
    assert attrs["seed"] == config["seed"] == (7 * 1_000_003 + n) % 2**31
    assert {"torch", "optuna", "ray", "effnas"} <= set(attrs["versions"])
    assert (
        attrs["spec"] == config["spec"]
        and attrs["spec_id"]
        and attrs["block"] in {"standard", "se"}
    )
    assert attrs["seconds"] == 1.5 and attrs["peak_memory_bytes"] == 1234
    assert [e for e, _ in events if e != "infeasible"] == ["started", "epoch", "complete"]
    # the driver's time on it: its suggestion (sampling, reads, writes), its epoch, its end
    parts = attrs["decision"]
    assert set(parts) == {"sample", "schedule", "read", "write", "lease", "other"}
    assert parts["sample"] > 0 and parts["write"] > 0 and parts["read"] > 0
    assert attrs["decision_seconds"] == pytest.approx(sum(parts.values()), abs=1e-5)


def test_the_node_that_trained_a_trial_is_stored(tmp_path: Path) -> None:
    # Ray Tune adds "node_ip" to every result of a trial: the machine that trained it
    study, searcher, _ = make(tmp_path)
    n = searcher.suggest("a")["number"]
    searcher.on_trial_result("a", {**epoch(1, 0.3), "node_ip": "10.89.0.5"})
    assert study.trials[n].user_attrs["node"] == "10.89.0.5"
    searcher.on_trial_complete("a", {**final(0.6), "node_ip": "10.89.0.5"})
    assert study.trials[n].user_attrs["node"] == "10.89.0.5"
    # no Ray (the inline executor): no node
    m = searcher.suggest("b")["number"]
    searcher.on_trial_complete("b", final(0.5))
    assert "node" not in study.trials[m].user_attrs


def optuna_spec(attrs: dict):
    from space import ArchSpec

    return ArchSpec.parse(attrs["spec"])


def test_scheduler_stop_is_pruned_with_last_accuracy_kept(tmp_path: Path) -> None:
    study, searcher, _ = make(tmp_path)
    n = searcher.suggest("a")["number"]
    searcher.on_trial_result("a", epoch(1, 0.3))
    # the result that triggers ASHA's STOP goes to on_trial_complete only (Ray's controller)
    searcher.on_trial_complete("a", epoch(2, 0.35))
    trial = study.trials[n]
    assert trial.state == TrialState.PRUNED and trial.values is None
    assert trial.user_attrs["status"] == "pruned"
    assert trial.user_attrs["accuracy_per_epoch"] == [0.3, 0.35]
    assert trial.user_attrs["last_accuracy"] == 0.35 and trial.user_attrs["epochs_run"] == 2


def test_errors_and_oom_fail_with_reason_and_the_search_goes_on(tmp_path: Path) -> None:
    study, searcher, _ = make(tmp_path)
    n = searcher.suggest("a")["number"]
    searcher.on_trial_complete("a", {"fail_reason": "out of memory: CUDA out of memory"})
    m = searcher.suggest("b")["number"]
    searcher.on_trial_complete("b", None, error=True)
    assert searcher.suggest("c") is not None  # still searching
    first, second = study.trials[n], study.trials[m]
    assert first.state == second.state == TrialState.FAIL
    assert first.user_attrs["fail_reason"].startswith("out of memory: ")
    assert second.user_attrs["fail_reason"].startswith("Ray trial error")
    assert Counts.of(study.trials).failed == 2


def test_the_same_network_never_trains_twice(tmp_path: Path) -> None:
    # every option and coefficient pinned, and a budget the phi = 0 network fills: every
    # candidate builds that one network, so only the first trains
    pinned = {**SPACE.to_dict(), "block": "standard", "expansion": 1}
    space = SearchSpace.from_mapping({**pinned, "alpha": 1.2, "beta": 1.1, "gamma": 1.1688})
    base = count_spec(space.smallest_spec(10)).macs
    study, searcher, _ = make(tmp_path, space=space, budget=base + 1, trials=2)
    first = searcher.suggest("a")
    assert isinstance(first, dict) and first["number"] == 0
    assert searcher.suggest("b") == "FINISHED"  # every later candidate is trial 0's network
    searcher.on_trial_complete("a", final(0.5))  # the live trial still finishes
    twins = study.trials[1:]
    assert len(twins) == 40  # the cap, 20 x --trials: none of them counted as a trial
    assert all(t.user_attrs["status"] == "infeasible" for t in twins)
    assert {t.user_attrs["constraint"] for t in twins} == {
        "builds the same network as trial 0, which trained it"
    }
    assert all(set(t.constraints) == {"duplicate"} for t in twins)
    assert searcher.planner.note is not None
    assert "networks are trained already; widen the space" in searcher.planner.note
    assert Counts.of(study.trials).complete == 1


def test_infeasible_candidates_are_pruned_and_never_suggested(tmp_path: Path) -> None:
    # phi pinned at 3 with alpha >= 1.5: every candidate is over the budget, so all are infeasible
    space = SearchSpace.from_mapping({**SPACE.to_dict(), "phi": 3.0, "alpha": [1.5, 2.0]})
    study, searcher, events = make(tmp_path, space=space, trials=1)
    assert searcher.suggest("a") == "FINISHED"  # gave up after 20 x trials attempts
    trials = study.trials
    assert len(trials) == 20
    assert all(t.state == TrialState.PRUNED for t in trials)
    assert all(t.user_attrs["status"] == "infeasible" for t in trials)
    assert all(t.user_attrs["macs"] > 25_000_000 for t in trials)
    reasons = [t.user_attrs["constraint"] for t in trials]
    assert any("> budget 25,000,000" in r for r in reasons)
    assert all(r.startswith("phi=3 network has ") and "> budget" in r for r in reasons)
    # the constraint is Optuna's too, so TPE ranks them after every feasible trial
    assert all(t.constraints["budget"] > 0 for t in trials)
    assert searcher.planner.note and "20 x --trials" in searcher.planner.note
    assert {e for e, _ in events} == {"infeasible"}


def test_interrupted_trials_fail_and_are_requeued_with_same_params(tmp_path: Path) -> None:
    study, searcher, _ = make(tmp_path)
    first = searcher.suggest("a")
    n = first["number"]
    searcher.on_trial_result("a", epoch(1, 0.4))
    assert searcher.interrupt_live() == [n]
    trials = study.trials
    assert trials[n].state == TrialState.FAIL
    assert trials[n].user_attrs["fail_reason"] == "interrupted"
    assert trials[n].user_attrs["accuracy_per_epoch"] == [0.4]
    assert trials[n + 1].state == TrialState.WAITING
    assert trials[n + 1].system_attrs["fixed_params"] == trials[n].params  # Optuna's queue
    # the next run picks the re-queued trial first, with the same spec and seed
    _, resumed, _ = make_same(study)
    again = resumed.suggest("b")
    assert again["spec"] == first["spec"] and again["seed"] == first["seed"]
    assert again["number"] == n + 1


def make_same(study: optuna.Study) -> tuple[optuna.Study, StudySearcher, list]:
    config = SearchConfig(budget_macs=25_000_000, epochs=3, trials=4, space=SPACE, seed=7)
    return study, StudySearcher(study, Planner(config, classes=10)), []


def test_stale_running_trials_from_a_killed_driver_are_recovered(tmp_path: Path) -> None:
    study, searcher, _ = make(tmp_path)
    n = searcher.suggest("a")["number"]  # left RUNNING, as after kill -9
    # this process's own leftover (no lease held on it): stale on the spot
    lease = Lease(open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    assert recover_stale(study, 7, lease.stale(study)) == [(n, "interrupted")]
    assert study.trials[n].user_attrs["fail_reason"] == "interrupted"
    assert study.trials[n + 1].state == TrialState.WAITING
    assert Counts.of(study.trials).done == 0  # interrupted trials don't count


def test_a_trial_another_driver_recovered_is_lost_not_stored(tmp_path: Path) -> None:
    study, searcher, events = make(tmp_path)
    config = searcher.suggest("a")
    searcher.on_trial_result("a", epoch(1, 0.3))
    # its lease expired: another driver failed it "interrupted" (and re-queued it)
    other = optuna.load_study(
        study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 's.db'}")
    )
    recover_stale(other, 7, [other.trials[config["number"]]])
    searcher.on_trial_complete("a", final(0.6))
    assert events[-1] == (
        "lost",
        {"number": config["number"], "reason": "recovered by another driver"},
    )
    trial = study.trials[config["number"]]
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "interrupted"
    assert trial.user_attrs["accuracy_per_epoch"] == [0.3]  # our final attrs never landed
    assert searcher.suggest("b") is not None  # the search goes on


def test_two_stage_waits_for_stage_one_then_scales_the_best(tmp_path: Path) -> None:
    study, searcher, _ = make(tmp_path, strategy="two-stage", trials=4, budget=100_000_000)
    a, b = searcher.suggest("a"), searcher.suggest("b")
    assert a["stage"] == b["stage"] == "phi1"
    assert searcher.suggest("c") is None  # stage 2 waits for stage 1
    searcher.on_trial_complete("a", final(0.3))
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("b", final(0.7))
    c = searcher.suggest("c")
    d = searcher.suggest("d")
    assert c["stage"] == d["stage"] == "scaled"
    trials = study.trials
    phi1 = [t for t in trials if t.user_attrs.get("stage") == "phi1" and t.values]
    best = max(phi1, key=lambda t: t.values[0])  # equal cost, so the Pareto-best is the best
    scaled = [t for t in trials if t.user_attrs.get("stage") == "scaled"]
    # stage 1: the paper preset's block options (expansion 4 -> nearest allowed 2), twice the
    # baseline's MACs, fitted by counting (no triple rejected)
    baseline = count_spec(optuna_spec(phi1[0].user_attrs).replace(phi=0.0)).macs
    for trial in phi1:
        spec = optuna_spec(trial.user_attrs)
        assert (spec.block, spec.expansion) == ("standard", 2)
        assert 1.3 * baseline < trial.user_attrs["macs"] <= 2 * baseline
    # stage 2: the best triple scaled to the budget first, then to the level below (a family)
    levels = searcher.planner.family_levels()
    assert len(levels) == 2 and levels[-1] == 100_000_000 and levels[0] > 2 * baseline
    assert [t.user_attrs["parent"] for t in scaled] == [best.number, best.number]
    assert [t.user_attrs["level"] for t in scaled] == [levels[1], levels[0]]
    assert [t.user_attrs["member"] for t in scaled] == [2, 1]
    for trial in scaled:
        assert trial.params == {**best.params, "target_macs": trial.user_attrs["level"]}
        spec = optuna_spec(trial.user_attrs)
        assert (spec.alpha, spec.beta, spec.gamma) == tuple(
            best.user_attrs["spec_json"][k] for k in ("alpha", "beta", "gamma")
        )
        assert 0.7 * trial.user_attrs["level"] < trial.user_attrs["macs"]
        assert trial.user_attrs["macs"] <= trial.user_attrs["level"]


@pytest.mark.parametrize("strategy", ["joint", "two-stage"])
def test_finished_when_the_study_has_its_trials(tmp_path: Path, strategy: str) -> None:
    _, searcher, _ = make(tmp_path, strategy=strategy, trials=1, budget=40_000_000)
    searcher.suggest("a")
    assert searcher.suggest("b") is None  # one running, none left to start
    searcher.on_trial_complete("a", final(0.5))
    assert searcher.suggest("b") == "FINISHED"
