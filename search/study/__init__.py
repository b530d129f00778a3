"""The study: the Optuna database a search writes and every report reads.

This package is the one home of the study's contract: how its storage URL is parsed and masked
(``urls``), how the database is checked and opened, to write or read-only (``database``), what a
trial and a study carry (``schema``: objectives, user-attr keys, status values), which trials are
Pareto-optimal (``front``), how interrupted and stale trials are repaired (``ledger``) and which
RUNNING trials a live driver still holds (``lease``). The search writes through it; ``reports``
reads through it and imports nothing else of ``search``.
"""

from search.study.database import (
    DEFAULT_STORAGE,
    ExistingStudy,
    check_compatible,
    check_database,
    find_study,
    load_study,
    open_existing,
    open_storage,
    study_names,
)
from search.study.front import Point, best_accuracy, dominates, pareto_front, trial_point
from search.study.schema import DIRECTIONS, METRIC_NAMES, Counts, is_interrupted, status_of
from search.study.urls import mask_url, parse_url, scrub, sqlite_path, url_secrets

__all__ = [
    "DEFAULT_STORAGE",
    "DIRECTIONS",
    "METRIC_NAMES",
    "Counts",
    "ExistingStudy",
    "Point",
    "best_accuracy",
    "check_compatible",
    "check_database",
    "dominates",
    "find_study",
    "is_interrupted",
    "load_study",
    "mask_url",
    "open_existing",
    "open_storage",
    "pareto_front",
    "parse_url",
    "scrub",
    "sqlite_path",
    "status_of",
    "study_names",
    "trial_point",
    "url_secrets",
]
