"""The control socket's wire format: newline-delimited JSON, pure and IO-free.

One message per line, each a JSON object with a "kind" (hello, snapshot, event, command, reply,
error); the run's data travel as objects with a "type" (the class name) and one key per field.
The codec is generic over the frozen dataclasses of the core, driven by their type hints, so a
new event field travels without code here; but only the classes of a fixed registry (every
`Event` subclass, `RunSnapshot`, `Eta`, and the dataclasses their fields hold) are ever built
from a peer's message: a peer naming any other class gets a `ProtocolError`, never an instance.

Values: enums by value, `Path` as str, tuples and frozensets as arrays, `None` as null,
non-finite floats as `Infinity`/`NaN` (Python's json extension: both ends are orch-tui).
Encoding is ASCII (`ensure_ascii`): a file name that `os.fsdecode` gave lone surrogates for
its undecodable bytes (U+DC80-U+DCFF) travels as JSON `\\udcXX` escapes, which the peer's json
reads back into the same str, so `os.fsencode` gives back the same bytes. A name's newline is
escaped too: a line is always exactly one message.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orch_tui.core import eta, scaling, snapshot
from orch_tui.core.inputs import InputEntry
from orch_tui.core.plan import JobLayout, JobSpec
from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError

#: 2: a snapshot's jobs go as the plan's layout and columns plus each job's changes (_JobList).
#: 3: PreflightDone names the inputs that cannot run (`problems`).
#: 4: JobStateChanged carries an attempt's start in epoch seconds (`started_wall`).
PROTOCOL_VERSION: int = 4
PROGRAM = "orch-tui"
#: The longest line a client may send the run (bytes, newline included): commands and hellos
#: are tiny, so this bounds a client's memory in the run whatever it sends. The run's own lines
#: (a snapshot of 100,000 jobs) are longer: a client reads them with `decode(line, limit=None)`.
MAX_LINE: int = 64 * 1024

KINDS = ("hello", "snapshot", "event", "command", "reply", "error")
#: stop: end every job, exit 143 (SIGTERM's); drain: no more launches, the running jobs finish
#: (the TUI's "wait for running jobs, then quit").
COMMANDS = ("pause", "resume", "kill", "requeue", "cancel", "pause_all", "resume_all", "set_limit",
            "stop", "drain", "kill_now")
#: The commands on one job: they need a "job" (its index).
JOB_COMMANDS = frozenset({"pause", "resume", "kill", "requeue", "cancel"})
#: The commands with a number: they need a "value" (set_limit: the limit, at least 1).
VALUE_COMMANDS = frozenset({"set_limit"})


class ProtocolError(OrchError):
    """A message that breaks the protocol (not JSON, a wrong key, another protocol version):
    the connection ends with this one-line message; the run goes on."""


class _Bad(Exception):
    """A value that does not fit its field; `path` is filled in on the way out
    (`.jobs[3].state`) so the ProtocolError names exactly what was wrong."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str] = []


Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def _show(value: Any) -> str:
    """A peer's value in an error message: its JSON kind, or a short repr (it may be huge)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- plain values: JSON has them; only their type is checked (bool is not an int on the wire)


def _decode_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Bad(f"expected an integer, got {_show(value)}")


def _decode_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _Bad(f"expected a number, got {_show(value)}")


def _decode_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Bad(f"expected a string, got {_show(value)}")


def _decode_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Bad(f"expected true or false, got {_show(value)}")


def _decode_path(value: Any) -> Path:
    return Path(_decode_str(value))


_PLAIN: dict[Any, Decoder] = {
    int: _decode_int,
    float: _decode_float,
    str: _decode_str,
    bool: _decode_bool,
}


def _optional(enc: Encoder | None, dec: Decoder) -> tuple[Encoder | None, Decoder]:

    def decode_optional(value: Any) -> Any:
        return None if value is None else dec(value)

    if enc is None:
        return None, decode_optional
    inner = enc
    return (lambda value: None if value is None else inner(value)), decode_optional


def _indexed(dec: Decoder, value: Any, where: str) -> Any:
    try:
        return dec(value)
    except _Bad as bad:
        bad.path.insert(0, where)
        raise


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"expected an array, got {_show(value)}")
    return value


def _sequence(make: Callable[[Iterable[Any]], Any], enc: Encoder | None,
              dec: Decoder) -> tuple[Encoder, Decoder]:
    """tuple[X, ...] and frozenset[X]: a JSON array."""

    def decode_sequence(value: Any) -> Any:
        items = _array(value)
        try:
            return make([dec(item) for item in items])
        except _Bad:  # again, item by item, to say which
            return make(_indexed(dec, item, f"[{i}]") for i, item in enumerate(items))

    if enc is None:
        return list, decode_sequence
    inner = enc
    return (lambda value: [inner(item) for item in value]), decode_sequence


def _fixed_tuple(parts: list[tuple[Encoder | None, Decoder]]) -> tuple[Encoder, Decoder]:
    """tuple[A, B]: an array of exactly that many items."""
    encoders = [enc or (lambda item: item) for enc, _ in parts]
    decoders = [dec for _, dec in parts]

    def encode_tuple(value: Any) -> list[Any]:
        return [enc(item) for enc, item in zip(encoders, value)]

    def decode_tuple(value: Any) -> tuple[Any, ...]:
        items = _array(value)
        if len(items) != len(decoders):
            raise _Bad(f"expected {len(decoders)} items, got {len(items)}")
        return tuple(
            _indexed(dec, item, f"[{i}]") for i, (dec, item) in enumerate(zip(decoders, items)))

    return encode_tuple, decode_tuple


def _key(hint: Any) -> tuple[Encoder, Decoder]:
    """A dict key: JSON's keys are strings, so str, an int (as its digits) or a str enum."""
    if hint is str:
        return (lambda key: key), _decode_str
    if hint is int:

        def decode_int_key(key: Any) -> int:
            try:
                return int(key)
            except ValueError:
                raise _Bad(f"expected an integer key, got {_show(key)}") from None

        return str, decode_int_key
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    raise TypeError(f"the wire cannot carry dict keys of {hint!r}")


def _mapping(key: tuple[Encoder, Decoder], enc: Encoder | None,
             dec: Decoder) -> tuple[Encoder, Decoder]:
    """dict[K, V]: a JSON object."""
    encode_key, decode_key = key
    encode_value = enc or (lambda value: value)

    def encode_mapping(value: Any) -> dict[str, Any]:
        return {encode_key(k): encode_value(v) for k, v in value.items()}

    def decode_mapping(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _Bad(f"expected an object, got {_show(value)}")
        return {
            _indexed(decode_key, k, f"[{_show(k)}]"): _indexed(dec, v, f"[{_show(k)}]")
            for k, v in value.items()
        }

    return encode_mapping, decode_mapping


def _enum(cls: type[enum.Enum]) -> tuple[Encoder, Decoder]:
    """An enum member by its value (the values are what the journal and --json show too)."""
    members = {member.value: member for member in cls}
    known = ", ".join(repr(value) for value in members)

    def decode_enum(value: Any) -> enum.Enum:
        try:
            return members[value]
        except (KeyError, TypeError):  # TypeError: an array or object is no value
            raise _Bad(f"expected one of {known}, got {_show(value)}") from None

    return (lambda member: member.value), decode_enum


class _ClassCodec:
    """One registered dataclass: its fields' encoders and decoders, compiled once."""

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.encoders: list[tuple[str, Encoder | None]] = []
        self.decoders: list[tuple[str, Decoder, bool]] = []  # name, decode, required
        self.names: frozenset[str] = frozenset()

    def encode(self, obj: Any) -> dict[str, Any]:
        """{"type": name, field: value...}."""
        out: dict[str, Any] = {"type": self.name}
        for name, enc in self.encoders:
            value = getattr(obj, name)
            out[name] = value if enc is None else enc(value)
        return out

    def decode(self, data: Any) -> Any:
        """The instance `data` describes (every field checked against its type)."""
        if not isinstance(data, dict):
            raise _Bad(f"expected a {self.name} object, got {_show(data)}")
        kind = data.get("type")
        if kind != self.name:
            raise _Bad(f"expected a {self.name}, got type {_show(kind)}")
        values = {}
        name, missing = "", None
        try:  # one try around the loop, not one a field: this runs for every job of a snapshot
            for name, dec, required in self.decoders:
                if name in data:
                    values[name] = dec(data[name])
                elif required:
                    missing = name
                    break
        except _Bad as bad:
            bad.path.insert(0, f".{name}")
            raise
        if missing is not None:
            raise _Bad(f"{self.name} misses its field {missing!r}")
        if len(values) + 1 != len(data):  # a key that is no field ("type" is the one more)
            unknown = sorted(data.keys() - self.names - {"type"})
            raise _Bad(f"{self.name} has no field {unknown[0]!r}")
        return self.cls(**values)


#: A job view's fields that come from its plan (the rest is what happened to it).
_PLANNED = frozenset(
    {"job_id", "name", "input_path", "input_size", "argv", "log_path", "output_path"})


class _JobList:
    """A snapshot's jobs. A plan's (`JobViews`) go as its layout and four columns (id, input,
    output name, size) plus what happened to the jobs something happened to: a snapshot of
    100,000 queued jobs is a few MiB read in a fraction of a second, where a full view each was
    41 MB and 9 s of encoding and parsing, with the run's loop blocked for half of it. Other
    job lists (a test's tuple) go as full views."""

    def __init__(self, view: _ClassCodec, layout: _ClassCodec) -> None:
        self.view, self.layout = view, layout
        self.changes = [(name, enc) for name, enc in view.encoders if name not in _PLANNED]
        self.decoders = {name: dec for name, dec, _ in view.decoders if name not in _PLANNED}

    def encode(self, jobs: Sequence[snapshot.JobView]) -> dict[str, Any]:
        """{"views": [...]} or {"layout", "ids", "inputs", "outputs", "sizes", "changed"}."""
        if not isinstance(jobs, snapshot.JobViews) or not jobs.specs:
            return {"views": [self.view.encode(view) for view in jobs]}
        specs = jobs.specs
        changed = []
        for view in jobs.made.values():
            out = {"job_id": view.job_id}
            for name, enc in self.changes:
                value = getattr(view, name)
                out[name] = value if enc is None else enc(value)
            changed.append(out)
        return {
            "layout": self.layout.encode(specs[0].layout),
            "ids": [spec.job_id for spec in specs],
            "inputs": [spec.entry.location for spec in specs],
            "outputs": [spec.output_name for spec in specs],
            "sizes": [spec.input_size for spec in specs],
            "changed": changed,
        }

    def decode(self, data: Any) -> Sequence[snapshot.JobView]:
        """The jobs `data` describes (every value checked)."""
        if not isinstance(data, dict):
            raise _Bad(f"expected a job list object, got {_show(data)}")
        if "layout" not in data:
            return tuple(
                _indexed(self.view.decode, item, f"[{i}]")
                for i, item in enumerate(_array(data.get("views"))))
        specs = self._specs(data)
        by_id = {spec.job_id: spec for spec in specs}
        made = {}
        for i, change in enumerate(_array(data.get("changed"))):
            try:
                job_id, fields = self._change(change)
                spec = by_id.get(job_id)
                if spec is None:
                    raise _Bad(f"no job {job_id} in the plan")
            except _Bad as bad:
                bad.path.insert(0, f".changed[{i}]")
                raise
            made[job_id] = dataclasses.replace(snapshot.job_view(spec), **fields)
        return snapshot.JobViews(specs, by_id, made)

    def _specs(self, data: dict[str, Any]) -> tuple[JobSpec, ...]:
        layout = self.layout.decode(data["layout"])
        columns = [_array(data.get(key)) for key in ("ids", "inputs", "outputs", "sizes")]
        if len({len(column) for column in columns}) != 1:
            raise _Bad("the job list's columns differ in length")
        specs = []
        for i, (job_id, location, name, size) in enumerate(zip(*columns)):
            try:
                entry = InputEntry(0, location, _decode_str(location), _decode_int(size), None)
                specs.append(JobSpec(_decode_int(job_id), entry, _decode_str(name), layout))
            except _Bad as bad:
                bad.path.insert(0, f"[{i}]")
                raise
        return tuple(specs)

    def _change(self, change: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(change, dict):
            raise _Bad(f"expected a job change object, got {_show(change)}")
        fields = {}
        for name, value in change.items():
            if name == "job_id":
                continue
            dec = self.decoders.get(name)
            if dec is None:
                raise _Bad(f"a job change has no field {name!r}")
            fields[name] = dec(value)
        return _decode_int(change.get("job_id")), fields


class _Registry:
    """The classes the wire carries: the roots and every dataclass their fields hold."""

    def __init__(self, roots: Iterable[type[Any]]) -> None:
        self.by_class: dict[type[Any], _ClassCodec] = {}
        self.by_name: dict[str, _ClassCodec] = {}
        for cls in roots:
            self.codec(cls)

    def codec(self, cls: type[Any]) -> _ClassCodec:
        """The codec of `cls`, compiled on first use (before its fields: a field may hold it)."""
        codec = self.by_class.get(cls)
        if codec is not None:
            return codec
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"the wire carries dataclasses only, not {cls!r}")
        if cls.__name__ in self.by_name:
            raise TypeError(f"two classes named {cls.__name__} on the wire")
        codec = self.by_class[cls] = self.by_name[cls.__name__] = _ClassCodec(cls)
        # Names only imported for type checking (events.py's ProcessProfile) resolve here.
        local = {
            "ProcessProfile": scaling.ProcessProfile,
            "ScalingDecision": scaling.ScalingDecision
        }
        hints = typing.get_type_hints(cls, localns=local)
        fields = [field for field in dataclasses.fields(cls) if field.init]
        if any(field.name == "type" for field in fields):
            raise TypeError(f"{cls.__name__} has a field named 'type', the wire's class key")
        for field in fields:
            enc, dec = self.compile(hints[field.name])
            required = (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING)
            codec.encoders.append((field.name, enc))
            codec.decoders.append((field.name, dec, required))
        codec.names = frozenset(field.name for field in fields)
        return codec

    # pylint: disable-next=too-many-return-statements  # one return per kind of type hint
    def compile(self, hint: Any) -> tuple[Encoder | None, Decoder]:
        """Encoder (None: the value is its own JSON) and decoder of a field's type hint."""
        if hint in _PLAIN:
            return None, _PLAIN[hint]
        if hint is Path:
            return str, _decode_path
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (types.UnionType, typing.Union):
            inner = [arg for arg in args if arg is not types.NoneType]
            if len(inner) != 1 or len(args) != 2:
                raise TypeError(f"the wire carries `X | None` unions only, not {hint!r}")
            return _optional(*self.compile(inner[0]))
        if origin is Sequence and args[0] is snapshot.JobView:
            jobs = _JobList(self.codec(snapshot.JobView), self.codec(JobLayout))
            return jobs.encode, jobs.decode
        if origin is Sequence:  # read back as a tuple
            return _sequence(tuple, *self.compile(args[0]))
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return _sequence(tuple, *self.compile(args[0]))
            return _fixed_tuple([self.compile(arg) for arg in args])
        if origin is frozenset:
            return _sequence(frozenset, *self.compile(args[0]))
        if origin is dict:
            return _mapping(_key(args[0]), *self.compile(args[1]))
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum(hint)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            codec = self.codec(hint)
            return codec.encode, codec.decode
        raise TypeError(f"the wire cannot carry {hint!r}")


def event_classes(base: type[ev.Event] = ev.Event) -> list[type[ev.Event]]:
    """Every subclass of `base`, recursively (the events the wire carries). A `slots=True`
    dataclass is a new class: the one it replaced lingers among the subclasses until collected,
    so only the class its module names counts."""
    found: list[type[ev.Event]] = []
    for sub in base.__subclasses__():
        if getattr(sys.modules.get(sub.__module__), sub.__qualname__, None) is sub:
            found.append(sub)
        found.extend(event_classes(sub))
    return found


_REGISTRY = _Registry([*event_classes(), snapshot.RunSnapshot, eta.Eta, scaling.SystemCapacity])
#: The class names a peer may name (`from_wire` builds nothing else).
REGISTERED: frozenset[str] = frozenset(_REGISTRY.by_name)


def to_wire(obj: Any) -> dict[str, Any]:
    """A registered dataclass (an event, a snapshot...) as a JSON-ready dict with its "type"."""
    codec = _REGISTRY.by_class.get(type(obj))
    if codec is None:
        raise TypeError(f"{type(obj).__name__} is not carried on the wire")
    return codec.encode(obj)


def from_wire(data: Any) -> Any:
    """The instance `to_wire` made `data` from (equal to it); ProtocolError naming the type and
    field when `data` does not describe one of the registered classes exactly."""
    if not isinstance(data, dict):
        raise ProtocolError(f"expected an object with a 'type', got {_show(data)}")
    name = data.get("type")
    codec = _REGISTRY.by_name.get(name) if isinstance(name, str) else None
    if codec is None:
        raise ProtocolError(f"unknown type {_show(name)}: not a class this protocol carries")
    try:
        return codec.decode(data)
    except _Bad as bad:
        raise ProtocolError(f"{name}{''.join(bad.path)}: {bad.what}") from None


# --- lines

_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line: compact ASCII JSON and a newline."""
    return _ENCODER.encode(message).encode("ascii") + b"\n"


def decode(line: bytes, *, limit: int | None = MAX_LINE) -> dict[str, Any]:
    """One line (newline optional) as a message; ProtocolError when it is longer than `limit`
    bytes, not UTF-8, not JSON, or not a JSON object."""
    if limit is not None and len(line) > limit:
        raise ProtocolError(f"a line of {len(line)} bytes, over the {limit}-byte limit")
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"a line that is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, too deep
        raise ProtocolError(f"a line that is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a JSON object, got {_show(message)}")
    return message


def message_kind(message: dict[str, Any]) -> str:
    """The message's "kind", checked against KINDS."""
    kind = message.get("kind")
    if kind not in KINDS:
        raise ProtocolError(f"unknown message kind {_show(kind)} (known: {', '.join(KINDS)})")
    return typing.cast(str, kind)


def _expect(message: dict[str, Any], kind: str) -> None:
    found = message_kind(message)
    if found != kind:
        raise ProtocolError(f"expected a {kind} message, got {found}")


def _get(message: dict[str, Any], key: str, dec: Decoder) -> Any:
    try:
        return dec(message.get(key))
    except _Bad as bad:
        raise ProtocolError(f"{message.get('kind')} message, key {key!r}: {bad.what}") from None


def _only(message: dict[str, Any], keys: Iterable[str]) -> None:
    unknown = sorted(message.keys() - set(keys) - {"kind"})
    if unknown:
        raise ProtocolError(f"{message.get('kind')} message with an unknown key {unknown[0]!r}")


# --- messages


def hello(pid: int, version: str) -> dict[str, Any]:
    """The first message each way: the protocol spoken, and who speaks it. A receiver ignores
    keys it does not know in a hello (only the protocol number must match)."""
    return {
        "kind": "hello",
        "protocol": PROTOCOL_VERSION,
        "program": PROGRAM,
        "version": version,
        "pid": pid
    }


def check_hello(msg: dict[str, Any], *, peer: str = "this run") -> None:
    """ProtocolError unless `msg` is an orch-tui hello of this protocol version; `peer` names
    the other end in the mismatch message (the client's wording by default)."""
    _expect(msg, "hello")
    if msg.get("program") != PROGRAM:
        raise ProtocolError(f"the peer is not {PROGRAM} (program {_show(msg.get('program'))})")
    protocol = _get(msg, "protocol", _decode_int)
    if protocol != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{peer} speaks protocol {protocol}, this orch-tui speaks {PROTOCOL_VERSION}")
    _get(msg, "pid", _decode_int)
    _get(msg, "version", _decode_str)


def snapshot_message(snap: snapshot.RunSnapshot) -> dict[str, Any]:
    """The run's state, sent once to a client after the hello."""
    return {"kind": "snapshot", "snapshot": to_wire(snap)}


def parse_snapshot(msg: dict[str, Any]) -> snapshot.RunSnapshot:
    """The RunSnapshot of a snapshot message."""
    snap: snapshot.RunSnapshot = _payload(msg, "snapshot", snapshot.RunSnapshot)
    return snap


def event_message(event: ev.Event) -> dict[str, Any]:
    """One event of the run, as it happens."""
    return {"kind": "event", "event": to_wire(event)}


def parse_event(msg: dict[str, Any]) -> ev.Event:
    """The Event of an event message."""
    event: ev.Event = _payload(msg, "event", ev.Event)
    return event


def _payload(msg: dict[str, Any], kind: str, cls: type[Any]) -> Any:
    """The `cls` instance a snapshot or event message holds under its kind's key."""
    _expect(msg, kind)
    _only(msg, [kind])
    payload = from_wire(msg.get(kind))
    if not isinstance(payload, cls):
        raise ProtocolError(f"{kind} message holding a {type(payload).__name__}")
    return payload


@dataclass(frozen=True, slots=True)
class Command:
    """An operator's command from a client: `job` for JOB_COMMANDS, `value` for set_limit;
    `request` is the client's number for it, repeated in the reply."""

    cmd: str
    request: int
    job: int | None = None
    value: int | None = None


def command(cmd: str,
            *,
            request: int,
            job: int | None = None,
            value: int | None = None) -> dict[str, Any]:
    """A command message (validated as `parse_command` will: a bad one raises ProtocolError)."""
    msg: dict[str, Any] = {"kind": "command", "cmd": cmd, "request": request}
    if job is not None:
        msg["job"] = job
    if value is not None:
        msg["value"] = value
    parse_command(msg)
    return msg


def parse_command(msg: dict[str, Any]) -> Command:
    """The Command of a command message: a known cmd, an integer request, a job index exactly
    for the commands on one job, a limit of at least 1 exactly for set_limit."""
    _expect(msg, "command")
    _only(msg, ["cmd", "request", "job", "value"])
    cmd = msg.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {_show(cmd)} (known: {', '.join(COMMANDS)})")
    request = _get(msg, "request", _decode_int)
    job = _argument(msg, "job", cmd in JOB_COMMANDS, 0)
    value = _argument(msg, "value", cmd in VALUE_COMMANDS, 1)
    return Command(typing.cast(str, cmd), request, job, value)


def _argument(msg: dict[str, Any], key: str, wanted: bool, least: int) -> int | None:
    """A command's job or value: an integer of at least `least` when `wanted`, else absent."""
    if not wanted:
        if msg.get(key) is not None:
            raise ProtocolError(f"command {msg['cmd']} takes no {key!r}")
        return None
    if msg.get(key) is None:
        raise ProtocolError(f"command {msg['cmd']} needs a {key!r}")
    number: int = _get(msg, key, _decode_int)
    if number < least:
        raise ProtocolError(f"command {msg['cmd']}: {key!r} must be at least {least}, got {number}")
    return number


@dataclass(frozen=True, slots=True)
class Reply:
    """What became of a command: `ok` False when the job was not in a state that allows it."""

    request: int
    ok: bool
    message: str


def reply(request: int, ok: bool, message: str) -> dict[str, Any]:
    """The run's answer to the command numbered `request`."""
    return {"kind": "reply", "request": request, "ok": ok, "message": message}


def parse_reply(msg: dict[str, Any]) -> Reply:
    """The Reply of a reply message."""
    _expect(msg, "reply")
    _only(msg, ["request", "ok", "message"])
    return Reply(_get(msg, "request", _decode_int), _get(msg, "ok", _decode_bool),
                 _get(msg, "message", _decode_str))


def error(message: str) -> dict[str, Any]:
    """Why the other end is about to close the connection (a protocol error, a refused uid)."""
    return {"kind": "error", "message": message}


def parse_error(msg: dict[str, Any]) -> str:
    """The message of an error message."""
    _expect(msg, "error")
    _only(msg, ["message"])
    text: str = _get(msg, "message", _decode_str)
    return text
