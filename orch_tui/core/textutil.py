"""Small formatting helpers shared by every observer (so both show the same figures)."""

from __future__ import annotations


def format_bytes(value: float) -> str:
    """Binary units, about three significant figures: 1536 -> '1.50 KiB', 1023 KiB -> '1023 KiB'
    (never the exponent notation '.3g' would give)."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(size)} B"
            return f"{size:.0f} {unit}" if abs(size) >= 100 else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TiB"  # pragma: no cover - the loop always returns


def format_duration(seconds: float) -> str:
    """'h:mm:ss' for humans; negative or absurd values clamp to 0."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def printable(text: str) -> str:
    """Untrusted text (file names, log lines) with control characters made visible, so a name
    can never move the cursor, clear the screen or forge a line on the operator's terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
