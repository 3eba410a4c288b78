"""The shape of a task graph: levels, width, depth and the longest (critical) path.

Graphs are given as ``deps``: a mapping from each task's key to the keys of
the tasks it needs, listed dependencies first (the order of
:func:`tarry._graph.walk` and of ``Run.tasks``). Literal tasks (values, not
calls) are left out by the callers: they take no time and run nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tarry._graph import Task

__all__ = ["Shape", "dependency_keys", "measure"]


def dependency_keys(tasks: Mapping[str, Task]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """For the calls among ``tasks``: ``key -> keys of the calls it needs`` and ``key -> name``.

    Keeps keys only, so a profile holds no task and no data. Literal tasks
    (values, persisted results) are left out: they take no time and run
    nowhere.

    Examples
    --------
    >>> from tarry._graph import TaskGraph
    >>> one = Task.literal("one", 1)
    >>> two = Task("two", abs, (one,), None, (one,), "abs")
    >>> dependency_keys(TaskGraph([Task("three", abs, (two,), None, (two, one), "abs")]))
    ({'two': (), 'three': ('two',)}, {'two': 'abs', 'three': 'abs'})
    """
    deps: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for key, task in tasks.items():
        if task.func is not None:
            deps[key] = tuple([d.key for d in task.deps if d.func is not None])
            names[key] = task.name
    return deps, names


@dataclass(frozen=True)
class Shape:
    """What a graph allows: see :func:`measure`."""

    #: most tasks on one level: tasks of a level never depend on each other,
    #: so they can all run at the same time (a lower bound of the true
    #: maximum parallelism, exact for maps, trees and reductions)
    width: int
    #: number of levels: tasks on the longest chain
    depth: int
    #: total weight of the heaviest chain of dependent tasks (the span), and
    #: its keys, first to last
    length: float
    path: list[str]


def measure(deps: Mapping[str, Sequence[str]], weights: Mapping[str, float] | None = None) -> Shape:
    """Width, depth and heaviest chain of a graph, in one pass.

    With task durations as ``weights`` (missing keys weigh 0) the heaviest
    chain is the critical path, whose length (the *span*) no number of
    workers can beat; without weights every task weighs 1.

    Examples
    --------
    >>> deps = {"inc1": (), "inc2": (), "add": ("inc1", "inc2")}
    >>> measure(deps, {"inc1": 1.0, "inc2": 1.5, "add": 1.0})
    Shape(width=2, depth=2, length=2.5, path=['inc2', 'add'])
    >>> measure(deps).length, measure({})
    (2.0, Shape(width=0, depth=0, length=0.0, path=[]))
    """
    finish: dict[str, float] = {}
    level: dict[str, int] = {}
    before: dict[str, str | None] = {}
    per_level: list[int] = []
    end_key: str | None = None
    end = -1.0
    get = weights.get if weights is not None else None
    for key, needs in deps.items():
        prev: str | None = None
        start = 0.0
        depth = 0
        # a plain loop: this runs once per task of 100,000-task graphs
        for dep in needs:
            done = finish[dep]
            if prev is None or done > start:
                start, prev = done, dep
            if level[dep] >= depth:
                depth = level[dep] + 1
        done = start + (get(key, 0.0) if get is not None else 1.0)
        finish[key] = done
        before[key] = prev
        level[key] = depth
        if depth == len(per_level):
            per_level.append(1)
        else:
            per_level[depth] += 1
        if done > end:
            end, end_key = done, key
    path: list[str] = []
    step = end_key
    while step is not None:
        path.append(step)
        step = before[step]
    path.reverse()
    return Shape(max(per_level, default=0), len(per_level), max(end, 0.0), path)
