"""Open an existing Optuna storage and study without ever creating anything.

Reports and exports are read-only in spirit: a mistyped ``--storage`` or ``--study`` must say so
instead of silently creating an empty database or study (which is what
``optuna.storages.RDBStorage`` and ``optuna.create_study`` would do). So the URL is checked first
with SQLAlchemy (file exists for SQLite, the Optuna ``studies`` table exists for any backend) and
the storage is then opened with ``skip_table_creation=True``; studies are only ever loaded with
``optuna.load_study``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from common.errors import UserError
from search.study.storage import mask_url, parse_url, scrub

DEFAULT_STORAGE = "sqlite:///search.db"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url``; ``UserError`` if it is not an existing Optuna database."""
    parsed = parse_url(url)  # the same URL checks (and messages) as `search run`
    shown = mask_url(url)  # the password never reaches a message or the report
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise UserError(
                f"no study database at {shown}: the file {database!r} does not exist; "
                "pass --storage sqlite:///PATH.db of a database written by `search run`"
            )
    try:
        engine = sqlalchemy.create_engine(url)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise UserError(
            f"cannot open storage {shown}: {scrub(str(exc))}; use sqlite:///PATH.db or install the "
            "database driver (e.g. pip install 'effnas[postgres]')"
        ) from exc
    try:
        has_studies = sqlalchemy.inspect(engine).has_table("studies")
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) is not None else exc).splitlines()[0]
        raise UserError(f"cannot read storage {shown}: {scrub(reason)}") from exc
    finally:
        engine.dispose()
    if not has_studies:
        raise UserError(
            f"{shown} is not an Optuna study database (no 'studies' table); "
            "pass the --storage URL that `search run` wrote to"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except (SQLAlchemyError, RuntimeError) as exc:
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError(f"cannot open storage {shown}: {reason}") from exc


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(optuna.get_all_study_names(storage))


def load_study(storage: optuna.storages.BaseStorage, name: str | None, url: str) -> optuna.Study:
    """Load study ``name``; with ``name=None`` the storage's only study.

    ``UserError`` (listing the studies that do exist) when the name is unknown or ambiguous.
    """
    names = study_names(storage)
    if name is None:
        if len(names) == 1:
            name = names[0]
        else:
            raise UserError(
                f"pass --study NAME: {mask_url(url)} holds {len(names)} studies "
                f"({', '.join(names) or 'none'})"
            )
    if name not in names:
        raise UserError(
            f"no study named {name!r} in {mask_url(url)}; existing studies: "
            f"{', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=storage)
