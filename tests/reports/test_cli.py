"""`search report` and `search export` through the real CLI entry point."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from search.cli import main
from space import ArchSpec


def test_report_html(make_study: Callable[..., str], tmp_path: Path, capsys) -> None:
    url = make_study(running=True)
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--study", "pareto-test", "--storage", url, "--out", str(out)]) == 0
    html = out.read_text()
    assert '<div id="pareto"' in html and "search still running (2 trials running)" in html
    err = capsys.readouterr().err
    assert f"wrote {out}" in err and "2 running" in err


def test_report_csv_to_stdout(make_study: Callable[..., str], capsys) -> None:
    url = make_study()
    assert main(["report", "--storage", url, "--format", "csv"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["trial"] for r in records] == ["0", "1", "3", "4", "2", "5", "6", "7", "8", "9"]
    assert [r["trial"] for r in records if r["pareto"] == "True"] == ["0", "1", "3", "4"]


def test_report_json_to_file(make_study: Callable[..., str], tmp_path: Path) -> None:
    url = make_study()
    out = tmp_path / "t.json"
    assert main(["report", "--storage", url, "--format", "json", "--out", str(out)]) == 0
    assert json.loads(out.read_text())[0]["macs"] == 107_610_528


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "no study named 'nope' in sqlite:///"),
        (["--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_report_user_errors(
    make_study: Callable[..., str], capsys, args: list[str], message: str
) -> None:
    url = make_study()
    assert main(["report", "--storage", url, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_report_missing_db_is_one_line_and_creates_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "missing.db"
    assert main(["report", "--study", "s", "--storage", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study database") and err.count("\n") == 1
    assert not path.exists()


def test_export_with_weights(make_study: Callable[..., str], tmp_path: Path, capsys) -> None:
    weights_dir = tmp_path / "weights" / "trial-1"
    weights_dir.mkdir(parents=True)
    (weights_dir / "weights.pt").write_bytes(b"not really torch but bytes")
    url = make_study(weights_dir=weights_dir)
    out = tmp_path / "export"
    args = ["export", "--study", "pareto-test", "--trial", "1", "--storage", url]
    assert main([*args, "--out", str(out)]) == 0
    assert ArchSpec.from_json((out / "spec.json").read_text()) == ArchSpec(classes=10)
    trial = json.loads((out / "trial.json").read_text())
    assert trial["number"] == 1 and trial["state"] == "COMPLETE"
    assert trial["values"] == [0.85, 193_783_104]
    assert trial["user_attrs"]["spec_id"] == ArchSpec(classes=10).spec_id
    assert trial["study_config"]["budget_macs"] == 400_000_000
    assert (out / "weights.pt").read_bytes() == b"not really torch but bytes"
    assert f"search train --spec {out / 'spec.json'}" in capsys.readouterr().out
    # the exported spec is accepted by every spec-taking command
    assert main(["macs", "--spec", str(out / "spec.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 193_783_104


def test_export_without_weights(make_study: Callable[..., str], tmp_path: Path, capsys) -> None:
    url = make_study()
    out = tmp_path / "e"
    assert main(["export", "--trial", "7", "--storage", url, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["spec.json", "trial.json"]
    assert json.loads((out / "trial.json").read_text())["status"] == "infeasible"
    assert "no weights.pt: the trial saved no weights" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "pareto-test", "--trial", "99"], "has no trial 99; it has trials 0..9"),
        (["--study", "other", "--trial", "0"], "existing studies: pareto-test"),
    ],
)
def test_export_errors(
    make_study: Callable[..., str], tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    url = make_study()
    out = tmp_path / "e"
    assert main(["export", *args, "--storage", url, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_export_bad_url(tmp_path: Path, capsys) -> None:
    args = ["export", "--study", "s", "--trial", "0", "--storage", "bogus", "--out", "x"]
    assert main(args) == 2
    assert "bad --storage URL 'bogus'" in capsys.readouterr().err
