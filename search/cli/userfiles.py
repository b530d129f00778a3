"""Read a small text file the user names (``--spec``, ``--space``, ``--preset FILE``) or say why;
check a directory the user names for output (``search train --save``) before the work starts.

Why one reader: a binary file, a directory, a device such as /dev/zero or a file that is not
UTF-8 each gave a different traceback. Here every such case is one ``UserError`` line naming the
option, the file and the fix, nothing larger than ``common.bounds.MAX_TEXT_BYTES`` is read, and
nothing nested deeper than ``common.bounds.MAX_NESTING`` reaches a parser.
Each file is read once: callers parse the text this returns (``space.searchspace.parse_space``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common.bounds import MAX_TEXT_BYTES, check_nesting
from common.errors import UserError


def read_text_file(path: str | Path, flag: str) -> str:
    """The file's text (UTF-8, a leading BOM dropped); ``UserError`` naming ``flag`` otherwise.

    The text is also refused when it nests deeper than ``common.bounds.MAX_NESTING``, so the JSON
    or TOML parser the caller hands it to never recurses to Python's limit."""
    file = Path(path).expanduser()
    shown = f"{flag} file {str(file)!r}"
    try:
        info = file.stat()
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{shown} is a directory; pass the path of a text file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{shown} is not a regular file; pass the path of a text file")
    if info.st_size > MAX_TEXT_BYTES:
        raise UserError(
            f"{shown} is {info.st_size:,} bytes, not a small text file (at most "
            f"{MAX_TEXT_BYTES:,}); pass the spec/space/preset file, not a data or weights file"
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise UserError(f"{shown} is a binary file, not text; pass a TOML or JSON text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from exc
    check_nesting(text, shown)
    return text


def check_output_dir(path: str | Path, flag: str) -> Path:
    """``path`` as a directory a command can create or write into, checked before the work that
    fills it (a training run must not be thrown away at the end because its destination is an
    existing file or cannot be written); ``UserError`` naming ``flag`` otherwise.

    Nothing is created here: the nearest existing ancestor must be a directory this process may
    write into (``os.access``; a read-only file system counts as not writable)."""
    target = Path(path).expanduser()
    shown = f"{flag} {str(target)!r}"
    if target.exists() and not target.is_dir():
        raise UserError(f"{shown} is an existing file; pass a directory (new or existing)")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(
            f"cannot create {shown}: {str(existing)!r} is a file, not a directory; "
            "pass a directory path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write to {shown}: no write permission on {str(existing)!r}; "
            "pass a directory you can write to"
        )
    return target


@contextlib.contextmanager
def output_dir(path: str | Path | None, flag: str) -> Iterator[Path | None]:
    """``path`` checked (:func:`check_output_dir`), created and written to once, before the
    work that fills it: whatever makes a place unwritable (no permission, a read-only or virtual
    file system such as ``/proc``, where root passes ``os.access`` but cannot create anything)
    is refused up front rather than found out after training. Yields the directory (None passes
    through: nothing to make); when the work inside fails, the directories this made are removed
    again while still empty, so a run that did not finish leaves nothing behind."""
    if path is None:
        yield None
        return
    target = check_output_dir(path, flag)
    created = []
    missing = target
    while not missing.exists():
        created.append(missing)  # deepest first
        missing = missing.parent
    try:
        try:
            target.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target, prefix=".effnas-probe-"):
                pass
        except OSError as exc:
            raise UserError(
                f"cannot write to {flag} {str(target)!r}: {exc.strerror or exc}; "
                "pass a directory you can write to"
            ) from exc
        yield target
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
