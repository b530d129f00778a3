"""Bad inputs to every command: one line on stderr, exit 2, the study database byte-identical.

The table of user mistakes (values above the maxima of ``common.bounds``, NaN/inf, zero
flags over a preset, presets of the wrong type, binary/directory/non-UTF-8 files, bad storage
URLs) runs through the real console entry point against one existing study database, written
like `search run` writes it (Optuna's schema, WAL journaling). Each case must be refused before
anything starts: ``ray.init`` is replaced by a function that fails the test, and after each case
the database file hashes as before, its write-ahead log holds no frame, and no other file of the
test's directory (SQLite files of other programs among them) was created or changed.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from common.bounds import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_SUBSET, MAX_TRIALS
from search.cli import main
from tests.fixtures_pg import free_port
from tests.reports.conftest import STUDY, write_study

BAD_FILES: dict[str, bytes] = {
    "binary.toml": bytes(range(256)) * 4,  # NUL bytes: a binary file
    "latin1.toml": "block = 'caf\xe9'\n".encode("latin-1"),  # not UTF-8
    "lots.toml": b'budget_flops = "lots"\n',
    "half.toml": b"budget_flops = 3e8\nepochs = 1.5\n",
    "yes.toml": b"budget_flops = 3e8\ntrials = true\n",
    "space_type.toml": b'budget_flops = 3e8\n[space]\nexpansion = "big"\n',
    "space_scalar.toml": b"budget_flops = 3e8\nspace = 5\n",
    "unknown.toml": b"budget_flops = 3e8\nlearning_rate = 0.1\n",
    "broken.toml": b"budget_flops = = 3\n",
    "huge.toml": b"budget_flops = 1e30\n",
    "storage.toml": b'budget_flops = 3e8\nstorage = ["sqlite:///x.db"]\n',
    "alpha.toml": b"alpha = [3.0, 4.0]\n",
    "list.json": b"[1, 2, 3]\n",
    "phi.json": b'{"phi": 99}\n',
    "nan.json": b'{"alpha": NaN}\n',
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "deep.toml": b"budget_flops = 3e8\nalpha = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
}
# SQLite files of other programs: a lone "studies" table, and Optuna's table names with other
# columns (the second passes a check of table names alone)
FOREIGN_DATABASES: dict[str, list[str]] = {
    "lone.db": ["CREATE TABLE studies (x INTEGER)"],
    "foreign.db": [
        f"CREATE TABLE {name} (x INTEGER)" for name in ("studies", "trials", "version_info")
    ],
}
# a known dialect whose driver module is not installed (skipped where it is)
NO_DRIVER = importlib.util.find_spec("MySQLdb") is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The study database (WAL, like `search run`'s) and the bad files ("binary.toml" is
    ``{binary_toml}`` in a command line)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    db = root / "study.db"
    write_study(db)
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    gc.collect()
    for name, data in BAD_FILES.items():
        (root / name).write_bytes(data)
    for name, statements in FOREIGN_DATABASES.items():
        with sqlite3.connect(root / name) as connection:
            for statement in statements:
                connection.execute(statement)
        connection.close()
    (root / "folder.toml").mkdir()
    made = [*BAD_FILES, *FOREIGN_DATABASES, "folder.toml"]
    names = {name.replace(".", "_"): str(root / name) for name in made}
    return {"db": str(db), "url": f"sqlite:///{db}", "root": str(root), **names}


# (command line with {placeholders} from `world`, a fragment the one error line must contain)
TINY = "--budget-flops 3e7 --subset 300 --epochs 1 --device cpu"
RUN = f"run --storage {{url}} --study {STUDY} {TINY}"
PG = "postgresql+psycopg://me:pw@127.0.0.1:{port}/effnas"
CASES: list[tuple[str, str]] = [
    # `search run`: numbers above the maxima, below the minima, NaN and infinity
    (f"{RUN} --budget-flops 1e30", "above the maximum 1e+14"),
    (f"{RUN} --budget-flops inf", "not a positive number"),
    (f"{RUN} --budget-flops nan", "not a positive number"),
    (f"{RUN} --budget-flops -5", "not a positive number"),
    ("run --storage {url} --preset quick --budget-flops 0", "budget 0.0 is not a positive"),
    (
        f"{RUN} --epochs 1000000",
        f"epochs=1000000 is out of range; pass --epochs as an integer in [1, {MAX_EPOCHS}]",
    ),
    (f"{RUN} --epochs 0", "epochs=0 is out of range"),
    ("run --storage {url} --preset quick --epochs 0", "epochs=0 is out of range"),
    (f"{RUN} --trials 1000000", f"[1, {MAX_TRIALS}]"),
    (f"{RUN} --trials 0", "trials=0"),
    (f"{RUN} --subset 100000000", f"[2, {MAX_SUBSET}]"),
    (f"{RUN} --subset 1", "subset=1 is out of range"),
    (f"{RUN} --batch-size 10000000", f"[1, {MAX_BATCH_SIZE}]"),
    (f"{RUN} --concurrency 100000", "[1, 1024]"),
    (f"{RUN} --val-fraction 0.9", "(0, 0.5]"),
    (f"{RUN} --val-fraction nan", "val_fraction=nan is not a finite number"),
    (f"{RUN} --gpus-per-trial 16", "[0, 8]"),
    (f"{RUN} --gpus-per-trial inf", "gpus_per_trial=inf is not a finite number"),
    (f"{RUN} --seed -1", "seed=-1 is out of range"),
    (f"{RUN} --seed 99999999999", "[0, 2147483647]"),
    (f"{RUN} --phi 9", "phi must lie in [0, 8]"),
    (f"{RUN} --resolution 5000", "[8, 1024]"),
    (f"{RUN} --alpha inf", "alpha range [inf, inf]"),
    (f"{RUN} --trials 1e3", "'1e3' is not a valid integer"),
    (f"{RUN} --study=", "--study must be a non-empty name"),
    (f"{RUN} --study {'s' * 600}", "at most 512 printable characters"),
    (f"{RUN} --dataset mnist", "unknown dataset 'mnist'"),
    (f"{RUN} --device tpu", "unknown device 'tpu'"),
    (f"{RUN} --strategy greedy", "unknown strategy 'greedy'"),
    (f"{RUN} --budget-flops 1e6", "below the smallest network"),
    (f"{RUN} --budget-params 1e12", "pass --budget-params as a number in [1, 1e+10]"),
    (f"{RUN} --budget-params 1000", "--budget-params 1,000 is below the smallest network"),
    (f"{RUN} --objectives accuracy,speed", "unknown --objectives 'accuracy,speed'"),
    (f"{RUN} --objectives accuracy,latency --latency-batch 0", "latency_batch=0 is out of range"),
    (f"{RUN} --latency-budget-ms nan", "latency_budget_ms=nan is not a finite number"),
    (f"{RUN} --latency-budget-ms 1 --latency-backend tvm", "choose --latency-backend from"),
    (f"run --storage {{url}} --study {STUDY} --budget-flops 4e8", "different configuration"),
    # presets: unknown, wrong types, broken files
    ("run --storage {url} --preset nosuch", "unknown --preset 'nosuch'"),
    ("run --storage {url} --preset {lots_toml}", "budget_flops = 'lots' in --preset"),
    ("run --storage {url} --preset {half_toml}", "epochs = 1.5 in --preset"),
    ("run --storage {url} --preset {yes_toml}", "trials = True in --preset"),
    ("run --storage {url} --preset {space_type_toml}", "expansion value(s) ['big']"),
    ("run --storage {url} --preset {space_scalar_toml}", "space = 5 in --preset"),
    ("run --storage {url} --preset {storage_toml}", "must be a TOML string"),
    ("run --storage {url} --preset {unknown_toml}", "unknown key(s) ['learning_rate']"),
    ("run --storage {url} --preset {broken_toml}", "is not valid TOML"),
    ("run --storage {url} --preset {huge_toml}", "above the maximum 1e+14"),
    ("run --storage {url} --preset {binary_toml}", "is a binary file"),
    ("run --storage {url} --preset {latin1_toml}", "is not UTF-8 text"),
    ("run --storage {url} --preset {folder_toml}", "is a directory"),
    # --space and --spec files
    (f"{RUN} --space {{binary_toml}}", "--space file"),
    (f"{RUN} --space {{latin1_toml}}", "is not UTF-8 text (byte 0xe9"),
    (f"{RUN} --space {{folder_toml}}", "is a directory"),
    (f"{RUN} --space {{alpha_toml}}", "alpha range [3, 4]"),
    (f"{RUN} --space {{list_json}}", "must hold a table"),
    (f"{RUN} --space {{root}}/missing.toml", "No such file or directory"),
    (f"{RUN} --spec {{binary_toml}}", "is a binary file"),
    (f"{RUN} --spec /dev/zero", "is not a regular file"),
    (f"{RUN} --spec {{deep_json}}", "nested too deeply"),
    # storage URLs
    (f"run --storage nonsense {TINY}", "bad --storage URL 'nonsense'"),
    (f"run --storage foodb://h/x {TINY}", "unknown database dialect 'foodb'"),
    (f"run --storage {PG} {TINY}", "cannot reach --storage postgresql+psycopg://me:***@"),
    (f"run --storage sqlite:///{{root}}/no/dir.db {TINY}", "does not exist"),
    (f"run --storage sqlite:///{{binary_toml}} {TINY}", "not a study database"),
    # the other commands
    ("macs --expansion 99", "expansion=99 is out of range"),
    ("macs --phi nan", "phi=nan is out of range"),
    ("macs --spec {phi_json}", "phi must lie in [0, 8]"),
    ("macs --spec {nan_json}", "alpha=nan is out of range"),
    ("macs --spec {latin1_toml}", "is not UTF-8 text"),
    ("macs --spec {folder_toml}", "is a directory"),
    ("space fit --budget-flops 1e30", "above the maximum 1e+14"),
    ("space fit --budget-flops nan", "not a positive number"),
    ("train --epochs 1000000", f"[1, {MAX_EPOCHS}]"),
    ("train --batch-size 0", "batch_size=0 is out of range"),
    ("train --lr inf", "lr=inf is not a finite number"),
    ("train --seed -5", "seed=-5 is out of range"),
    ("train --val-fraction 1.5", "(0, 0.5]"),
    ("train --threads 100000", "[1, 1024]"),
    ("train --spec {binary_toml}", "is a binary file"),
    ("studies --storage sqlite:///{root}/missing.db", "no study database"),
    ("studies --storage nonsense", "bad --storage URL 'nonsense'"),
    (f"studies --storage {PG}", "cannot reach --storage postgresql+psycopg://me:***@"),
    ("best --storage {url} --study nope", "no study 'nope'"),
    ("best --storage {url}", "Missing option '--study'"),
    ("report --storage {url} --study nope", "no study named 'nope'"),
    ("report --storage {url} --format xml", "Invalid value for '--format'"),
    ("report --storage bogus", "bad --storage URL 'bogus'"),
    ("export --storage {url} --study {STUDY} --trial 99 --out {root}/e", "has no trial 99"),
    ("export --storage {url} --trial x --out {root}/e", "'x' is not a valid integer"),
    ("export --storage {url} --study nope --trial 0 --out {root}/e", "no study named 'nope'"),
    # destinations checked before training
    ("train --save {binary_toml}", "--save '{binary_toml}' is an existing file"),
    ("train --save {binary_toml}/weights", "is a file, not a directory"),
    # query arguments the database would ignore or reject
    (f"run --storage {{url}}?mode=bogus {TINY}", "unknown query argument(s) ['mode']"),
    ("studies --storage {url}?timeout=5", "an SQLite URL takes no query arguments"),
    ("report --storage {url}?mode=ro", "unknown query argument(s) ['mode']"),
    (f"run --storage {PG}?sslmode=disable&bogus=1 {TINY}", "unknown query argument(s) ['bogus']"),
    # SQLite files of other programs: every reader refuses them alike, before Optuna opens them
    ("report --storage sqlite:///{lone_db}", "it holds other tables: ['studies']"),
    ("report --storage sqlite:///{foreign_db}", "its 'studies' table is not Optuna's"),
    ("studies --storage sqlite:///{foreign_db}", "its 'studies' table is not Optuna's"),
    ("export --storage sqlite:///{foreign_db} --trial 0 --out {root}/e", "is not Optuna's"),
    (f"run --storage sqlite:///{{foreign_db}} {TINY}", "its 'studies' table is not Optuna's"),
    # nesting bounded on every file the user names
    (f"{RUN} --space {{deep_json}}", "nested too deeply (100,000 levels"),
    (f"{RUN} --space {{deep_toml}}", "nested too deeply"),
    ("run --storage {url} --preset {deep_toml}", "nested too deeply"),
    ("macs --spec {deep_json}", "nested too deeply"),
    # block options out of range whatever the block
    ("macs --se-ratio -4", "se_ratio=-4 is out of range; pass --se-ratio as an integer in [1, 64]"),
    ("macs --experts 1000000", "experts=1000000 is out of range"),
    ("macs --block se --experts 0", "experts=0 is out of range"),
    ("space fit --budget-flops 3e8 --se-ratio 1000", "se_ratio=1000 is out of range"),
    ("train --experts -1", "experts=-1 is out of range"),
]
if NO_DRIVER:  # a known dialect without its driver: the package to install, before connecting
    CASES += [
        ("studies --storage mysql://me:pw@127.0.0.1/effnas", "pip install mysqlclient"),
        (f"run --storage mysql+pymysql://me@127.0.0.1/effnas {TINY}", "pip install PyMySQL"),
        ("report --storage mysql://me@127.0.0.1/effnas", "driver module 'MySQLdb'"),
    ]


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (SQLite's -wal / -shm files aside: ``wal_bytes``) by its hash."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


def test_there_are_forty_and_more_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("command", "fragment"), CASES, ids=[c[0].replace(RUN, "run...")[:70] for c in CASES]
)
def test_bad_input_is_one_line_and_leaves_the_database(
    command: str,
    fragment: str,
    world: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bad input must be refused before Ray starts")

    monkeypatch.setattr(ray, "init", no_ray)
    db = Path(world["db"])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    files = snapshot(Path(world["root"]))
    argv = command.format(**world, STUDY=STUDY, port=free_port()).split()
    fragment = fragment.format(**world)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:  # pytest would hide them from stderr
        warnings.simplefilter("always")
        assert main(argv) == 2
    out, err = capsys.readouterr()
    assert [str(w.message) for w in caught] == []
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: ") and fragment in err, err
    # a write would be in the file or, while a connection stays open, in the write-ahead log
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert wal_bytes(db) == 0
    assert not Path(world["root"], "e").exists()
    assert snapshot(Path(world["root"])) == files


def test_save_without_write_permission_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.access`` says no (as for a user without write permission, which root never is)."""
    import search.cli.userfiles as userfiles

    monkeypatch.setattr(userfiles.os, "access", lambda path, mode: False)
    capsys.readouterr()
    assert main(["train", "--save", str(tmp_path / "new" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write to --save "), err
    assert f"no write permission on {str(tmp_path)!r}" in err
    assert list(tmp_path.iterdir()) == []


def test_save_to_a_place_root_cannot_create_is_refused_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``/proc`` passes ``os.access`` for root, but nothing can be created there: the directory
    is made before training, so the run is refused in one line instead of failing at the end."""
    capsys.readouterr()
    started = time.monotonic()
    assert main(["train", "--save", "/proc/nope", "--epochs", "1", "--subset", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write to --save '/proc/nope'")
    assert time.monotonic() - started < 30  # no data loaded, nothing trained
    assert not Path("/proc/nope").exists()
    # a run that fails after the directory was made leaves no empty directory behind
    target = tmp_path / "made" / "run"
    assert main(["train", "--save", str(target), "--classes", "7", "--subset", "64"]) == 2
    assert "--classes 7 does not match fashion-mnist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
