"""Write a self-contained demo workspace: synthetic inputs, a list, the worker and a config.

A new user should see orch-tui calibrate, scale and report failures without owning ffmpeg or any
media, so the demo ships a stand-in transcoder (worker.py) and inputs that are just random bytes.
The config is written by hand, with comments, because it is the first config a new user reads.
"""

from __future__ import annotations

import math
import random
import shutil
import sys
from pathlib import Path

MARKER = ".orch-tui-demo"
INPUTS_DIR = "inputs"
OUTPUT_DIR = "output"
LIST_FILE = "inputs.txt"
CONFIG_FILE = "config.yaml"
WORKER_FILE = "worker.py"
OUTPUT_SUFFIX = "_demo"
WORKER = Path(__file__).with_name(WORKER_FILE)  # the packaged worker, runnable as a script
MEMORY_MB = 40
DEMO_CPU_SHARE = "0.4"  # of a core per job: leaves room for several jobs at once on small boxes
SEED = 20240617  # fixed, so every demo workspace holds the same bytes
MIN_SIZE = 1_000_000
MAX_SIZE = 6_000_000
SPACE_POSITION = 3  # "holiday clip 03.mp4": proves names with spaces survive the whole pipeline

MARKER_TEXT = ("This folder was written by `orch-tui --demo`. It holds only generated files;\n"
               "the next demo run overwrites it, and it is safe to delete.\n")


def failing_positions(count: int) -> frozenset[int]:
    """1-based positions of the inputs that fail: the 7th and 11th of the default 12.

    Other counts keep the same proportions. The first input never fails, because calibration
    starts with it and the demo should show a clean calibration first.
    """
    picks = (min(count, max(2, round(count * share))) for share in (7 / 12, 11 / 12))
    return frozenset(position for position in picks if position >= 2)


def input_names(count: int) -> list[str]:
    """The demo's input file names, in list order."""
    width = max(2, len(str(count)))
    failing = failing_positions(count)
    names = []
    for position in range(1, count + 1):
        number = f"{position:0{width}d}"
        stem = f"holiday clip {number}" if position == SPACE_POSITION else f"clip{number}"
        if position in failing:
            stem += "_corrupt"
        names.append(stem + ".mp4")
    return names


def yaml_safe(code: int) -> bool:
    """Whether a code point may stand as itself inside a double-quoted YAML scalar."""
    if code in (0x2028, 0x2029, 0xFEFF):  # line/paragraph separators and BOM: YAML gives meaning
        return False
    return (0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or code >= 0x10000)


def yaml_quote(text: str) -> str:
    """A YAML double-quoted scalar that loads back to exactly `text`.

    Like json.dumps, but characters YAML forbids in a stream or treats as line breaks are
    escaped, and characters outside the BMP are written as themselves (YAML does not join JSON's
    surrogate-pair escapes back together).
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif yaml_safe(code):
            out.append(char)
        else:
            out.append(f"\\u{code:04X}")
    out.append('"')
    return "".join(out)


def template_literal(text: str) -> str:
    """Escape braces so a literal path in binary.flags is not taken for a {placeholder}."""
    return text.replace("{", "{{").replace("}", "}}")


def check_target(directory: Path) -> None:
    """Refuse to write into anything but a new, empty or earlier demo folder."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a folder; choose another demo folder")
    if (directory / MARKER).is_file() or not any(directory.iterdir()):
        return
    raise ValueError(f"{directory} is not empty and is not an orch-tui demo workspace "
                     f"(no {MARKER} marker); choose a new or empty folder")


def remove(path: Path) -> None:
    """Delete a file, symlink or folder tree if present (a symlink itself, never its target)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def empty_folder(folder: Path) -> None:
    """Remove everything inside `folder` (created if missing), hidden entries included."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        remove(entry)


def write_inputs(directory: Path, count: int) -> list[str]:
    """Write the synthetic inputs and return their paths relative to the workspace."""
    folder = directory / INPUTS_DIR
    empty_folder(folder)  # drop inputs left by an earlier demo with another count
    rng = random.Random(SEED)
    relative = []
    for name in input_names(count):
        (folder / name).write_bytes(rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE)))
        relative.append(f"{INPUTS_DIR}/{name}")
    return relative


def list_text(relative: list[str]) -> str:
    """The input list: a comment, then one path per line, relative to the list file."""
    lines = [
        "# orch-tui demo inputs: one file per line, relative to this list (absolute paths work).",
        "# Lines starting with # are comments. The *_corrupt files fail on purpose.",
    ]
    return "\n".join(lines + relative) + "\n"


def config_text(directory: Path, seconds: float) -> str:
    """The demo config, in the seed's schema, with comments for a first-time reader."""
    python = sys.executable or shutil.which("python3") or "python3"
    worker = template_literal(str(directory / WORKER_FILE))
    flags = [
        worker, "--seconds", f"{seconds:g}", "--cpu", DEMO_CPU_SHARE, "--memory-mb",
        str(MEMORY_MB)
    ]
    flag_lines = "\n".join(f"    - {yaml_quote(flag)}" for flag in flags)
    return f"""\
# orch-tui demo configuration. Point binary.path at ffmpeg and adapt the flags for real work, e.g.
#   path: /usr/bin/ffmpeg
#   flags: ["-i", "{{input_file}}", "-vf", "scale=1280:720", "{{output_file}}"]
# Relative paths below are resolved against the folder of this file.

binary:
  # The demo "transcoder" is a Python script (worker.py) that behaves like ffmpeg for monitoring:
  # it reads its input sequentially, keeps {DEMO_CPU_SHARE} of a core busy (calibration measures
  # it, so several jobs run at once even on 2 cores), holds memory and grows its output.
  path: {yaml_quote(python)}
  flags:
{flag_lines}
    # worker.py also takes --threads N, --output-ratio R, --fail-pattern TEXT.
    - "{{input_file}}"   # replaced by each input path
    - "{{output_file}}"  # replaced by output_dir / (input stem + output_suffix + extension)

directories:
  input_file_list: {yaml_quote(LIST_FILE)}  # one input path per line
  output_dir: {yaml_quote(OUTPUT_DIR)}  # created when the run starts
  output_suffix: {yaml_quote(OUTPUT_SUFFIX)}  # clip01.mp4 -> output/clip01{OUTPUT_SUFFIX}.mp4

resources:
  # Calibration measures one job after this many seconds. The default (5) suits real encodes;
  # demo jobs only last about {seconds:g} s, so measure sooner, while the test job is still running.
  stabilization_seconds: 2
"""


def write_demo_workspace(directory: Path, *, count: int = 12, seconds: float = 3.0) -> Path:
    """Write (or refresh) a demo workspace in `directory` and return its config path.

    Raises ValueError when `directory` holds something other than an earlier demo workspace, or
    when count or seconds is out of range. An earlier demo is reused: its inputs are rewritten and
    its output folder (run state included) is removed, so every demo starts fresh.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    directory = Path(directory).absolute()
    check_target(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(MARKER_TEXT, encoding="utf-8")  # first: a retry may reuse it
    relative = write_inputs(directory, count)
    (directory / LIST_FILE).write_text(list_text(relative), encoding="utf-8")
    worker = directory / WORKER_FILE
    worker.write_bytes(WORKER.read_bytes())
    worker.chmod(0o755)
    remove(directory / OUTPUT_DIR)  # outputs and run state: every demo starts fresh
    config = directory / CONFIG_FILE
    config.write_text(config_text(directory, seconds), encoding="utf-8")
    return config
