"""Any concurrent.futures.Executor as scheduler, and the same results on every scheduler.

The graphs of ``test_same_results_as_sync`` run on every scheduler of
``SCHEDULER_PARAMS`` (sync, threads, processes, ray, dask) and on a
ThreadPoolExecutor, and must give what ``"sync"`` gives.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

import tarry
from tarry import compute, delayed, persist
from tarry._graph import Task
from tarry._schedule import check_scheduler, get_backend
from tarry._schedule.core import Run
from tarry._schedule.futures import run_executor


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def scaled(x: int, *, scale: int = 1, offset: int = 0) -> int:
    return x * scale + offset


def total(items: Any) -> int:
    return sum(items)


def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


@dataclasses.dataclass
class Pair:
    left: Any
    right: Any


def _lambdas_and_closures() -> Any:
    k = 3
    add_k = lambda x: x + k  # noqa: E731 - a lambda is the point
    return delayed(sum)([delayed(add_k)(i) for i in range(6)])


def _containers() -> Any:
    a, b = delayed(inc)(1), delayed(inc)(2)
    return delayed(lambda d, t, s, p: d["x"] + t[1] + sum(s) + p.left)(
        {"x": a, "y": 0}, (0, b), {a, b}, Pair(a, b)
    )


def _keywords() -> Any:
    return delayed(scaled)(delayed(inc)(4), scale=delayed(inc)(1), offset=10)


def _pure_keys() -> Any:
    one, again = delayed(add, pure=True)(2, 3), delayed(add, pure=True)(2, 3)
    assert one.key == again.key
    return [one, again, one * 2]


def _chain_and_tree() -> Any:
    value: Any = delayed(0)
    for _ in range(200):
        value = delayed(inc)(value)
    leaves = [delayed(inc)(i) for i in range(64)]
    while len(leaves) > 1:
        leaves = [delayed(add)(leaves[i], leaves[i + 1]) for i in range(0, len(leaves), 2)]
    return value, leaves[0], delayed(total)([value, leaves[0]])


def _methods_and_operators() -> Any:
    text = delayed("a,b,c")
    parts = text.split(",")
    return parts[1].upper() + "!", (delayed(7) // 2) ** 2, -delayed(inc)(3)


GRAPHS: dict[str, Callable[[], Any]] = {
    "lambdas-closures": _lambdas_and_closures,
    "containers": _containers,
    "keywords": _keywords,
    "pure-keys": _pure_keys,
    "chain-and-tree": _chain_and_tree,
    "methods-operators": _methods_and_operators,
}


@pytest.fixture
def thread_pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


@pytest.mark.parametrize("graph", list(GRAPHS), ids=list(GRAPHS))
def test_same_results_as_sync(scheduler: str, graph: str) -> None:
    built = GRAPHS[graph]()
    assert compute(built, scheduler=scheduler) == compute(built, scheduler="sync")


@pytest.mark.parametrize("graph", list(GRAPHS), ids=list(GRAPHS))
def test_same_results_on_an_executor(thread_pool: ThreadPoolExecutor, graph: str) -> None:
    built = GRAPHS[graph]()
    assert compute(built, scheduler=thread_pool) == compute(built, scheduler="sync")


def test_persist_then_compute(scheduler: str) -> None:
    x = delayed(inc)(delayed(inc)(1))
    (kept,) = persist(x, scheduler=scheduler)
    assert kept.key == x.key
    assert len(kept.graph) == 1
    assert compute(kept + 1, [kept], scheduler=scheduler) == (4, [3])


def test_executor_is_used_and_not_shut_down(thread_pool: ThreadPoolExecutor) -> None:
    names = compute([delayed(lambda: threading.current_thread().name)() for _ in range(4)],
                    scheduler=thread_pool)[0]  # fmt: skip
    assert all(name.startswith("ThreadPoolExecutor") for name in names)
    assert thread_pool.submit(inc, 1).result() == 2


def test_executor_from_config(thread_pool: ThreadPoolExecutor) -> None:
    with tarry.config.set(scheduler=thread_pool):
        assert tarry.config.get("scheduler") is thread_pool
        assert delayed(inc)(1).compute() == 2


def test_a_process_pool_executor_gets_slim_tasks() -> None:
    # The standard pool pickles with plain pickle: module-level functions
    # only, and a task must not drag the chain above it along.
    value: Any = delayed(0)
    for _ in range(300):
        value = delayed(inc)(value)
    with ProcessPoolExecutor(1) as pool:
        assert compute(value, scheduler=pool) == (300,)


def test_scheduler_check_names_executors() -> None:
    with pytest.raises(ValueError, match=r"unknown scheduler 'thread'.*processes.*Executor"):
        check_scheduler("thread")
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        check_scheduler(3)
    with ThreadPoolExecutor(1) as pool:
        assert check_scheduler(pool) is pool
        assert callable(get_backend(pool))


def test_executor_error_keeps_type_user_frame_and_names_the_task(
    thread_pool: ThreadPoolExecutor,
) -> None:
    bad = delayed(fail)(delayed(inc)(1), dask_key_name="the-bad-task")
    with pytest.raises(ValueError, match="bad input 2") as info:
        compute(bad, scheduler=thread_pool)
    assert any("the-bad-task" in note for note in info.value.__notes__)
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert names[-1] == "fail"


def test_executor_records_worker_timings(thread_pool: ThreadPoolExecutor) -> None:
    one = Task("one", inc, (1,), None, (), "inc")
    two = Task("two", inc, (one,), None, (one,), "inc")
    run = Run([two], timed=True)
    assert run.events is not None
    assert run_executor(run, executor=thread_pool) is None
    assert run.results() == {"two": 3}
    assert [e.key for e in run.events] == ["one", "two"]
    assert all("ThreadPoolExecutor" in e.worker and e.end >= e.start for e in run.events)


def test_ctrl_c_cancels_futures_not_started() -> None:
    started: list[int] = []
    finished: list[int] = []
    running = threading.Event()
    release = threading.Event()

    def nap(i: int) -> int:
        started.append(i)
        running.set()
        release.wait(30)  # generous: the test releases it at once
        finished.append(i)
        return i

    def interrupt_once_one_runs() -> None:
        running.wait(30)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_once_one_runs, daemon=True)
    with ThreadPoolExecutor(1) as pool:
        # its thread started now, so Ctrl-C cannot come while compute starts it
        # (a thread started but not yet registered is not joined when the pool exits)
        pool.submit(int).result()
        sender.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                compute([delayed(nap)(i) for i in range(8)], scheduler=pool)
            assert finished == []  # did not wait for the running task
        finally:
            release.set()
            sender.join()
    # the running one, perhaps one submitted as Ctrl-C came: the rest never ran
    assert 1 <= len(started) <= 2
    assert finished == started


def test_a_timeout_cancels_what_has_not_started_and_names_what_runs() -> None:
    """At the deadline: TimeoutError naming the running task, the rest cancelled.

    The running one cannot be stopped: it is held until the compute raised.
    """
    release = threading.Event()
    started: list[int] = []

    def hold(i: int) -> int:
        started.append(i)
        release.wait(30)  # generous: released once the compute raised
        return i

    with ThreadPoolExecutor(1) as pool:
        pool.submit(int).result()  # its thread started: the first task starts at once
        parts = [delayed(hold)(i, dask_key_name=f"hold-{i}") for i in range(4)]
        try:
            with pytest.raises(TimeoutError) as info:
                compute(parts, scheduler=pool, timeout=0.2)
            assert not release.is_set()
        finally:
            release.set()
    assert "running at the deadline: 'hold-0' (hold); left to run on" in str(info.value)
    assert str(info.value).endswith("; 3 tasks not started")
    assert started == [0]


def test_a_compute_nested_in_a_task_runs_in_place_on_the_same_executor(
    thread_pool: ThreadPoolExecutor,
) -> None:
    """The inner tasks run in the outer task's thread: queued behind it, they could deadlock."""

    def where() -> str:
        return threading.current_thread().name

    def outer() -> tuple[str, list[str]]:
        inner = compute([delayed(where)() for _ in range(3)], scheduler=thread_pool)[0]
        return where(), inner

    here, inner = compute(delayed(outer)(), scheduler=thread_pool)[0]
    assert inner == [here] * 3
    assert here.startswith("ThreadPoolExecutor")
