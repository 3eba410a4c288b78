"""Any concurrent.futures.Executor as scheduler, and what all out-of-process backends share.

The graphs of ``test_same_results_as_sync`` run on every scheduler of
``SCHEDULER_PARAMS`` (sync, threads, processes, ray, dask) and on a
ThreadPoolExecutor, and must give what ``"sync"`` gives.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

import tarry
from tarry import compute, delayed, persist
from tarry._graph import Pack, Task, call
from tarry._schedule import check_scheduler, get_backend
from tarry._schedule.core import Run
from tarry._schedule.executor import (
    RemoteError,
    UnpicklableTaskError,
    dumps,
    pack_error,
    run_executor,
    scan_payload,
    slim,
    unpack_error,
)


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
    run = Run([two])
    run.events = []
    assert run_executor(run, executor=thread_pool) is None
    assert run.results() == {"two": 3}
    assert [e.key for e in run.events] == ["one", "two"]
    assert all("ThreadPoolExecutor" in e.worker and e.end >= e.start for e in run.events)


def test_ctrl_c_cancels_futures_not_started() -> None:
    started: list[int] = []

    def nap(i: int) -> int:
        started.append(i)
        time.sleep(0.5)
        return i

    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    with ThreadPoolExecutor(1) as pool:
        timer.start()
        began = time.perf_counter()
        try:
            with pytest.raises(KeyboardInterrupt):
                compute([delayed(nap)(i) for i in range(8)], scheduler=pool)
        finally:
            timer.cancel()
        assert time.perf_counter() - began < 0.9  # did not wait for the running task
    assert len(started) <= 2  # the running one, perhaps the next: the rest never ran


# -- what travels ---------------------------------------------------------------


def test_slim_task_does_not_carry_the_graph_above_it() -> None:
    value: Any = delayed(0)
    sizes = []
    for n in range(1, 401):
        value = delayed(inc)(value)
        if n in (10, 400):
            sizes.append(len(pickle.dumps(slim(value._task, {}))))
    assert sizes[0] == sizes[1]


def test_slim_keeps_containers_and_keywords() -> None:
    a, b = Task.literal("a", 1), Task.literal("b", 2)
    task = Task("t", scaled, (Pack(total, [a, b]),), {"scale": b}, (a, b), "scaled", True)
    small = pickle.loads(pickle.dumps(slim(task, {})))
    assert [d.key for d in small.deps] == ["a", "b"]
    assert call(small, {"a": 1, "b": 2}) == call(task, {"a": 1, "b": 2}) == 6


def _unpicklable_message(task: Task) -> str:
    with pytest.raises(UnpicklableTaskError) as info:
        scan_payload([task])
    assert info.value.task is task
    return str(info.value)


def test_scan_names_task_and_innermost_object() -> None:
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return x

    message = _unpicklable_message(Task("f-1", uses_lock, (1,), None, (), "uses_lock"))
    assert "task 'f-1' (uses_lock)" in message
    assert "closure variable 'lock'" in message
    assert "_thread.lock" in message

    message = _unpicklable_message(Task("g-1", inc, ([1, lock],), None, (), "inc"))
    assert "item 1 of argument 0" in message

    message = _unpicklable_message(Task("h-1", scaled, (1,), {"scale": lock}, (), "s", True))
    assert "keyword argument 'scale'" in message

    gen = (i for i in range(3))
    literal = Task.literal("gen", gen)
    message = _unpicklable_message(Task("k-1", list, (literal,), None, (literal,), "list"))
    assert "the value of its input 'gen'" in message
    assert "generator" in message


def test_scan_counts_shared_objects_once() -> None:
    big = list(range(50_000))
    tasks = [Task(f"t{i}", total, (big,), None, (), "total") for i in range(5)]
    payload = scan_payload(tasks)
    assert payload.uses[id(big)] == 5
    assert payload.sizes[id(big)] > 100_000
    assert payload.objects[id(big)] is big


class NeedsTwoError(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")
        self.a, self.b = a, b


class HoldsLockError(Exception):
    def __init__(self) -> None:
        super().__init__("holding a lock")
        self.lock = threading.Lock()


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_error_round_trip_keeps_type_cause_and_traceback() -> None:
    try:
        try:
            empty: dict[str, int] = {}
            empty["missing"]
        except KeyError as inner:
            raise NeedsTwoError(1, 2) from inner
    except NeedsTwoError as exc:
        back = unpack_error(pack_error(exc, "k"))
    assert isinstance(back, NeedsTwoError)
    assert (back.a, back.b) == (1, 2)
    assert str(back) == "1 and 2"
    assert isinstance(back.__cause__, KeyError)
    text = "".join(traceback.format_exception(back))
    assert "raise NeedsTwoError(1, 2) from inner" in text


def test_unpicklable_error_comes_back_as_remote_error_with_text() -> None:
    back = unpack_error(pack_error(_raise(HoldsLockError()), "k"))
    assert type(back) is RemoteError
    assert str(back) == "test_executor.HoldsLockError: holding a lock"
    assert any("raise exc" in note for note in back.__notes__)


def test_slim_plain_task_keeps_literal_arguments_and_one_stub_per_key() -> None:
    a, b = Task.literal("a", 1), Task.literal("b", 2)
    stubs: dict[str, Task] = {}
    both = (a, b)
    shared = Task("s", max, both, None, both, "max")  # as built for max(x, y): one tuple
    mixed = Task("m", max, (b, 7, a), None, (b, a), "max")
    slim_shared, slim_mixed = slim(shared, stubs), slim(mixed, stubs)
    assert slim_shared.args is slim_shared.deps
    assert slim_mixed.args[1] == 7
    assert slim_mixed.args[0] is slim_shared.args[1] is stubs["b"]
    back = pickle.loads(dumps([slim_shared, slim_mixed]))
    assert back[1].args[0] is back[0].args[1]  # stubs stay shared after pickling
    assert call(back[1], {"a": 1, "b": 2}) == 7
    assert [d.key for d in back[1].deps] == ["b", "a"]


def test_a_task_pickles_with_every_field() -> None:
    a = Task.literal("a", 1)
    task = Task("t", scaled, (Pack(total, [a]),), {"scale": 3}, (a,), "scaled", True)
    back = pickle.loads(pickle.dumps(task))
    fields = ("key", "args", "kwargs", "name", "deep")
    assert [repr(getattr(back, f)) for f in fields] == [repr(getattr(task, f)) for f in fields]
    assert back.func is scaled
    assert call(back, {"a": 2}) == 6


class _Registered:
    def __init__(self, note: str) -> None:
        self.note = note


def _rebuild_registered(note: str) -> _Registered:
    return _Registered(note + " (via copyreg)")


def test_copyreg_registrations_made_after_first_use_count() -> None:
    import copyreg

    assert pickle.loads(dumps(_Registered("a"))).note == "a"  # the pickler exists now
    copyreg.pickle(_Registered, lambda obj: (_rebuild_registered, (obj.note,)))
    try:
        assert pickle.loads(dumps(_Registered("b"))).note == "b (via copyreg)"
    finally:
        del copyreg.dispatch_table[_Registered]
    assert pickle.loads(dumps(_Registered("c"))).note == "c"


def test_the_fast_object_list_matches_the_named_parts() -> None:
    # scan_payload walks _objects; _parts names the same objects for messages
    from tarry._schedule.executor import _objects, _parts

    lit = Task.literal("lit", [1, 2])
    computed = Task("c", inc, (1,), None, (), "inc")
    both = (lit, computed)
    tasks = [
        Task("plain", max, (lit, "s", computed, 3.5), None, both, "max"),
        Task("shared", max, both, None, both, "max"),
        Task("deep", scaled, (Pack(total, [lit, [4]]),), {"scale": computed}, both, "scaled", True),
    ]
    for task in tasks:
        assert [id(o) for o in _objects(task)] == [id(o) for _, o in _parts(task)]
