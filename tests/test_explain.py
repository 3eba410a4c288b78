"""tarry.explain: what a graph allows, before anything runs."""

from __future__ import annotations

import gc
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

import tarry
from tarry._tools.profile import Profile

CALLS: list[str] = []
SLEEP = 0.05


def inc(x: int) -> int:
    CALLS.append("inc")
    time.sleep(SLEEP)
    return x + 1


def add(x: int, y: int) -> int:
    CALLS.append("add")
    time.sleep(SLEEP)
    return x + y


def double(x: int) -> int:
    CALLS.append("double")
    return 2 * x


def tutorial() -> tarry.Delayed[int]:
    return tarry.delayed(add)(tarry.delayed(inc)(1), tarry.delayed(inc)(2))


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    CALLS.clear()


def mean_times(prof: Profile) -> dict[str, float]:
    """Mean time per task of each function, from the profile's events."""
    times: dict[str, list[float]] = {}
    for event in prof.events:
        times.setdefault(event.name, []).append(event.end - event.start)
    return {name: sum(seconds) / len(seconds) for name, seconds in times.items()}


def test_tutorial_shape_without_running_anything() -> None:
    why = tarry.explain(tutorial(), scheduler="threads", num_workers=2, profile=tarry.profile())
    assert CALLS == []
    assert why.tasks == 3
    assert why.by_function == {"inc": 2, "add": 1}
    assert why.width == 2
    assert why.depth == 2
    assert why.critical_path_names == ["inc", "add"]
    assert why.workers == 2
    assert why.estimate is None
    assert why.findings[0] == (
        "2 of the 3 tasks could run at the same time; the longest chain has 2 tasks (inc → add)"
    )
    assert "more than 2 workers cannot help" in why.findings[1]
    text = str(why)
    assert text.startswith("tarry graph: 3 tasks (inc ×2, add ×1)")
    assert "inc → add" in text


def test_a_chain_cannot_run_in_parallel() -> None:
    value = tarry.delayed(inc)(0)
    for _ in range(4):
        value = tarry.delayed(inc)(value)
    why = tarry.explain(value, profile=tarry.profile())
    assert (why.tasks, why.width, why.depth) == (5, 1, 5)
    assert why.critical_path_names == ["inc"] * 5
    assert "the 5 tasks form one chain (inc → inc → … → inc)" in why.findings[0]


def test_fewer_workers_than_width() -> None:
    total = tarry.delayed(sum)([tarry.delayed(inc)(i) for i in range(8)])
    why = tarry.explain(total, scheduler="threads", num_workers=2, profile=tarry.profile())
    assert (why.tasks, why.width, why.depth) == (9, 8, 2)
    assert any("runs at most 2 at once" in f and "5 tasks one after another" in f
               for f in why.findings)  # fmt: skip


def test_sync_has_one_worker() -> None:
    why = tarry.explain(tutorial(), scheduler="sync", num_workers=4, profile=tarry.profile())
    assert why.workers == 1


def test_estimates_from_a_profile() -> None:
    with tarry.profile() as prof:
        tutorial().compute(scheduler="threads", num_workers=2)
    CALLS.clear()
    bigger = tarry.delayed(add)(tarry.delayed(add)(tarry.delayed(inc)(1), tarry.delayed(inc)(2)), 3)
    why = tarry.explain(bigger, scheduler="threads", num_workers=2, profile=prof)
    assert CALLS == []
    estimate = why.estimate
    assert estimate is not None
    # each task counts its function's mean time as measured; the span follows the
    # longest chain: inc, then both adds
    means = mean_times(prof)
    assert min(means.values()) >= SLEEP
    assert estimate.work == pytest.approx(2 * means["inc"] + 2 * means["add"])
    assert estimate.span == pytest.approx(means["inc"] + 2 * means["add"])
    assert estimate.best_time == pytest.approx(max(estimate.work / 2, estimate.span))
    assert estimate.unknown == []
    assert any("best possible time with 2 workers" in f for f in why.findings)
    assert "est. span" in str(why)


def test_last_profile_is_used_by_default() -> None:
    with tarry.profile() as prof:
        tutorial().compute(scheduler="threads", num_workers=2)
    why = tarry.explain(tutorial(), num_workers=2)
    assert why.estimate is not None
    means = mean_times(prof)  # that profile's, not another's
    assert why.estimate.span == pytest.approx(means["inc"] + means["add"])
    assert why.estimate.overhead_per_task == pytest.approx(prof.report().overhead_per_task)


def test_last_profile_keeps_only_its_means_alive() -> None:
    with tarry.profile() as prof:
        tutorial().compute(scheduler="threads", num_workers=2)
    means = mean_times(prof)
    gone = weakref.ref(prof)
    del prof
    gc.collect()
    assert gone() is None
    why = tarry.explain(tutorial(), num_workers=2)
    assert why.estimate is not None
    assert why.estimate.work == pytest.approx(2 * means["inc"] + means["add"])
    assert why.estimate.overhead_per_task is None


def test_functions_the_profile_never_saw_are_named() -> None:
    with tarry.profile() as prof:
        tutorial().compute(scheduler="threads", num_workers=2)
    graph = tarry.delayed(double)(tutorial())
    why = tarry.explain(graph, num_workers=2, profile=prof)
    assert why.estimate is not None
    assert why.estimate.unknown == ["double"]
    assert any("no times were measured for double" in f for f in why.findings)


def test_tiny_tasks_are_flagged_from_earlier_measurements() -> None:
    with tarry.profile() as prof:
        tarry.compute([tarry.delayed(double)(i) for i in range(500)], scheduler="threads")
    why = tarry.explain([tarry.delayed(double)(i) for i in range(10)], profile=prof)
    assert any("make each task do more work" in f for f in why.findings), why.findings


def test_nothing_lazy() -> None:
    why = tarry.explain(1, [2, 3], profile=tarry.profile())
    assert why.tasks == 0
    assert why.findings == ["there is nothing to run: no lazy value, or only persisted ones"]


def test_persisted_values_are_not_tasks() -> None:
    (kept,) = tarry.persist(tarry.delayed(inc)(1), scheduler="sync")
    why = tarry.explain(tarry.delayed(add)(kept, kept), profile=tarry.profile())
    assert why.tasks == 1
    assert why.by_function == {"add": 1}


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="unknown scheduler"):
        tarry.explain(tutorial(), scheduler="nope")
    with pytest.raises(ValueError, match="num_workers must be at least 1"):
        tarry.explain(tutorial(), num_workers=0)


def test_an_executor_counts_its_own_workers() -> None:
    with ThreadPoolExecutor(3) as pool:
        why = tarry.explain(tutorial(), scheduler=pool, profile=tarry.profile())  # type: ignore[arg-type]
    assert (why.scheduler, why.workers) == ("ThreadPoolExecutor", 3)
