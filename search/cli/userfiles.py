"""Read a small text file the user names (``--spec``, ``--space``, ``--preset FILE``) or say why.

Why one reader: a binary file, a directory, a device such as /dev/zero or a file that is not
UTF-8 each gave a different traceback. Here every such case is one ``UserError`` line naming the
option, the file and the fix, and nothing larger than ``common.bounds.MAX_TEXT_BYTES`` is read.
Each file is read once: callers parse the text this returns (``space.searchspace.parse_space``).
"""

from __future__ import annotations

import stat
from pathlib import Path

from common.bounds import MAX_TEXT_BYTES
from common.errors import UserError


def read_text_file(path: str | Path, flag: str) -> str:
    """The file's text (UTF-8, a leading BOM dropped); ``UserError`` naming ``flag`` otherwise."""
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
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from exc
