"""Storage URLs: parse and check them, and keep their passwords out of every output.

:func:`parse_url` refuses, before anything connects or writes, what would fail later or be
silently ignored: an unknown dialect, a database driver module that is not installed (with the
package to install), and query arguments the database does not take.

A storage URL may carry a password (``postgresql+psycopg://user:PASSWORD@host/db``), and it must
never reach an output, a log, a report or a stored attribute. Every URL shown to the user goes
through :func:`mask_url` (SQLAlchemy's ``render_as_string(hide_password=True)``, the same ``***``
the HTML report shows), and every error message goes through :func:`scrub` before it is printed
(``search.cli``), which removes the passwords of every URL this process has parsed. Better still,
keep the password out of the URL: psycopg reads ``PGPASSWORD`` and ``~/.pgpass``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from common.errors import UserError

MASK = "***"
# a URL's password in free text: scheme://user:PASSWORD@ and ?password=... / &password=...
_AUTHORITY_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^\s:/@]*:)[^\s@]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&\s'\"]*", re.IGNORECASE)
_SECRETS: set[str] = set()  # passwords of every storage URL this process has seen (for scrub)

# pip packages of the database driver modules SQLAlchemy's dialects import, where the names differ
DRIVER_PACKAGES = {
    "psycopg": "'effnas[postgres]'",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "cx_Oracle": "cx-Oracle",
}
# libpq's connection parameters, which psycopg (and psycopg2) take as URL query arguments: the
# keywords PQconndefaults() lists in libpq 18 (PostgreSQL docs, "Parameter Key Words")
LIBPQ_PARAMETERS = frozenset(
    {
        "application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
        "fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host", "hostaddr",
        "keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
        "load_balance_hosts", "max_protocol_version", "min_protocol_version", "oauth_client_id",
        "oauth_client_secret", "oauth_issuer", "oauth_scope", "options", "passfile", "password",
        "port", "replication", "require_auth", "requirepeer", "service",
        "ssl_max_protocol_version", "ssl_min_protocol_version", "sslcert", "sslcertmode",
        "sslcompression", "sslcrl", "sslcrldir", "sslkey", "sslkeylogfile", "sslmode",
        "sslnegotiation", "sslpassword", "sslrootcert", "sslsni", "target_session_attrs",
        "tcp_user_timeout", "user",
    }
)  # fmt: skip


def _parsed_or_none(url: str) -> URL | None:
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None


def url_secrets(url: str) -> set[str]:
    """The password(s) in ``url``, as written and as decoded (empty when it has none)."""
    found = {m.group(0)[len(m["head"]) : -1] for m in _AUTHORITY_PASSWORD.finditer(url)}
    found |= {m.group(0)[len(m["head"]) :] for m in _QUERY_PASSWORD.finditer(url)}
    parsed = _parsed_or_none(url)
    if parsed is not None:
        found.add(parsed.password or "")
        query = parsed.query.get("password")
        found.update([query] if isinstance(query, str) else list(query or ()))
    return {secret for secret in found if secret and secret != MASK}


def remember_secrets(urls: Iterable[str]) -> None:
    """Register the passwords of ``urls`` so that :func:`scrub` removes them from any text."""
    for url in urls:
        _SECRETS.update(url_secrets(url))


def mask_url(url: str) -> str:
    """The URL as safe to print: its password (and any ``password=`` query value) is ``***``.

    The one masking function of the project: the CLI's messages, the final ``dashboard:`` line,
    the resume hint and the HTML report all use it. A URL without a password is returned as
    given; one SQLAlchemy cannot parse is masked by pattern.
    """
    remember_secrets([url])
    parsed = _parsed_or_none(url)
    if parsed is None:
        return _mask_patterns(url)
    if parsed.password is None and "password" not in parsed.query:
        return url
    return _mask_patterns(parsed.render_as_string(hide_password=True))


def _mask_patterns(text: str) -> str:
    text = _AUTHORITY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def scrub(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with every known storage password replaced by ``***`` (the last line of defence).

    Known: the passwords of ``urls`` and of every URL parsed or masked in this process so far;
    any other ``scheme://user:PASSWORD@`` in the text is masked by pattern too.
    """
    remember_secrets(urls)
    text = _mask_patterns(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, or a UserError naming the bad text (password masked) and the form."""
    shown = mask_url(url)  # also registers the password for scrub()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise UserError(
            f"bad --storage URL {shown!r}: {exc}; use e.g. sqlite:///search.db or "
            "postgresql+psycopg://user@host/db"
        ) from exc
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError as exc:
        raise UserError(
            f"bad --storage URL {shown!r}: unknown database dialect {parsed.drivername!r}; "
            "use sqlite:///FILE or postgresql+psycopg://..."
        ) from exc
    except ImportError as exc:
        raise _missing_driver(shown, exc) from exc
    try:  # the driver module SQLAlchemy would import at the first connection
        dialect.import_dbapi()
    except ImportError as exc:
        raise _missing_driver(shown, exc) from exc
    _check_query(parsed, shown)
    return parsed


def _missing_driver(shown: str, exc: ImportError) -> UserError:
    """The one line for a known dialect whose database driver module is not installed."""
    module = (exc.name or str(exc)).split(".")[0]
    package = DRIVER_PACKAGES.get(module, module)
    return UserError(
        f"--storage URL {shown!r} needs the database driver module {module!r}, which is not "
        f"installed; pip install {package} (or use sqlite:///FILE)"
    )


def _check_query(url: URL, shown: str) -> None:
    """Refuse query arguments the database would ignore or reject, before anything connects.

    SQLite takes none: SQLAlchemy drops unknown ones with a warning (``?mode=ro`` without
    ``uri=true``), and the search sets the journaling and busy timeout itself. PostgreSQL takes
    libpq's connection parameters (``LIBPQ_PARAMETERS``). Other dialects are their driver's to
    judge."""
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return
    allowed = LIBPQ_PARAMETERS if backend == "postgresql" else frozenset()
    unknown = sorted(set(url.query) - allowed)
    if not unknown:
        return
    if backend == "sqlite":
        fix = "an SQLite URL takes no query arguments; pass sqlite:///PATH alone"
    else:
        fix = (
            "a PostgreSQL URL takes libpq connection parameters (e.g. sslmode, connect_timeout, "
            "application_name); check the spelling or leave it out"
        )
    raise UserError(f"--storage URL {shown!r} has unknown query argument(s) {unknown}; {fix}")


def sqlite_path(url: URL) -> Path | None:
    """The database file of an SQLite URL (None for other dialects and in-memory SQLite)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()
