"""Each bound has one home and each rule one function, used by every path that needs it."""

from __future__ import annotations

import pytest

import common.bounds
import search.cli.train
import space.fit
import space.spec
import trainers.data
from common.errors import UserError
from search.cli.userfiles import MAX_TEXT_BYTES
from tests.trainers.random_data import random_data


def test_the_classes_rule_is_one_function_for_every_command() -> None:
    assert search.cli.train.check_classes is trainers.data.check_classes
    data = random_data(4, 0)
    assert trainers.data.check_classes(None, data, "random") == 3
    assert trainers.data.check_classes(3, data, "random", "--classes") == 3
    with pytest.raises(UserError) as caught:
        trainers.data.check_classes(7, data, "random", "--classes")
    assert str(caught.value) == (
        "--classes 7 does not match random, which has 3 classes; leave --classes out to use 3"
    )


def test_the_maxima_live_in_common_bounds() -> None:
    assert space.spec.MAX_PHI is common.bounds.MAX_PHI
    assert space.spec.MAX_RESOLUTION is common.bounds.MAX_RESOLUTION
    assert space.fit.check_budget is common.bounds.check_budget
    assert MAX_TEXT_BYTES is common.bounds.MAX_TEXT_BYTES
