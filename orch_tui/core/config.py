"""Load and validate the YAML config (the seed spec's schema plus optional `resources`/`jobs`).

The file is parsed with `yaml.compose` and PyYAML's SafeLoader rules only (no object construction
beyond plain scalars), keeping each node's position so every error names the file, the 1-based
line and column, and the dotted key (`binary.flags[2]`). Loading validates everything that can be
known up front (the binary exists and is executable, the output folder can be created) and never
creates anything on disk.

Decisions worth knowing:
- String values (flags, paths, suffix) take the text exactly as written, so an unquoted `- 23`,
  `- 00:01:30` or `- 010` is the flag "23", "00:01:30", "010" rather than YAML 1.1's int 23, 90
  or 8. Booleans, nulls, lists and mappings are errors, with a hint to quote.
- An optional key written with no value (`timeout:`) means "use the default".
- Numbers must be YAML numbers: `"0.5"` (a string) and `true` (a boolean) are rejected.
"""

from __future__ import annotations

import difflib
import enum
import math
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orch_tui.core import templates
from orch_tui.core.textutil import printable
from orch_tui.core.errors import ConfigError
from orch_tui.core.fsutil import TextFileWords, absolute, existing_ancestor, read_text_file

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
# Scalars whose source text is taken verbatim where a string is expected.
_TEXT_TAGS = frozenset({_STR, _INT, _FLOAT, _TAG + "timestamp"})


@dataclass(frozen=True)
class BinaryConfig:
    """The program to run and its flag templates."""
    path: Path
    declared: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class DirectoriesConfig:
    """Where inputs are listed and where outputs go."""
    input_file_list: Path
    output_dir: Path
    output_suffix: str = ""


@dataclass(frozen=True)
class ResourcesConfig:
    """Limits for automatic scaling (the seed's 80 % rules), all overridable."""
    cpu_fraction: float = 0.8
    memory_fraction: float = 0.8
    disk_fraction: float = 0.8
    stabilization_seconds: float = 5.0
    max_processes: int | None = None
    sample_interval: float = 1.0
    adaptive: bool = False  # try one job more than the cpu rule; keep it when measured faster


class KeepLogs(enum.Enum):
    """Which job logs outlive the run: all of them, or only those that say why a job did not
    succeed (a run of 100,000 good jobs then leaves no 100,000 logs behind)."""
    ALL = "all"
    FAILED = "failed"


@dataclass(frozen=True)
class JobsConfig:
    """Per-job policy: timeout, retries, how hard to stop, when to give up, which logs to keep."""
    timeout: float | None = None
    retries: int = 0
    kill_grace: float = 5.0
    halt_after_failures: int = 10
    keep_logs: KeepLogs = KeepLogs.ALL


@dataclass(frozen=True)
class ClusterConfig:
    """`cluster`: run every job on the Dask cluster whose scheduler is at `address` (None: on
    this machine)."""
    address: str | None = None


#: The most jobs at once anything may ask for: Linux's PID_MAX_LIMIT, more processes than any
#: machine can hold. A bound, so that no limit overflows the journal's 64-bit integers.
MAX_JOBS = 4_194_304

#: The schemes a Dask scheduler listens on that a cluster run may use.
CLUSTER_SCHEMES = ("tcp", "tls")


def address_problem(address: str) -> str:
    """Why `address` is not a scheduler address (`tcp://HOST:PORT`, `tls://HOST:PORT` or
    `HOST:PORT`), or ''."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in CLUSTER_SCHEMES:
        return (f"unknown scheme {scheme!r} in {address!r}: expected tcp://HOST:PORT or "
                "tls://HOST:PORT")
    host, colon, port = rest.rpartition(":")
    if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{address!r} is not HOST:PORT (the scheduler's, e.g. tcp://render1:8786)"
    if not address.isprintable() or any(c.isspace() for c in address):
        return f"{address!r} contains spaces or control characters"
    return ""


@dataclass(frozen=True)
class Config:
    """A validated config; `locations` maps dotted keys to (line, column) for the TUI."""
    path: Path
    binary: BinaryConfig
    directories: DirectoriesConfig
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    locations: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}),
                                                     repr=False,
                                                     compare=False)

    def key_location(self, key: str) -> tuple[int, int] | None:
        """(line, column), 1-based, of a dotted key such as `binary.flags[2]`; None if absent."""
        return self.locations.get(key)


@dataclass(frozen=True)
class _Number:
    """One numeric setting: whether it must be whole and its allowed range. Its default is the
    config dataclass field's own (`ResourcesConfig`, `JobsConfig`): one place to change it."""
    name: str
    integer: bool
    valid: Callable[[float], bool]
    rule: str


_RESOURCES = (
    _Number("cpu_fraction", False, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    _Number("memory_fraction", False, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    _Number("disk_fraction", False, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    _Number("stabilization_seconds", False, lambda v: v >= 0, "must be >= 0"),
    _Number("max_processes", True, lambda v: 1 <= v <= MAX_JOBS, f"must be 1 to {MAX_JOBS}"),
    _Number("sample_interval", False, lambda v: v > 0, "must be > 0"),
)
_RESOURCE_SWITCHES = ("adaptive", )
_JOBS = (
    _Number("timeout", False, lambda v: v > 0, "must be > 0"),
    _Number("retries", True, lambda v: v >= 0, "must be >= 0"),
    _Number("kill_grace", False, lambda v: v >= 0, "must be >= 0"),
    _Number("halt_after_failures", True, lambda v: v >= 0, "must be >= 0 (0 disables)"),
)
_TOP_KEYS = ("binary", "directories", "resources", "jobs", "cluster")
_BINARY_KEYS = ("path", "flags")
_DIRECTORY_KEYS = ("input_file_list", "output_dir", "output_suffix")


def _describe(node: Node) -> str:
    """How a value reads to a human, for 'expected X, got Y' messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    names = {
        _NULL: "nothing (null)",
        _BOOL: f"a boolean ({text})",
        _INT: f"an integer ({text})",
        _FLOAT: f"a number ({text})",
        _STR: f"a string ({text!r})",
    }
    return names.get(node.tag, f"a value tagged {node.tag} ({text!r})")


def _type_hint(node: Node) -> str:
    """Explain the YAML pitfall that most likely produced an unexpected type."""
    if isinstance(node, MappingNode):
        return " (an unquoted ': ' makes YAML read a mapping; quote the value)"
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return " (YAML reads yes/no/on/off/true/false as booleans; quote it)"
    if isinstance(node, ScalarNode) and node.tag == _STR and node.value.strip().endswith("%"):
        return " (write a fraction such as 0.8, not a percentage)"
    return ""


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


class _Document:
    """Walks the composed node tree, building values and located errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.parent
        self.locations: dict[str, tuple[int, int]] = {}
        self._constructor = yaml.SafeLoader("")

    def error(self, message: str, key: str | None, node: Node | None = None) -> ConfigError:
        """A ConfigError located at `node` (1-based), or at the file when no node is known."""
        line = column = None
        if node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        return ConfigError(printable(message),
                           path=self.path,
                           line=line,
                           column=column,
                           key=printable(key) if key else None)

    def remember(self, key: str, node: Node) -> None:
        """Record where a key was written, for `Config.key_location`."""
        self.locations[key] = (node.start_mark.line + 1, node.start_mark.column + 1)

    def mapping(self, node: Node, key: str, allowed: tuple[str, ...],
                required: Iterable[str]) -> dict[str, Node]:
        """Check a mapping's keys (unknown, duplicate, missing) and return name -> value node."""
        where = key or "the top level"
        if not isinstance(node, MappingNode):
            raise self.error(
                f"expected a mapping with keys {', '.join(allowed)} at {where}, got "
                f"{_describe(node)}", key, node)
        values: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                raise self.error(
                    "YAML merge keys ('<<') are not supported here; write the keys out", key,
                    key_node)
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                raise self.error(f"keys must be names, got {_describe(key_node)}", key, key_node)
            name = key_node.value
            dotted = f"{key}.{name}" if key else name
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = (f"did you mean '{close[0]}'?"
                        if close else f"allowed keys here: {', '.join(allowed)}")
                raise self.error(f"unknown key '{name}'; {hint}", dotted, key_node)
            if name in values:
                first = self.locations[dotted][0]
                raise self.error(f"duplicate key '{name}' (first given on line {first})", dotted,
                                 key_node)
            self.remember(dotted, key_node)
            values[name] = value_node
        for name in required:
            dotted = f"{key}.{name}" if key else name
            if name not in values:
                raise self.error(f"missing required key '{name}'", dotted, node)
            if _is_null(values[name]):
                raise self.error(f"'{name}' has no value", dotted, values[name])
        return values

    def text(self, node: Node, key: str, what: str = "a string") -> str:
        """A string value, taking numbers/dates as the exact text written (see module doc)."""
        if not isinstance(node, ScalarNode) or node.tag not in _TEXT_TAGS:
            raise self.error(f"expected {what}, got {_describe(node)}{_type_hint(node)}", key, node)
        if "\0" in node.value:
            raise self.error("must not contain a NUL character", key, node)
        return str(node.value)

    def number(self, node: Node, key: str, spec: _Number) -> float | int:
        """A YAML int/float (never bool or string), finite, within the spec's range."""
        kind = "a whole number" if spec.integer else "a number"
        tags = (_INT, ) if spec.integer else (_INT, _FLOAT)
        if not isinstance(node, ScalarNode) or node.tag not in tags:
            raise self.error(f"expected {kind}, got {_describe(node)}{_type_hint(node)}", key, node)
        try:
            value = self._constructor.construct_document(node)
        except (yaml.YAMLError, ValueError, TypeError):
            raise self.error(f"{node.value!r} is not a valid number", key, node) from None
        if not math.isfinite(value):
            raise self.error(f"must be a finite number, got {node.value}", key, node)
        if not spec.valid(value):
            raise self.error(f"{spec.rule}, got {node.value}", key, node)
        return int(value) if spec.integer else float(value)

    def switch(self, node: Node, key: str) -> bool:
        """A YAML boolean (true/false), never a string or number that reads like one."""
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            raise self.error(f"expected true or false, got {_describe(node)}", key, node)
        return bool(self._constructor.construct_document(node))

    def numbers(self,
                node: Node | None,
                section: str,
                specs: Sequence[_Number],
                switches: Sequence[str] = ()) -> dict[str, float | int]:
        """An optional section of numeric settings (and on/off `switches`), by name; missing or
        null keys are left out, so the config dataclass built from them supplies their default."""
        if node is None or _is_null(node):
            return {}
        names = tuple(spec.name for spec in specs) + tuple(switches)
        return self._numbers(self.mapping(node, section, names, ()), section, specs, switches)

    def _numbers(self,
                 given: dict[str, Node],
                 section: str,
                 specs: Sequence[_Number],
                 switches: Sequence[str] = ()) -> dict[str, float | int]:
        values: dict[str, float | int] = {}
        for spec in specs:
            value_node = given.get(spec.name)
            if value_node is not None and not _is_null(value_node):
                values[spec.name] = self.number(value_node, f"{section}.{spec.name}", spec)
        for name in switches:
            value_node = given.get(name)
            if value_node is not None and not _is_null(value_node):
                values[name] = self.switch(value_node, f"{section}.{name}")
        return values

    def jobs(self, node: Node | None) -> JobsConfig:
        """`jobs`: its numbers, and `keep_logs` (one of KeepLogs' values)."""
        if node is None or _is_null(node):
            return JobsConfig()
        names = tuple(spec.name for spec in _JOBS) + ("keep_logs", )
        given = self.mapping(node, "jobs", names, ())
        values: dict[str, Any] = dict(self._numbers(given, "jobs", _JOBS))
        keep = given.get("keep_logs")
        if keep is not None and not _is_null(keep):
            word = self.text(keep, "jobs.keep_logs", "all or failed")
            choices = {choice.value: choice for choice in KeepLogs}
            if word not in choices:
                raise self.error(f"must be one of {', '.join(choices)}, got {word!r}",
                                 "jobs.keep_logs", keep)
            values["keep_logs"] = choices[word]
        return JobsConfig(**values)

    def cluster(self, node: Node | None) -> ClusterConfig:
        """`cluster`: the scheduler's address, checked for its form (reaching it is the run's
        business)."""
        if node is None or _is_null(node):
            return ClusterConfig()
        given = self.mapping(node, "cluster", ("address", ), ())
        value = given.get("address")
        if value is None or _is_null(value):
            return ClusterConfig()
        address = self.text(value, "cluster.address", "a scheduler address (tcp://HOST:PORT)")
        problem = address_problem(address)
        if problem:
            raise self.error(problem, "cluster.address", value)
        return ClusterConfig(address)

    def path_value(self, node: Node, key: str) -> Path:
        """A path relative to the config's folder, `~` expanded, absolute and normalised (a `..`
        as the kernel reads it: fsutil.absolute)."""
        raw = self.text(node, key, "a path")
        if not raw.strip():
            raise self.error("must not be empty", key, node)
        if not raw.isprintable():
            raise self.error(f"must not contain control characters: {raw!r}", key, node)
        return Path(absolute(os.path.expanduser(raw), self.folder))

    def binary(self, node: Node) -> BinaryConfig:
        """`binary`: the executable (resolved now, so a typo fails before any job) and flags."""
        values = self.mapping(node, "binary", _BINARY_KEYS, _BINARY_KEYS)
        declared = self.text(values["path"], "binary.path", "a program name or path")
        path = self._resolve_binary(declared, values["path"])
        flags_node = values["flags"]
        if not isinstance(flags_node, SequenceNode):
            raise self.error(
                f"expected a list of strings, got {_describe(flags_node)}; write one argument "
                "per list item", "binary.flags", flags_node)
        if not flags_node.value:
            raise self.error("must list at least one flag", "binary.flags", flags_node)
        flags = []
        for i, item in enumerate(flags_node.value):
            key = f"binary.flags[{i}]"
            self.remember(key, item)
            flag = self.text(item, key)
            try:
                templates.check_template(flag)
            except templates.TemplateError as exc:
                raise self.error(str(exc), key, item) from None
            flags.append(flag)
        return BinaryConfig(path=path, declared=declared, flags=tuple(flags))

    def _resolve_binary(self, declared: str, node: Node) -> Path:
        key = "binary.path"
        if not declared.strip():
            raise self.error("must not be empty", key, node)
        if not declared.isprintable():
            raise self.error(f"must not contain control characters: {declared!r}", key, node)
        expanded = os.path.expanduser(declared)
        if "/" not in expanded:
            found = shutil.which(expanded)
            if found is None:
                local = self.folder / expanded
                hint = (f"; to use {local} write './{expanded}'"
                        if os.path.isfile(local) and os.access(local, os.X_OK) else "")
                raise self.error(f"'{declared}' not found on PATH{hint}", key, node)
            return Path(os.path.abspath(found))
        path = Path(absolute(expanded, self.folder))
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise self.error(f"{path}: not found", key, node) from None
        except OSError as exc:
            raise self.error(f"{path}: cannot be used ({exc.strerror})", key, node) from None
        if stat.S_ISDIR(info.st_mode):
            raise self.error(f"{path} is a directory, not a program", key, node)
        if not stat.S_ISREG(info.st_mode) or not os.access(path, os.X_OK):
            raise self.error(f"{path} is not executable (chmod +x?)", key, node)
        return path

    def directories(self, node: Node) -> DirectoriesConfig:
        """`directories`: resolved paths; output_dir checked for creatability, not created."""
        values = self.mapping(node, "directories", _DIRECTORY_KEYS, _DIRECTORY_KEYS[:2])
        input_list = self.path_value(values["input_file_list"], "directories.input_file_list")
        output_dir = self.path_value(values["output_dir"], "directories.output_dir")
        self._check_output_dir(output_dir, values["output_dir"])
        suffix = ""
        suffix_node = values.get("output_suffix")
        if suffix_node is not None and not _is_null(suffix_node):
            suffix = self.text(suffix_node, "directories.output_suffix")
            try:
                templates.check_suffix(suffix)
            except templates.TemplateError as exc:
                raise self.error(str(exc), "directories.output_suffix", suffix_node) from None
        return DirectoriesConfig(input_file_list=input_list,
                                 output_dir=output_dir,
                                 output_suffix=suffix)

    def _check_output_dir(self, output_dir: Path, node: Node) -> None:
        key = "directories.output_dir"
        # os.path helpers, not Path methods: they answer False instead of raising on odd paths
        # (e.g. a name longer than NAME_MAX), and load_config must raise only ConfigError.
        if os.path.lexists(output_dir) and not os.path.exists(output_dir):
            raise self.error(f"{output_dir} is a broken symbolic link", key, node)
        if os.path.exists(output_dir):
            if not os.path.isdir(output_dir):
                raise self.error(f"{output_dir} exists and is not a directory", key, node)
            if not os.access(output_dir, os.W_OK | os.X_OK):
                raise self.error(f"{output_dir} is not writable", key, node)
            return
        ancestor = existing_ancestor(output_dir)  # output_dir itself does not exist
        if not os.path.isdir(ancestor):
            raise self.error(f"{output_dir} cannot be created: {ancestor} is not a directory", key,
                             node)
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise self.error(f"{output_dir} cannot be created: {ancestor} is not writable", key,
                             node)


_CONFIG_FILE = TextFileWords(directory="is a directory, not a config file",
                             not_regular="is not a regular file",
                             not_found="config file not found",
                             cannot_read="cannot read config file",
                             bad_name="invalid config file name",
                             not_utf8="not valid UTF-8")


def _read_text(path: Path) -> str:
    """The config's text, or a ConfigError saying why it cannot be read as UTF-8."""
    return read_text_file(
        path, _CONFIG_FILE,
        lambda message, line, column: ConfigError(message, path=path, line=line, column=column))


def _compose(path: Path, text: str) -> Node | None:
    """Parse without constructing objects; YAML errors become located ConfigErrors."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "'\\t'" in problem:
            problem = ("tab character found; tabs are not allowed for indentation in YAML, "
                       "use spaces")
        elif exc.context:
            problem = f"{problem} ({exc.context})"
        line = column = None
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        raise ConfigError(f"invalid YAML: {printable(problem)}",
                          path=path,
                          line=line,
                          column=column) from None
    except yaml.reader.ReaderError as exc:
        before = text[:exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigError(f"invalid YAML: character U+{exc.character:04X} is not allowed",
                          path=path,
                          line=line,
                          column=column) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"invalid YAML: {printable(message)}", path=path) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError("invalid YAML: nested too deeply", path=path) from None


def config_output_dir(path: str | Path) -> Path:
    """The output folder a config names, read as `load_config` reads it but without checking
    the rest (the binary, the list, a writable folder): what a command on a run needs of it,
    also once the run is over and its folder read-only or its binary gone. ConfigError when
    the config cannot say."""
    config_path = Path(absolute(os.path.expanduser(path)))
    root = _compose(config_path, _read_text(config_path))
    if root is None or _is_null(root):
        raise ConfigError("config file is empty; it needs at least 'binary' and 'directories'",
                          path=config_path)
    doc = _Document(config_path)
    top = doc.mapping(root, "", _TOP_KEYS, ("binary", "directories"))
    values = doc.mapping(top["directories"], "directories", _DIRECTORY_KEYS, _DIRECTORY_KEYS[:2])
    return doc.path_value(values["output_dir"], "directories.output_dir")


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a config file; raises ConfigError (and nothing else)."""
    config_path = Path(absolute(os.path.expanduser(path)))
    text = _read_text(config_path)
    root = _compose(config_path, text)
    if root is None or _is_null(root):
        raise ConfigError("config file is empty; it needs at least 'binary' and 'directories'",
                          path=config_path)
    doc = _Document(config_path)
    top = doc.mapping(root, "", _TOP_KEYS, ("binary", "directories"))
    binary = doc.binary(top["binary"])
    directories = doc.directories(top["directories"])
    # numbers() checked each value against its field's own spec (int or float); a setting not
    # given is left to the dataclass default.
    resources = ResourcesConfig(**cast(
        dict[str,
             Any], doc.numbers(top.get("resources"), "resources", _RESOURCES, _RESOURCE_SWITCHES)))
    jobs = doc.jobs(top.get("jobs"))
    cluster = doc.cluster(top.get("cluster"))
    return Config(path=config_path,
                  binary=binary,
                  directories=directories,
                  resources=resources,
                  jobs=jobs,
                  cluster=cluster,
                  locations=MappingProxyType(dict(doc.locations)))
