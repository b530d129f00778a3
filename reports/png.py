"""Static PNG images of the report's figures through kaleido (1.x drives Chrome/Chromium).

kaleido 1.x no longer bundles a browser: it asks ``choreographer`` to find one, which honours the
``BROWSER_PATH`` environment variable and otherwise searches PATH and the usual install paths
(Debian's /usr/bin/chromium is found that way). We look first, so a missing browser or a missing
kaleido is one clear ``UserError`` line instead of a long traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go

from common.errors import UserError

_HOW = (
    "install Chromium (Debian: apt install chromium) or point BROWSER_PATH at a Chrome/Chromium "
    "binary, then run again; the HTML report does not need it"
)


def find_browser() -> str:
    """The browser kaleido will drive; ``UserError`` when kaleido or a browser is missing."""
    try:
        import kaleido  # noqa: F401  (imported only to check it is installed)
        from choreographer.browsers.chromium import Chromium
    except ImportError as exc:
        raise UserError(
            f"--png needs kaleido, which is not installed ({exc.name}); "
            "pip install 'effnas[png]' and run again"
        ) from exc
    override = os.environ.get("BROWSER_PATH")
    if override is not None:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise UserError(f"--png: BROWSER_PATH={override!r} is not an executable file; {_HOW}")
        return override
    path = Chromium.find_browser(skip_local=False)
    if path is None:
        raise UserError(f"--png: kaleido found no Chrome/Chromium browser; {_HOW}")
    return path


def write_pngs(
    figures: dict[str, go.Figure], out_dir: Path, width: int = 1200, scale: float = 1.0
) -> list[Path]:
    """Write ``out_dir/<key>.png`` for every figure; returns the paths written."""
    find_browser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --png directory {out_dir}: {exc.strerror}") from exc
    written = []
    for key, fig in figures.items():
        path = out_dir / f"{key}.png"
        height = fig.layout.height or 500
        try:
            fig.write_image(str(path), format="png", width=width, height=height, scale=scale)
        except (RuntimeError, OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"--png: kaleido could not render {key}.png ({reason}); {_HOW}"
            ) from exc
        written.append(path)
    return written
