"""Planning units for the processes backend, on its own: which tasks run together."""

from __future__ import annotations

from typing import Any

from tarry._graph import Task
from tarry._schedule.core import Run
from tarry._schedule.processes.units import Unit, plan_units


def task(key: str, *deps: Task) -> Task:
    return Task(key, lambda *xs: sum(xs), deps, None, deps, key.rstrip("0123456789"))


def groups(units: dict[str, Unit]) -> list[list[str]]:
    distinct = {id(u): u for u in units.values()}.values()
    return sorted(sorted(t.key for t in u.tasks) for u in distinct)


def filler(n: int) -> list[Task]:
    """Independent tasks that make a graph big enough for units of several tasks.

    A unit may grow to about ``tasks / (4 * workers)`` tasks.
    """
    return [task(f"filler{i}") for i in range(n)]


def plan(*targets: Task, workers: int = 2, fuse: bool = True) -> dict[str, Unit]:
    run = Run(targets, fuse=fuse)
    return plan_units(run, workers)


def test_a_chain_is_one_unit_with_one_output() -> None:
    a = task("a")
    c = task("c", task("b", a))
    units = plan(c)
    assert groups(units) == [["a", "b", "c"]]
    assert units["c"].outputs == ["c"]
    assert units["a"].root


def test_a_result_read_by_another_unit_is_an_output_of_its_unit() -> None:
    a = task("a")
    left, right = task("left", a), task("right", a)
    units = plan(left, right)
    # left joins a's unit (its only input lies there); right would make the
    # unit bigger than a graph of three tasks on two workers allows
    assert groups(units) == [["a", "left"], ["right"]]
    assert sorted(units["a"].outputs) == ["a", "left"]
    assert not units["right"].root  # it reads a result of another unit


def test_exclusive_branches_merge_while_enough_units_remain() -> None:
    leaves = [task(f"load{i}") for i in range(16)]
    parts = [task(f"part{i}", leaf) for i, leaf in enumerate(leaves)]
    total = task("total", *parts)
    units = plan(total, workers=2)
    # each load joins its only reader; the reducer does not swallow all 16
    # branches, which would leave one worker with everything
    for i in range(16):
        assert units[f"load{i}"] is units[f"part{i}"]
    assert len({id(u) for u in units.values()}) > 2


def test_readers_of_one_input_join_its_unit() -> None:
    table = task("table")
    total, count = task("sum", table), task("count", table)
    units = plan(total, count, *filler(20), workers=1)
    assert units["sum"] is units["table"] is units["count"]
    assert sorted(units["table"].outputs) == ["count", "sum"]


def test_without_fusing_every_task_is_its_own_unit() -> None:
    a = task("a")
    c = task("c", task("b", a))
    assert groups(plan(c, fuse=False)) == [["a"], ["b"], ["c"]]


def test_a_unit_waits_for_all_its_first_tasks() -> None:
    x, y = task("x"), task("y")
    both = task("both", x, y)
    units = plan(both, *filler(20), workers=1)
    unit: Any = units["both"]
    assert unit is units["x"] is units["y"]
    assert unit.entries == 2
