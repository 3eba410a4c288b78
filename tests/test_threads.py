"""The threads backend: parallelism, first-failure stop, nesting, Ctrl-C, lifetimes.

Nothing here bounds how long a run takes: the machine may be slow or busy.
Tasks note when (``time.perf_counter()``) and on which thread they ran, and
the tests check what those notes show: tasks ran side by side when their
intervals overlap, and "at most N at once" is the most intervals open at one
moment, counted exactly from the notes. Where a test needs tasks to meet (N
of them running at once), they wait for each other, with :data:`PATIENCE`
only as the time a broken run is waited for. "Does not wait for" is shown
with events: the task that would be waited for is held until after the
compute returned.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from remote_helpers import wait_for

from tarry import compute, delayed
from tarry._platform import PORTABLE
from tarry._schedule.threads import WorkerPool, default_pool, shutdown_default_pool

#: How long a task waits for others, or a test for a thread to end: only a
#: broken run ever waits this long, it bounds nothing a working run does
PATIENCE = 10.0

#: why tests of tasks that compute do not run in portable mode
_STARVED = (
    "portable mode measures CPU time and the GIL: on a machine so busy that threads which "
    "compute get a tenth of a core, they look like threads that wait (see "
    "tarry._schedule.demand, and its tests below)"
)


@dataclass(frozen=True)
class Ran:
    """One task's run, noted inside the task: ``perf_counter`` at start and end, and its thread."""

    start: float
    end: float
    thread: int


def overlap(a: Ran, b: Ran) -> bool:
    """The two tasks ran at the same time: their [start, end] intervals overlap."""
    return a.start < b.end and b.start < a.end


def most_at_once(runs: Iterable[Ran]) -> int:
    """The most tasks running at one moment, counted exactly from their intervals.

    >>> most_at_once([Ran(0, 2, 1), Ran(1, 3, 2), Ran(2, 4, 1)])
    2
    """
    edges = sorted([(r.start, 1) for r in runs] + [(r.end, -1) for r in runs])
    most = running = 0
    for _, step in edges:  # at one moment, an end sorts before a start
        running += step
        most = max(most, running)
    return most


class Crowd:
    """Tasks that each wait until ``size`` of them run at once, then do ``then()``.

    A task blocks (as in a sleep) until ``size`` tasks are running at the same
    moment, or :data:`PATIENCE` has passed since the crowd was made; every
    task notes a :class:`Ran` in ``runs``. A scheduler that can run ``size``
    tasks at once lets them meet however slow the machine is; one that cannot
    shows in ``most_at_once(runs) < size`` once the patience is spent.
    """

    def __init__(self, size: int, then: Callable[[], object] = lambda: None) -> None:
        self.size = size
        self.then = then
        self.deadline = time.monotonic() + PATIENCE
        self.lock = threading.Lock()
        self.running = 0
        self.met = threading.Event()
        self.runs: list[Ran] = []

    def task(self, i: int) -> int:
        start = time.perf_counter()
        with self.lock:
            self.running += 1
            if self.running >= self.size:
                self.met.set()
        self.met.wait(max(0.0, self.deadline - time.monotonic()))
        self.then()
        with self.lock:
            self.running -= 1
            self.runs.append(Ran(start, time.perf_counter(), threading.get_ident()))
        return i

    def compute(self, count: int, **options: Any) -> list[Ran]:
        """Run ``count`` of these tasks on threads; the runs noted."""
        parts = [delayed(self.task)(i) for i in range(count)]
        assert compute(parts, scheduler="threads", **options) == (list(range(count)),)
        assert len(self.runs) == count
        return self.runs


def noted(work: Callable[[], object], count: int, **options: Any) -> list[Ran]:
    """Run ``count`` tasks doing ``work()`` on threads; each task's run, as noted in it."""
    runs: list[Ran] = []
    lock = threading.Lock()

    def task(i: int) -> int:
        start = time.perf_counter()
        work()
        with lock:
            runs.append(Ran(start, time.perf_counter(), threading.get_ident()))
        return i

    assert compute([delayed(task)(i) for i in range(count)], scheduler="threads", **options) == (
        list(range(count)),
    )
    return runs


def sleepy(x: int, seconds: float = 0.2) -> int:
    time.sleep(seconds)
    return x


def test_independent_sleeps_overlap() -> None:
    """Four independent tasks asleep at the same time, on four workers."""
    # each sleeps until all four are asleep: a run that sleeps them one after
    # another (4 x the sleep) never gets there
    runs = Crowd(4).compute(4, num_workers=4)
    assert most_at_once(runs) == 4
    assert len({r.thread for r in runs}) == 4


def test_num_workers_bounds_concurrency() -> None:
    """num_workers=3: three tasks run at once, never a fourth beside them."""
    # the tasks meet three at a time, then nap so that a fourth thread, if
    # one were let in, would run beside them
    runs = Crowd(3, lambda: time.sleep(0.02)).compute(20, num_workers=3)
    assert most_at_once(runs) == 3
    assert len({r.thread for r in runs}) <= 3


def test_first_failure_stops_new_tasks_and_raises_at_once() -> None:
    """A failing task ends the compute while a helper's task still runs; no task starts after it.

    The helper's task is held until the compute has raised: a compute that
    waited for running tasks would see it end first (after PATIENCE).
    """
    caller = threading.get_ident()
    helper_busy = threading.Event()
    release = threading.Event()
    lock = threading.Lock()
    started: list[tuple[int, float]] = []
    ended: list[int] = []
    failed_at: list[float] = []

    def slow(i: int) -> int:
        with lock:
            started.append((i, time.perf_counter()))
        if threading.get_ident() != caller:
            helper_busy.set()
            release.wait(PATIENCE)
        with lock:
            ended.append(i)
        return i

    def boom() -> int:
        # the caller starts with the first target, this one: it fails while
        # the helper runs a task
        helper_busy.wait(PATIENCE)
        failed_at.append(time.perf_counter())
        raise RuntimeError("boom")

    parts = [delayed(boom)()] + [delayed(slow)(i) for i in range(40)]
    try:
        with pytest.raises(RuntimeError, match="boom"):
            compute(parts, scheduler="threads", num_workers=2)
        assert helper_busy.is_set()  # the failure came while a helper ran a task
        assert not ended  # raised at once: the helper's task has not ended yet
    finally:
        release.set()
    assert wait_for(lambda: len(ended) == len(started), PATIENCE)
    time.sleep(0.1)  # room for a task wrongly started after the failure to show
    # of the two threads, the one that failed starts nothing after; the
    # other may start one task it took just before the failure
    (fail,) = failed_at
    assert len([i for i, start in started if start > fail]) <= 1, (started, fail)


def test_compute_inside_a_task_does_not_deadlock_or_multiply_pools() -> None:
    """Nested computes share the default pool, each level keeping to its num_workers."""
    inner_runs: list[Ran] = []
    outer_runs: list[Ran] = []
    lock = threading.Lock()

    def nap(j: int) -> int:
        start = time.perf_counter()
        time.sleep(0.01)
        with lock:
            inner_runs.append(Ran(start, time.perf_counter(), threading.get_ident()))
        return j

    def inner(i: int) -> int:
        start = time.perf_counter()
        parts = [delayed(nap)(j) for j in range(4)]
        total = int(sum(compute(parts, scheduler="threads", num_workers=2)[0])) + i
        with lock:
            outer_runs.append(Ran(start, time.perf_counter(), threading.get_ident()))
        return total

    outer = [delayed(inner)(i) for i in range(6)]
    pool = default_pool()
    result = compute(outer, scheduler="threads", num_workers=2)[0]
    assert result == [6 + i for i in range(6)]
    assert default_pool() is pool
    # two outer tasks at once, each running its inner compute on two threads
    # (its own and one helper): nesting neither deadlocks nor adds workers
    assert most_at_once(outer_runs) <= 2
    assert most_at_once(inner_runs) <= 4
    assert len(inner_runs) == 24


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
    """Ctrl-C while helpers run tasks: KeyboardInterrupt at once, and no task after it.

    The running tasks are held until the compute has raised: a compute that
    waited for them would see them end first (after PATIENCE).
    """
    both_busy = threading.Barrier(3)
    release = threading.Event()
    lock = threading.Lock()
    started: list[int] = []
    ended: list[int] = []

    def slow(i: int) -> int:
        with lock:
            started.append(i)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_busy.wait(PATIENCE)
        release.wait(PATIENCE)
        with lock:
            ended.append(i)
        return i

    def ctrl_c_once_both_run() -> None:
        both_busy.wait(PATIENCE)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    parts = [delayed(slow)(i) for i in range(20)]
    sender = threading.Thread(target=ctrl_c_once_both_run)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            compute(parts, scheduler="threads", num_workers=2)
        assert not ended  # returned at once: the running tasks have not ended yet
        count = len(started)
    finally:
        release.set()
        sender.join()
    assert wait_for(lambda: len(ended) == len(started), PATIENCE)
    time.sleep(0.1)  # room for a task wrongly started after Ctrl-C to show
    # the helpers finished the tasks they were running, and took no other
    assert len(started) == count == 2


def test_a_failure_reaches_the_caller_while_a_long_task_runs() -> None:
    """The first failure returns at once, whichever task came first: no wait for the other.

    Whichever task the run hands out first, the caller does not run it
    itself (it would then wait for it to end before raising).
    """
    release = threading.Event()
    hanging = threading.Event()
    ended: list[bool] = []

    def hang() -> int:
        hanging.set()
        release.wait(PATIENCE)
        ended.append(True)
        return 0

    def boom() -> int:
        hanging.wait(PATIENCE)
        raise ValueError("boom")

    for parts in ([delayed(hang)(), delayed(boom)()], [delayed(boom)(), delayed(hang)()]):
        release.clear()
        hanging.clear()
        try:
            with pytest.raises(ValueError, match="boom"):
                compute(parts, scheduler="threads", num_workers=2)
            assert not ended  # raised while the long task still ran
        finally:
            release.set()
        assert wait_for(lambda: ended == [True], PATIENCE)
        ended.clear()


def test_pool_threads_retire_when_idle_and_stop_on_shutdown() -> None:
    pool = WorkerPool(max_threads=4, idle_timeout=0.2)
    done = threading.Barrier(4)

    def meet() -> None:
        done.wait(PATIENCE)

    for _ in range(3):
        assert pool.submit(meet)
    done.wait(PATIENCE)
    assert pool.thread_count() == 3
    assert wait_for(lambda: pool.thread_count() == 0, PATIENCE)
    pool.shutdown()
    assert not pool.submit(lambda: None)  # refused: the caller runs its tasks itself


def test_a_full_pool_refuses_jobs_instead_of_queueing_them() -> None:
    """A job is never queued behind busy threads: a nested compute could hold them all."""
    pool = WorkerPool(max_threads=2)
    release = threading.Event()
    ran: list[int] = []

    def block() -> None:
        release.wait(PATIENCE)

    try:
        assert pool.submit(block)
        assert pool.submit(block)
        assert not pool.submit(lambda: ran.append(1))
    finally:
        release.set()
    # once a thread is free again, it takes the next job
    deadline = time.monotonic() + PATIENCE
    while not pool.submit(lambda: ran.append(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wait_for(lambda: ran == [2], PATIENCE)
    pool.shutdown()


def test_shutdown_default_pool_leaves_no_thread_behind() -> None:
    compute([delayed(sleepy)(i, 0.01) for i in range(8)], scheduler="threads", num_workers=2)
    shutdown_default_pool()
    assert not [t for t in threading.enumerate() if t.name.startswith("tarry-worker")]
    # and the next compute starts a fresh pool
    assert compute(delayed(sleepy)(1, 0.0) + 1, scheduler="threads") == (2,)


def test_single_task_runs_in_the_calling_thread() -> None:
    where = delayed(lambda: threading.current_thread().name)()
    assert where.compute(scheduler="threads") == threading.current_thread().name


def test_waiting_tasks_get_more_threads_by_default() -> None:
    """Without num_workers, tasks that wait all run at once, on more threads than CPUs."""
    import tarry
    from tarry._schedule.cpus import usable_cpus

    count = max(8, usable_cpus() + 2)  # more tasks than CPUs
    if count > tarry.config.get("max_threads"):
        pytest.skip(f"{usable_cpus()} CPUs: max_threads allows no more threads than CPUs")
    runs = Crowd(count).compute(count)
    assert most_at_once(runs) == count
    assert most_at_once(runs) > usable_cpus()


def test_waiting_tasks_get_more_threads_where_there_is_no_proc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on macOS and Windows: with no /proc to read, waiting tasks still all run at once.

    The recruiter measures CPU time then (tarry._schedule.demand); it used to
    take the threads as busy, and never grow, where /proc was missing.
    """
    import os

    import tarry
    from tarry._schedule.cpus import usable_cpus

    count = max(8, usable_cpus() + 2)
    if count > tarry.config.get("max_threads"):
        pytest.skip(f"{usable_cpus()} CPUs: max_threads allows no more threads than CPUs")
    # the recruiter of an earlier run reads as it did when it started
    assert wait_for(
        lambda: not [t for t in threading.enumerate() if t.name == "tarry-recruiter"], PATIENCE
    )
    listdir, isdir = os.listdir, os.path.isdir

    def no_proc(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def refused(path: Any) -> Any:
            if str(path).startswith("/proc"):
                raise FileNotFoundError(path)
            return call(path)

        return refused

    monkeypatch.setattr(os, "listdir", no_proc(listdir))
    monkeypatch.setattr(
        os.path, "isdir", lambda path: not str(path).startswith("/proc") and isdir(path)
    )
    runs = Crowd(count).compute(count)
    assert most_at_once(runs) == count


def test_growth_respects_max_threads_and_explicit_num_workers() -> None:
    """Growth stops at max_threads, and does not happen with an explicit num_workers."""
    import tarry

    # they meet at the limit, then nap so that threads past it would show
    with tarry.config.set(max_threads=4):
        runs = Crowd(4, lambda: time.sleep(0.05)).compute(8)
    assert most_at_once(runs) == 4
    runs = Crowd(2, lambda: time.sleep(0.05)).compute(8, num_workers=2)
    assert most_at_once(runs) == 2


@pytest.mark.skipif(PORTABLE, reason=_STARVED)
def test_computing_tasks_do_not_get_more_threads() -> None:
    from tarry._schedule.cpus import usable_cpus

    def spin() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass

    runs = noted(spin, 16)
    assert most_at_once(runs) <= usable_cpus() + 1


def _demand(cpu: float, lateness: list[float]) -> float | None:
    """What the CPU-time measure says of a run that used ``cpu`` cores for 0.1 s, its
    recruiter waking ``lateness`` seconds late each time."""
    from tarry._schedule.demand import Demand

    demand = Demand(runnable=False)
    began = (0.0, 0.0)
    demand.readings.clear()
    demand.readings.extend([began, (0.1, 0.1 * cpu)])
    demand.wakes.extend((0.01 * (i + 1), late) for i, late in enumerate(lateness))
    return demand.since(began)


def test_the_cpu_time_measure_sees_a_thread_holding_the_gil_by_its_late_wake_ups() -> None:
    """The portable measure, on made-up readings: what the machine's load cannot sway."""
    from tarry._schedule.demand import MIN_WAKES

    on_time, late = 0.0001, 0.005  # the GIL's switch interval
    assert _demand(0.0, [on_time] * (MIN_WAKES - 1)) is None  # too early to say
    assert _demand(0.02, [on_time] * 8) == pytest.approx(0.02)  # tasks that wait
    assert _demand(0.5, [on_time] * 8) == pytest.approx(0.5)  # partly computing, GIL free
    # a thread computing in Python: at least a core, however little it gets
    assert _demand(0.3, [late, on_time, on_time] * 2 + [late, on_time]) == 1.0
    assert _demand(1.6, [late] * 8) == pytest.approx(1.6)  # more than a core: as measured
    # late wake-ups but no CPU time used: the machine's delays, not the GIL
    assert _demand(0.01, [late] * 8) == pytest.approx(0.01)


def test_grower_thread_ends_with_the_run() -> None:
    """The recruiter thread runs while tasks wait for threads, and ends with the run."""
    seen: list[bool] = []

    def look() -> None:
        seen.append(any(t.name == "tarry-recruiter" for t in threading.enumerate()))

    Crowd(8, look).compute(8)  # eight at once: threads were recruited
    assert any(seen)
    assert wait_for(
        lambda: not [t for t in threading.enumerate() if t.name == "tarry-recruiter"], PATIENCE
    )


@pytest.mark.skipif(PORTABLE, reason=_STARVED)
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

    runs = noted(two_core_task, 4)
    assert most_at_once(runs) <= max(1, usable_cpus() // 2)
    # an explicit num_workers is obeyed: two at once (they meet before burning)
    runs = Crowd(2, two_core_task).compute(4, num_workers=2)
    assert most_at_once(runs) == 2


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
    """Every load of a gather runs beside another: loads are not held back to one at a time."""
    lock = threading.Lock()
    began = threading.Condition(lock)
    starts = 0
    runs: list[Ran] = []
    deadline = time.monotonic() + PATIENCE

    def load(i: int) -> int:
        # wait until a load that started later is running too (the last one
        # has none to wait for): one load at a time never gets there
        nonlocal starts
        start = time.perf_counter()
        with began:
            starts += 1
            mine = starts
            began.notify_all()
            while mine < 8 and starts == mine and time.monotonic() < deadline:
                began.wait(max(0.0, deadline - time.monotonic()))
        with lock:
            runs.append(Ran(start, time.perf_counter(), threading.get_ident()))
        return i

    total = delayed(sum)([delayed(load)(i) for i in range(8)])
    assert total.compute(scheduler="threads", num_workers=4) == 28
    assert len(runs) == 8
    assert all(any(overlap(a, b) for b in runs if b is not a) for a in runs), runs


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

    def make_slow_first(self, i: int) -> _Chunk:
        time.sleep(0.1 if i == 0 else 0.003)
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


@pytest.mark.parametrize("acc_first", [False, True], ids=["use(make, acc)", "use(acc, make)"])
def test_a_fold_whose_first_chunk_loads_slowly_does_not_load_the_rest_ahead(
    acc_first: bool,
) -> None:
    # While the caller loads chunk 0, the next reader waits for the first
    # step, which waits for that load: a helper loading chunks 1, 2, ...
    # meanwhile would only make them wait (it made 27-29 of 50 before).
    chunks = _Chunks()
    acc: Any = delayed(0)
    for i in range(50):
        chunk = delayed(chunks.make_slow_first)(i)
        acc = delayed(_use)(acc, chunk) if acc_first else delayed(_use)(chunk, acc)
    acc.compute(scheduler="threads", num_workers=2)
    assert chunks.most <= 4, chunks.most


def _burn_noting(seconds: float) -> Ran:
    start = time.perf_counter()
    end = time.thread_time() + seconds
    while time.thread_time() < end:  # pure Python: holds the GIL
        pass
    return Ran(start, time.perf_counter(), threading.get_ident())


def test_a_helper_joins_gil_holding_tasks_even_among_many_idle_threads() -> None:
    # The recruiter used to read a /proc file per thread on every look, even
    # for runs that cannot grow past num_workers; with 60 threads and a task
    # holding the GIL, one look outlasted the whole run and no helper joined.
    release = threading.Event()
    idle = [threading.Thread(target=release.wait, daemon=True) for _ in range(60)]
    for thread in idle:
        thread.start()
    try:
        (runs,) = compute([delayed(_burn_noting)(0.1) for _ in range(6)], scheduler="threads",
                          num_workers=2)  # fmt: skip
    finally:
        release.set()
    assert most_at_once(runs) == 2


@pytest.mark.parametrize("count", [1, 3], ids=["one task", "three tasks"])
def test_a_timeout_returns_at_once_and_starts_nothing_after(count: int) -> None:
    """At the deadline the compute raises, naming the running tasks, which it leaves behind.

    With a timeout even a graph of one task runs on a helper: the caller
    must be free to give up. The tasks are held until after the compute
    raised: one that waited for them would see them end first.
    """
    release = threading.Event()
    lock = threading.Lock()
    started: list[int] = []
    ended: list[int] = []

    def hold(i: int) -> int:
        with lock:
            started.append(i)
        release.wait(PATIENCE)
        with lock:
            ended.append(i)
        return i

    parts = [delayed(hold)(i, dask_key_name=f"hold-{i}") for i in range(count)]
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.2 s: running at the deadline: ") as info:
            compute(parts, scheduler="threads", num_workers=1, timeout=0.2)
        assert not ended
    finally:
        release.set()
    assert "'hold-0' (hold); left to run on" in str(info.value)
    assert str(info.value).endswith(f"; {count - 1} task{'' if count == 2 else 's'} not started")
    assert wait_for(lambda: ended == [0], PATIENCE)
    time.sleep(0.1)  # room for a task wrongly started after the deadline to show
    assert started == [0]


def test_a_timeout_from_the_config() -> None:
    import tarry

    release = threading.Event()
    try:
        with tarry.config.set(timeout=0.1), pytest.raises(TimeoutError):
            compute(delayed(release.wait)(PATIENCE), scheduler="threads")
    finally:
        release.set()
    assert compute(delayed(abs)(-1), delayed(abs)(-2), scheduler="threads", timeout=60) == (1, 2)
