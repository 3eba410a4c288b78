"""Fault scenarios: errors that cannot travel as they are leave every pool as it was.

Each runs in its own interpreter (:func:`harness.run_scenario`), with a hard
timeout: a hang fails the test. ``.ok()`` checks that the scenario exited
cleanly and left no process and no ``/dev/shm`` file behind. The tasks are
the ones of ``tests/test_errors.py`` (the tests folder is on the path of the
scenarios and of their worker processes).
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from harness import Outcome, run_scenario

pytestmark = pytest.mark.processes
pytest.importorskip("loky")

#: imports and names every scenario below starts with
PRELUDE = """
import psutil
from unittest import mock
from tarry import compute, delayed
import test_errors as bad

def workers():
    return sorted(p.pid for p in psutil.Process().children(recursive=True))

def outcome(func, *args, scheduler="processes"):
    try:
        compute(delayed(func)(*args), scheduler=scheduler)
    except (Exception, SystemExit) as exc:
        return type(exc).__name__
    return "no error"
"""


def scenario(body: str, **options: Any) -> Outcome:
    return run_scenario(PRELUDE + textwrap.dedent(body), **options)


def test_task_errors_that_do_not_travel_as_they_are_leave_the_pool_as_it_was() -> None:
    out = scenario(
        """
        compute([delayed(bad.use)(i) for i in range(4)], scheduler="processes", num_workers=2)
        before = workers()
        got = [
            outcome(bad.raise_mute, 1),
            outcome(bad.raise_no_reduce, 1),
            outcome(bad.raise_with_notes, "lock"),
            outcome(bad.raise_with_notes, "int"),
            outcome(bad.exit_task, 3),
            outcome(bad.recurse, 0),
        ]
        report(got=got, same_workers=workers() == before)
        report(after=list(compute(delayed(bad.use)(1), scheduler="processes")))
        """,
        timeout=120,
    ).ok()
    assert out.report["got"] == [
        "MuteError", "NoReduceError", "ValueError", "ValueError", "SystemExit",
        "RecursionError",
    ]  # fmt: skip
    assert out.report["same_workers"]
    assert out.report["after"] == [1]


def test_a_mock_with_recorded_calls_never_kills_a_worker() -> None:
    # Before: unpickling it in the worker raised a RecursionError whose
    # traceback loky could not send back, and the worker died of it (some times).
    out = scenario(
        """
        compute([delayed(bad.use)(i) for i in range(4)], scheduler="processes", num_workers=2)
        before = workers()
        got = set()
        for _ in range(8):
            recorder = mock.MagicMock()
            recorder.save(1)
            got.add(outcome(bad.use, recorder))
        report(got=sorted(got), same_workers=workers() == before)
        """,
        timeout=120,
    ).ok()
    assert out.report == {"got": ["UnpicklableTaskError"], "same_workers": True}


def test_a_result_that_does_not_unpickle_leaves_a_process_pool_executor_usable() -> None:
    # Before: the standard pool failed to unpickle it in its result thread and broke.
    out = scenario(
        """
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(1) as pool:
            first = outcome(bad.make_unloadable, 1, scheduler=pool)
            then = compute(delayed(bad.use)(1), scheduler=pool)
        report(first=first, then=list(then))
        """,
        timeout=120,
    ).ok()
    assert out.report == {"first": "UnpicklableResultError", "then": [1]}
