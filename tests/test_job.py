"""The job record and the job queue: what every attempt resets, what observers are told, and a
byte total that never drifts from the queue it describes."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState, PauseReason, StopReason
from orch_tui.core.job import Job
from orch_tui.core.tally import Counts
from orch_tui.core.jobqueue import JobQueue
from orch_tui.core.inputs import InputEntry
from orch_tui.core.plan import JobLayout, JobSpec
from orch_tui.core.runner import ProcessSample

SIZES = {1: 100, 2: 250, 3: 50, 4: 1000}

LAYOUT = JobLayout(binary="/bin/true",
                   flags=("{input_file}", ),
                   uses_output=False,
                   output_dir="/out",
                   log_dir="/out/.orch-tui/logs",
                   temp_dir="/out/.orch-tui/tmp/t")


def spec(job_id: int) -> JobSpec:
    path = f"/in/clip{job_id}.mp4"
    entry = InputEntry(line=job_id,
                       raw=path,
                       location=path,
                       size=SIZES.get(job_id, 0),
                       problem=None)
    return JobSpec(job_id=job_id, entry=entry, output_name=f"clip{job_id}.mp4", layout=LAYOUT)


def test_the_byte_total_follows_every_way_in_and_out():
    queue = JobQueue(SIZES.__getitem__)
    assert not queue and queue.bytes == 0 and queue.mean_size(empty=7) == 7
    for job_id in (1, 2, 3):
        queue.push(job_id)
    assert list(queue) == [1, 2, 3] and queue.bytes == 400 and queue.mean_size(0) == 133
    assert queue.pop() == 1 and queue.bytes == 300
    queue.push_front(4)
    assert list(queue) == [4, 2, 3] and queue.bytes == 1300
    queue.remove(2)
    assert list(queue) == [4, 3] and queue.bytes == 1050 and len(queue) == 2
    assert [queue.pop(), queue.pop()] == [4, 3]
    assert not queue and queue.bytes == 0
    with pytest.raises(IndexError):
        queue.pop()
    with pytest.raises(ValueError):
        queue.remove(1)
    assert queue.bytes == 0, "a failed removal changes nothing"


async def test_a_new_attempt_forgets_what_the_last_one_measured_or_decided():
    loop = asyncio.get_running_loop()
    job = Job(spec(1),
              attempt=1,
              exit_code=3,
              signal=9,
              peak_rss=512,
              cpu_seconds=2.5,
              stop=StopReason.TIMEOUT,
              paused_by=PauseReason.MEMORY,
              started=1.0,
              ended=4.0,
              last=ProcessSample(1, "n", 42, 1.0, 512, 2, None, 0))
    done: asyncio.Future[None] = loop.create_future()
    job.begin_attempt(10.0, done)
    assert (job.attempt, job.started, job.ended, job.done) == (2, 10.0, None, done)
    assert job.exit_code is job.signal is job.stop is job.paused_by is job.last is None
    assert (job.peak_rss, job.cpu_seconds) == (0, 0.0)


def test_the_event_describes_the_job_as_it_stands():
    job = Job(spec(2),
              attempt=2,
              pid=42,
              node="render1",
              exit_code=1,
              signal=None,
              peak_rss=2048,
              cpu_seconds=1.5)
    job.state, job.reason = JobState.FAILED, "exit 1"
    event = job.changed(5.0, JobState.RUNNING, StopReason.EXIT)
    assert event == ev.JobStateChanged(time=5.0,
                                       job_id=2,
                                       name="clip2.mp4",
                                       state=JobState.FAILED,
                                       previous=JobState.RUNNING,
                                       attempt=2,
                                       node="render1",
                                       pid=42,
                                       exit_code=1,
                                       signal=None,
                                       reason="exit 1",
                                       peak_rss=2048,
                                       cpu_seconds=1.5,
                                       stop=StopReason.EXIT)


def test_the_tally_of_jobs_counts_final_states_and_missing_inputs_and_gives_the_exit_code():
    jobs = [Job(spec(i)) for i in (1, 2, 3)]
    jobs[0].state, jobs[1].state, jobs[2].state = (JobState.SUCCEEDED, JobState.SKIPPED,
                                                   JobState.SUCCEEDED)

    def tally(missing: int) -> tuple[dict[str, int], int]:
        counts = Counts.of((job.state for job in jobs), missing=missing)
        return counts.as_dict(), counts.exit_code

    assert tally(0) == ({"succeeded": 2, "skipped": 1, "missing": 0}, 0)
    assert tally(2) == ({"succeeded": 2, "skipped": 1, "missing": 2}, 1)
    jobs[1].state = JobState.KILLED
    assert tally(0)[1] == 1
    jobs[1].state = JobState.QUEUED  # never ran (a halt): not a success either
    assert tally(0) == ({"succeeded": 2, "queued": 1, "missing": 0}, 1)
