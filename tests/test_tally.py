"""The one tally: counts with issue 9's definitions, the exit code and the ETA's inputs."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring
from __future__ import annotations

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.eta import Eta
from orch_tui.core.tally import Counts, Tally

S = JobState


def change_of(job_id: int, state: JobState, time: float = 0.0) -> ev.JobStateChanged:
    """A state change as the core publishes it (test_eta.py scripts its runs with it too)."""
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


def test_tally_follows_state_changes_and_gives_the_work_models_eta():
    tally = Tally({1: S.QUEUED, 2: S.QUEUED, 3: S.SKIPPED})
    tally.apply(
        ev.PreflightDone(time=0,
                         total=4,
                         runnable=2,
                         skipped=1,
                         missing=1,
                         duplicates=0,
                         input_bytes=0))
    assert tally.eta(5.0) == Eta()  # nothing measured yet
    tally.apply(change_of(1, S.RUNNING, time=10.0))
    tally.apply(change_of(1, S.PAUSED, time=11.0))
    tally.apply(change_of(1, S.RUNNING, time=12.0))  # a resume is not a new launch
    assert tally.first_launch == 10.0
    assert tally.counts().running == 1 and tally.counts().paused == 0
    tally.apply(change_of(1, S.KILLED, time=20.0))
    counts = tally.counts()
    assert (counts.killed, counts.failed, counts.queued, counts.missing) == (1, 0, 1, 1)
    # A kill is no work done: nothing measured, so no figure (the old throughput ETA counted
    # it as a finished job and said 0:00:10).
    assert tally.eta(20.0) == Eta()
    tally.apply(change_of(2, S.RUNNING, time=20.0))
    tally.apply(change_of(2, S.PAUSED, time=21.0))
    assert tally.eta(30.0) == Eta(paused=True)


def test_a_tally_started_from_states_goes_on_from_them():
    tally = Tally({1: S.RUNNING, 2: S.QUEUED}, first_launch=3.0)
    tally.apply(change_of(2, S.RUNNING, time=5.0))
    assert tally.first_launch == 3.0 and tally.counts().running == 2
    assert tally.state_of(2) is S.RUNNING and tally.states() == {1: S.RUNNING, 2: S.RUNNING}
