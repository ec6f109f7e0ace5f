"""A corpus of bad inputs, each fed to the real `orch-tui` command in a subprocess.

A config or usage mistake must end with exit code 2 and exactly one line on stderr that starts
`orch-tui: error: ` and points at the file and line (or key) to fix, with no traceback and
nothing created or changed anywhere. Odd inputs that are not config errors (missing, directory,
unreadable, duplicated, hostile names) must be reported and the run must go on, each input
reaching the command as exactly one argument and exactly once.
"""

# Case ids and the checks below say what each case is about; a docstring per case would repeat.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import WORKER, unprivileged

ERROR_PREFIX = "orch-tui: error: "
TIMEOUT = 30


def require_permission_denied(path: Path, mode: int) -> None:
    """Skip the case (only it) when the unprivileged subprocess could still use `path`."""
    probe = "import os, sys; sys.exit(0 if os.access(sys.argv[1], int(sys.argv[2])) else 3)"
    try:
        result = subprocess.run([sys.executable, "-c", probe,
                                 str(path), str(mode)],
                                preexec_fn=unprivileged(),
                                capture_output=True,
                                timeout=TIMEOUT,
                                check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot drop root's permission bypass for the subprocess: {exc}")
    if result.returncode != 3:
        pytest.skip("cannot drop root's permission bypass for the subprocess (prctl "
                    f"PR_CAPBSET_DROP refused?): {path} stays accessible")


def run_cli(args: list[str], cwd: Path, drop_root: bool = False) -> subprocess.CompletedProcess:
    """The real CLI in `cwd`; with drop_root, without root's permission bypass."""
    return helpers.run_cli(*args,
                           cwd=cwd,
                           timeout=TIMEOUT,
                           preexec_fn=unprivileged() if drop_root else None)


# --- the workspace and its snapshot


def snapshot(root: Path, ignore: Path | None = None) -> dict[str, tuple[str, int, int, int]]:
    """Every path under `root` (root included) -> (kind, mode, size, mtime_ns), without
    following symlinks; `ignore` and everything under it are left out."""
    found: dict[str, tuple[str, int, int, int]] = {}

    def add(path: Path) -> None:
        info = path.lstat()
        kind = ("dir"
                if stat.S_ISDIR(info.st_mode) else "link" if stat.S_ISLNK(info.st_mode) else "file")
        found[str(path.relative_to(root))] = (kind, info.st_mode, info.st_size, info.st_mtime_ns)

    add(root)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if ignore is not None:
            dirs[:] = [d for d in dirs if here / d != ignore]
        for name in dirs + files:
            add(here / name)
    return found


def assert_unchanged(before: dict, after: dict) -> None:
    """A readable diff of two snapshots (created, removed, changed paths)."""
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert (created, removed, changed) == ([], [], []), "created/removed/changed outside state"


@dataclass
class Ws:
    """A valid workspace (three inputs, a list, a YAML config) that each case spoils."""

    root: Path
    config: Path = field(init=False)
    list: Path = field(init=False)
    out: Path = field(init=False)
    indir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.root / "config.yaml"
        self.list = self.root / "inputs.txt"
        self.out = self.root / "out"
        self.indir = self.root / "in"

    def write_base(self) -> None:
        """Inputs a.bin, b.bin, c.bin; the list; a config running tests/workers/job.py."""
        self.indir.mkdir(parents=True)
        for name in ("a.bin", "b.bin", "c.bin"):
            (self.indir / name).write_bytes(name.encode() * 100)
        self.list.write_text("in/a.bin\nin/b.bin\nin/c.bin\n", encoding="utf-8")
        self.config.write_text(
            "binary:\n"
            f"  path: {json.dumps(sys.executable)}\n"
            "  flags:\n"
            f"    - {json.dumps(str(WORKER))}\n"
            '    - "{input_file}"\n'
            '    - "{output_file}"\n'
            "directories:\n"
            "  input_file_list: inputs.txt\n"
            "  output_dir: out\n"
            "  output_suffix: _out\n"
            "resources:\n"
            "  stabilization_seconds: 0.2\n"
            "  sample_interval: 0.1\n"
            "jobs:\n"
            "  kill_grace: 1\n",
            encoding="utf-8")

    def text(self) -> str:
        """The config's current text."""
        return self.config.read_text(encoding="utf-8")

    def replace(self, old: str, new: str) -> None:
        """Replace one exact, unique fragment of the config."""
        text = self.text()
        assert text.count(old) == 1, f"{old!r} must occur once in the base config"
        self.config.write_text(text.replace(old, new), encoding="utf-8")

    def line_of(self, fragment: str) -> int:
        """1-based number of the first config line containing `fragment`."""
        for number, line in enumerate(self.text().splitlines(), start=1):
            if fragment in line:
                return number
        raise AssertionError(f"{fragment!r} not in the config")


# --- config and usage errors: exit 2, one line, nothing touched

Where = Callable[[Ws], list[str | re.Pattern[str]]]


def at(fragment: str, key: str | None) -> Where:
    """Expect `config:LINE:` (the line holding `fragment`) and the dotted key."""

    def where(ws: Ws) -> list[str]:
        return [f"{ws.config}:{ws.line_of(fragment)}:"] + ([f" {key}: "] if key else [])

    return where


def in_section(key: str) -> Where:
    """Expect `config:LINE:COLUMN:` (any line: a missing key has no line of its own) and the
    dotted key."""
    return lambda ws: [
        re.compile(re.escape(f"{ws.config}:") + r"\d+:\d+: " + re.escape(key) + ": ")
    ]


def at_config(key: str | None = None) -> Where:
    """Expect the config path (no line) and, when given, the key."""
    return lambda ws: [f"{ws.config}"] + ([f" {key}: "] if key else [])


def at_list(line: int | None = None) -> Where:
    """Expect the input list's path (with `:LINE:` when given) and its key."""
    key = "directories.input_file_list"
    return lambda ws: [f"{ws.list}:{line}:" if line else f"{ws.list}: ", key]


@dataclass(frozen=True)
class Bad:
    """One bad input: how to spoil the workspace, and what the error line must say."""

    id: str
    spoil: Callable[[Ws], None]
    where: Where
    words: tuple[str, ...] = ()
    args: Callable[[Ws], list[str]] = lambda ws: [str(ws.config), "--headless"]
    usage: bool = False  # argparse: usage text, then the error as the last line
    denied: Callable[[Ws], tuple[Path, int]] | None = None  # needs permission bits to bite


def _replace(old: str, new: str) -> Callable[[Ws], None]:
    return lambda ws: ws.replace(old, new)


def _add_resource(line: str) -> Callable[[Ws], None]:
    return _replace("  sample_interval: 0.1\n", f"  sample_interval: 0.1\n  {line}\n")


def _add_job(line: str) -> Callable[[Ws], None]:
    return _replace("  kill_grace: 1\n", f"  kill_grace: 1\n  {line}\n")


def _flag(text: str) -> Callable[[Ws], None]:
    """Replace the {output_file} flag with `text` (written as is)."""
    return _replace('    - "{output_file}"\n', f"    - {text}\n")


def _write(attr: str, data: bytes | str) -> Callable[[Ws], None]:

    def spoil(ws: Ws) -> None:
        path = getattr(ws, attr)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)

    return spoil


def _binary(ws: Ws, path: Path | str) -> None:
    ws.replace(f"  path: {json.dumps(sys.executable)}\n", f"  path: {json.dumps(str(path))}\n")


def _binary_not_executable(ws: Ws) -> None:
    tool = ws.root / "tool.sh"
    tool.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    tool.chmod(0o644)
    _binary(ws, tool)


def _binary_directory(ws: Ws) -> None:
    (ws.root / "bin").mkdir()
    _binary(ws, ws.root / "bin")


def _list_unreadable(ws: Ws) -> None:
    ws.list.chmod(0)


def _list_directory(ws: Ws) -> None:
    ws.list.unlink()
    ws.list.mkdir()


def _fifo(attr: str) -> Callable[[Ws], None]:
    """Replace a file with a FIFO nobody writes to: reading it would block forever."""

    def spoil(ws: Ws) -> None:
        path = getattr(ws, attr)
        path.unlink()
        os.mkfifo(path)

    return spoil


def _output_dir_file(ws: Ws) -> None:
    ws.out.write_text("not a folder\n", encoding="utf-8")


def _output_dir_readonly(ws: Ws) -> None:
    ws.out.mkdir()
    ws.out.chmod(0o555)


def _output_parent_file(ws: Ws) -> None:
    (ws.root / "blocker").write_text("", encoding="utf-8")
    ws.replace("  output_dir: out\n", "  output_dir: blocker/out\n")


def _same_output(ws: Ws) -> None:
    (ws.indir / "sub").mkdir()
    (ws.indir / "sub" / "a.bin").write_bytes(b"x" * 100)
    ws.list.write_text("in/a.bin\nin/b.bin\nin/sub/a.bin\n", encoding="utf-8")


def _output_over_input(ws: Ws) -> None:
    ws.replace("  output_dir: out\n  output_suffix: _out\n", "  output_dir: in\n")


def _config_directory(ws: Ws) -> None:
    ws.config.unlink()
    ws.config.mkdir()


def _config_unreadable(ws: Ws) -> None:
    ws.config.chmod(0)


def _drop_flags(ws: Ws) -> None:
    kept = [line for line in ws.text().splitlines() if not line.startswith(("  flags", "    - "))]
    ws.config.write_text("\n".join(kept) + "\n", encoding="utf-8")


def _flags_string(ws: Ws) -> None:
    _drop_flags(ws)
    ws.replace("binary:\n", 'binary:\n  flags: "-i {input_file}"\n')


def _no_flags(ws: Ws) -> None:
    _drop_flags(ws)
    ws.replace("binary:\n", "binary:\n  flags: []\n")


def _missing(line: str) -> Callable[[Ws], None]:
    return _replace(line, "")


BAD: list[Bad] = [
    # YAML itself
    Bad("yaml-malformed",
        _replace("  output_dir: out\n", "  output_dir: out: nested\n"),
        at("out: nested", None),
        words=("invalid YAML", "mapping values are not allowed")),
    Bad("yaml-tab-indentation",
        _replace("  output_dir: out\n", "\toutput_dir: out\n"),
        at("output_dir", None),
        words=("tab", )),
    Bad("yaml-unclosed-quote",
        _replace("  output_suffix: _out\n", '  output_suffix: "_out\n'),
        at_config(),
        words=("invalid YAML", "end of stream")),
    Bad("yaml-duplicate-key",
        _replace("  output_suffix: _out\n", "  output_suffix: _out\n  output_dir: again\n"),
        at("again", "directories.output_dir"),
        words=("duplicate key", )),
    Bad("yaml-two-documents",
        lambda ws: ws.config.write_text(ws.text() + "---\nbinary: {}\n", encoding="utf-8"),
        at("---", None),
        words=("single document", )),
    Bad("yaml-nested-too-deeply",
        _write("config", "binary: " + "[" * 5000 + "]" * 5000 + "\n"),
        at_config(),
        words=("nested too deeply", )),
    Bad("yaml-python-object-tag",
        _replace(f"  path: {json.dumps(sys.executable)}\n",
                 '  path: !!python/object/apply:os.system ["touch pwned"]\n'),
        at("python/object", "binary.path"),
        words=("expected a program name or path", )),
    Bad("list-where-mapping-belongs",
        _replace("  input_file_list: inputs.txt\n  output_dir: out\n  output_suffix: _out\n",
                 "  - inputs.txt\n  - out\n"),
        at("- inputs.txt", "directories"),
        words=("expected a mapping", )),
    Bad("top-level-not-a-mapping",
        _write("config", "- binary\n- directories\n"),
        at("- binary", None),
        words=("expected a mapping", )),
    Bad("top-level-a-scalar",
        _write("config", "just some words\n"),
        at("just some words", None),
        words=("expected a mapping", )),
    Bad("config-empty", _write("config", ""), at_config(), words=("empty", )),
    Bad("config-only-comments", _write("config", "# nothing\n\n"), at_config(), words=("empty", )),
    Bad("config-not-utf8",
        _write("config", b"binary:\n  path: caf\xe9\n"),
        lambda ws: [f"{ws.config}:2:"],
        words=("UTF-8", )),
    Bad("config-missing",
        lambda ws: None,
        lambda ws: [f"{ws.root / 'nope.yaml'}: "],
        words=("not found", ),
        args=lambda ws: [str(ws.root / "nope.yaml"), "--headless"]),
    Bad("config-is-a-directory", _config_directory, at_config(), words=("directory", )),
    Bad("config-is-a-fifo", _fifo("config"), at_config(), words=("not a regular file", )),
    Bad("config-unreadable",
        _config_unreadable,
        at_config(),
        words=("permission denied", ),
        denied=lambda ws: (ws.config, os.R_OK)),
    # wrong types
    Bad("string-for-fraction",
        _add_resource('cpu_fraction: "0.5"'),
        at("cpu_fraction", "resources.cpu_fraction"),
        words=("expected a number", )),
    Bad("percentage-for-fraction",
        _add_resource("memory_fraction: 80%"),
        at("memory_fraction", "resources.memory_fraction"),
        words=("fraction", )),
    Bad("bool-for-number",
        _add_job("retries: true"),
        at("retries", "jobs.retries"),
        words=("expected a whole number", "boolean")),
    Bad("float-for-whole-number",
        _add_resource("max_processes: 2.5"),
        at("max_processes", "resources.max_processes"),
        words=("whole number", )),
    Bad("infinite-timeout",
        _add_job("timeout: .inf"),
        at("timeout", "jobs.timeout"),
        words=("finite", )),
    Bad("mapping-for-flag",
        _flag("{out: file}"),
        at("{out: file}", "binary.flags[2]"),
        words=("mapping", )),
    Bad("bool-for-flag", _flag("yes"), at("- yes", "binary.flags[2]"), words=("boolean", )),
    Bad("null-flag", _flag("~"), at("- ~", "binary.flags[2]"), words=("null", )),
    Bad("string-for-flags-list",
        _flags_string,
        at('flags: "-i', "binary.flags"),
        words=("expected a list", )),
    # required keys
    Bad("missing-binary-path",
        _missing(f"  path: {json.dumps(sys.executable)}\n"),
        in_section("binary.path"),
        words=("missing required key 'path'", )),
    Bad("missing-binary-flags",
        _drop_flags,
        in_section("binary.flags"),
        words=("missing required key 'flags'", )),
    Bad("missing-input-file-list",
        _missing("  input_file_list: inputs.txt\n"),
        in_section("directories.input_file_list"),
        words=("missing required key 'input_file_list'", )),
    Bad("missing-output-dir",
        _missing("  output_dir: out\n"),
        in_section("directories.output_dir"),
        words=("missing required key 'output_dir'", )),
    Bad("binary-path-empty-value",
        _replace(f"  path: {json.dumps(sys.executable)}\n", "  path:\n"),
        at("path:", "binary.path"),
        words=("no value", )),
    # unknown keys
    Bad("unknown-top-key",
        _replace("directories:\n", "directores:\n"),
        at("directores:", "directores"),
        words=("did you mean 'directories'", )),
    Bad("unknown-directories-key",
        _replace("  output_suffix: _out\n", "  output_sufix: _out\n"),
        at("output_sufix", "directories.output_sufix"),
        words=("did you mean 'output_suffix'", )),
    Bad("unknown-resources-key",
        _add_resource("cpu_fracton: 0.5"),
        at("cpu_fracton", "resources.cpu_fracton"),
        words=("did you mean 'cpu_fraction'", )),
    Bad("unknown-jobs-key",
        _add_job("retry: 2"),
        at("retry:", "jobs.retry"),
        words=("did you mean 'retries'", )),
    # flags and placeholders
    Bad("flags-empty-list",
        _no_flags,
        at("flags: []", "binary.flags"),
        words=("at least one flag", )),
    Bad("placeholder-misspelt",
        _flag('"{inptu_file}"'),
        at("inptu_file", "binary.flags[2]"),
        words=("unknown placeholder {inptu_file}", "did you mean {input_file}")),
    Bad("placeholder-unclosed",
        _flag('"{input_file"'),
        at("{input_file\"", "binary.flags[2]"),
        words=("unbalanced '{'", )),
    Bad("placeholder-unopened",
        _flag('"input_file}"'),
        at('"input_file}"', "binary.flags[2]"),
        words=("unbalanced '}'", )),
    Bad("placeholder-attribute",
        _flag('"{input_file.__class__}"'),
        at("__class__", "binary.flags[2]"),
        words=("unknown placeholder", )),
    Bad("placeholder-positional",
        _flag('"{0}"'),
        at('"{0}"', "binary.flags[2]"),
        words=("unknown placeholder {0}", )),
    Bad("placeholder-conversion",
        _flag('"{input_file!r}"'),
        at("!r", "binary.flags[2]"),
        words=("unknown placeholder", )),
    Bad("placeholder-empty",
        _flag('"x{}"'),
        at('"x{}"', "binary.flags[2]"),
        words=("empty placeholder", )),
    # the binary
    Bad("binary-missing",
        lambda ws: _binary(ws, ws.root / "no-such-tool"),
        at("no-such-tool", "binary.path"),
        words=("not found", )),
    Bad("binary-not-executable",
        _binary_not_executable,
        at("tool.sh", "binary.path"),
        words=("not executable", )),
    Bad("binary-is-a-directory",
        _binary_directory,
        at("path:", "binary.path"),
        words=("is a directory", )),
    Bad("binary-bare-name-not-on-path",
        lambda ws: _binary(ws, "orch-no-such-tool-xyz"),
        at("orch-no-such-tool-xyz", "binary.path"),
        words=("not found on PATH", )),
    # the input list
    Bad("list-missing", lambda ws: ws.list.unlink(), at_list(), words=("not found", )),
    Bad("list-empty", _write("list", ""), at_list(), words=("empty", )),
    Bad("list-whitespace-only", _write("list", "\n   \n\t\n"), at_list(), words=("empty", )),
    Bad("list-only-comments",
        _write("list", "# a.bin\n\n  # b.bin\n"),
        at_list(),
        words=("only blank lines and # comments", )),
    Bad("list-binary-garbage",
        _write("list", b"in/a.bin\n\x7fELF\x02\x01\x00\x00garbage\n"),
        at_list(2),
        words=("NUL", )),
    Bad("list-not-utf8",
        _write("list", b"in/a.bin\nin/caf\xe9.bin\n"),
        at_list(2),
        words=("UTF-8", )),
    Bad("list-is-a-directory", _list_directory, at_list(), words=("directory", )),
    Bad("list-is-a-fifo", _fifo("list"), at_list(), words=("not a regular file", )),
    Bad("list-unreadable",
        _list_unreadable,
        at_list(),
        words=("permission denied", ),
        denied=lambda ws: (ws.list, os.R_OK)),
    # the output folder and names
    Bad("output-dir-is-a-file",
        _output_dir_file,
        at("output_dir", "directories.output_dir"),
        words=("not a directory", )),
    Bad("output-dir-parent-is-a-file",
        _output_parent_file,
        at("output_dir", "directories.output_dir"),
        words=("cannot be created", )),
    Bad("output-dir-not-writable",
        _output_dir_readonly,
        at("output_dir", "directories.output_dir"),
        words=("not writable", ),
        denied=lambda ws: (ws.out, os.W_OK)),
    Bad("output-suffix-slash",
        _replace("  output_suffix: _out\n", "  output_suffix: /../../x\n"),
        at("output_suffix", "directories.output_suffix"),
        words=("'/'", )),
    Bad("output-suffix-dotdot",
        _replace("  output_suffix: _out\n", "  output_suffix: ..x\n"),
        at("output_suffix", "directories.output_suffix"),
        words=("'..'", )),
    Bad("two-inputs-one-output",
        _same_output,
        at("output_suffix", "directories.output_suffix"),
        words=("line 1", "line 3", "would both write")),
    Bad("output-overwrites-input",
        _output_over_input,
        at("output_dir", "directories.output_dir"),
        words=("would overwrite the input", )),
    # numbers out of range
    Bad("fraction-zero",
        _add_resource("cpu_fraction: 0"),
        at("cpu_fraction", "resources.cpu_fraction"),
        words=("(0, 1]", )),
    Bad("fraction-above-one",
        _add_resource("disk_fraction: 1.5"),
        at("disk_fraction", "resources.disk_fraction"),
        words=("(0, 1]", )),
    Bad("fraction-negative",
        _add_resource("memory_fraction: -0.1"),
        at("memory_fraction", "resources.memory_fraction"),
        words=("(0, 1]", )),
    Bad("timeout-negative",
        _add_job("timeout: -5"),
        at("timeout", "jobs.timeout"),
        words=("must be > 0", )),
    Bad("retries-negative",
        _add_job("retries: -1"),
        at("retries", "jobs.retries"),
        words=("must be >= 0", )),
    Bad("max-processes-zero",
        _add_resource("max_processes: 0"),
        at("max_processes", "resources.max_processes"),
        words=("must be 1 to 4194304", )),
    Bad("sample-interval-zero",
        _replace("  sample_interval: 0.1\n", "  sample_interval: 0\n"),
        at("sample_interval", "resources.sample_interval"),
        words=("must be > 0", )),
    # the command line
    Bad("cli-max-procs-zero",
        lambda ws: None,
        lambda ws: ["--max-procs"],
        words=("from 1 to 4194304", "'0'"),
        args=lambda ws: [str(ws.config), "--headless", "--max-procs", "0"],
        usage=True),
    Bad("cli-jobs-beyond-any-machine",
        lambda ws: None,
        lambda ws: ["--jobs"],
        words=("from 1 to 4194304", ),
        args=lambda ws: [str(ws.config), "--headless", "--jobs", "9223372036854775808"],
        usage=True),
    # int() reads '٥' (an Arabic-Indic five) and ' 5' as 5; `limit N` never did: one rule now.
    Bad("cli-jobs-not-ascii-digits",
        lambda ws: None,
        lambda ws: ["--jobs"],
        words=("whole number from 1 to 4194304", "'\u0665'"),
        args=lambda ws: [str(ws.config), "--headless", "--jobs", "\u0665"],
        usage=True),
    Bad("cli-max-procs-not-a-number",
        lambda ws: None,
        lambda ws: ["--max-procs"],
        words=("whole number", ),
        args=lambda ws: [str(ws.config), "--headless", "--max-procs", "x"],
        usage=True),
    # --joblog naming one of the run's own files: its lines would become inputs, break the
    # config, land in the journal, or be replaced by a success's rename.
    Bad("joblog-is-the-input-list",
        lambda ws: None,
        lambda ws: ["inputs.txt"],
        words=("it is the input list", ),
        args=lambda ws: [str(ws.config), "--headless", "--joblog", "inputs.txt"]),
    Bad("joblog-is-the-config",
        lambda ws: None,
        lambda ws: ["config.yaml"],
        words=("it is the config", ),
        args=lambda ws: [str(ws.config), "--headless", "--joblog",
                         str(ws.config)]),
    Bad("joblog-in-the-state-folder",
        lambda ws: None,
        lambda ws: ["journal.sqlite3"],
        words=("inside the run's state folder", ),
        args=lambda ws: [str(ws.config), "--headless", "--joblog", "out/.orch-tui/journal.sqlite3"]
        ),
    Bad("joblog-is-an-output",
        lambda ws: None,
        lambda ws: ["b_out.bin"],
        words=("one of the run's outputs", ),
        args=lambda ws: [str(ws.config), "--headless", "--joblog", "out/b_out.bin"]),
    Bad("cli-two-configs",
        lambda ws: None,
        lambda ws: ["config"],
        words=("once", ),
        args=lambda ws: [str(ws.config), "--config",
                         str(ws.root / "other.yaml"), "--headless"],
        usage=True),
]


@pytest.fixture(name="ws")
def fixture_ws(tmp_path: Path) -> Ws:
    """The valid base workspace under tmp_path/ws."""
    ws = Ws(tmp_path / "ws")
    ws.write_base()
    return ws


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_input_is_one_located_line_exit_2_and_touches_nothing(ws: Ws, case: Bad):
    case.spoil(ws)
    if case.denied is not None:
        require_permission_denied(*case.denied(ws))
    before = snapshot(ws.root)
    out_existed = os.path.lexists(ws.out)
    result = run_cli(case.args(ws), cwd=ws.root, drop_root=case.denied is not None)
    after = snapshot(ws.root)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    if case.usage:
        assert lines and lines[0].startswith("usage: ")
        line = lines[-1]
    else:
        assert len(lines) == 1, result.stderr
        line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    for expected in [*case.where(ws), *case.words]:
        if isinstance(expected, re.Pattern):
            assert expected.search(line), f"{expected.pattern!r} does not match {line!r}"
        else:
            assert expected in line, f"{expected!r} not in {line!r}"
    assert_unchanged(before, after)
    assert os.path.lexists(ws.out) == out_existed
    assert not (ws.out / ".orch-tui").exists()


def test_the_corpus_is_large_and_ids_are_unique():
    assert len(BAD) >= 40
    assert len({case.id for case in BAD}) == len(BAD)


# --- odd inputs that are not errors: reported, and the run goes on

# Records each argv it gets, refuses anything but exactly (record, input, output), copies.
ARGV_WORKER = """\
import json, os, shutil, sys
if len(sys.argv) != 4:
    sys.exit(f"expected 3 arguments, got {sys.argv[1:]!r}")
record, source, target = sys.argv[1:]
if not os.path.isabs(source) or not os.path.isfile(source):
    sys.exit(f"not an absolute path to a file: {source!r}")
with open(record, "a", encoding="utf-8") as handle:
    handle.write(json.dumps([source, target]) + "\\n")
shutil.copyfile(source, target)
"""


@dataclass(frozen=True)
class Odd:
    """Inputs that must be handled, not refused: files to create, list lines, expectations."""

    id: str
    files: tuple[str, ...]  # created in in/ with distinct contents
    lines: tuple[str, ...]  # the input list, one entry a line (relative to the list)
    exit_code: int
    summary: str  # the counts in the final line
    runs: tuple[str, ...]  # input names (in in/) that must run exactly once each and succeed
    prepare: Callable[[Path], None] | None = None  # gets in/, after files are created
    preflight: str = ""  # expected in the preflight line
    denied: str | None = None  # a file in in/ that must be unreadable to the run
    fails: tuple[str, ...] = ()  # input names whose job must fail (run at most once)


def _chmod_000(name: str) -> Callable[[Path], None]:
    return lambda indir: (indir / name).chmod(0)


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda indir: (indir / name).mkdir()


HOSTILE = ("with space.bin", "it's \"quoted\".bin", "a;b.bin", "$(touch pwned).bin",
           "`touch pwned`.bin", "vidéo 日本 🎬.bin", "-rf.mp4", "--help.bin", "*.bin", "{index}{{.bin",
           "tab\there.bin", " leading space.bin", "\\back\\slash.bin")

ODD: list[Odd] = [
    Odd("input-missing", ("a.bin", ), ("in/a.bin", "in/gone.bin"),
        1,
        "1 succeeded, 0 failed, 0 killed, 0 skipped, 1 missing", ("a.bin", ),
        preflight="1 missing"),
    Odd("input-is-a-directory", ("a.bin", ), ("in/a.bin", "in/folder.bin"),
        1,
        "1 succeeded, 0 failed, 0 killed, 0 skipped, 1 missing", ("a.bin", ),
        prepare=_mkdir("folder.bin"),
        preflight="1 missing"),
    Odd("input-unreadable", ("a.bin", "secret.bin"), ("in/a.bin", "in/secret.bin"),
        1,
        "1 succeeded, 0 failed, 0 killed, 0 skipped, 1 missing", ("a.bin", ),
        prepare=_chmod_000("secret.bin"),
        preflight="1 missing",
        denied="secret.bin"),
    Odd("input-duplicated", ("a.bin", "b.bin"), ("in/a.bin", "in/b.bin", "in/a.bin", "./in/a.bin"),
        0,
        "2 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing", ("a.bin", "b.bin"),
        preflight="2 duplicate lines ignored"),
    Odd("input-list-crlf-and-comments", ("a.bin", "b.bin"),
        ("# heading\r", "in/a.bin\r", "", "   # indented comment", "in/b.bin\r"), 0,
        "2 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing", ("a.bin", "b.bin")),
    Odd("all-missing", (), ("in/gone1.bin", "in/gone2.bin"),
        1,
        "0 succeeded, 0 failed, 0 killed, 0 skipped, 2 missing", (),
        preflight="2 missing"),
    Odd("missing-and-directory-and-unreadable-together", ("a.bin", "b.bin", "locked.bin"),
        ("in/a.bin", "in/nope.bin", "in/dir.bin", "in/locked.bin", "in/b.bin"),
        1,
        "2 succeeded, 0 failed, 0 killed, 0 skipped, 3 missing", ("a.bin", "b.bin"),
        prepare=lambda indir: (_mkdir("dir.bin")(indir), _chmod_000("locked.bin")(indir)),
        preflight="3 missing",
        denied="locked.bin"),
    Odd("input-path-too-long-to-exist", ("a.bin", ), ("in/a.bin", "in/" + "d" * 300 + ".bin"),
        1,
        "1 succeeded, 0 failed, 0 killed, 0 skipped, 1 missing", ("a.bin", ),
        preflight="1 missing"),
    # The longest output name a file system accepts (254 bytes): the temporary output has the
    # same name in a private folder, so it runs like any other.
    Odd("longest-legal-output-name", ("a.bin", "L" * 246 + ".bin"),
        ("in/a.bin", "in/" + "L" * 246 + ".bin"), 0,
        "2 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing", ("a.bin", "L" * 246 + ".bin")),
] + [
    Odd(f"name-{label}", (name, ),
        (f"in/{name}", ), 0, "1 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing", (name, ))
    for label, name in zip(("spaces", "quotes", "semicolon", "dollar-paren", "backticks", "unicode",
                            "leading-dash", "double-dash-option", "glob-star", "braces", "tab",
                            "leading-space", "backslashes"), HOSTILE)
] + [
    Odd("all-hostile-names-at-once", HOSTILE, tuple(f"in/{name}" for name in HOSTILE), 0,
        f"{len(HOSTILE)} succeeded, 0 failed, 0 killed, 0 skipped, 0 missing", HOSTILE),
]


def _output_name(name: str) -> str:
    path = Path(name)
    return f"{path.stem}_out{path.suffix}"


@pytest.mark.parametrize("case", ODD, ids=[case.id for case in ODD])
def test_odd_inputs_are_reported_and_each_runs_once_as_one_argument(tmp_path: Path, case: Odd):
    root = tmp_path / "ws"
    indir = root / "in"
    indir.mkdir(parents=True)
    for number, name in enumerate(case.files):
        (indir / name).write_bytes(f"{number}:{name}\n".encode() * 50)
    if case.prepare is not None:
        case.prepare(indir)
    if case.denied is not None:
        require_permission_denied(indir / case.denied, os.R_OK)
    (root / "inputs.txt").write_text("".join(line + "\n" for line in case.lines), encoding="utf-8")
    worker = tmp_path / "argv_worker.py"
    worker.write_text(ARGV_WORKER, encoding="utf-8")
    record = tmp_path / "record.jsonl"
    record.touch()
    config = {
        "binary": {
            "path": sys.executable,
            "flags": [str(worker), str(record), "{input_file}", "{output_file}"]
        },
        "directories": {
            "input_file_list": "inputs.txt",
            "output_dir": "out",
            "output_suffix": "_out"
        },
        "resources": {
            "stabilization_seconds": 0.2,
            "sample_interval": 0.1
        },
    }
    (root / "config.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
    out = root / "out"
    before = snapshot(root)

    result = run_cli([str(root / "config.yaml"), "--headless"],
                     cwd=root,
                     drop_root=case.denied is not None)

    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == case.exit_code, (result.stdout, result.stderr)
    assert f"done: {case.summary} in " in result.stdout, result.stdout
    assert f"(exit {case.exit_code})" in result.stdout
    if case.preflight:
        assert case.preflight in result.stdout
    after = snapshot(root, ignore=out)
    # Creating the output folder changes its parent's mtime; any other new name is still caught.
    before.pop(".")
    after.pop(".")
    assert_unchanged(before, after)
    ran = [tuple(json.loads(line)) for line in record.read_text(encoding="utf-8").splitlines()]
    # Each job wrote its output under the final name in this run's private temporary folder.
    temp_dirs = {Path(run[1]).parent for run in ran}
    assert len(temp_dirs) <= 1 and all(d.parent == out / ".orch-tui" / "tmp" for d in temp_dirs)
    expected_runs = [(str(indir / name), str(temp_dir / _output_name(name))) for name in case.runs
                     for temp_dir in temp_dirs]
    failed = {str(indir / name) for name in case.fails}
    assert sorted(run for run in ran if run[0] not in failed) == sorted(expected_runs), \
        "each input ran once, as one argument each"
    assert len([run for run in ran if run[0] in failed]) <= len(failed)
    outputs = sorted(p.name for p in out.iterdir() if p.name != ".orch-tui")
    assert outputs == sorted(_output_name(name) for name in case.runs)
    for number, name in enumerate(case.files):
        if name in case.runs:
            assert (out / _output_name(name)).read_bytes() == (indir / name).read_bytes()
    assert not list(tmp_path.rglob("pwned")), "a file name was executed by a shell"
    assert not Path.cwd().joinpath("pwned").exists()
