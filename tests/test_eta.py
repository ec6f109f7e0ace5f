"""The ETA from the work left (core/eta.py), driven by scripted events on a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from orch_tui.core import events as ev
from orch_tui.core.eta import MAX_ETA, Eta, EtaModel
from orch_tui.core.events import JobState as S
from orch_tui.core.tally import Tally
from tests.test_tally import change_of


def _sample(job_id: int, progress: float, time: float) -> ev.JobSample:
    return ev.JobSample(time=time,
                        job_id=job_id,
                        node="local",
                        pid=100 + job_id,
                        cpu_cores=1.0,
                        rss_bytes=1,
                        processes=1,
                        read_fraction=None,
                        output_bytes=0,
                        elapsed=0.0,
                        progress=progress,
                        progress_source=ev.ProgressSource.FFMPEG)


class Script:
    """Jobs done at a constant pace (a fraction per second), sampled every second."""

    def __init__(self, model: EtaModel | Tally, *, per_second: float) -> None:
        self.model, self.per_second = model, per_second
        self.running: dict[int, float] = {}  # job id -> progress
        self.now = 0.0

    def launch(self, *job_ids: int) -> None:
        for job_id in job_ids:
            self.model.apply(change_of(job_id, S.RUNNING, self.now))
            self.running[job_id] = 0.0

    def second(self) -> None:
        """One second of work: every running job advances; those done succeed."""
        self.now += 1.0
        for job_id in list(self.running):
            progress = self.running[job_id] + self.per_second
            if progress >= 1.0 - 1e-9:
                del self.running[job_id]
                self.model.apply(change_of(job_id, S.SUCCEEDED, self.now))
            else:
                self.running[job_id] = progress
                self.model.apply(_sample(job_id, progress, self.now))

    def eta(self) -> Eta:
        return self.model.eta(self.now)


def half_way(model: EtaModel | Tally) -> Script:
    """Jobs 1 and 2 launched at 0 and half done (10% a second) at 5 s."""
    script = Script(model, per_second=0.1)
    script.launch(1, 2)
    for _ in range(5):
        script.second()
    return script


def _queued(n: int, size: int = 100, first: int = 1) -> dict[int, S]:
    return {job_id: S.QUEUED for job_id in range(first, first + n)}


def test_constant_rate_jobs_give_the_real_time_left():
    # 4 inputs of 100 B, 2 at a time, each 10% a second: 1 and 2 end at 10 s, 3 and 4 at 20 s.
    model = EtaModel(dict.fromkeys(range(1, 5), 100), _queued(4))
    script = Script(model, per_second=0.1)
    assert script.eta() == Eta()  # nothing measured: no figure, never a guess
    script.launch(1, 2)
    script.second()
    assert script.eta() == Eta()  # one second is not a measurement yet
    for _ in range(4):
        script.second()
    # 100 B done in 5 s = 20 B/s; 300 B left (half of 1 and 2, all of 3 and 4): 15 s.
    assert script.eta().seconds == pytest.approx(15.0)
    for _ in range(5):
        script.second()
    script.launch(3, 4)
    for _ in range(5):
        script.second()
    assert script.eta().seconds == pytest.approx(5.0)


def test_the_unfinished_part_of_running_jobs_counts():
    # One 1000 B job half done after 10 s and nothing finished: the old ETA had no figure.
    model = EtaModel({1: 1000}, _queued(1))
    script = Script(model, per_second=0.05)
    script.launch(1)
    for _ in range(10):
        script.second()
    assert script.eta().seconds == pytest.approx(10.0)


def test_inputs_of_different_sizes_weigh_by_their_bytes():
    # A 300 B job and a 100 B one, each at 10 B/s: after 5 s, 250 + 50 B are left at 20 B/s.
    model2 = EtaModel({1: 300, 2: 100}, _queued(2))
    model2.apply(change_of(1, S.RUNNING, 0.0))
    model2.apply(change_of(2, S.RUNNING, 0.0))
    for second in range(1, 6):
        model2.apply(_sample(1, second * 10 / 300, float(second)))
        model2.apply(_sample(2, second * 10 / 100, float(second)))
    assert model2.eta(5.0).seconds == pytest.approx(300 / 20)


def test_a_job_failing_at_once_does_not_make_the_eta_optimistic():
    # The same 4 good inputs, plus 4 corrupt ones that fail 0.1 s after their launch.
    good = dict.fromkeys(range(1, 5), 100)
    bad = dict.fromkeys(range(5, 9), 100)
    model = EtaModel(good | bad, _queued(8))
    for job_id in bad:  # one after the other, just before the good ones start at 0
        model.apply(change_of(job_id, S.RUNNING, (job_id - 9) * 0.1))
        model.apply(change_of(job_id, S.FAILED, (job_id - 8) * 0.1))
    script = half_way(model)
    # Counted as throughput (the old ETA: 4 inputs ended in 5.4 s, 4 left), they would say
    # 0:00:05; the work says what the 4 good inputs need: 15 s at 20 B/s. Their 0.4 s of running
    # did no work, so the figure is only pessimistic by that share: 300 B at 100 B / 5.4 s.
    assert script.eta().seconds == pytest.approx(300 / (100 / 5.4))


def test_a_resumed_run_with_one_job_left_has_a_stable_eta():
    # Nine inputs done in a previous run, the last one runs now, 5% a second from t=1000.
    states = {job_id: S.SUCCEEDED for job_id in range(1, 10)} | {10: S.QUEUED}
    tally = Tally(states, sizes=dict.fromkeys(range(1, 11), 100), first_launch=0.0)
    tally.apply(change_of(10, S.RUNNING, 1000.0))
    assert tally.eta(1001.0) == Eta()
    finishes = []
    for second in range(1, 15):
        now = 1000.0 + second
        tally.apply(_sample(10, second * 0.05, now))
        if second >= 2:
            eta = tally.eta(now).seconds
            assert eta is not None
            finishes.append(now + eta)
    # The predicted finish stays at t=1020 (it never grows with the time since first launch).
    assert finishes == pytest.approx([1020.0] * len(finishes))


def test_every_active_job_paused_says_paused_and_the_pause_is_not_measured():
    model = EtaModel({1: 100, 2: 100}, _queued(2))
    script = half_way(model)
    before = script.eta().seconds
    model.apply(change_of(1, S.PAUSED, script.now))
    assert script.eta().seconds == before  # one job still runs
    model.apply(change_of(2, S.PAUSED, script.now))
    for later in (0.0, 60.0, 600.0):
        assert model.eta(script.now + later) == Eta(paused=True)
        assert model.eta(script.now + later).text() == "paused"
    script.now += 600.0
    model.apply(change_of(1, S.RUNNING, script.now))
    model.apply(change_of(2, S.RUNNING, script.now))
    # Ten minutes paused are no time the rate was measured in: the figure is as before.
    assert script.eta().seconds == pytest.approx(before)
    script.second()
    assert script.eta().seconds == pytest.approx(before - 1.0)


def test_the_rate_follows_the_current_concurrency():
    # One job at a time for 60 s, then two: after the window, the ETA is at the new rate.
    model = EtaModel(dict.fromkeys(range(1, 21), 100), _queued(20))
    script = Script(model, per_second=0.1)
    script.launch(1)
    next_id = 2
    for _ in range(60):
        script.second()
        if not script.running:
            script.launch(next_id)
            next_id += 1
    script.launch(next_id)
    next_id += 1
    for _ in range(40):
        script.second()
        while len(script.running) < 2:
            script.launch(next_id)
            next_id += 1
    left = model.remaining()
    assert script.eta().seconds == pytest.approx(left / 20.0, rel=0.05)


def test_no_absurd_figure_on_a_stall_or_after_the_run_ended():
    model = EtaModel({1: 10**12}, _queued(1))
    model.apply(change_of(1, S.RUNNING, 0.0))
    model.apply(_sample(1, 1e-9, 10.0))  # 1 kB in 10 s of a 1 TB input: ~300 years
    assert model.rate(10.0) == pytest.approx(100.0)
    assert model.remaining() / 100.0 > MAX_ETA
    assert model.eta(10.0) == Eta()
    model.apply(_sample(1, 0.5, 20.0))
    assert model.eta(20.0).seconds is not None
    model.apply(change_of(1, S.KILLED, 21.0))
    model.apply(
        ev.RunFinished(time=21.0,
                       counts={"killed": 1},
                       wall_seconds=21.0,
                       exit_code=1,
                       interrupted=True))
    assert model.eta(21.0) == Eta() and model.eta(21.0).text() == "-"


def test_an_observer_attaching_midway_computes_the_same_eta():
    sizes = dict.fromkeys(range(1, 5), 100)
    tally = Tally(_queued(4), sizes=sizes)
    script = half_way(tally)
    attached = Tally(tally.states(), sizes=sizes, eta_state=tally.work.state())
    assert attached.eta(script.now) == tally.eta(script.now)
    for tally_now in (tally, attached):
        tally_now.apply(_sample(1, 0.6, script.now + 1))
        tally_now.apply(_sample(2, 0.6, script.now + 1))
    assert attached.eta(script.now + 1) == tally.eta(script.now + 1)
    assert tally.eta(script.now + 1).seconds == pytest.approx(14.0)


def test_a_job_started_over_on_another_node_takes_back_the_work_it_did():
    # Job 1's node is lost at 50%: the cluster runs it again from nothing elsewhere.
    model = EtaModel({1: 100, 2: 100}, _queued(2))
    script = half_way(model)
    restart = dataclasses.replace(change_of(1, S.RUNNING, script.now),
                                  previous=S.RUNNING,
                                  restarted=True)
    model.apply(restart)
    script.running[1] = 0.0
    assert model.remaining() == pytest.approx(150.0)
    assert script.eta().seconds == pytest.approx(15.0)
    model.apply(_sample(1, 0.1, script.now + 1))  # its new progress counts from zero
    assert model.remaining() == pytest.approx(140.0)


def test_a_requeued_job_takes_back_the_work_it_did():
    # Job 1 is killed at 50% and requeued (memory critical): its 50 B are to be done again.
    model = EtaModel({1: 100, 2: 100}, _queued(2))
    script = half_way(model)
    assert model.remaining() == pytest.approx(100.0)
    model.apply(change_of(1, S.QUEUED, script.now))
    del script.running[1]
    assert model.remaining() == pytest.approx(150.0)
    # Only job 2's 50 B count as work done in the 5 s: 10 B/s for the 150 B left.
    assert script.eta().seconds == pytest.approx(15.0)
