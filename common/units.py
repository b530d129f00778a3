"""Human-readable quantities for messages (here so that ``common.errors`` needs nothing above)."""


def format_bytes(count: float) -> str:
    """``1536 -> '1.5 KiB'``: binary units, one decimal."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
