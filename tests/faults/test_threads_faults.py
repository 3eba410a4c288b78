"""Threads and executors under faults: no hang, no thread left working, no lost error.

Each scenario runs in its own interpreter (see :mod:`harness`). A task that
must be abandoned blocks for :data:`threads_helpers.FOREVER` (600 s), far
past the scenario's timeout, so a run, an exit or a shutdown that waits for
it fails as a hang. Scenarios that leave tasks behind release them at the
end and check, with ``snapshot()``, that no thread is left but the main one.
"""

from __future__ import annotations

from textwrap import dedent

import pytest
from harness import run_scenario

#: seconds a scenario may take before it counts as hung: generous, as the
#: machine may be slow; a broken scenario waits 600 s
HUNG = 120.0

#: ends a scenario that left tasks running: release them, stop the pool, report the threads
_RELEASE = """
h.never.set()
from tarry._schedule.threads import shutdown_default_pool
shutdown_default_pool()
report(threads=snapshot()["threads"])
"""


@pytest.mark.parametrize("hang_first", [True, False], ids=["hang first", "failure first"])
@pytest.mark.parametrize("workers", [2, None], ids=["num_workers=2", "adaptive"])
def test_the_first_failure_reaches_the_caller_while_another_task_hangs(
    hang_first: bool, workers: int | None
) -> None:
    # Before, the caller ran the task it took first: with the hanging one,
    # the failure of the other waited for it (a 15 s task: raised at 15 s).
    out = run_scenario(
        dedent(f"""
        import threads_helpers as h
        from tarry import compute, delayed
        parts = [delayed(h.hang)(), delayed(h.fail_once_hanging)()]
        if not {hang_first}:
            parts.reverse()
        try:
            compute(parts, scheduler="threads", num_workers={workers})
        except ValueError as exc:
            report(raised=str(exc), hanging=h.hanging())
        """)
        + _RELEASE,
        timeout=HUNG,
    ).ok()
    assert out.report["raised"] == "boom"
    assert out.report["hanging"] == 1  # raised while the other task still hung
    assert out.report["threads"] == ["MainThread"]


def test_exit_does_not_wait_for_helpers_running_abandoned_tasks() -> None:
    # Before, the exit hook joined each pool thread for 5 s: 16 threads
    # stuck in tasks held the exit for 80 s (4 threads: 20.6 s).
    out = run_scenario(
        """
        import threading, threads_helpers as h
        from remote_helpers import wait_for
        from tarry import compute, delayed
        parts = [delayed(h.hang)(i) for i in range(16)]
        caller = threading.Thread(
            target=compute, args=(parts,), kwargs={"num_workers": 16}, daemon=True
        )
        caller.start()
        report(all_hanging=wait_for(lambda: h.hanging() == 16, h.PATIENCE))
        """,
        timeout=60,
    ).ok()
    assert out.report == {"all_hanging": True}
    assert not out.stderr


def test_exit_stops_idle_pool_threads() -> None:
    """At exit, idle pool threads are stopped and joined: none runs on into the shutdown."""
    out = run_scenario(
        """
        import atexit, threading, time
        def workers():
            return sum(t.name.startswith("tarry-worker") for t in threading.enumerate())
        # registered before tarry's exit hook, so it runs after it
        atexit.register(lambda: report(after=workers()))
        from tarry import compute, delayed
        compute([delayed(time.sleep)(0.05) for i in range(8)], num_workers=4)
        report(during=workers())
        """,
        timeout=HUNG,
    ).ok()
    assert out.report["during"] > 0
    assert out.report["after"] == 0
    assert not out.stderr


def test_a_thread_that_cannot_start_costs_the_run_nothing() -> None:
    # Before, one "can't start new thread" killed the recruiter for good:
    # no helper joined again (64 sleeping tasks ran one by one, 3.2 s
    # instead of 0.2 s), and exit printed "cannot join thread before it is
    # started" for the thread the pool counted though it never started.
    out = run_scenario(
        """
        import threading, threads_helpers as h
        from tarry import compute, delayed
        from tarry._schedule.threads import default_pool, shutdown_default_pool
        meeting = h.Meeting(8)
        with h.thread_starts_fail(3) as refused:
            compute([delayed(meeting.task)(i) for i in range(64)], num_workers=8)
        report(refused=len(refused), most=meeting.most, counted=default_pool().thread_count())
        report(alive=sum(t.name.startswith("tarry-worker") for t in threading.enumerate()))
        shutdown_default_pool()
        report(threads=snapshot()["threads"])
        """,
        timeout=HUNG,
    ).ok()
    assert out.report["refused"] == 3
    assert out.report["most"] == 8  # helpers joined after all
    assert out.report["counted"] == out.report["alive"]  # no thread counted that never started
    assert out.report["threads"] == ["MainThread"]
    assert "cannot join" not in out.stderr
