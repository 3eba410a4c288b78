"""The sync backend: every task in the calling thread; a timeout is looked at between tasks."""

from __future__ import annotations

import time

import pytest

from tarry import compute, delayed
from tarry._graph import Task
from tarry._schedule import Settings
from tarry._schedule.core import Run
from tarry._schedule.sync import run_sync


def test_runs_every_task_in_order_and_returns_the_first_error() -> None:
    seen: list[int] = []

    def note(i: int, *_: object) -> int:
        seen.append(i)
        if i == 2:
            raise ValueError("two")
        return i

    one = Task("one", note, (1,), None, (), "note")
    two = Task("two", note, (2, one), None, (one,), "note")
    three = Task("three", note, (3, two), None, (two,), "note")
    run = Run([three])
    error = run_sync(run)
    assert isinstance(error, ValueError)
    assert seen == [1, 2]
    assert run.failed == "two"


def test_a_timeout_is_looked_at_between_tasks() -> None:
    """The task running at the deadline ends (it cannot be stopped), then the run stops."""
    ran: list[str] = []

    def step(name: str, *_: object) -> str:
        ran.append(name)
        if name == "slow":
            time.sleep(0.3)  # far past the 0.05 s timeout, however slow the machine
        return name

    slow = delayed(step)("slow", dask_key_name="slow")
    after = delayed(step)("after", slow, dask_key_name="after")
    with pytest.raises(TimeoutError) as info:
        compute(after, scheduler="sync", timeout=0.05)
    assert ran == ["slow"]
    message = str(info.value)
    assert message.startswith("compute did not finish within 0.05 s: running at the deadline: ")
    assert "'slow' (step)" in message
    assert message.endswith("; 1 task not started")


def test_a_run_within_its_timeout_is_not_disturbed() -> None:
    total = delayed(sum)([delayed(abs)(-i) for i in range(10)])
    assert compute(total, scheduler="sync", timeout=60) == (45,)
    run = Run([Task("t", abs, (-2,), None, (), "abs")])
    assert run_sync(run, Settings(timeout=60)) is None
    assert run.results() == {"t": 2}
