"""``common.bounds.nesting_depth``: brackets counted on the text, not in strings or comments."""

from __future__ import annotations

import pytest

from common.bounds import MAX_NESTING, check_nesting, nesting_depth
from common.errors import UserError


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"alpha": [1.0, 1.5], "block": "se"}', 2),
        ('{"s": "[[[[{{{{", "t": "\\"[[["}', 1),  # brackets in strings, an escaped quote
        ("alpha = [1.0, 1.5] # [[[[[[[[\n[space]\nblock = ['se']\n", 1),  # a TOML comment
        ("s = '''[[[\n[[['''\nt = \"\"\"{{{\"\"\"\nu = [[1], [2]]\n", 2),  # multi-line strings
        ("[" * 100_000, 100_000),  # counted without recursion
        ("", 0),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_check_nesting_names_the_file_and_the_maximum() -> None:
    check_nesting("[" * MAX_NESTING, "--space file 'x.json'")
    deep = r"^--space file 'x.json' is nested too deeply \(17 levels"
    with pytest.raises(UserError, match=deep):
        check_nesting("[" * (MAX_NESTING + 1), "--space file 'x.json'")
