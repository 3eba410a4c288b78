"""Findings: one wording for what a report (after a run) and an explanation (before) both say."""

from __future__ import annotations

import time

import pytest

import tarry
from tarry._schedule.timing import TaskEvent
from tarry._tools.profile import Profile
from tarry._tools.records import RunRecord

SLEEP = 0.05


def step(x: int) -> int:
    time.sleep(SLEEP)
    return x + 1


def chain(length: int) -> tarry.Delayed[int]:
    value = tarry.delayed(step)(0)
    for _ in range(length - 1):
        value = tarry.delayed(step)(value)
    return value


def test_a_chain_is_worded_alike_before_and_after_it_runs() -> None:
    graph = chain(3)
    before = tarry.explain(graph, profile=tarry.profile()).findings[0]
    with tarry.profile() as prof:
        graph.compute(scheduler="threads", num_workers=2)
    after = next(f for f in prof.report().findings if "one chain" in f)
    same = "the 3 tasks form one chain (step → step → step): each needs the one before"
    assert before.startswith(same)
    assert after.startswith(same)
    assert after.endswith("is the best any scheduler can do")  # measured: its span


def test_nothing_to_run_is_worded_alike() -> None:
    (kept,) = tarry.persist(tarry.delayed(step)(1), scheduler="sync")
    before = tarry.explain(kept, profile=tarry.profile()).findings
    with tarry.profile() as prof:
        kept.compute()
    assert (
        before
        == prof.report().findings
        == ["there is nothing to run: no lazy value, or only persisted ones"]
    )


def test_one_task_at_a_time_is_worded_alike() -> None:
    graph = tarry.delayed(sum)([tarry.delayed(step)(i) for i in range(3)])
    before = tarry.explain(graph, scheduler="sync", profile=tarry.profile()).findings
    with tarry.profile() as prof:
        graph.compute(scheduler="sync")
    after = prof.report().findings
    said = "the sync scheduler runs one task at a time"
    assert any(said in f for f in before), before
    assert any(said in f for f in after), after


def tiny(x: int) -> int:
    return 2 * x


def test_compute_in_a_loop_over_tiny_graphs_is_a_finding() -> None:
    # dask's anti-pattern: each compute() waits for its own one task
    with tarry.profile() as prof:
        for i in range(12):
            tarry.delayed(tiny)(i).compute(scheduler="threads")
    looped = [f for f in prof.report().findings if "compute(*values)" in f]
    assert looped == [
        "12 computes ran one after another, with a median of 1 task each: each compute() waits "
        "for its own tasks before the next can start, so the workers never run the tasks of "
        "different computes side by side, and each compute pays its fixed cost; build all the "
        "lazy values first, then compute them together with one compute(*values) (work they "
        "share then runs once)"
    ]
    with tarry.profile() as together:
        tarry.compute(*[tarry.delayed(tiny)(i) for i in range(12)], scheduler="threads")
    assert not [f for f in together.report().findings if "compute(*values)" in f]


def test_a_few_computes_are_steps_not_a_loop() -> None:
    with tarry.profile() as prof:
        for i in range(3):
            tarry.delayed(tiny)(i).compute(scheduler="sync")
    assert not [f for f in prof.report().findings if "compute(*values)" in f]


def profile_of(durations: dict[str, list[float]], wall: float) -> Profile:
    """A profile of one compute on threads with 2 workers whose tasks took ``durations``.

    Made by hand: measured times of microsecond tasks, and the overhead beside
    them, vary too much from run to run for a comparison of the two.
    """
    events, t = [], 0.0
    for name, times in durations.items():
        for i, took in enumerate(times):
            events.append(TaskEvent(f"{name}-{i}", name, "w", t, t + took, took))
            t += took
    deps: dict[str, tuple[str, ...]] = {e.key: () for e in events}
    names = {e.key: e.name for e in events}
    prof = Profile()
    prof.records.append(RunRecord("threads", 2, 0.0, wall, deps, names, events))
    return prof


def test_explain_flags_a_median_task_below_the_overhead_that_a_mean_would_hide() -> None:
    # one task of 1 s and 200 of 2 µs, in a run 201 × 50 µs longer than the 1 s task
    prof = profile_of({"step": [1.0], "tiny": [2e-6] * 200}, wall=1.0 + 201 * 50e-6)
    assert prof.report().overhead_per_task == pytest.approx(50e-6)
    graph = [tarry.delayed(step)(0), *[tarry.delayed(tiny)(i) for i in range(50)]]
    why = tarry.explain(graph, profile=prof)
    assert why.estimate is not None
    assert why.estimate.work / why.tasks > 10 * 50e-6  # the mean
    assert why.estimate.median_task == pytest.approx(2e-6)
    (small,) = (f for f in why.findings if "make each task do more work" in f)
    assert small.startswith(
        "the median task takes 2.00 µs (as an earlier profile measured its function), less "
        "than the per-task overhead of 50.0 µs"
    )


def test_explain_flags_tiny_tasks_with_the_typical_overhead_once_the_profile_is_gone() -> None:
    with profile_of({"tiny": [1e-6] * 200}, wall=0.01):
        pass  # leaving the block keeps its means as the latest times
    why = tarry.explain([tarry.delayed(tiny)(i) for i in range(50)], scheduler="threads")
    assert why.estimate is not None
    assert why.estimate.overhead_per_task is None  # the profile object is gone
    (small,) = (f for f in why.findings if "make each task do more work" in f)
    assert "less than tarry's typical per-task overhead on threads of 3.00 µs" in small
    slow = profile_of({"tiny": [1e-3] * 200}, wall=1.0)
    assert not [f for f in tarry.explain(tiny, profile=slow).findings if "more work" in f]


@tarry.delayed
def lazy_inside(x: int) -> tarry.Delayed[int]:
    return tarry.delayed(tiny)(x)  # dask's anti-pattern: delayed called inside a task


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_a_task_that_returns_a_delayed_fails_with_advice(scheduler: str) -> None:
    try:
        value = lazy_inside(1).compute(scheduler=scheduler)
    except TypeError as error:
        message = str(error)
    else:
        raise AssertionError(f"the task returned {value!r} and nothing said so")
    assert "returned a lazy value" in message
    assert ".__wrapped__" in message
