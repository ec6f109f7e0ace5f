"""The pressure guard on plain numbers: levels, who is paused and resumed, and when a run that
can never launch again gives up. The real-process side (state T, launches held back) is in
test_pressure.py."""

# Test names say what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

from orch_tui.core.events import PressureLevel, Resource
from orch_tui.core.pressure import (CRITICAL_PATIENCE, DISK_PATIENCE, MEMORY_PATIENCE, ActiveJob,
                                    LevelChange, PressureGuard)

GB = 1 << 30


def guard() -> PressureGuard:
    return PressureGuard(memory_reserve=2 * GB, disk_reserve=10 * GB)


def jobs(*started: float, running: bool = True) -> list[ActiveJob]:
    return [ActiveJob(i + 1, at, GB // 2, running) for i, at in enumerate(started)]


def test_levels_change_once_and_say_so():
    pressure = guard()
    calm = pressure.assess(0.0, 8 * GB, 50 * GB, jobs(1.0), 5, True)
    assert calm.changes == () and pressure.may_launch()
    low = pressure.assess(1.0, int(1.5 * GB), 5 * GB, jobs(1.0), 5, True)
    assert low.changes == (LevelChange(Resource.MEMORY, PressureLevel.LOW, int(1.5 * GB), 2 * GB),
                           LevelChange(Resource.DISK, PressureLevel.LOW, 5 * GB, 10 * GB))
    assert not pressure.may_launch()
    assert pressure.assess(2.0, int(1.5 * GB), 5 * GB, jobs(1.0), 5, True).changes == ()
    back = pressure.assess(3.0, 8 * GB, 50 * GB, jobs(1.0), 5, True)
    assert [(c.resource, c.level) for c in back.changes] == [(Resource.MEMORY, PressureLevel.OK),
                                                             (Resource.DISK, PressureLevel.OK)]
    assert pressure.may_launch()


def test_critical_memory_pauses_the_newest_running_job_but_never_the_last():
    pressure = guard()
    critical = pressure.assess(0.0, GB // 2, 50 * GB, jobs(1.0, 3.0, 2.0), 0, True)  # 2 newest
    assert critical.pause == 2 and critical.changes[0].level is PressureLevel.CRITICAL
    alone = pressure.assess(1.0, GB // 2, 50 * GB, jobs(1.0), 0, True)
    assert alone.pause is None, "the last running job keeps running"
    low = pressure.assess(2.0, int(1.5 * GB), 50 * GB, jobs(1.0, 3.0), 0, True)
    assert low.pause is None, "below the reserve is no launches, not pauses"


def test_headroom_resumes_the_oldest_held_job_once_it_fits():
    pressure = guard()
    active = [
        ActiveJob(1, 1.0, GB, True),
        ActiveJob(2, 2.0, GB, False, held_for_memory=True),
        ActiveJob(3, 3.0, GB, False, held_for_memory=True),
        ActiveJob(4, 0.5, GB, False),  # paused by the operator: never resumed here
    ]
    assert pressure.assess(0.0, int(2.5 * GB), 50 * GB, active, 0, True).resume is None
    assert pressure.assess(1.0, int(3.5 * GB), 50 * GB, active, 0, True).resume == 2


def test_starved_of_disk_gives_up_after_its_patience():
    pressure = guard()
    assert pressure.assess(0.0, 8 * GB, GB, [], 4, True).give_up is None
    assert pressure.assess(DISK_PATIENCE - 0.1, 8 * GB, GB, [], 4, True).give_up is None
    message = pressure.assess(DISK_PATIENCE, 8 * GB, GB, [], 4, True).give_up
    assert message is not None and message.startswith("free disk below its reserve")
    assert "4 jobs not run" in message


def test_starved_of_memory_waits_longer_and_any_relief_restarts_the_clock():
    pressure = guard()
    assert pressure.assess(0.0, GB, 50 * GB, [], 4, True).give_up is None
    assert pressure.assess(DISK_PATIENCE, GB, 50 * GB, [], 4, True).give_up is None
    assert pressure.assess(MEMORY_PATIENCE - 1, 8 * GB, 50 * GB, [], 4, True).give_up is None
    assert pressure.assess(MEMORY_PATIENCE, GB, 50 * GB, [], 4, True).give_up is None
    later = pressure.assess(2 * MEMORY_PATIENCE, GB, 50 * GB, [], 4, True).give_up
    assert later is not None and later.startswith("available memory below its reserve")


def test_no_starvation_while_jobs_run_nothing_waits_or_launching_stopped():
    for active, queued, launching in ((jobs(1.0), 4, True), ([], 0, True), ([], 4, False)):
        pressure = guard()
        pressure.assess(0.0, 8 * GB, GB, active, queued, launching)
        assert pressure.assess(DISK_PATIENCE * 10, 8 * GB, GB, active, queued,
                               launching).give_up is None


def test_critical_memory_that_stays_kills_the_youngest_to_requeue_it():
    g = guard()
    active = jobs(1.0, 2.0, 3.0)
    first = g.assess(10.0, GB // 2, 100 * GB, active, 5, True)
    assert (first.pause, first.requeue, first.fail) == (3, None, None)
    held = [*active[:2], ActiveJob(3, 3.0, GB // 2, False, True)]
    waiting = g.assess(10.0 + CRITICAL_PATIENCE / 2, GB // 2, 100 * GB, held, 5, True)
    assert (waiting.pause, waiting.requeue) == (2, None)  # pausing goes on; not yet a kill
    late = g.assess(10.0 + CRITICAL_PATIENCE, GB // 2, 100 * GB, held, 5, True)
    assert (late.pause, late.requeue, late.fail) == (None, 3, None)  # the youngest, paused or not
    # While it ends, nothing more is killed; after it ended, the patience starts again.
    ending = [*active[:2], ActiveJob(3, 3.0, GB // 2, False, True, ending=True)]
    assert g.assess(20.0, GB // 2, 100 * GB, ending, 5, True).requeue is None
    assert g.assess(20.0 + CRITICAL_PATIENCE / 2, GB // 2, 100 * GB, active[:2], 5,
                    True).requeue is None
    assert g.assess(20.0 + CRITICAL_PATIENCE, GB // 2, 100 * GB, active[:2], 5, True).requeue == 2


def test_a_job_alone_in_critical_memory_fails_and_relief_resets_the_patience():
    g = guard()
    alone = jobs(1.0)
    assert g.assess(10.0, GB // 2, 100 * GB, alone, 5, True).fail is None
    g.assess(10.5, 3 * GB, 100 * GB, alone, 5, True)  # relief: the clock starts over
    assert g.assess(11.0, GB // 2, 100 * GB, alone, 5, True).fail is None
    assert g.assess(11.0 + CRITICAL_PATIENCE / 2, GB // 2, 100 * GB, alone, 5, True).fail is None
    actions = g.assess(11.0 + CRITICAL_PATIENCE, GB // 2, 100 * GB, alone, 5, True)
    assert (actions.pause, actions.requeue, actions.fail) == (None, None, 1)


def test_memory_near_its_reserve_asks_for_faster_sampling():
    g = guard()
    g.assess(0.0, 10 * GB, 100 * GB, [], 0, True)
    assert not g.near
    g.assess(1.0, 3 * GB, 100 * GB, [], 0, True)  # above the 2 GiB reserve, under twice it
    assert g.near and g.may_launch()


def test_the_kernels_memory_stalls_also_ask_for_faster_sampling():
    g = guard()
    g.assess(0.0, 10 * GB, 100 * GB, [], 0, True, stalls=0.2)
    assert not g.near
    g.assess(1.0, 10 * GB, 100 * GB, [], 0, True, stalls=5.0)
    assert g.near


def test_every_job_held_for_memory_resumes_the_oldest_but_not_during_an_operators_pause():
    g = guard()
    held = [ActiveJob(1, 1.0, 2 * GB, False, True), ActiveJob(2, 2.0, 2 * GB, False, True)]
    # LOW, and the oldest does not fit above the reserve: still, nothing else can free memory.
    assert g.assess(0.0, int(1.5 * GB), 100 * GB, held, 0, True).resume == 1
    operator = [*held, ActiveJob(3, 0.5, GB, False)]  # paused by the operator
    assert g.assess(1.0, int(1.5 * GB), 100 * GB, operator, 0, True).resume is None
    assert g.assess(2.0, GB // 2, 100 * GB, held, 0, True).resume is None  # critical: wait
