"""Every cell of the seed tutorial, with tarry imported in place of dask.

Sleeps are shortened from 1 s to SLEEP so the suite stays quick; timings are
checked as multiples of SLEEP.
"""

from __future__ import annotations

import os
import time
from glob import glob
from pathlib import Path
from typing import Any

import pytest

from tarry import compute, delayed

SLEEP = 0.2


def inc(x: int) -> int:
    time.sleep(SLEEP)
    return x + 1


def add(x: int, y: int) -> int:
    time.sleep(SLEEP)
    return x + y


def double(x: int) -> int:
    time.sleep(SLEEP)
    return 2 * x


def is_even(x: int) -> bool:
    return not x % 2


def timed(thunk: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = thunk()
    return value, time.perf_counter() - start


def test_basics_inc_add() -> None:
    start = time.perf_counter()
    x = delayed(inc)(1)
    y = delayed(inc)(2)
    z = delayed(add)(x, y)
    assert time.perf_counter() - start < SLEEP / 4  # building runs nothing
    value, elapsed = timed(z.compute)
    assert value == 5
    # 3 sleeps sequentially, 2 on the critical path with threads
    assert 2 * SLEEP <= elapsed < 2.6 * SLEEP
    assert repr(z).startswith("Delayed('add-")


def test_parallel_for_loop() -> None:
    data = [1, 2, 3, 4, 5, 6, 7, 8]
    results = []
    for x in data:
        y = delayed(inc)(x)
        results.append(y)
    total = delayed(sum)(results)
    value, elapsed = timed(total.compute)
    assert value == 44
    assert elapsed < 8 * SLEEP * 0.6  # at least the 2-core speed-up


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
    value, elapsed = timed(total.compute)
    assert value == 90
    assert elapsed < 10 * SLEEP * 0.6


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
