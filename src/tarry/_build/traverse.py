"""Argument traversal: find lazy values inside ordinary Python containers.

:func:`pack` turns an argument into what a :class:`~tarry._graph.Task`
stores: lazy values become their tasks, containers holding them become
:class:`~tarry._graph.Pack` recipes, everything else stays the same object
(no copy of large data). :func:`tarry._graph.resolve` is the inverse at run
time. The same pair serves task arguments and ``compute()``'s arguments, so
what a function may receive and what ``compute`` may return is one rule.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import types
from collections.abc import Callable
from functools import partial
from typing import Any

from tarry._graph import Lazy, Pack, Quote, Task, check_same

__all__ = ["ATOMIC", "add_dep", "pack", "shallow"]

ATOMIC = frozenset({int, float, str, bytes, bool, type(None), complex, range, type(Ellipsis)})
_EMPTY_ITERABLES: tuple[Any, ...] = ([], (), set(), {}, {}.values(), {}.items(), range(0), "")
# Iterators that are safe to exhaust while building: they hold no external
# resource (a file object is an iterator too, and must not be read here).
_ONE_SHOT = frozenset(
    {types.GeneratorType, map, filter, zip, enumerate, reversed}
    | {type(iter(x)) for x in _EMPTY_ITERABLES}
    | {
        itertools.chain,
        itertools.islice,
        itertools.product,
        itertools.permutations,
        itertools.combinations,
        itertools.starmap,
        itertools.zip_longest,
        itertools.accumulate,
        itertools.compress,
        itertools.takewhile,
        itertools.dropwhile,
        itertools.filterfalse,
        itertools.pairwise,
    }
)


def pack(obj: Any, deps: dict[str, Task]) -> Any:
    """Return ``obj`` as a task stores it, adding the tasks it needs to ``deps``.

    Examples
    --------
    >>> deps: dict[str, Task] = {}
    >>> pack([1, (2, 3)], deps), deps
    ([1, (2, 3)], {})
    >>> t = Task.literal("t", 5)
    >>> pack(t, deps)  # a bare Task given as data is quoted, never run
    Quote(Task('t', value=5))
    """
    kind = type(obj)
    if kind in ATOMIC:
        return obj
    if isinstance(obj, Lazy):
        # add_dep inlined: this is the hot path of packing a list of lazy values
        task = obj._task
        first = deps.setdefault(task.key, task)
        if first is not task:
            check_same(first, task)
        return task
    if kind is list:
        return _pack_items(obj, obj, list, "list", deps)
    if kind is tuple:
        return _pack_items(obj, obj, tuple, "tuple", deps)
    if kind is dict:
        flat = [x for pair in obj.items() for x in pair]
        return _pack_items(obj, flat, _build_dict, "dict", deps)
    if kind is set or kind is frozenset:
        return _pack_items(obj, list(obj), kind, kind.__name__, deps)
    if kind is slice:
        return _pack_items(obj, [obj.start, obj.stop, obj.step], _build_slice, "slice", deps)
    if kind is Task or kind is Pack or kind is Quote:
        return Quote(obj)
    if kind in _ONE_SHOT:
        # Materialised once, and handed out as a fresh iterator at every run,
        # so a graph computed twice does not see an exhausted iterator.
        return Pack(_build_iterator, [pack(x, deps) for x in obj], "iterator")
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return _pack_items(obj, obj, kind._make, kind.__name__, deps)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # a field with init=False that was never set stays unset
        names = [f.name for f in dataclasses.fields(obj) if hasattr(obj, f.name)]
        values = [getattr(obj, n) for n in names]
        return _pack_items(obj, values, partial(_build_dataclass, obj, names), kind.__name__, deps)
    if hasattr(kind, "__dask_graph__"):  # a dask collection's graph joins the run
        from tarry._interop.dask_collections import task_of

        collected = task_of(obj)
        return obj if collected is None else add_dep(collected, deps)
    return obj


def shallow(obj: Any, deps: dict[str, Task]) -> Any:
    """``traverse=False``: ``obj`` itself is resolved if lazy, never the items of a container.

    Examples
    --------
    >>> deps: dict[str, Task] = {}
    >>> t = Task.literal("t", 5)
    >>> holder = [t]
    >>> shallow(holder, deps) is holder, shallow(t, deps)
    (True, Quote(Task('t', value=5)))
    """
    kind = type(obj)
    if isinstance(obj, Lazy) or kind in (Task, Pack, Quote) or hasattr(kind, "__dask_graph__"):
        return pack(obj, deps)
    return obj


def add_dep(task: Task, deps: dict[str, Task]) -> Task:
    """Note ``task`` in ``deps`` under its key; raise if another task has that key.

    Examples
    --------
    >>> deps: dict[str, Task] = {}
    >>> add_dep(Task.literal("k", 1), deps) is deps["k"]
    True
    >>> add_dep(Task.literal("k", 2), deps)
    Traceback (most recent call last):
    ...
    tarry._graph.KeyClashError: two different tasks have the key 'k': ...
    """
    first = deps.setdefault(task.key, task)
    if first is not task:
        check_same(first, task)
    return task


def _pack_items(
    original: Any,
    items: Any,
    build: Callable[[list[Any]], Any],
    type_name: str,
    deps: dict[str, Task],
) -> Any:
    packed = [pack(x, deps) for x in items]
    if all(p is x for p, x in zip(packed, items, strict=True)):
        return original
    return Pack(build, packed, type_name)


def _build_dict(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _build_slice(parts: list[Any]) -> slice:
    return slice(*parts)


def _build_iterator(items: list[Any]) -> Any:
    return iter(items)


def _build_dataclass(template: Any, names: list[str], values: list[Any]) -> Any:
    # copy + object.__setattr__ works for frozen dataclasses and for fields
    # with init=False, which calling the class would not.
    new = copy.copy(template)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(new, name, value)
    return new
