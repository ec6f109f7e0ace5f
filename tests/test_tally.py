"""The one tally: counts with issue 9's definitions, the exit code and the ETA's inputs."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring
from __future__ import annotations

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.tally import Counts, Tally, eta

S = JobState


def _change(job_id: int, state: JobState, time: float = 0.0) -> ev.JobStateChanged:
    return ev.JobStateChanged(time=time,
                              job_id=job_id,
                              name=f"{job_id}.mp4",
                              state=state,
                              previous=None,
                              attempt=1)


def test_killed_is_not_failed_and_running_excludes_paused():
    counts = Counts.of([S.RUNNING, S.PAUSED, S.FAILED, S.KILLED, S.SUCCEEDED, S.SKIPPED], missing=2)
    assert (counts.running, counts.paused, counts.failed, counts.killed) == (1, 1, 1, 1)
    assert counts.active == 2 and counts.missing == 2
    assert counts.total == 8 and counts.ended == 6 and counts.done == 2


def test_exit_code_is_0_only_when_every_input_is_done():
    assert Counts.of([S.SUCCEEDED, S.SKIPPED]).exit_code == 0
    for bad in (S.FAILED, S.KILLED, S.QUEUED, S.RUNNING, S.PAUSED):
        assert Counts.of([S.SUCCEEDED, bad]).exit_code == 1, bad
    assert Counts.of([S.SUCCEEDED], missing=1).exit_code == 1


def test_as_dict_keeps_the_states_that_occur_and_missing():
    assert Counts.of([S.SUCCEEDED, S.SUCCEEDED, S.KILLED]).as_dict() == {
        "succeeded": 2,
        "killed": 1,
        "missing": 0
    }


def test_tally_follows_state_changes_and_measures_throughput_for_the_eta():
    tally = Tally({1: S.QUEUED, 2: S.QUEUED, 3: S.SKIPPED})
    tally.apply(
        ev.PreflightDone(time=0,
                         total=4,
                         runnable=2,
                         skipped=1,
                         missing=1,
                         duplicates=0,
                         input_bytes=0))
    assert tally.eta(5.0) is None  # nothing finished yet
    tally.apply(_change(1, S.RUNNING, time=10.0))
    tally.apply(_change(1, S.PAUSED, time=11.0))
    tally.apply(_change(1, S.RUNNING, time=12.0))  # a resume is not a new launch
    assert tally.first_launch == 10.0
    assert tally.counts().running == 1 and tally.counts().paused == 0
    tally.apply(_change(1, S.KILLED, time=20.0))
    counts = tally.counts()
    assert (counts.killed, counts.failed, counts.queued, counts.missing) == (1, 0, 1, 1)
    assert tally.finished_here == 1  # the skip does not count as work done here
    # One job ended in 10 s since the first launch; 1 of 4 inputs is left.
    assert tally.eta(20.0) == 10.0 == eta(1, 1, 10.0, 20.0)


def test_a_tally_started_from_states_goes_on_from_them():
    tally = Tally({1: S.RUNNING, 2: S.QUEUED}, first_launch=3.0, finished_here=4)
    tally.apply(_change(2, S.RUNNING, time=5.0))
    assert tally.first_launch == 3.0 and tally.counts().running == 2
    assert tally.state_of(2) is S.RUNNING and tally.states() == {1: S.RUNNING, 2: S.RUNNING}
