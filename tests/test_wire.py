"""The control socket's wire codec: exact round trips, and a clear ProtocolError for anything
a peer can send wrong."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core import wire
from orch_tui.core.eta import Eta, EtaState
from orch_tui.core.events import JobState, LimitSource
from orch_tui.core.scaling import CapacitySource, ProcessProfile, SystemCapacity, compute_limit
from orch_tui.core.snapshot import CalibrationStatus, RunRecord, RunSnapshot
from orch_tui.core.tally import Counts
from tests.fake_controller import job_views
from tests.fake_runner import GB, MB, Script, start_fake_run

PROFILE = ProcessProfile(cpu_cores=1.5, rss_bytes=300 * MB, output_bytes=20 * MB, source="window")
CAPACITY = SystemCapacity(8, 12 * GB, 100 * GB, memory_source=CapacitySource.CGROUP)
DECISION = compute_limit(PROFILE, CAPACITY, max_processes=5)
# Undecodable bytes as os.fsdecode gives them, a newline, Rich markup and non-ASCII text.
WEIRD = os.fsdecode(b"caf\xe9 [bold red]x[/]\nl\xc3\xa9gende\xff.mp4")

#: One instance of every event, with its optional fields set.
EVENTS: dict[type, ev.Event] = {
    ev.PreflightDone:
    ev.PreflightDone(1.0, 10, 7, 1, 1, 1, 123456789012, ((4, "/in/gone\n.mp4", "missing"), )),
    ev.JobRecovered:
    ev.JobRecovered(1.5, 3, "clip03.mp4", 2, 1795977719.5373485, 1795977721.25, "render1"),
    ev.JobStateChanged:
    ev.JobStateChanged(2.5,
                       3,
                       WEIRD,
                       JobState.FAILED,
                       JobState.RUNNING,
                       2,
                       node="n1",
                       pid=4321,
                       exit_code=1,
                       signal=None,
                       reason="exit 1",
                       peak_rss=5 * MB,
                       cpu_seconds=3.25,
                       stop=ev.StopReason.EXIT,
                       output_bytes=None,
                       detail="Invalid data [found] when processing input"),
    ev.JobSample:
    ev.JobSample(3.0,
                 3,
                 "n1",
                 4321,
                 1.75,
                 100 * MB,
                 3,
                 0.5,
                 7 * MB,
                 12.5,
                 progress=0.4,
                 fps=59.9,
                 speed=2.5,
                 eta_seconds=18.0,
                 progress_source=ev.ProgressSource.FFMPEG),
    ev.SystemSample:
    ev.SystemSample(3.1,
                    "n1",
                    8,
                    42.0,
                    16 * GB,
                    9 * GB,
                    GB,
                    50 * GB,
                    200 * GB,
                    2 * GB,
                    3 * GB,
                    cores_source=CapacitySource.CGROUP),
    ev.CalibrationStarted:
    ev.CalibrationStarted(4.0, 1, 5.0),
    ev.CalibrationProgress:
    ev.CalibrationProgress(4.5,
                           1,
                           0.5,
                           5.0,
                           1.0,
                           80 * MB,
                           MB,
                           None,
                           output_estimate=9 * MB,
                           output_basis=ev.OutputBasis.MEDIA_TIME),
    ev.CalibrationFinished:
    ev.CalibrationFinished(9.0, PROFILE, DECISION, LimitSource.WINDOW, ev.OutputBasis.INPUT_READ),
    ev.LimitChanged:
    ev.LimitChanged(9.5, 4, 1, LimitSource.LEARNED, DECISION, observations=12),
    ev.PauseAllChanged:
    ev.PauseAllChanged(9.7, True),
    ev.NodeStateChanged:
    ev.NodeStateChanged(9.8, "node-b", ev.NodeState.QUARANTINED, 3, "tcp://10.0.0.2:40411"),
    ev.ResourcePressure:
    ev.ResourcePressure(10.0, ev.Resource.DISK, ev.PressureLevel.LOW, GB, 2 * GB),
    ev.Notice:
    ev.Notice(11.0, ev.NoticeLevel.WARNING, "[red]not markup[/red]\u2026"),
    ev.RunFinished:
    ev.RunFinished(12.0, {
        "succeeded": 8,
        "failed": 1
    }, 11.0, 1, False),
}


def round_trip(obj: object) -> object:
    """Through everything a socket does: to_wire, a line of bytes, and back."""
    line = wire.encode({"kind": "x", "data": wire.to_wire(obj)})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return wire.from_wire(wire.decode(line)["data"])


def test_every_event_class_is_in_the_table_and_on_the_wire():
    classes = set(wire.event_classes())
    assert classes == set(EVENTS), "a new Event subclass needs an instance here"
    assert {cls.__name__ for cls in classes} <= wire.REGISTERED


@pytest.mark.parametrize("cls", list(EVENTS), ids=lambda cls: cls.__name__)
def test_every_event_round_trips_exactly(cls):
    event = EVENTS[cls]
    back = wire.parse_event(wire.decode(wire.encode(wire.event_message(event))))
    assert type(back) is cls and back == event
    data = wire.to_wire(event)
    assert data["type"] == cls.__name__ and data["time"] == event.time


def test_the_nested_figures_round_trip_too():
    for obj in (PROFILE, CAPACITY, DECISION, DECISION.cpu, Eta(12.5), Eta(paused=True),
                EtaState(((1, 0.5), (2, 0.25)), ((0.0, 0.0), (3.5, 1e9)), 3.5, 1e9, 7.0,
                         False), Counts(queued=3, failed=1, missing=2)):
        assert round_trip(obj) == obj


def test_values_go_as_plain_json():
    data = wire.to_wire(EVENTS[ev.JobStateChanged])
    assert data["state"] == "failed" and data["previous"] == "running"
    assert data["stop"] == "exit" and data["output_bytes"] is None
    view = job_views([JobState.PAUSED])[0]
    data = wire.to_wire(view)
    assert data["output_path"] == "/o/1.mp4" and data["argv"] == ["x"]


def test_file_names_with_surrogates_newlines_and_markup_round_trip():
    view = job_views([JobState.RUNNING])[0]
    view = type(view)(job_id=1,
                      name=WEIRD,
                      output_path=Path("/o") / WEIRD,
                      log_path=Path("/o/.orch-tui/logs") / WEIRD,
                      argv=("ffmpeg", "-i", WEIRD),
                      input_size=1)
    line = wire.encode(wire.snapshot_message(RunSnapshot(jobs=(view, ), counts=Counts(running=1))))
    assert line.isascii() and line.count(b"\n") == 1, "escaped: one line, whatever the name"
    assert b"\\udce9" in line  # the documented form of the undecodable byte 0xe9
    back = wire.parse_snapshot(wire.decode(line, limit=None)).jobs[0]
    assert back == view
    assert os.fsencode(back.name) == b"caf\xe9 [bold red]x[/]\nl\xc3\xa9gende\xff.mp4"


def test_an_infinite_figure_round_trips():
    decision = compute_limit(ProcessProfile(0.0, 0, 0), CAPACITY)  # nothing binds
    constraint = type(decision.cpu)("cpu", math.inf, 8.0, 0.8, 0)
    assert round_trip(decision) == decision and round_trip(constraint) == constraint


async def test_a_fake_run_s_snapshot_round_trips_midway_and_at_the_end(workspace):
    ws = workspace(["a [b].bin", "caf\u00e9.bin", "3.bin", "4.bin", "5.bin"],
                   size=MB,
                   resources={"stabilization_seconds": 2.0})
    plan = ws.plan()
    run = await start_fake_run(plan, Script(seconds=6, ffmpeg=True, exit_code=0))
    record = RunRecord(plan, joblog=ws.output_dir / "joblog")
    run.orchestrator.bus.add_listener(record)
    orch = run.orchestrator
    await run.wait_for(lambda: any(job.state is JobState.SUCCEEDED for job in orch.jobs.values())
                       and any(job.state is JobState.RUNNING for job in orch.jobs.values()))
    orch.pause(next(i for i, job in orch.jobs.items() if job.state is JobState.RUNNING))
    midway = record.snapshot()
    assert midway.calibration is CalibrationStatus.DONE and midway.decision is not None
    assert midway.eta.history and midway.preflight is not None
    assert wire.parse_snapshot(wire.decode(wire.encode(wire.snapshot_message(midway)),
                                           limit=None)) == midway
    for job_id, job in orch.jobs.items():
        if job.state is JobState.PAUSED:
            orch.resume(job_id)
    assert await run.result() == 0
    final = record.snapshot()
    assert final.finished is not None and final.counts.succeeded == 5
    assert round_trip(final) == final
    for event in run.recorder.events:
        assert round_trip(event) == event


def test_a_plan_s_jobs_go_in_columns_with_only_what_happened_to_each(workspace):
    ws = workspace(["a [b].bin", "caf\u00e9.bin", "3.bin"], size=1000)
    plan = ws.plan()
    record = RunRecord(plan)
    record(
        ev.JobStateChanged(time=5.0,
                           job_id=2,
                           name="caf\u00e9.bin",
                           state=JobState.FAILED,
                           previous=JobState.RUNNING,
                           attempt=1,
                           exit_code=3,
                           reason="exit 3"))
    snap = record.snapshot()
    data = wire.to_wire(snap)["jobs"]
    assert data["ids"] == [1, 2, 3] and data["sizes"] == [1000] * 3
    assert data["outputs"] == [spec.output_name for spec in plan.jobs]
    assert [change["job_id"] for change in data["changed"]] == [2]
    assert "argv" not in data["changed"][0], "a change carries no planned fact"
    back = round_trip(snap)
    assert back == snap
    assert [job.argv for job in back.jobs] == [spec.display_argv for spec in plan.jobs]
    assert back.jobs[1].state is JobState.FAILED and back.jobs[1].exit_code == 3


def test_a_queued_job_costs_a_fraction_of_its_view_on_the_wire(workspace):
    ws = workspace(200, size=10)
    snap = RunRecord(ws.plan()).snapshot()
    size = len(wire.encode(wire.snapshot_message(snap)))
    views = dataclasses.replace(snap, jobs=tuple(snap.jobs))
    full = len(wire.encode(wire.snapshot_message(views)))
    assert size * 3 < full, f"{size / 200:.0f} bytes a job in columns, {full / 200:.0f} as views"


@pytest.mark.parametrize("change, message", [
    (lambda jobs: jobs["sizes"].pop(), "columns differ in length"),
    (lambda jobs: jobs["ids"].__setitem__(1, "two"), r"jobs\[1\]: expected an integer"),
    (lambda jobs: jobs["changed"].append({
        "job_id": 99,
        "state": "failed"
    }), "no job 99"),
    (lambda jobs: jobs["changed"].append({
        "job_id": 1,
        "argv": ["rm"]
    }), "no field 'argv'"),
])
def test_a_wrong_job_column_or_change_is_named(workspace, change, message):
    ws = workspace(3, size=10)
    data = wire.to_wire(RunRecord(ws.plan()).snapshot())
    change(data["jobs"])
    with pytest.raises(wire.ProtocolError, match=message):
        wire.from_wire(data)


# --- what a peer can send wrong


@pytest.mark.parametrize(
    "line, message",
    [
        (b"not json\n", "not JSON"),
        (b"\n", "not JSON"),
        (b"[1, 2]\n", "expected a JSON object, got an array"),
        (b'"hello"\n', "expected a JSON object, got 'hello'"),
        (b'{"kind": "hello"\xff}\n', "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "over the 65536-byte limit"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "not JSON"),  # too deep for the parser
        (b'{"n": 1' + b"0" * 5000 + b"}", "not JSON"),  # too many digits
    ])
def test_garbage_lines_are_protocol_errors(line, message):
    with pytest.raises(wire.ProtocolError, match=message):
        wire.decode(line)


def test_a_huge_line_is_refused_before_it_is_parsed():
    line = wire.encode({"kind": "error", "message": "x" * wire.MAX_LINE})
    with pytest.raises(wire.ProtocolError, match=r"a line of \d+ bytes, over the 65536-byte"):
        wire.decode(line)
    assert wire.decode(line, limit=None)["message"] == "x" * wire.MAX_LINE


def sample_data(**changes) -> dict:
    data = wire.to_wire(EVENTS[ev.JobSample])
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        ([1], "expected an object with a 'type', got an array"),
        ({
            "job_id": 1
        }, "unknown type null"),
        ({
            "type": "Path",
            "args": ["/etc"]
        }, "unknown type 'Path': not a class"),
        ({
            "type": "os.system",
            "command": "rm -rf /"
        }, "unknown type 'os.system'"),
        ({
            "type": "Event",
            "time": 1.0
        }, "unknown type 'Event'"),  # the base is no event
        ({
            "type": ["JobSample"]
        }, "unknown type an array"),
        (sample_data(rss_bytes="100"), r"JobSample\.rss_bytes: expected an integer, got '100'"),
        (sample_data(rss_bytes=True), r"JobSample\.rss_bytes: expected an integer, got True"),
        (sample_data(rss_bytes=1.5), r"JobSample\.rss_bytes: expected an integer, got 1.5"),
        (sample_data(cpu_cores=None), r"JobSample\.cpu_cores: expected a number, got null"),
        (sample_data(node=5), r"JobSample\.node: expected a string, got 5"),
        (sample_data(progress_source="sorcery"), r"progress_source: expected one of 'ffmpeg'"),
        (sample_data(progress_source=["ffmpeg"]), r"progress_source: expected one of .* an array"),
        (sample_data(evil=1), "JobSample has no field 'evil'"),
        ({
            k: v
            for k, v in sample_data().items() if k != "pid"
        }, "misses its field 'pid'"),
        ({
            **wire.to_wire(EVENTS[ev.CalibrationFinished]), "profile": {
                "type": "Path"
            }
        }, r"CalibrationFinished\.profile: expected a ProcessProfile, got type 'Path'"),
        ({
            **wire.to_wire(EVENTS[ev.RunFinished]), "counts": {
                "ok": "1"
            }
        }, r"RunFinished\.counts\['ok'\]: expected an integer"),
        ({
            **wire.to_wire(EVENTS[ev.ResourcePressure]), "type": "Notice"
        }, r"Notice\.level: expected one of 'info'"),
    ])
def test_wrong_payloads_name_what_is_wrong(data, message):
    with pytest.raises(wire.ProtocolError, match=message):
        wire.from_wire(data)


def test_a_wrong_job_deep_in_a_snapshot_is_named_by_its_place():
    snap = RunSnapshot(jobs=job_views([JobState.QUEUED] * 3), counts=Counts(queued=3))
    data = wire.to_wire(snap)
    data["jobs"]["views"][2]["state"] = "exploded"
    data["eta"]["history"] = [[0.0, 1.0]]
    with pytest.raises(wire.ProtocolError, match=r"RunSnapshot\.jobs\[2\]\.state: expected one"):
        wire.from_wire(data)
    data["jobs"]["views"][2]["state"] = "queued"
    data["eta"]["history"] = [[0.0, 1.0, 2.0]]
    with pytest.raises(wire.ProtocolError, match=r"eta\.history\[0\]: expected 2 items, got 3"):
        wire.from_wire(data)
    with pytest.raises(wire.ProtocolError, match="event message holding a RunSnapshot"):
        wire.parse_event({"kind": "event", "event": wire.to_wire(snap)})


def test_only_registered_classes_go_out():
    with pytest.raises(TypeError, match="PosixPath is not carried on the wire"):
        wire.to_wire(Path("/"))


# --- the messages


def test_hello_and_its_version_check():
    mine = wire.hello(os.getpid(), "1.2.3")
    assert mine == {
        "kind": "hello",
        "protocol": wire.PROTOCOL_VERSION,
        "program": "orch-tui",
        "version": "1.2.3",
        "pid": os.getpid()
    }
    wire.check_hello(wire.decode(wire.encode({**mine, "started": 12.0})))  # extra keys: fine
    other = {**mine, "protocol": 1}
    with pytest.raises(wire.ProtocolError) as caught:
        wire.check_hello(other)
    assert str(caught.value) == "this run speaks protocol 1, this orch-tui speaks 4"
    assert caught.value.exit_code == 2
    with pytest.raises(wire.ProtocolError, match="^the client speaks protocol 1"):
        wire.check_hello(other, peer="the client")
    for bad, message in (({
            **mine, "program": "pueue"
    }, "not orch-tui"), ({
            **mine, "protocol": "1"
    }, "key 'protocol': expected an integer"), ({
            **mine, "pid": None
    }, "key 'pid': expected an integer"), (wire.error("x"), "expected a hello message, got error"),
                         ({
                             "kind": "gossip"
                         }, "unknown message kind 'gossip'")):
        with pytest.raises(wire.ProtocolError, match=message):
            wire.check_hello(bad)


def test_every_command_builds_and_parses():
    for request, cmd in enumerate(wire.COMMANDS):
        job = 7 if cmd in wire.JOB_COMMANDS else None
        value = 3 if cmd in wire.VALUE_COMMANDS else None
        msg = wire.command(cmd, request=request, job=job, value=value)
        assert wire.parse_command(wire.decode(wire.encode(msg))) == wire.Command(
            cmd, request, job, value)


@pytest.mark.parametrize("msg, message", [
    ({
        "kind": "command",
        "cmd": "format_disk",
        "request": 1
    }, "unknown command 'format_disk'"),
    ({
        "kind": "command",
        "cmd": "pause",
        "request": 1
    }, "command pause needs a 'job'"),
    ({
        "kind": "command",
        "cmd": "pause",
        "request": 1,
        "job": "3"
    }, "key 'job': expected an"),
    ({
        "kind": "command",
        "cmd": "pause",
        "request": 1,
        "job": -1
    }, "'job' must be at least 0"),
    ({
        "kind": "command",
        "cmd": "stop",
        "request": 1,
        "job": 3
    }, "command stop takes no 'job'"),
    ({
        "kind": "command",
        "cmd": "set_limit",
        "request": 1,
        "value": 0
    }, "at least 1, got 0"),
    ({
        "kind": "command",
        "cmd": "set_limit",
        "request": 1
    }, "set_limit needs a 'value'"),
    ({
        "kind": "command",
        "cmd": "stop"
    }, "key 'request': expected an integer, got null"),
    ({
        "kind": "command",
        "cmd": "stop",
        "request": 1,
        "sudo": True
    }, "unknown key 'sudo'"),
    ({
        "kind": "reply",
        "request": 1,
        "ok": True,
        "message": ""
    }, "expected a command"),
])
def test_bad_commands_name_the_bad_key(msg, message):
    with pytest.raises(wire.ProtocolError, match=message):
        wire.parse_command(msg)


def test_a_bad_command_is_not_even_built():
    with pytest.raises(wire.ProtocolError, match="needs a 'job'"):
        wire.command("kill", request=1)


def test_replies_and_errors():
    msg = wire.decode(wire.encode(wire.reply(4, False, "job 3 is not running (queued)")))
    assert wire.parse_reply(msg) == wire.Reply(4, False, "job 3 is not running (queued)")
    with pytest.raises(wire.ProtocolError, match="key 'ok': expected true or false, got 1"):
        wire.parse_reply({**msg, "ok": 1})
    assert wire.parse_error(wire.decode(wire.encode(wire.error("bye")))) == "bye"
    assert json.loads(wire.encode(wire.error("é"))) == {"kind": "error", "message": "é"}
