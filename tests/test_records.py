"""tarry._tools.records: what a profile keeps of a compute, and nothing more."""

from __future__ import annotations

import gc
import weakref

import pytest

import tarry
from tarry._schedule.timing import TaskEvent
from tarry._tools.records import RunRecord, events_by_start, mean_times, origin


class Big:
    """A result whose survival would show that a record keeps data alive."""


def make_big(x: int) -> Big:
    return Big()


def fail(big: Big) -> None:
    raise ValueError("bad " + "x" * 1000)


def test_a_record_keeps_keys_and_names_not_tasks_or_values() -> None:
    big = tarry.delayed(make_big)(1)
    with tarry.profile() as prof:
        value = big.compute(scheduler="sync")
    alive = weakref.ref(value)
    del value
    (record,) = prof.records
    assert record.deps == {big.key: ()}
    assert record.names == {big.key: "make_big"}
    assert [e.key for e in record.events] == [big.key]
    gc.collect()
    assert alive() is None


def test_a_failed_compute_names_the_task_and_its_error_briefly() -> None:
    bad = tarry.delayed(fail)(tarry.delayed(make_big)(1))
    with tarry.profile() as prof, pytest.raises(ValueError, match="bad x"):
        bad.compute(scheduler="sync")
    (record,) = prof.records
    assert record.failed == bad.key
    assert record.error is not None
    assert record.error.startswith("ValueError: bad xxx")
    assert len(record.error) == 300


def event(key: str, name: str, start: float, end: float) -> TaskEvent:
    return TaskEvent(key, name, "w", start, end, 0.0)


def test_several_records_read_together() -> None:
    first = RunRecord("sync", 1, 1.0, 3.0, {"a": ()}, {"a": "f"}, [event("a", "f", 1.0, 3.0)])
    second = RunRecord(
        "threads", 2, 0.5, 2.0, {"b": (), "c": ()}, {"b": "f", "c": "g"},
        [event("c", "g", 1.5, 2.0), event("b", "f", 0.5, 1.5)],
    )  # fmt: skip
    assert origin([first, second]) == 0.5
    assert origin([]) == 0.0
    assert [e.key for e in events_by_start([first, second])] == ["b", "a", "c"]
    assert mean_times([first, second]) == {"f": 1.5, "g": 0.5}
    assert second.wall == 1.5
