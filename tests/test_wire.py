"""What travels to a worker and back: slim tasks, the early pickling check, error packets."""

from __future__ import annotations

import pickle
import threading
import traceback
from typing import Any
from unittest import mock

import pytest
from remote_helpers import inc

from tarry import delayed
from tarry._graph import Pack, Task, call
from tarry._schedule.errors import (
    RemoteError,
    UnpicklableResultError,
    UnpicklableTaskError,
    receive,
    send,
)
from tarry._schedule.pickling import dumps
from tarry._schedule.wire import (
    _objects,
    _parts,
    find_unloadable,
    pack_error,
    result_error,
    scan_payload,
    slim,
    unloadable_error,
    unpack_error,
)


def scaled(x: int, *, scale: int = 1, offset: int = 0) -> int:
    return x * scale + offset


def total(items: Any) -> int:
    return sum(items)


def test_slim_task_does_not_carry_the_graph_above_it() -> None:
    value: Any = delayed(0)
    sizes = []
    for n in range(1, 401):
        value = delayed(inc)(value)
        if n in (10, 400):
            # less the keys' own lengths, which grow with the key counter
            keys = len(value.key) + len(value._task.deps[0].key)
            sizes.append(len(pickle.dumps(slim(value._task, {}))) - keys)
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
    first, why = str(back).split("\n")
    assert first == "task 'k' raised test_wire.HoldsLockError: holding a lock"
    assert "cannot pickle '_thread.lock' object" in why
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


def test_the_fast_object_list_matches_the_named_parts() -> None:
    # scan_payload walks _objects; _parts names the same objects for messages
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


# -- what pickles but does not unpickle, and results that cannot travel ----------------


def _refuse() -> None:
    raise ValueError("not here")


class Unloadable:
    def __reduce__(self) -> Any:
        return (_refuse, ())


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("never")


def test_find_unloadable_names_the_recorded_call_inside_a_mock() -> None:
    recorder = mock.MagicMock()
    recorder.store.put(1)
    fine = Task("fine", total, ([1, 2],), None, (), "total")
    task = Task("m-1", scaled, (1,), {"scale": recorder}, (), "scaled", True)
    found = find_unloadable([fine, task])
    assert found is not None
    assert found.task is task
    assert str(found).startswith(
        "task 'm-1' (scaled) cannot be sent to another process: attribute '_mock_call_args' "
        "of item 'put' of attribute '_mock_children' of item 'store' of attribute "
        "'_mock_children' of keyword argument 'scale' pickles, but cannot be unpickled: "
        "call(1) (RecursionError: maximum recursion depth exceeded"
    )
    assert str(found).endswith(
        "use objects that pickle, or run this graph with scheduler='threads'"
    )
    assert find_unloadable([fine]) is None


def test_unloadable_error_names_the_first_task_when_everything_loads_here() -> None:
    tasks = [Task.literal("lit", 1), Task("t-1", total, ([1],), None, (), "total")]
    err = unloadable_error(tasks, ModuleNotFoundError("No module named 'elsewhere'"))
    assert err.task is tasks[1]
    assert str(err).startswith(
        "task 't-1' (total) could not start in its worker process, which could not load it "
        "or its inputs (ModuleNotFoundError: No module named 'elsewhere')"
    )


def test_result_error_says_which_way_the_result_did_not_travel() -> None:
    task = Task("r-1", total, (), None, (), "total")
    there = result_error(task, TypeError("never"))
    here = result_error(task, ValueError("not here"), here=True)
    assert isinstance(there, TypeError)
    assert there.task is task
    assert "the result of task 'r-1' (total) cannot be pickled to send it back" in str(there)
    assert "(TypeError: never)" in str(there)
    assert "the result of task 'r-1' (total) came back from the worker process, but " in str(here)
    assert "cannot be unpickled here (ValueError: not here)" in str(here)


def test_send_and_receive_carry_a_value_an_error_or_what_could_not_travel() -> None:
    task = Task("s-1", total, (), None, (), "total")
    for sent in [send(task, lambda: 5), send(task, lambda: 1 // 0), send(task, Unpicklable),
                 send(task, Unloadable)]:  # fmt: skip
        back = pickle.loads(pickle.dumps(sent))  # whatever happened, it travels
        assert back == sent
    assert receive(send(task, lambda: 5), task) == (5, None)
    _, err = receive(send(task, lambda: 1 // 0), task)
    assert type(err) is ZeroDivisionError
    _, err = receive(send(task, Unpicklable), task)
    assert type(err) is UnpicklableResultError
    assert "cannot be pickled" in str(err)
    _, err = receive(send(task, Unloadable), task)
    assert type(err) is UnpicklableResultError
    assert "cannot be unpickled here (ValueError: not here)" in str(err)
