"""`--png` through kaleido 1.x and a Chrome/Chromium; a clear error when it cannot run.

kaleido comes with the dev extra (``pip install -e ".[dev]"``); the browser is the system's and
is optional. The test that writes images runs where ``reports.png.find_browser`` finds one (the
system Chromium, or ``BROWSER_PATH``) and is skipped, with the reason, where none is installed;
the error tests hold whether or not a browser is installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from common.errors import UserError
from reports.png import find_browser
from search.cli import main


def browser_or_reason() -> tuple[str | None, str]:
    try:
        return find_browser(), ""
    except UserError as exc:
        return None, str(exc)


BROWSER, NO_BROWSER = browser_or_reason()


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.skipif(BROWSER is None, reason=f"needs a browser for kaleido: {NO_BROWSER}")
def test_png_files_written(make_study: Callable[..., str], tmp_path: Path) -> None:
    url = make_study()
    png = tmp_path / "png"
    args = ["report", "--storage", url, "--out", str(tmp_path / "r.html"), "--png", str(png)]
    assert main(args) == 0
    for name in ("pareto", "curves", "coefficients"):
        data = (png / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_png_with_a_missing_browser_path_is_one_line(
    make_study: Callable[..., str], tmp_path: Path, capsys, monkeypatch
) -> None:
    pytest.importorskip("kaleido", reason="kaleido is installed by the dev extra")
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    url = make_study()
    args = ["report", "--storage", url, "--format", "csv", "--png", str(tmp_path / "png")]
    err = one_error_line(capsys, args)
    assert "BROWSER_PATH" in err and "not an executable file" in err
    assert not (tmp_path / "png").exists()


def test_png_without_any_browser_is_one_line(
    make_study: Callable[..., str], tmp_path: Path, capsys, monkeypatch
) -> None:
    pytest.importorskip("kaleido", reason="kaleido is installed by the dev extra")
    from choreographer.browsers.chromium import Chromium

    # the machine may have a Chromium: make the lookup find none, whatever is installed
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(Chromium, "find_browser", staticmethod(lambda *a, **k: None))
    url = make_study()
    args = ["report", "--storage", url, "--format", "csv", "--png", str(tmp_path / "png")]
    err = one_error_line(capsys, args)
    assert "found no Chrome/Chromium browser" in err and "apt install chromium" in err


def test_png_without_kaleido_is_one_line(
    make_study: Callable[..., str], tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "kaleido", None)  # as if it were not installed
    url = make_study()
    args = ["report", "--storage", url, "--format", "csv", "--png", str(tmp_path / "png")]
    err = one_error_line(capsys, args)
    assert "--png needs kaleido" in err and "pip install" in err
