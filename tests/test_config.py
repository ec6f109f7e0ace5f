"""Config loading: the seed's schema, defaults, and one located, one-line error per mistake."""

# Test names state what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from orch_tui.core import config as config_module
from orch_tui.core.config import (BinaryConfig, Config, DirectoriesConfig, JobsConfig,
                                  ResourcesConfig, load_config)
from orch_tui.core.errors import ConfigError

NOBODY = 65534

BASE = """\
binary:
  path: ./bin/tool
  flags:
    - "-i"
    - "{input_file}"
    - "-vf"
    - "scale=1280:720"
    - "{output_file}"
directories:
  input_file_list: inputs.txt
  output_dir: out
  output_suffix: _720p
"""


def make_tool(folder: Path, name: str = "tool", mode: int = 0o755) -> Path:
    """An executable stand-in for ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    tool.chmod(mode)
    return tool


@pytest.fixture(name="folder")
def fixture_folder() -> Iterator[Path]:
    """A world-traversable folder, so checks can also run as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="orch-config-test-"))
    path.chmod(0o755)
    make_tool(path / "bin")
    try:
        yield path
    finally:
        for child in path.rglob("*"):
            if child.is_dir() and not child.is_symlink():
                child.chmod(0o755)
        shutil.rmtree(path)


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    """Write a config (dedented) and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(folder: Path, text: str) -> Config:
    """Load a config given as text."""
    return load_config(write(folder, text))


def error_of(path: Path) -> ConfigError:
    """The ConfigError that loading `path` raises (and only a ConfigError)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert "\n" not in str(error), "errors must be one line"
    assert str(error).startswith(str(path)), "errors must name the config file"
    return error


def expect_error(folder: Path,
                 text: str,
                 key: str | None,
                 *fragments: str,
                 line: int | None = None,
                 column: int | None = None) -> ConfigError:
    """Load `text`, expecting an error at `key` (and line/column when given)."""
    error = error_of(write(folder, text))
    assert error.key == key, str(error)
    for fragment in fragments:
        assert fragment in str(error), str(error)
    if line is not None:
        assert error.line == line, str(error)
    if column is not None:
        assert error.column == column, str(error)
    return error


def load_as_nobody(path: Path) -> str:
    """str() of the ConfigError raised when an unprivileged user loads `path` ('' if none).

    Root ignores permission bits, so as root the load runs in a child dropped to `nobody`;
    otherwise it runs in-process.
    """
    if os.geteuid() != 0:
        try:
            load_config(path)
        except ConfigError as exc:
            return str(exc)
        return ""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 3  # exit status if dropping privileges fails
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            status = 5  # exit status if load_config raises anything but ConfigError
            message = ""
            try:
                load_config(path)
            except ConfigError as exc:
                message = str(exc)
            os.write(write_end, message.encode())
            status = 0
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        output = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code == 3:
        pytest.skip("cannot drop root privileges to test permission checks")
    assert exit_code == 0, "load_config raised something other than ConfigError"
    return output


# --- valid configs -----------------------------------------------------------------------------


def test_seed_config_loads(folder: Path) -> None:
    config = load_text(folder, BASE)
    assert config.path == folder / "config.yaml"
    assert config.binary == BinaryConfig(path=folder / "bin" / "tool",
                                         declared="./bin/tool",
                                         flags=("-i", "{input_file}", "-vf", "scale=1280:720",
                                                "{output_file}"))
    assert config.directories == DirectoriesConfig(input_file_list=folder / "inputs.txt",
                                                   output_dir=folder / "out",
                                                   output_suffix="_720p")
    assert config.resources == ResourcesConfig()
    assert config.jobs == JobsConfig()


def test_defaults_match_the_contract() -> None:
    assert ResourcesConfig() == ResourcesConfig(cpu_fraction=0.8,
                                                memory_fraction=0.8,
                                                disk_fraction=0.8,
                                                stabilization_seconds=5.0,
                                                max_processes=None,
                                                sample_interval=1.0)
    assert JobsConfig() == JobsConfig(timeout=None,
                                      retries=0,
                                      kill_grace=5.0,
                                      halt_after_failures=10)


def test_each_numeric_setting_has_a_spec_and_takes_its_default_from_the_dataclass() -> None:
    # The validation specs carry no defaults of their own: the dataclass fields are the one source.
    # On/off settings (resources.adaptive) are checked as booleans, and jobs.keep_logs as a
    # word, not as numbers.
    switches = config_module._RESOURCE_SWITCHES
    sections = [(config_module._RESOURCES, ResourcesConfig), (config_module._JOBS, JobsConfig)]
    for specs, section in sections:
        numeric = [
            field.name for field in fields(section)
            if field.name not in switches and field.name != "keep_logs"
        ]
        assert [spec.name for spec in specs] == numeric


def test_output_suffix_is_optional(folder: Path) -> None:
    config = load_text(folder, BASE.replace("  output_suffix: _720p\n", ""))
    assert config.directories.output_suffix == ""


def test_key_location_is_one_based(folder: Path) -> None:
    config = load_text(folder, BASE)
    assert config.key_location("binary") == (1, 1)
    assert config.key_location("binary.path") == (2, 3)
    assert config.key_location("binary.flags[1]") == (5, 7)
    assert config.key_location("directories.output_dir") == (11, 3)
    assert config.key_location("resources.cpu_fraction") is None


def test_resources_and_jobs_are_read(folder: Path) -> None:
    config = load_text(
        folder, BASE + """\
resources:
  cpu_fraction: 0.5
  memory_fraction: 1
  disk_fraction: 0.25
  stabilization_seconds: 0
  max_processes: 4
  sample_interval: 0.5
jobs:
  timeout: 3600
  retries: 2
  kill_grace: 0
  halt_after_failures: 0
""")
    assert config.resources == ResourcesConfig(0.5, 1.0, 0.25, 0.0, 4, 0.5)
    assert config.jobs == JobsConfig(timeout=3600.0,
                                     retries=2,
                                     kill_grace=0.0,
                                     halt_after_failures=0)
    assert isinstance(config.resources.memory_fraction, float)
    assert isinstance(config.jobs.timeout, float)
    assert isinstance(config.resources.max_processes, int)


def test_empty_sections_and_null_values_mean_defaults(folder: Path) -> None:
    config = load_text(folder, BASE + "resources:\njobs:\n  timeout:\n  retries: ~\n")
    assert config.resources == ResourcesConfig()
    assert config.jobs == JobsConfig()


def test_flags_keep_the_text_as_written(folder: Path) -> None:
    """YAML 1.1 would turn these into 23, 90, 8 and 1.5; the flag must be what was typed."""
    text = BASE.replace('    - "scale=1280:720"\n',
                        "    - 23\n    - 00:01:30\n    - 010\n    - 1.50\n    - 0x1F\n")
    flags = load_text(folder, text).binary.flags
    assert flags == ("-i", "{input_file}", "-vf", "23", "00:01:30", "010", "1.50", "0x1F",
                     "{output_file}")


def test_flow_style_and_escaped_braces(folder: Path) -> None:
    config = load_text(
        folder, """\
        binary: {path: ./bin/tool, flags: ["-i", "{input_file}", "{{not a placeholder}}"]}
        directories: {input_file_list: inputs.txt, output_dir: out}
        """)
    assert config.binary.flags[2] == "{{not a placeholder}}"


def test_bare_name_is_found_on_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{folder / 'nothing'}{os.pathsep}{folder / 'bin'}")
    config = load_text(folder, BASE.replace("./bin/tool", "tool"))
    assert config.binary.path == folder / "bin" / "tool"
    assert config.binary.declared == "tool"


def test_relative_paths_resolve_against_the_config_folder(folder: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    (folder / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    config = load_config(write(folder / "sub", BASE.replace("./bin/tool", "../bin/tool")))
    assert config.binary.path == folder / "bin" / "tool"
    assert config.directories.input_file_list == folder / "sub" / "inputs.txt"
    assert config.directories.output_dir == folder / "sub" / "out"


def test_relative_config_path_is_made_absolute(folder: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write(folder, BASE)
    monkeypatch.chdir(folder)
    assert load_config("config.yaml").path == folder / "config.yaml"


def test_home_is_expanded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(folder))
    text = BASE.replace("./bin/tool", "~/bin/tool").replace("output_dir: out", "output_dir: ~/out")
    text = text.replace("input_file_list: inputs.txt", "input_file_list: ~/inputs.txt")
    config = load_config(write(folder / "bin", text))
    assert config.binary.path == folder / "bin" / "tool"
    assert config.directories.output_dir == folder / "out"
    assert config.directories.input_file_list == folder / "inputs.txt"


def test_load_creates_nothing(folder: Path) -> None:
    before = sorted(folder.rglob("*"))
    config = load_text(folder, BASE.replace("output_dir: out", "output_dir: out/deep/er"))
    assert config.directories.output_dir == folder / "out" / "deep" / "er"
    assert sorted(folder.rglob("*")) == before + [folder / "config.yaml"]


def test_existing_output_dir_is_accepted(folder: Path) -> None:
    (folder / "out").mkdir()
    assert load_text(folder, BASE).directories.output_dir == folder / "out"


def test_byte_order_mark_is_tolerated(folder: Path) -> None:
    path = folder / "config.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_config(path).binary.declared == "./bin/tool"


def test_numeric_suffix_keeps_its_text(folder: Path) -> None:
    config = load_text(folder, BASE.replace("output_suffix: _720p", "output_suffix: 0720"))
    assert config.directories.output_suffix == "0720"


# --- the config file itself --------------------------------------------------------------------


def test_missing_config_file(folder: Path) -> None:
    error = error_of(folder / "nope.yaml")
    assert "not found" in str(error)
    assert error.path == folder / "nope.yaml"


def test_config_file_is_a_directory(folder: Path) -> None:
    (folder / "dir.yaml").mkdir()
    assert "is a directory" in str(error_of(folder / "dir.yaml"))


def test_unreadable_config_file(folder: Path) -> None:
    path = write(folder, BASE)
    path.chmod(0o000)
    message = load_as_nobody(path)
    assert message.startswith(str(path))
    assert "permission denied" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_config(folder: Path, text: str) -> None:
    expect_error(folder, text, None, "config file is empty")


def test_non_utf8_config(folder: Path) -> None:
    path = folder / "config.yaml"
    path.write_bytes(b"binary:\n  path: caf\xe9\n")
    error = error_of(path)
    assert (error.line, error.column) == (2, 12)
    assert "not valid UTF-8 (byte 0xe9)" in str(error)


def test_control_character_in_config(folder: Path) -> None:
    expect_error(folder, "binary:\n  path: a\x01b\n", None, "U+0001", line=2, column=10)


@pytest.mark.parametrize("text, line, column, fragment", [
    ("binary: [\n", 2, 1, "invalid YAML"),
    ("binary: b: c\n", 1, 10, "mapping values are not allowed here"),
    ("binary:\n  path: 'open\n", 3, 1, "end of stream"),
    ("binary: *nothing\n", 1, 9, "undefined alias"),
    ("a: 1\n---\nb: 2\n", 2, 1, "single document"),
])
def test_malformed_yaml_is_located(folder: Path, text: str, line: int, column: int,
                                   fragment: str) -> None:
    expect_error(folder, text, None, "invalid YAML", fragment, line=line, column=column)


def test_tabs_are_explained(folder: Path) -> None:
    text = BASE.replace("  path: ./bin/tool", "\tpath: ./bin/tool")
    expect_error(folder,
                 text,
                 None,
                 "tabs are not allowed for indentation",
                 f"{folder / 'config.yaml'}:2:1:",
                 line=2,
                 column=1)


@pytest.mark.parametrize("text, what", [
    ("- binary\n- directories\n", "got a list"),
    ("just a string\n", "got a string ('just a string')"),
    ("42\n", "got an integer (42)"),
])
def test_top_level_must_be_a_mapping(folder: Path, text: str, what: str) -> None:
    expect_error(folder, text, None, "expected a mapping", what, line=1, column=1)


# --- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, key, fragment", [
    ("directories:", "directory:", "directory", "did you mean 'directories'?"),
    ("  flags:", "  flag:", "binary.flag", "did you mean 'flags'?"),
    ("  output_suffix:", "  output_sufix:", "directories.output_sufix",
     "did you mean 'output_suffix'?"),
    ("binary:", "zzz: 1\nbinary:", "zzz",
     "allowed keys here: binary, directories, resources, jobs"),
])
def test_unknown_keys(folder: Path, old: str, new: str, key: str, fragment: str) -> None:
    expect_error(folder, BASE.replace(old, new, 1), key, "unknown key", fragment)


@pytest.mark.parametrize("section, key, fragment", [
    ("resources", "cpu_fracton", "did you mean 'cpu_fraction'?"),
    ("resources", "threads", "allowed keys here: cpu_fraction, memory_fraction"),
    ("jobs", "retry", "did you mean 'retries'?"),
    ("jobs", "timout", "did you mean 'timeout'?"),
])
def test_unknown_keys_in_optional_sections(folder: Path, section: str, key: str,
                                           fragment: str) -> None:
    expect_error(folder,
                 BASE + f"{section}:\n  {key}: 1\n",
                 f"{section}.{key}",
                 fragment,
                 line=14,
                 column=3)


@pytest.mark.parametrize("text, key, line", [
    ("directories:\n  input_file_list: a\n  output_dir: b\n", "binary", 1),
    ("binary:\n  path: ./bin/tool\n  flags: [x]\n", "directories", 1),
    ("binary:\n  flags: [x]\ndirectories: {input_file_list: a, output_dir: b}\n", "binary.path", 2),
    ("binary:\n  path: ./bin/tool\ndirectories: {input_file_list: a, output_dir: b}\n",
     "binary.flags", 2),
    ("binary: {path: ./bin/tool, flags: [x]}\ndirectories: {input_file_list: a}\n",
     "directories.output_dir", 2),
    ("binary: {path: ./bin/tool, flags: [x]}\ndirectories: {output_dir: b}\n",
     "directories.input_file_list", 2),
])
def test_missing_required_keys(folder: Path, text: str, key: str, line: int) -> None:
    expect_error(folder, text, key, f"missing required key '{key.rsplit('.', 1)[-1]}'", line=line)


@pytest.mark.parametrize("old, new, key", [
    ("  path: ./bin/tool", "  path:", "binary.path"),
    ("  output_dir: out", "  output_dir: ~", "directories.output_dir"),
    ("binary:\n  path: ./bin/tool\n  flags:\n    - \"-i\"\n    - \"{input_file}\"\n    - \"-vf\"\n"
     "    - \"scale=1280:720\"\n    - \"{output_file}\"\n", "binary:\n", "binary"),
])
def test_required_keys_without_value(folder: Path, old: str, new: str, key: str) -> None:
    expect_error(folder, BASE.replace(old, new), key, "has no value")


def test_duplicate_keys(folder: Path) -> None:
    text = BASE + "directories:\n  output_dir: other\n"
    expect_error(folder,
                 text,
                 "directories",
                 "duplicate key 'directories' (first given on line 9)",
                 line=13)


def test_non_string_keys(folder: Path) -> None:
    expect_error(folder, BASE + "1: one\n", None, "keys must be names, got an integer (1)", line=13)


def test_merge_keys_are_refused(folder: Path) -> None:
    text = BASE + "jobs: &j {retries: 1}\nresources:\n  <<: *j\n"
    expect_error(folder, text, "resources", "merge keys", line=15)


# --- types and values --------------------------------------------------------------------------

DIRS = "directories: {input_file_list: a, output_dir: b}\n"


def test_binary_must_be_a_mapping(folder: Path) -> None:
    expect_error(folder,
                 "binary:\n  - ./bin/tool\n" + DIRS,
                 "binary",
                 "expected a mapping",
                 "got a list",
                 line=2,
                 column=3)


def test_flags_must_be_a_list(folder: Path) -> None:
    text = "binary:\n  path: ./bin/tool\n  flags: -i {input_file}\n" + DIRS
    expect_error(folder,
                 text,
                 "binary.flags",
                 "expected a list of strings",
                 "got a string ('-i {input_file}')",
                 "one argument per list item",
                 line=3,
                 column=10)


@pytest.mark.parametrize("old, new, key, fragments", [
    ("  path: ./bin/tool", "  path: [./bin/tool]", "binary.path",
     ("expected a program name or path", "got a list")),
    ("  path: ./bin/tool", "  path: true", "binary.path", ("got a boolean (true)", "quote it")),
    ("  output_dir: out", "  output_dir: {a: 1}", "directories.output_dir",
     ("expected a path", "got a mapping")),
    ("  output_suffix: _720p", "  output_suffix: [a]", "directories.output_suffix",
     ("expected a string", "got a list")),
    ("  path: ./bin/tool", "  path: !custom ./bin/tool", "binary.path",
     ("a value tagged !custom", )),
    ("  output_dir: out", '  output_dir: "out\\0"', "directories.output_dir", ("NUL", )),
])
def test_wrong_types(folder: Path, old: str, new: str, key: str, fragments: tuple[str,
                                                                                  ...]) -> None:
    expect_error(folder, BASE.replace(old, new, 1), key, *fragments)


def test_empty_flags_list(folder: Path) -> None:
    text = BASE.replace(
        '  flags:\n    - "-i"\n    - "{input_file}"\n    - "-vf"\n'
        '    - "scale=1280:720"\n    - "{output_file}"\n', "  flags: []\n")
    expect_error(folder, text, "binary.flags", "at least one flag", line=3, column=10)


@pytest.mark.parametrize("item, fragments", [
    ("yes", ("expected a string", "got a boolean (yes)", "quote it")),
    ("false", ("got a boolean (false)", )),
    ("~", ("got nothing (null)", )),
    ("null", ("got nothing (null)", )),
    ("-vf: scale=1:2", ("got a mapping", "quote the value")),
    ("[a, b]", ("got a list", )),
])
def test_bad_flag_items(folder: Path, item: str, fragments: tuple[str, ...]) -> None:
    text = BASE.replace('    - "-vf"\n', f"    - {item}\n")
    expect_error(folder, text, "binary.flags[2]", *fragments, line=6, column=7)


@pytest.mark.parametrize("flag, fragments", [
    ("{input_fle}", ("unknown placeholder {input_fle}", "did you mean {input_file}?",
                     "known placeholders: {input_file}, {output_file}")),
    ("{input_file.__class__}", ("unknown placeholder", )),
    ("{0}", ("unknown placeholder {0}", )),
    ("{input_file!r}", ("unknown placeholder", )),
    ("{input_file", ("unbalanced '{'", )),
    ("input_file}", ("unbalanced '}'", )),
    ("{}", ("empty placeholder", )),
])
def test_flag_templates_are_checked(folder: Path, flag: str, fragments: tuple[str, ...]) -> None:
    text = BASE.replace('    - "{input_file}"\n', f"    - '{flag}'\n")
    expect_error(folder, text, "binary.flags[1]", *fragments, line=5, column=7)


@pytest.mark.parametrize("suffix, fragment", [
    ("_a/b", "'/'"),
    ("../up", "'/'"),
    ("..", "'..'"),
    ("'a\\b'", "'\\\\'"),
])
def test_bad_output_suffix(folder: Path, suffix: str, fragment: str) -> None:
    text = BASE.replace("output_suffix: _720p", f"output_suffix: {suffix}")
    expect_error(folder, text, "directories.output_suffix", fragment, line=12, column=18)


@pytest.mark.parametrize("key, value, fragments", [
    ("resources.cpu_fraction", "0", ("must be in (0, 1], got 0", )),
    ("resources.cpu_fraction", "1.5", ("must be in (0, 1]", )),
    ("resources.memory_fraction", "-0.1", ("must be in (0, 1]", )),
    ("resources.disk_fraction", "2", ("must be in (0, 1]", )),
    ("resources.cpu_fraction", "'0.5'", ("expected a number", "got a string ('0.5')")),
    ("resources.cpu_fraction", "80%", ("expected a number", "not a percentage")),
    ("resources.cpu_fraction", "true", ("expected a number", "got a boolean (true)")),
    ("resources.cpu_fraction", ".nan", ("finite", )),
    ("resources.cpu_fraction", "[0.5]", ("expected a number", "got a list")),
    ("resources.stabilization_seconds", "-1", ("must be >= 0", )),
    ("resources.max_processes", "0", ("must be 1 to 4194304", )),
    ("resources.max_processes", "9223372036854775808", ("must be 1 to 4194304", )),
    ("resources.max_processes", "2.5", ("expected a whole number", "got a number (2.5)")),
    ("resources.max_processes", "yes", ("expected a whole number", "got a boolean (yes)")),
    ("resources.sample_interval", "0", ("must be > 0", )),
    ("resources.sample_interval", "!!int abc", ("not a valid number", )),
    ("jobs.timeout", "0", ("must be > 0", )),
    ("jobs.timeout", "-5", ("must be > 0", )),
    ("jobs.timeout", ".inf", ("finite", )),
    ("jobs.timeout", "1h", ("expected a number", "got a string ('1h')")),
    ("jobs.retries", "-1", ("must be >= 0", )),
    ("jobs.retries", "1.0", ("expected a whole number", )),
    ("jobs.retries", "false", ("got a boolean", )),
    ("jobs.kill_grace", "-0.5", ("must be >= 0", )),
    ("jobs.halt_after_failures", "-1", ("must be >= 0", )),
])
def test_bad_numbers(folder: Path, key: str, value: str, fragments: tuple[str, ...]) -> None:
    section, name = key.split(".")
    text = BASE + f"{section}:\n  {name}: {value}\n"
    expect_error(folder, text, key, *fragments, line=14, column=len(name) + 5)


# --- binary.path -------------------------------------------------------------------------------


def test_bare_name_not_on_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(folder / "nothing"))
    text = BASE.replace("./bin/tool", "no-such-tool-xyz")
    expect_error(folder,
                 text,
                 "binary.path",
                 "'no-such-tool-xyz' not found on PATH",
                 line=2,
                 column=9)


def test_bare_name_next_to_the_config_gets_a_hint(folder: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(folder / "nothing"))
    make_tool(folder, "local-tool")
    expect_error(folder, BASE.replace("./bin/tool", "local-tool"), "binary.path",
                 "not found on PATH", "write './local-tool'")


def test_binary_path_missing(folder: Path) -> None:
    expect_error(folder,
                 BASE.replace("./bin/tool", "./bin/nope"),
                 "binary.path",
                 f"{folder / 'bin' / 'nope'}: not found",
                 line=2,
                 column=9)


def test_binary_path_is_a_directory(folder: Path) -> None:
    expect_error(folder, BASE.replace("./bin/tool", "./bin"), "binary.path", "is a directory")


def test_binary_path_not_executable(folder: Path) -> None:
    make_tool(folder / "bin", "plain", mode=0o644)
    expect_error(folder, BASE.replace("./bin/tool", "bin/plain"), "binary.path",
                 "is not executable")


def test_binary_path_empty(folder: Path) -> None:
    expect_error(folder, BASE.replace("./bin/tool", "''"), "binary.path", "must not be empty")


# --- output_dir --------------------------------------------------------------------------------


def test_output_dir_is_a_file(folder: Path) -> None:
    (folder / "out").write_text("x", encoding="utf-8")
    expect_error(folder,
                 BASE,
                 "directories.output_dir",
                 "exists and is not a directory",
                 line=11,
                 column=15)


def test_output_dir_below_a_file(folder: Path) -> None:
    (folder / "afile").write_text("x", encoding="utf-8")
    text = BASE.replace("output_dir: out", "output_dir: afile/sub/out")
    expect_error(folder, text, "directories.output_dir", "cannot be created",
                 f"{folder / 'afile'} is not a directory")


def test_output_dir_broken_symlink(folder: Path) -> None:
    (folder / "out").symlink_to(folder / "gone")
    expect_error(folder, BASE, "directories.output_dir", "broken symbolic link")


def test_output_dir_empty(folder: Path) -> None:
    expect_error(folder, BASE.replace("output_dir: out", "output_dir: ''"),
                 "directories.output_dir", "must not be empty")


def test_output_dir_not_writable(folder: Path) -> None:
    (folder / "out").mkdir(mode=0o555)
    (folder / "out").chmod(0o555)
    message = load_as_nobody(write(folder, BASE))
    assert "directories.output_dir" in message
    assert f"{folder / 'out'} is not writable" in message


def test_output_dir_parent_not_writable(folder: Path) -> None:
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o555)
    message = load_as_nobody(write(folder, BASE.replace("output_dir: out", "output_dir: ro/a/b")))
    assert "directories.output_dir" in message
    assert f"cannot be created: {folder / 'ro'} is not writable" in message


def test_output_dir_writable_as_nobody(folder: Path) -> None:
    """The unprivileged helper itself must be able to succeed, or the two tests above prove
    nothing."""
    (folder / "out").mkdir()
    (folder / "out").chmod(0o777)
    assert load_as_nobody(write(folder, BASE)) == ""


# --- odd paths never escape as anything but ConfigError ----------------------------------------


def test_config_path_with_nul_byte(folder: Path) -> None:
    with pytest.raises(ConfigError, match="invalid config file name"):
        load_config(f"{folder}/bad\0name.yaml")


def test_binary_symlink_loop(folder: Path) -> None:
    (folder / "bin" / "loop").symlink_to(folder / "bin" / "loop")
    expect_error(folder, BASE.replace("./bin/tool", "./bin/loop"), "binary.path",
                 "cannot be used (Too many levels of symbolic links)")


def test_overlong_bare_binary_name(folder: Path) -> None:
    expect_error(folder, BASE.replace("./bin/tool", "x" * 300), "binary.path", "not found on PATH")


def test_overlong_output_dir_name_is_left_to_run_time(folder: Path) -> None:
    config = load_text(folder, BASE.replace("output_dir: out", f"output_dir: {'o' * 300}/x"))
    assert config.directories.output_dir == folder / ("o" * 300) / "x"


@pytest.mark.parametrize("old, new, key", [
    ("./bin/tool", '"./bin/to\\nol"', "binary.path"),
    ("output_dir: out", 'output_dir: "o\\x1bt"', "directories.output_dir"),
    ("input_file_list: inputs.txt", 'input_file_list: "in\\tputs.txt"',
     "directories.input_file_list"),
    ("output_suffix: _720p", 'output_suffix: "_7\\n20"', "directories.output_suffix"),
])
def test_control_characters_in_paths(folder: Path, old: str, new: str, key: str) -> None:
    error = expect_error(folder, BASE.replace(old, new), key, "control characters")
    assert str(error).isprintable()


def test_messages_escape_control_characters(folder: Path) -> None:
    error = expect_error(folder, BASE.replace('"{input_file}"', '"{in\\nput}"'), "binary.flags[1]",
                         "unknown placeholder {in\\nput}")
    assert str(error).isprintable()
