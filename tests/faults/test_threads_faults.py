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


@pytest.mark.parametrize("how", ["scheduler=executor", "config", "a job of the executor"])
def test_nested_computes_on_a_small_executor_do_not_deadlock(how: str) -> None:
    # Before, 4 outer tasks on a 2-thread executor each submitted their
    # inner tasks to it and waited: the inner ones queued behind the outer
    # ones, which held both threads. Now a compute from one of the
    # executor's own threads runs in place.
    out = run_scenario(
        f"""
        from concurrent.futures import ThreadPoolExecutor
        import tarry
        from tarry import compute, delayed

        def inc(x):
            return x + 1

        how = {how!r}
        with ThreadPoolExecutor(2) as executor:
            def outer(i):
                inner = [delayed(inc)(i), delayed(inc)(10 * i)]
                if how == "config":
                    return sum(compute(inner)[0])
                return sum(compute(inner, scheduler=executor)[0])

            if how == "a job of the executor":
                results = [f.result() for f in [executor.submit(outer, i) for i in range(4)]]
            else:
                with tarry.config.set(scheduler=executor):
                    (results,) = compute([delayed(outer)(i) for i in range(4)])
        report(results=results, threads=snapshot()["threads"])
        """,
        timeout=HUNG,
    ).ok()
    assert out.report["results"] == [11 * i + 2 for i in range(4)]
    assert out.report["threads"] == ["MainThread"]


def test_deeply_nested_computes_on_threads_do_not_deadlock() -> None:
    # Each level waits for its helpers, so 40 levels hold more threads than
    # the pool has (32 on this machine): the levels past it run their tasks
    # in the calling task, as the pool refuses them a helper.
    out = run_scenario(
        """
        from tarry import compute, delayed
        from tarry._schedule.threads import default_pool

        def level(depth):
            if depth == 0:
                return 0
            here = [delayed(int)(1), delayed(level)(depth - 1)]
            return sum(compute(here, scheduler="threads")[0])

        report(total=level(40), most=default_pool().max_threads)
        """,
        timeout=HUNG,
    ).ok()
    assert out.report["total"] == 40
    assert out.report["most"] < 40  # the pool ran out of threads on the way down


@pytest.mark.parametrize("scheduler", ["threads", "executor"])
def test_a_timeout_leaves_the_hanging_tasks_behind_and_names_them(scheduler: str) -> None:
    # the hanging tasks run on (a thread cannot be stopped): the compute,
    # the exit and the executor's shutdown must not wait for them
    out = run_scenario(
        dedent(f"""
        import threads_helpers as h
        from concurrent.futures import ThreadPoolExecutor
        from tarry import compute, delayed
        executor = ThreadPoolExecutor(2)
        chosen = executor if {scheduler!r} == "executor" else "threads"
        parts = [delayed(h.hang)(i, dask_key_name=f"hang-{{i}}") for i in range(2)]
        parts += [delayed(h.hang)(i) for i in range(2, 6)]
        try:
            compute(parts, scheduler=chosen, num_workers=2, timeout=0.5)
        except TimeoutError as exc:
            report(message=str(exc), hanging=h.hanging())
        executor.shutdown(wait=False, cancel_futures=True)
        """)
        + _RELEASE,
        timeout=HUNG,
    ).ok()
    message = out.report["message"]
    assert message.startswith("compute did not finish within 0.5 s: running at the deadline: ")
    assert "'hang-0' (hang), 'hang-1' (hang)" in message
    assert message.endswith("; 4 tasks not started")
    assert out.report["hanging"] == 2
    assert out.report["threads"] == ["MainThread"]


def test_a_timeout_on_processes_stops_the_workers_running_tasks() -> None:
    out = run_scenario(
        """
        import remote_helpers
        from tarry import compute, delayed
        parts = [delayed(remote_helpers.nap)(20, dask_key_name=f"nap-{i}") for i in range(2)]
        try:
            compute(parts, scheduler="processes", num_workers=2, timeout=2)
        except TimeoutError as exc:
            report(message=str(exc))
        """,
        timeout=HUNG,
    ).ok()
    assert "running at the deadline: 'nap-0' (nap), 'nap-1' (nap)" in out.report["message"]
