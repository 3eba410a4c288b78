"""Planning units: which tasks run together in one worker, so their data stays there.

A linear chain is one unit, and so is a task together with the exclusive
branch below it (inputs no other task uses), as long as merging branches
leaves enough units to keep every worker busy. Duration estimates per task
name (kept between computes) decide how many units a batch may hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from tarry._graph import Task
from tarry._schedule.core import Run

__all__ = ["LOOK_PAST", "Unit", "note_duration", "plan_units", "pop_first", "reads_results"]


#: per task name, the running estimate of its duration in seconds (kept
#: between computes: functions keep their names)
_estimates: dict[str, float] = {}


#: merging exclusive branches stops at units of ``tasks / (this × workers)``
#: tasks, so that every worker still gets several units to balance the load
UNITS_PER_WORKER = 4
#: weight of a new reading in a task name's duration estimate: quick to
#: learn, and one odd run does not undo it
ESTIMATE_WEIGHT = 0.3


def note_duration(name: str, seconds: float) -> None:
    """Fold one measured duration of a task named ``name`` into its estimate.

    The estimate moves :data:`ESTIMATE_WEIGHT` of the way to each new reading.

    Examples
    --------
    >>> note_duration("doc-example", 1.0); note_duration("doc-example", 2.0)
    >>> round(_estimates.pop("doc-example"), 2)
    1.3
    """
    old = _estimates.get(name)
    _estimates[name] = seconds if old is None else old + ESTIMATE_WEIGHT * (seconds - old)


#: how far below the top of the ready units the driver looks for one that
#: reads results while root units are held back
LOOK_PAST = 16

T = TypeVar("T")


def pop_first(stack: list[T], may_start: Callable[[T], bool]) -> T | None:
    """Pop the topmost of the top :data:`LOOK_PAST` items that ``may_start``, if any.

    Examples
    --------
    >>> stack = [1, 2, 3]
    >>> pop_first(stack, lambda x: x % 2 == 0), stack
    (2, [1, 3])
    >>> pop_first(stack, lambda x: x > 5) is None
    True
    """
    for i in range(len(stack) - 1, max(-1, len(stack) - 1 - LOOK_PAST), -1):
        if may_start(stack[i]):
            return stack.pop(i)
    return None


class Unit:
    """Tasks that run together in one worker; only the outputs' results leave it."""

    __slots__ = ("entries", "into", "outputs", "root", "tasks")

    def __init__(self, tasks: list[Task], entries: int) -> None:
        #: dependencies first
        self.tasks = tasks
        #: while planning: the unit this one was merged into
        self.into: Unit | None = None
        #: tasks of the unit Run has still to hand out before the unit can go
        self.entries = entries
        #: keys of the tasks whose results someone outside the unit reads
        self.outputs: list[str] = []
        #: True when the unit reads no result of another unit (it loads data)
        self.root = False

    def cost(self) -> float | None:
        """Estimated seconds of work, or None if some task has never been timed."""
        total = 0.0
        for task in self.tasks:
            seconds = _estimates.get(task.name)
            if seconds is None:
                return None
            total += seconds
        return total


def plan_units(run: Run, workers: int) -> dict[str, Unit]:
    """Group the run's tasks into units; returns the unit of every computed task.

    A task takes in the units of its computed inputs when each of those has
    it as only reader (and is not a target). One such input (a chain) is
    always taken in: nothing could run beside it anyway. Several are taken
    in only while the unit stays below ``cap`` tasks, so that a wide branch
    still splits into enough units for all workers. A task is never merged
    with some of its inputs but not others: a unit is ready exactly when
    Run has handed out all its first tasks.

    Otherwise a task whose computed inputs all lie in one unit joins that
    unit (below ``cap``), so those inputs never leave the worker: the
    tutorial's groupby, where one parsed table feeds both a sum and a count.
    Such a unit has several outputs, and is never merged into another (a
    unit that both feeds and reads another unit would wait for itself).
    """
    dependents, refs = run.dependents, run.refs
    computed = [t for t in run.tasks.values() if t.func is not None]
    cap = max(2, math.ceil(len(computed) / (UNITS_PER_WORKER * workers)))
    units: dict[str, Unit] = {}
    several: set[int] = set()  # ids of units with more than one output
    fuse = run.fuse
    for task in computed:
        if not fuse:  # optimize_graph=False: every task on its own
            units[task.key] = Unit([task], 1)
            continue
        inner = [d for d in task.deps if d.func is not None]
        parts: list[Unit] = []
        take, size = bool(inner), 1
        for dep in inner:
            part = _merged(units[dep.key])
            if refs[dep.key] != 1 or len(dependents[dep.key]) != 1 or id(part) in several:
                take = False
            if part not in parts:  # identity: units define no __eq__
                parts.append(part)
                size += len(part.tasks)
        if take and (len(inner) == 1 or size <= cap):  # a chain is always taken in
            # the largest takes the others in; their tasks find it through
            # ``into`` (updating each task's entry would be O(n log n))
            if len(parts) == 2:
                if len(parts[1].tasks) > len(parts[0].tasks):
                    parts.reverse()
            else:
                parts.sort(key=_size, reverse=True)
            unit = parts[0]
            for other in parts[1:]:
                unit.tasks.extend(other.tasks)
                unit.entries += other.entries
                other.into = unit
            unit.tasks.append(task)
        elif len(parts) == 1 and size <= cap:
            unit = parts[0]
            unit.tasks.append(task)
            several.add(id(unit))
        else:
            unit = Unit([task], 1)
        units[task.key] = unit
    for key, unit in units.items():
        units[key] = _merged(unit)
    targets = {t.key for t in run.targets}
    for unit in {id(u): u for u in units.values()}.values():
        outputs, root = unit.outputs, True
        for task in unit.tasks:
            key = task.key
            if key in targets:
                outputs.append(key)
            else:
                for reader in dependents.get(key, ()):
                    if units[reader.key] is not unit:
                        outputs.append(key)
                        break
            if root:
                for dep in task.deps:
                    if dep.func is not None and units[dep.key] is not unit:
                        root = False
                        break
        unit.root = root
    return units


def _size(unit: Unit) -> int:
    return len(unit.tasks)


def reads_results(unit: Unit) -> bool:
    return not unit.root


def _merged(unit: Unit) -> Unit:
    """The unit ``unit`` now belongs to (itself, unless merged into another)."""
    while unit.into is not None:
        unit = unit.into
    return unit
