"""The record of the last run (``tarry._tools.last_run``): small, and right about each task."""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator

import pytest
from visualize_helpers import boom, inc, tutorial_z

from tarry import delayed
from tarry._graph import walk
from tarry._tools.last_run import LastRun, forget, last_run, record_timings


@pytest.fixture(autouse=True)
def _fresh_last_run() -> Iterator[None]:
    forget()
    yield
    forget()


def test_the_last_run_does_not_keep_the_graph_or_its_values_alive() -> None:
    class Big:
        pass

    data = Big()
    ref = weakref.ref(data)
    result = delayed(lambda d, _: d)(data, delayed(inc)(1))
    result.compute(scheduler="threads")
    del data, result
    gc.collect()
    assert ref() is None
    assert last_run() is not None


def test_the_last_run_does_not_keep_a_failed_graph_alive() -> None:
    class Big:
        pass

    data = Big()
    ref = weakref.ref(data)

    def fail(d: Big) -> None:
        raise KeyError("no")

    with contextlib.suppress(KeyError):
        delayed(fail)(data).compute(scheduler="sync")
    del data
    gc.collect()
    assert ref() is None
    record = last_run()
    assert record is not None
    assert record.error == "KeyError: 'no'"


def test_record_fields_after_a_failure() -> None:
    parts = [delayed(inc).options(key=f"p{i}")(i) for i in range(3)]
    # sync runs ready tasks first to last, and a task made ready right away:
    # p0, then bad, which fails before p1 and p2 start
    bad = delayed(boom).options(key="bad")(parts[0])
    total = delayed(sum).options(key="total")([*parts, bad])
    with pytest.raises(ValueError, match="boom"):
        total.compute(scheduler="sync")
    record = last_run()
    assert isinstance(record, LastRun)
    assert record.targets == ("total",)
    assert record.size == 5
    assert record.failed == "bad"
    assert record.not_run == {"p1", "p2", "total"}
    assert record.events is None
    assert record.durations() is None
    statuses = record.statuses(list(walk([total._task])))
    assert statuses == {
        "p0": "done", "p1": "not run", "p2": "not run", "bad": "failed", "total": "not run",
    }  # fmt: skip


def test_timings_are_the_runs_own_event_list() -> None:
    with record_timings():
        tutorial_z().compute(scheduler="threads", num_workers=2)
    record = last_run()
    assert record is not None
    assert record.events is not None
    durations = record.durations()
    assert durations is not None
    assert sorted(durations) == ["x", "y", "z"]
    assert all(seconds >= 0 for seconds in durations.values())


def test_an_unprintable_error_is_still_described() -> None:
    class OddError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    def fail(x: int) -> int:
        raise OddError()

    with pytest.raises(OddError):
        delayed(fail)(1).compute(scheduler="sync")
    record = last_run()
    assert record is not None
    assert record.error == "OddError: <message unavailable>"

    def fail_long(x: int) -> int:
        raise ValueError("x" * 1000)

    with pytest.raises(ValueError, match="xxx"):
        delayed(fail_long)(1).compute(scheduler="sync")
    record = last_run()
    assert record is not None
    assert record.error is not None
    assert len(record.error) == 300
