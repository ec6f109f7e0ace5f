"""Small formatting helpers shared by every observer (so both show the same figures)."""

from __future__ import annotations


def format_bytes(value: float, *, compact: bool = False) -> str:
    """Binary units, about three significant figures: 1536 -> '1.50 KiB', 1023 KiB -> '1023 KiB'
    (never the exponent notation '.3g' would give).

    `compact` fits a table column of five cells: no 'iB', no space, one decimal from 10 up and
    negatives shown as 0: 1536 -> '1.50K', 12.5 MiB -> '12.5M', 5 GiB -> '5.00G'."""
    size = float(max(value, 0) if compact else value)
    unit = "B"
    for larger in ("K", "M", "G", "T"):
        if abs(size) < 1024:
            break
        size /= 1024
        unit = larger
    space, suffix = ("", "") if compact else (" ", "iB")
    if unit == "B":
        return f"{int(size)}{space}B"
    if abs(size) >= 100:
        decimals = 0
    else:
        decimals = 1 if compact and size >= 10 else 2
    return f"{size:.{decimals}f}{space}{unit}{suffix}"


def format_duration(seconds: float, *, stopwatch: bool = False) -> str:
    """'h:mm:ss' for humans, to the nearest second; negative or absurd values clamp to 0.

    `stopwatch` counts whole seconds, floored, and drops the hours under an hour ('m:ss'), as a
    table column of running jobs reads best."""
    total = max(0, int(seconds) if stopwatch else int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if stopwatch and not hours:
        return f"{minutes}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}"


def printable(text: str) -> str:
    """Untrusted text (file names, log lines) with control characters made visible, so a name
    can never move the cursor, clear the screen or forge a line on the operator's terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
