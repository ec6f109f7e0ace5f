"""Flag templates: `{input_file}`-style placeholders expanded into exactly one argv entry each.

A small hand-written parser is used instead of `str.format`, because `str.format` would accept
`{input_file.__class__}`, `{0}` or `{input_file!r}` and evaluate attribute/index look-ups on our
objects; here only the names in `PLACEHOLDERS` exist, and anything else is an error at load time.
`{{` and `}}` stand for literal braces, exactly as in `str.format`.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from orch_tui.core.textutil import printable

PLACEHOLDERS: tuple[str, ...] = ("input_file", "output_file", "input_name", "input_stem",
                                 "input_ext", "input_dir", "output_dir", "index")


class TemplateError(ValueError):
    """A flag template or output suffix is malformed; the message says what to write instead."""


def _known() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _unknown(name: str) -> TemplateError:
    close = difflib.get_close_matches(name.strip(), PLACEHOLDERS, n=1)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    return TemplateError(
        f"unknown placeholder {{{printable(name)}}}{hint}; known placeholders: {_known()}; "
        "write {{ and }} for literal braces")


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> tuple[tuple[bool, str], ...]:
    """Split `text` into (is_placeholder, literal-or-name) parts; raises TemplateError.

    Cached because the same few flags are expanded once per job.
    """
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            nested = text.find("{", i + 1)
            if end == -1 or -1 < nested < end:
                raise TemplateError(f"unbalanced '{{' at character {i + 1} of {text!r}; "
                                    "write '{{' for a literal brace")
            name = text[i + 1:end]
            if not name:
                raise TemplateError(f"empty placeholder {{}} at character {i + 1} of {text!r}; "
                                    f"known placeholders: {_known()}")
            if name not in PLACEHOLDERS:
                raise _unknown(name)
            if literal:
                parts.append((False, "".join(literal)))
                literal = []
            parts.append((True, name))
            i = end + 1
        elif char == "}":
            if not text.startswith("}}", i):
                raise TemplateError(f"unbalanced '}}' at character {i + 1} of {text!r}; "
                                    "write '}}' for a literal brace")
            literal.append("}")
            i += 2
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append((False, "".join(literal)))
    return tuple(parts)


def check_template(text: str) -> frozenset[str]:
    """Validate one flag and return the placeholder names it uses (so the plan knows, e.g.,
    whether a temporary output name is needed)."""
    return frozenset(value for is_name, value in _parse(text) if is_name)


def expand(text: str, values: Mapping[str, str]) -> str:
    """Expand one flag into one argv entry; values are inserted verbatim, never re-parsed, so a
    file called `{index}.mp4` or `$(rm -rf ~).mp4` stays exactly that text."""
    out: list[str] = []
    for is_name, value in _parse(text):
        if not is_name:
            out.append(value)
            continue
        try:
            out.append(values[value])
        except KeyError:
            raise TemplateError(f"no value for placeholder {{{value}}}") from None
    return "".join(out)


def split_name(name: str) -> tuple[str, str]:
    """(stem, extension) of a file name, exactly as `PurePath.stem` and `.suffix` split it,
    without making a Path (a plan splits 100,000 names)."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")


def output_name(name: str, suffix: str) -> str:
    """The spec's naming rule on a file name: `video1.mp4` + `_720p` -> `video1_720p.mp4`."""
    stem, extension = split_name(name)
    return f"{stem}{suffix}{extension}"


def output_path(input_path: Path, output_dir: Path, suffix: str) -> Path:
    """The spec's naming rule: `/data/video1.mp4` + `_720p` -> `<output_dir>/video1_720p.mp4`."""
    return output_dir / output_name(input_path.name, suffix)


def check_suffix(suffix: str) -> None:
    """Reject suffixes that would place outputs outside output_dir or make invalid names."""
    if "\0" in suffix:
        raise TemplateError("output_suffix must not contain a NUL character")
    if not suffix.isprintable():
        raise TemplateError(f"output_suffix must not contain control characters: {suffix!r}")
    for bad in ("/", "\\"):
        if bad in suffix:
            raise TemplateError(f"output_suffix must not contain {bad!r}: outputs must stay "
                                "directly inside output_dir")
    if ".." in suffix:
        raise TemplateError("output_suffix must not contain '..': outputs must stay directly "
                            "inside output_dir")
