"""The threads backend: parallelism, first-failure stop, nesting, Ctrl-C, lifetimes."""

from __future__ import annotations

import _thread
import threading
import time
from typing import Any

import pytest

from tarry import compute, delayed
from tarry._schedule.threads import WorkerPool, default_pool, shutdown_default_pool


def sleepy(x: int, seconds: float = 0.2) -> int:
    time.sleep(seconds)
    return x


def test_independent_sleeps_overlap() -> None:
    parts = [delayed(sleepy)(i) for i in range(4)]
    start = time.perf_counter()
    assert compute(parts, scheduler="threads", num_workers=4) == ([0, 1, 2, 3],)
    assert time.perf_counter() - start < 0.6  # 4 x 0.2 s serially


def test_num_workers_bounds_concurrency() -> None:
    peak, _ = _peak_concurrency(lambda: time.sleep(0.02), 20, num_workers=3)
    assert peak == 3


def test_first_failure_stops_new_tasks_and_raises_at_once() -> None:
    started: list[int] = []

    def slow(i: int) -> int:
        started.append(i)
        time.sleep(0.1)
        return i

    def boom() -> int:
        raise RuntimeError("boom")

    parts = [delayed(boom)()] + [delayed(slow)(i) for i in range(40)]
    begin = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom"):
        compute(parts, scheduler="threads", num_workers=2)
    elapsed = time.perf_counter() - begin
    time.sleep(0.3)  # let any task already running end
    assert len(started) <= 2
    assert elapsed < 1.0


def test_compute_inside_a_task_does_not_deadlock_or_multiply_pools() -> None:
    def inner(i: int) -> int:
        parts = [delayed(sleepy)(j, 0.01) for j in range(4)]
        return int(sum(compute(parts, scheduler="threads", num_workers=2)[0])) + i

    outer = [delayed(inner)(i) for i in range(6)]
    pool = default_pool()
    result = compute(outer, scheduler="threads", num_workers=2)[0]
    assert result == [6 + i for i in range(6)]
    assert default_pool() is pool
    assert pool.thread_count() <= 6


def test_concurrent_callers_each_get_their_own_result() -> None:
    results: dict[int, Any] = {}

    def caller(n: int) -> None:
        parts = [delayed(sleepy)(n * 100 + i, 0.01) for i in range(10)]
        results[n] = compute(delayed(sum)(parts), scheduler="threads")[0]

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {n: sum(n * 100 + i for i in range(10)) for n in range(6)}


def test_ctrl_c_returns_quickly_and_starts_nothing_new() -> None:
    started: list[int] = []

    def slow(i: int) -> int:
        started.append(i)
        time.sleep(0.3)
        return i

    timer = threading.Timer(0.45, _thread.interrupt_main)
    parts = [delayed(slow)(i) for i in range(20)]
    begin = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        compute(parts, scheduler="threads", num_workers=2)
    elapsed = time.perf_counter() - begin
    count = len(started)
    time.sleep(0.7)
    assert elapsed < 1.6
    assert len(started) <= count + 1  # a helper may finish its running task, no new ones


def test_pool_threads_retire_when_idle_and_stop_on_shutdown() -> None:
    pool = WorkerPool(max_threads=4, idle_timeout=0.2)
    done = threading.Barrier(4)

    def meet() -> None:
        done.wait(5)

    for _ in range(3):
        pool.submit(meet)
    done.wait(5)
    assert pool.thread_count() == 3
    deadline = time.monotonic() + 5
    while pool.thread_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.thread_count() == 0
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)


def test_shutdown_default_pool_leaves_no_thread_behind() -> None:
    compute([delayed(sleepy)(i, 0.01) for i in range(8)], scheduler="threads", num_workers=2)
    shutdown_default_pool()
    assert not [t for t in threading.enumerate() if t.name.startswith("tarry-worker")]
    # and the next compute starts a fresh pool
    assert compute(delayed(sleepy)(1, 0.0) + 1, scheduler="threads") == (2,)


def test_single_task_runs_in_the_calling_thread() -> None:
    where = delayed(lambda: threading.current_thread().name)()
    assert where.compute(scheduler="threads") == threading.current_thread().name


def _peak_concurrency(work: Any, count: int, **options: Any) -> tuple[int, float]:
    """Run ``count`` tasks doing ``work``; return the most running at once, and the time."""
    running = 0
    peak = 0
    lock = threading.Lock()

    def task(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        work()
        with lock:
            running -= 1
        return i

    start = time.perf_counter()
    compute([delayed(task)(i) for i in range(count)], scheduler="threads", **options)
    return peak, time.perf_counter() - start


def test_waiting_tasks_get_more_threads_by_default() -> None:
    peak, elapsed = _peak_concurrency(lambda: time.sleep(0.3), 8)
    assert peak == 8
    assert elapsed < 0.3 * 1.5  # about one sleep, not 8 / cores of them


def test_growth_respects_max_threads_and_explicit_num_workers() -> None:
    import tarry

    with tarry.config.set(max_threads=4):
        peak, _ = _peak_concurrency(lambda: time.sleep(0.1), 8)
    assert peak == 4
    peak, _ = _peak_concurrency(lambda: time.sleep(0.1), 8, num_workers=2)
    assert peak == 2


def test_computing_tasks_do_not_get_more_threads() -> None:
    from tarry._schedule.cpus import usable_cpus

    def spin() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass

    peak, _ = _peak_concurrency(spin, 16)
    assert peak <= usable_cpus() + 1


def test_grower_thread_ends_with_the_run() -> None:
    _peak_concurrency(lambda: time.sleep(0.05), 8)
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name == "tarry-recruiter"]


def test_tasks_that_fill_several_cores_get_no_more_threads_than_cores_can_feed() -> None:
    import hashlib

    from tarry._schedule.cpus import usable_cpus

    data = b"x" * 2**22

    def two_core_task() -> None:
        # hashing a large buffer releases the GIL: each task keeps 2 cores busy
        def burn() -> None:
            end = time.perf_counter() + 0.3
            while time.perf_counter() < end:
                hashlib.sha256(data).digest()

        inner = [threading.Thread(target=burn) for _ in range(2)]
        for t in inner:
            t.start()
        for t in inner:
            t.join()

    peak, _ = _peak_concurrency(two_core_task, 4)
    assert peak <= max(1, usable_cpus() // 2)
    peak, _ = _peak_concurrency(two_core_task, 4, num_workers=2)
    assert peak == 2  # an explicit num_workers is obeyed


class _Loads:
    """Counts chunks loaded and not merged yet, and the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0
        self.most = 0

    def load(self, i: int) -> int:
        time.sleep(0.005)
        with self.lock:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
        return i

    def merge(self, acc: int, chunk: int) -> int:
        time.sleep(0.03)  # merging is slower than loading
        with self.lock:
            self.waiting -= 1
        return acc + chunk


def test_a_fold_on_threads_loads_only_one_chunk_ahead() -> None:
    loads = _Loads()
    chunks = [delayed(loads.load)(i) for i in range(12)]
    acc = chunks[0]
    for chunk in chunks[1:]:
        acc = delayed(loads.merge)(acc, chunk)
    assert acc.compute(scheduler="threads", num_workers=2) == sum(range(12))
    # the chunk being merged, the next one, and at the start (before a second
    # thread joins) the first one: without holding loads back, the second
    # thread would load all twelve while the first merges
    assert loads.most <= 3


def test_a_gather_on_threads_still_loads_side_by_side() -> None:
    started: list[float] = []

    def load(i: int) -> int:
        started.append(time.perf_counter())
        time.sleep(0.05)
        return i

    total = delayed(sum)([delayed(load)(i) for i in range(8)])
    start = time.perf_counter()
    assert total.compute(scheduler="threads", num_workers=4) == 28
    assert time.perf_counter() - start < 8 * 0.05  # never one load at a time


class _Chunk:
    """A loaded chunk: counted in its ``_Chunks`` while alive."""

    def __init__(self, chunks: _Chunks) -> None:
        self.chunks = chunks
        with chunks.lock:
            chunks.alive += 1
            chunks.most = max(chunks.most, chunks.alive)

    def __del__(self) -> None:
        with self.chunks.lock:
            self.chunks.alive -= 1


class _Chunks:
    """Counts chunks alive, and the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.alive = 0
        self.most = 0

    def make(self, i: int) -> _Chunk:
        time.sleep(0.003)  # long enough for a second thread to join in
        return _Chunk(self)


def _use(a: Any, b: Any) -> int:
    time.sleep(0.003)
    return 0


def _start() -> int:
    return 0


@pytest.mark.parametrize("computed_start", [False, True], ids=["literal start", "computed start"])
@pytest.mark.parametrize("acc_first", [False, True], ids=["use(make, acc)", "use(acc, make)"])
def test_a_fold_on_two_threads_keeps_at_most_four_chunks_alive(
    acc_first: bool, computed_start: bool
) -> None:
    chunks = _Chunks()
    acc = delayed(_start)() if computed_start else delayed(0)
    for i in range(50):
        chunk = delayed(chunks.make)(i)
        acc = delayed(_use)(acc, chunk) if acc_first else delayed(_use)(chunk, acc)
    acc.compute(scheduler="threads", num_workers=2)
    # not all 50: chunks are made in the order they are used, and a thread
    # that could only make chunks ahead waits while the other merges
    assert chunks.most <= 4, chunks.most
