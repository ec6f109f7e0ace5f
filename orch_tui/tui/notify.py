"""The end-of-run desktop notification: which escape sequence, if any, this terminal shows.

There is no way to ask a terminal whether it shows notifications, and one that does not may
print the sequence's text on the screen; so a sequence goes only to a terminal known to support
it, recognised by what it says of itself in the environment:

- OSC 9 (`ESC ] 9 ; text BEL`): iTerm2 (`TERM_PROGRAM=iTerm.app`), ghostty (`TERM_PROGRAM=ghostty`;
  ghostty does not show OSC 777).
- OSC 777 (`ESC ] 777 ; notify ; title ; body BEL`): WezTerm (`TERM_PROGRAM=WezTerm`, which shows
  OSC 9 too), foot (`TERM=foot` or `foot-*`).
- OSC 99 (`ESC ] 99 ; ; text ESC \\`): kitty (`TERM=xterm-kitty`), its own protocol.

Nothing else: Windows Terminal's OSC 9 is ConEmu's family (progress, working folder), not a
notification, and it has no OSC 777 before 2026's builds; upstream VTE (GNOME Terminal) ignores
OSC 777, which only Fedora's patch shows; urxvt needs a third-party extension. Inside tmux or
GNU screen nothing either: the outer terminal is unknown (tmux replaces `TERM_PROGRAM`) and tmux
drops passthrough unless `allow-passthrough` is on (off by default since tmux 3.3). The bell,
which every terminal and multiplexer forwards, is rung by the app whatever this says.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from orch_tui.core.events import RunFinished

TITLE = "orch-tui"

#: Counts named in the notification after `succeeded` (always named), when not zero.
OTHER_COUNTS = ("failed", "killed", "missing", "cancelled", "skipped")

#: A notification is a line, not a log: terminals cut long ones anyway.
MAX_TEXT = 200

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"


class Protocol(enum.Enum):
    """The notification escape sequences orch-tui can send."""

    OSC9 = "OSC 9"
    OSC777 = "OSC 777"
    OSC99 = "OSC 99"


#: By `TERM_PROGRAM`, the value each terminal sets in its shells.
BY_PROGRAM = {
    "iTerm.app": Protocol.OSC9,
    "ghostty": Protocol.OSC9,
    "WezTerm": Protocol.OSC777,
}


def protocol_for(environ: Mapping[str, str]) -> Protocol | None:
    """The sequence this terminal is known to show as a desktop notification, or None."""
    term = environ.get("TERM", "")
    if environ.get("TMUX") or environ.get("STY") or term.startswith(("screen", "tmux")):
        return None  # a multiplexer: see the module's docstring
    program = BY_PROGRAM.get(environ.get("TERM_PROGRAM", ""))
    if program is not None:
        return program
    if term == "xterm-kitty":
        return Protocol.OSC99
    if term == "foot" or term.startswith("foot-"):
        return Protocol.OSC777
    return None


def clean(text: str) -> str:
    """`text` safe inside an OSC string: no control character (C0, C1, DEL) can end the
    sequence early or start another, no `;` can add a field; at most MAX_TEXT characters."""
    kept = "".join(ch for ch in text if ch.isprintable() and ch != ";")
    return kept[:MAX_TEXT]


def summary(finished: RunFinished) -> str:
    """'orch-tui: 12 succeeded, 1 failed (exit 1)', from the event's figures."""
    counts = finished.counts
    parts = [f"{int(counts.get('succeeded', 0))} succeeded"]
    parts += [f"{int(counts[name])} {name}" for name in OTHER_COUNTS if counts.get(name)]
    head = "stopped: " if finished.interrupted else ""
    return f"{TITLE}: {head}{', '.join(parts)} (exit {int(finished.exit_code)})"


def sequence(protocol: Protocol | None, text: str) -> str:
    """The escape sequence that shows `text` (cleaned here) with `protocol`; '' for None."""
    body = clean(text)
    if protocol is Protocol.OSC9:
        return f"{ESC}]9;{body}{BEL}"
    if protocol is Protocol.OSC777:
        return f"{ESC}]777;notify;{TITLE};{body}{BEL}"
    if protocol is Protocol.OSC99:
        return f"{ESC}]99;;{body}{ST}"
    return ""


def notification(finished: RunFinished, environ: Mapping[str, str]) -> str:
    """What to write to this terminal when the run ends: a sequence, or '' (bell only)."""
    return sequence(protocol_for(environ), summary(finished))
