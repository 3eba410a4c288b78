"""Every cell of the seed tutorial, with tarry imported in place of dask.

Sleeps are shortened from 1 s to SLEEP so the suite stays quick. Each toy
call notes when it ran, measured inside the task: two calls ran in parallel
iff their intervals overlap, so the checks hold on a slow or busy machine.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from glob import glob
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import pytest

from tarry import compute, delayed

SLEEP = 0.2

P = ParamSpec("P")
R = TypeVar("R")


class Call(NamedTuple):
    """One call of a toy function: its name and its perf_counter interval."""

    name: str
    start: float
    end: float


#: every toy call since the test began, in the order they ended
CALLS: list[Call] = []


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


def noted(func: Callable[P, R]) -> Callable[P, R]:
    """``func``, noting each call in CALLS; keeps its name (tarry's keys use it)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            CALLS.append(Call(func.__name__, start, time.perf_counter()))

    return wrapper


def overlap(a: Call, b: Call) -> bool:
    return a.start < b.end and b.start < a.end


def each_overlaps_another(calls: list[Call]) -> bool:
    """No call ran alone: each ran at the same time as some other call."""
    return all(any(overlap(a, b) for b in calls if b is not a) for a in calls)


@noted
def inc(x: int) -> int:
    time.sleep(SLEEP)
    return x + 1


@noted
def add(x: int, y: int) -> int:
    time.sleep(SLEEP)
    return x + y


@noted
def double(x: int) -> int:
    time.sleep(SLEEP)
    return 2 * x


def is_even(x: int) -> bool:
    return not x % 2


def test_basics_inc_add() -> None:
    x = delayed(inc)(1)
    y = delayed(inc)(2)
    z = delayed(add)(x, y)
    assert CALLS == []  # building runs nothing
    assert z.compute() == 5
    # 3 sleeps sequentially, 2 on the critical path with threads: the incs
    # overlap, and add starts once both have ended
    assert sorted(c.name for c in CALLS) == ["add", "inc", "inc"]
    first, second = (c for c in CALLS if c.name == "inc")
    (last,) = (c for c in CALLS if c.name == "add")
    assert overlap(first, second)
    assert last.start >= max(first.end, second.end)
    assert repr(z).startswith("Delayed('add-")


def test_parallel_for_loop() -> None:
    data = [1, 2, 3, 4, 5, 6, 7, 8]
    results = []
    for x in data:
        y = delayed(inc)(x)
        results.append(y)
    total = delayed(sum)(results)
    assert total.compute() == 44
    assert len(CALLS) == 8
    assert each_overlaps_another(CALLS)  # at least two at a time, as on 2 cores


def test_sum_not_delayed_builds_a_chain_of_additions() -> None:
    results = [delayed(inc)(x) for x in [1, 2, 3]]
    total = sum(results)
    assert isinstance(total, type(results[0]))
    assert total.compute() == 9
    pair = delayed(inc)(1) + delayed(inc)(2)
    assert pair.key.startswith("add-")
    assert pair.compute() == 5


def test_for_loop_with_control_flow() -> None:
    data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    results = []
    for x in data:
        y = delayed(double)(x) if is_even(x) else delayed(inc)(x)
        results.append(y)
    total = delayed(sum)(results)
    assert total.compute() == 90
    assert sorted(c.name for c in CALLS) == ["double"] * 5 + ["inc"] * 5
    assert each_overlaps_another(CALLS)


def test_delaying_is_even_makes_branching_impossible() -> None:
    with pytest.raises(TypeError, match=r"compute\(\)"):
        bool(delayed(is_even)(2))


def test_numpy_methods_slicing_and_shared_compute() -> None:
    np = pytest.importorskip("numpy")
    x = delayed(np.arange)(10)
    y = (x + 1)[::2].sum()
    assert y.compute() == 25
    y = x**2
    min_, max_ = compute(y.min(), y.max())
    assert (min_, max_) == (0, 81)


@pytest.fixture(scope="module")
def flight_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    pytest.importorskip("pandas")
    from tarry._tutorial.flights import prepare_flights

    folder = tmp_path_factory.mktemp("data") / "nycflights"
    prepare_flights(folder, rows_per_file=2000, progress=False)
    return sorted(glob(os.path.join(str(folder), "*.csv")))


def test_pandas_groupby_like_the_tutorial(flight_files: list[str]) -> None:
    import pandas as pd

    assert [Path(f).name for f in flight_files] == [f"{y}.csv" for y in range(1990, 2000)]
    sums, counts = [], []
    for fn in flight_files:
        df = pd.read_csv(fn)
        by_origin = df.groupby("Origin")
        sums.append(by_origin.DepDelay.sum())
        counts.append(by_origin.DepDelay.count())
    expected: Any = sum(sums) / sum(counts)

    # the tutorial's solution: delay read_csv, the rest is method calls on Delayed
    lazy_sums, lazy_counts = [], []
    for fn in flight_files:
        df = delayed(pd.read_csv)(fn)
        by_origin = df.groupby("Origin")
        lazy_sums.append(by_origin.DepDelay.sum())
        lazy_counts.append(by_origin.DepDelay.count())
    total_delays = delayed(sum)(lazy_sums)
    n_flights = delayed(sum)(lazy_counts)
    (mean,) = compute(total_delays / n_flights)
    pd.testing.assert_series_equal(mean, expected)

    # computing sums and counts first, then combining eagerly, agrees too
    computed_sums, computed_counts = compute(lazy_sums, lazy_counts)
    combined: Any = sum(computed_sums) / sum(computed_counts)
    pd.testing.assert_series_equal(combined, expected)
