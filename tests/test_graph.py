"""The graph: one task per key, and a clear error when two different tasks share one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tarry import compute, delayed, persist
from tarry._graph import KeyClashError, Task, TaskGraph, walk


def one() -> int:
    return 1


def two() -> int:
    return 2


def add(x: int, y: int) -> int:
    return x + y


def load(path: str) -> str:
    return path.upper()


CLASHES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "dask_key_name": lambda: (delayed(one)(dask_key_name="k"), delayed(two)(dask_key_name="k")),
    "options(key=)": lambda: (delayed(one).options(key="k")(), delayed(two).options(key="k")()),
    "delayed(value, name=)": lambda: (delayed(1, name="k"), delayed(2, name="k")),
    "persisted and new": lambda: (
        persist(delayed(one).options(key="k")(), scheduler="sync")[0],
        delayed(two).options(key="k")(),
    ),
}


@pytest.mark.parametrize("make", CLASHES.values(), ids=list(CLASHES))
def test_two_different_tasks_under_one_key_raise_naming_the_key(
    make: Callable[[], tuple[Any, Any]],
) -> None:
    a, b = make()
    with pytest.raises(KeyClashError, match="two different tasks have the key 'k'"):
        compute(a, b, scheduler="sync")
    with pytest.raises(KeyClashError, match="key 'k'"):
        delayed(add)(a, b)
    with pytest.raises(KeyClashError, match="key 'k'"):
        compute([a], {"other": b}, scheduler="sync")


def test_clash_error_names_both_functions() -> None:
    a, b = CLASHES["dask_key_name"]()
    with pytest.raises(KeyClashError) as info:
        compute(a, b, scheduler="sync")
    message = str(info.value)
    assert "test_graph.one" in message
    assert "test_graph.two" in message
    assert "dask_key_name=" in message  # says how to fix it


def test_clash_deep_in_two_graphs_is_found_when_they_meet() -> None:
    left = delayed(add)(delayed(one).options(key="k")(), 10)
    right = delayed(add)(delayed(two).options(key="k")(), 20)
    with pytest.raises(KeyClashError, match="key 'k'"):
        compute(left, right, scheduler="sync")
    with pytest.raises(KeyClashError, match="key 'k'"):
        TaskGraph([delayed(add)(left, right)._task])


def test_the_same_call_built_twice_under_one_explicit_key_stays_one_task() -> None:
    calls: list[str] = []

    def record(path: str) -> str:
        calls.append(path)
        return path.upper()

    lazy = delayed(record)
    first = [lazy(p, dask_key_name=f"load-{p}") for p in "ab"]
    again = [lazy(p, dask_key_name=f"load-{p}") for p in "ab"]
    assert compute(first, again, scheduler="sync") == (["A", "B"], ["A", "B"])
    assert sorted(calls) == ["a", "b"]


def test_the_same_pure_task_built_twice_stays_one_task() -> None:
    np = pytest.importorskip("numpy")
    total = delayed(np.sum, pure=True)
    a, b = total(np.ones(3)), total(np.ones(3))  # equal content, different objects
    assert a.key == b.key
    assert len(delayed(add)(a, b).graph) == 2


def test_a_persisted_value_and_the_task_it_came_from_stay_one_task() -> None:
    x = delayed(one)()
    (kept,) = persist(x, scheduler="sync")
    assert kept.key == x.key
    assert compute(x, kept, delayed(add)(x, kept), scheduler="sync") == (1, 1, 2)


def test_walk_yields_equal_copies_of_a_task_once() -> None:
    a = Task.literal("a", 1)
    copies = [Task.literal("a", 1) for _ in range(3)]
    top = Task("top", lambda *xs: sum(xs), (a, *copies, *copies), None, (a, *copies), "sum")
    seen = [t.key for t in walk([top])]
    assert seen == ["a", "top"]


def test_pure_keys_tell_containers_of_one_name_apart() -> None:
    from collections import namedtuple

    first = namedtuple("P", "u")  # type: ignore[name-match]  # one name, two classes
    second = namedtuple("P", "v")  # type: ignore[name-match]
    x = delayed(one)()
    same = delayed(lambda p: p, pure=True)
    a, b = same(first(x)), same(second(x))
    assert a.key != b.key
    assert compute(a, b, scheduler="sync") == (first(1), second(1))
