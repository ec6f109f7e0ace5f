"""Which jobs the operator means by the words on a command line (`JOB...`).

A plain integer is the job's index (`#3`); anything else must name exactly one input, by its
path (as given, or made absolute from the current folder) or its file name. A word that names
none or several is refused with every candidate listed, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from orch_tui.core.errors import OrchError
from orch_tui.core.textutil import printable

#: At most this many candidates are listed in an ambiguity error.
LISTED = 10


class JobMatchError(OrchError):
    """A word names no job or several (exit 2, one line listing the candidates)."""


def match_jobs(words: Iterable[str], inputs: Mapping[int, Path]) -> list[int]:
    """The indexes `words` name, in order, each once; `inputs` maps index -> input path."""
    found: list[int] = []
    for word in words:
        index = _match(word, inputs)
        if index not in found:
            found.append(index)
    return found


def _match(word: str, inputs: Mapping[int, Path]) -> int:
    if word.isascii() and word.isdigit():
        index = int(word)
        if index not in inputs:
            raise JobMatchError(
                f"no job #{index} (jobs are numbered 1 to {max(inputs, default=0)})")
        return index
    absolute = Path(word).absolute()
    by_path = [i for i, path in inputs.items() if path in (Path(word), absolute)]
    if len(by_path) == 1:
        return by_path[0]
    by_name = [i for i, path in inputs.items() if path.name == word]
    if len(by_name) == 1:
        return by_name[0]
    if not by_name:
        raise JobMatchError(f"no input matches {printable(word)!r}")
    raise JobMatchError(f"{printable(word)!r} matches {len(by_name)} inputs; give its index or "
                        f"path: {_listing(by_name, inputs)}")


def _listing(indexes: Sequence[int], inputs: Mapping[int, Path]) -> str:
    shown = ", ".join(f"#{i} {printable(str(inputs[i]))}" for i in sorted(indexes)[:LISTED])
    more = len(indexes) - LISTED
    return shown + (f" and {more} more" if more > 0 else "")
