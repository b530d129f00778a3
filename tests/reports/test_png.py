"""`--png` through kaleido 1.x and the system Chromium; a clear error when it cannot run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from search.cli import main


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("google-chrome") is None,
    reason="no Chrome/Chromium for kaleido",
)
def test_png_files_written(make_study: Callable[..., str], tmp_path: Path) -> None:
    url = make_study()
    png = tmp_path / "png"
    args = ["report", "--storage", url, "--out", str(tmp_path / "r.html"), "--png", str(png)]
    assert main(args) == 0
    for name in ("pareto", "curves", "coefficients"):
        data = (png / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_png_without_browser_is_one_line(
    make_study: Callable[..., str], tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    url = make_study()
    args = ["report", "--storage", url, "--format", "csv", "--png", str(tmp_path / "png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "BROWSER_PATH" in err and "not an executable file" in err
    assert err.count("\n") == 1
