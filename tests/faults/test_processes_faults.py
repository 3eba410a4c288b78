"""Fault scenarios of the process pool: forks, signals, a killed parent, Ctrl-C, concurrent callers.

Each runs in its own interpreter (:func:`harness.run_scenario`), with a
hard timeout: a hang fails the test. ``.ok()`` checks that the scenario
exited cleanly and left no process and no ``/dev/shm`` file behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from harness import Outcome, run_scenario

from tarry._schedule import transfer
from tarry._schedule.processes import markers

pytestmark = pytest.mark.processes
pytest.importorskip("loky")

#: imports and names every scenario below starts with
PRELUDE = """
import os, signal, sys, threading, time
from pathlib import Path
import tempfile
from tarry import compute, delayed
from tarry._schedule.errors import WorkerDiedError
from tarry._schedule.processes import markers
from remote_helpers import inc, kill_self, wait_for
from processes_helpers import (
    big, big_written_slowly, compute_on_processes, first_byte, value_files, wait_for_gate,
)
scratch = tempfile.mkdtemp()
def path(name):
    return os.path.join(scratch, name)
"""


def scenario(body: str, **options: Any) -> Outcome:
    return run_scenario(PRELUDE + textwrap.dedent(body), **options)


# -- item 2: fork -----------------------------------------------------------------------


def test_a_forked_child_computes_on_processes_after_its_parent_did() -> None:
    out = scenario(
        """
        compute(delayed(inc)(1), scheduler="processes")
        child = os.fork()
        if child == 0:
            result = compute(delayed(inc)(2), scheduler="processes")
            report(child=list(result))
            sys.exit(0)  # a normal exit, atexit handlers and all
        _, status = os.waitpid(child, 0)
        report(status=os.waitstatus_to_exitcode(status))
        report(parent=list(compute(delayed(inc)(3), scheduler="processes")))
        """,
        timeout=120,
    ).ok()
    assert out.report == {"child": [3], "status": 0, "parent": [4]}


def test_a_forked_child_that_exits_leaves_the_parents_files_alone() -> None:
    # A large result waits in the parent, as a file, for a task still running;
    # a child forked meanwhile exits normally (atexit handlers, finalizers).
    out = scenario(
        """
        big_one = delayed(big)(7)
        gate = delayed(wait_for_gate)(path("gate"), path("started"))
        total = delayed(first_byte)(big_one, gate)
        result = {}
        def run():
            result["value"] = compute(total, scheduler="processes", num_workers=2,
                                      optimize_graph=False)
        thread = threading.Thread(target=run)
        thread.start()
        folder = markers.marker_dir()
        wait_for(lambda: value_files(folder) and os.path.exists(path("started")), 60)
        child = os.fork()
        if child == 0:
            sys.exit(0)
        os.waitpid(child, 0)
        Path(path("gate")).touch()
        thread.join()
        report(result=list(result["value"]), folder_kept=os.path.isdir(folder))
        """,
        timeout=120,
    ).ok()
    assert out.report == {"result": [7], "folder_kept": True}


def test_a_forked_child_that_leaves_by_os_exit_leaves_nothing_while_its_parent_lives() -> None:
    # The child computes on processes (its own folder, its own pool and its
    # semaphores), then leaves without cleaning up; its parent carries on.
    out = scenario(
        """
        import glob

        def ours():  # this scenario's folders and semaphores, by the pids that made them
            return sorted(p for p in glob.glob("/dev/shm/*tarry-workers-*")
                          + glob.glob("/dev/shm/sem.loky-*")
                          if any(f"-{pid}-" in p for pid in pids))

        compute(delayed(inc)(1), scheduler="processes")
        pids, statuses = [os.getpid()], []
        for i in range(2):
            child = os.fork()
            if child == 0:
                ok = compute(delayed(inc)(i), scheduler="processes") == (i + 1,)
                os._exit(0 if ok else 1)
            pids.append(child)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
        mine = [p for p in ours() if f"-{os.getpid()}-" in p]
        wait_for(lambda: ours() == mine, 60)
        report(statuses=statuses, children_left=[p for p in ours() if p not in mine])
        """,
        timeout=120,
    ).ok()
    assert out.report == {"statuses": [0, 0], "children_left": []}


def test_a_daemonic_multiprocessing_worker_computes_in_itself() -> None:
    # The worker of a fork pool is daemonic: it may not start processes.
    out = scenario(
        """
        import multiprocessing
        compute(delayed(inc)(1), scheduler="processes")
        with multiprocessing.get_context("fork").Pool(1) as mp_pool:
            report(nested=[list(r) for r in mp_pool.map(compute_on_processes, [5])])
        """,
        timeout=120,
    ).ok()
    assert out.report == {"nested": [[5]]}


# -- item 6: re-entry -------------------------------------------------------------------


def test_a_signal_handler_computes_while_the_pool_submits() -> None:
    # The signal lands while the main thread is inside loky's submit (which
    # holds a lock): the handler's compute must not wait for that lock.
    out = scenario(
        """
        from loky.process_executor import ProcessPoolExecutor
        got = []
        signal.signal(signal.SIGUSR1, lambda *_: got.append(
            compute(delayed(inc)(10), scheduler="processes")[0]))
        real = ProcessPoolExecutor._ensure_executor_running
        def signalled(self):
            real(self)
            if not got:
                os.kill(os.getpid(), signal.SIGUSR1)
        ProcessPoolExecutor._ensure_executor_running = signalled
        result = compute(delayed(inc)(1), scheduler="processes")
        report(result=list(result), handler=got)
        """,
        timeout=120,
    ).ok()
    assert out.report == {"result": [2], "handler": [11]}


# -- item 8: the parent dies ------------------------------------------------------------


@pytest.mark.parametrize("death", ["os.kill(os.getpid(), signal.SIGKILL)", "os._exit(3)"])
def test_a_dead_parent_leaves_no_worker_and_no_file(death: str) -> None:
    # One worker runs a long task, the large result of another waits in a
    # file; the parent dies without any cleanup of its own.
    out = scenario(
        f"""
        big_one = delayed(big)(7)
        gate = delayed(wait_for_gate)(path("gate"), path("started"))
        total = delayed(first_byte)(big_one, gate)
        threading.Thread(
            target=compute, args=(total,),
            kwargs=dict(scheduler="processes", num_workers=2, optimize_graph=False),
            daemon=True,
        ).start()
        folder = markers.marker_dir()
        wait_for(lambda: value_files(folder) and os.path.exists(path("started")), 60)
        report(spilled=len(value_files(folder)))
        {death}
        """,
        timeout=120,
        grace=90,
    )
    assert out.report == {"spilled": 1}
    assert out.returncode in (-signal.SIGKILL, 3)
    assert out.leaks == []


# -- item 9 and 11: Ctrl-C and dead workers leave no file -------------------------------


def test_ctrl_c_while_the_pool_starts_a_worker_leaves_no_worker_behind() -> None:
    # The Ctrl-C lands between loky's start of a worker process and its note
    # of that process: a worker known to nobody would live until exit.
    out = scenario(
        """
        import psutil
        from loky.backend.process import LokyProcess
        from remote_helpers import nap
        from tarry._schedule.processes.pool import shutdown_pool

        def workers():  # live loky workers (a zombie has exited, only not reaped yet)
            found = []
            for child in psutil.Process().children():
                try:
                    if (child.status() != psutil.STATUS_ZOMBIE
                            and "popen_loky_posix" in " ".join(child.cmdline())):
                        found.append(child)
                except psutil.Error:  # gone meanwhile
                    pass
            return found

        start = LokyProcess.start
        def start_then_ctrl_c(process):
            LokyProcess.start = start  # once
            start(process)
            os.kill(os.getpid(), signal.SIGINT)
        LokyProcess.start = start_then_ctrl_c
        try:
            compute(delayed(nap)(60), scheduler="processes", num_workers=2)
            report(outcome="finished")
        except KeyboardInterrupt:
            report(outcome="KeyboardInterrupt")
        shutdown_pool()
        report(workers_left=not wait_for(lambda: not workers(), 60))
        report(after=list(compute(delayed(inc)(1), scheduler="processes")))
        """,
        timeout=180,
    ).ok()
    assert out.report == {"outcome": "KeyboardInterrupt", "workers_left": False, "after": [2]}


def test_ctrl_c_while_a_worker_writes_a_large_result_leaves_no_partial_file() -> None:
    out = scenario(
        """
        folder = markers.marker_dir()
        def started():
            return os.path.exists(path("writing"))
        def say_when_started():
            wait_for(started, 60)
            print("ready", flush=True)
        threading.Thread(target=say_when_started, daemon=True).start()
        try:
            compute(delayed(big_written_slowly)(path("writing")), scheduler="processes")
        except KeyboardInterrupt:
            report(interrupted=True)
        # the partial file goes with the run, not at exit
        gone = wait_for(lambda: not value_files(folder), 60)
        report(partial_file_gone=gone)
        report(next=list(compute(delayed(inc)(1), scheduler="processes")))
        """,
        timeout=120,
        interrupt_after="ready",
    ).ok()
    assert out.report == {"interrupted": True, "partial_file_gone": True, "next": [2]}


def test_marker_files_of_dead_workers_go() -> None:
    out = scenario(
        """
        from tarry._schedule.processes import pool
        folder = markers.marker_dir()
        def live_workers_markers():
            return [n for n in os.listdir(folder) if not n.endswith(".value")]
        # killed by Ctrl-C
        def say_when_started():
            wait_for(lambda: os.path.exists(path("started")), 60)
            print("ready", flush=True)
        threading.Thread(target=say_when_started, daemon=True).start()
        gate = delayed(wait_for_gate)(path("gate"), path("started"))
        try:
            compute([gate, delayed(inc)(1)], scheduler="processes", num_workers=2)
        except KeyboardInterrupt:
            pass
        report(after_ctrl_c=wait_for(lambda: not live_workers_markers(), 60))
        # dead of a fault
        try:
            compute(delayed(kill_self)(1), scheduler="processes", num_workers=2)
        except WorkerDiedError:
            pass
        report(after_death=wait_for(lambda: not live_workers_markers(), 60))
        # retired when idle
        pool.shutdown_pool()
        pool.IDLE_TIMEOUT = 0.2
        compute([delayed(inc)(i) for i in range(4)], scheduler="processes", num_workers=2)
        report(after_idle=wait_for(lambda: not live_workers_markers(), 60))
        """,
        timeout=240,
        interrupt_after="ready",
    ).ok()
    assert out.report == {"after_ctrl_c": True, "after_death": True, "after_idle": True}


# -- item 14: concurrent callers --------------------------------------------------------


def test_a_larger_pool_asked_for_meanwhile_does_not_break_a_running_compute() -> None:
    out = scenario(
        """
        results = {}
        def first():
            gate = delayed(wait_for_gate)(path("gate"), path("started"))
            results["first"] = compute(delayed(inc)(gate), scheduler="processes",
                                       num_workers=1, optimize_graph=False)
        thread = threading.Thread(target=first)
        thread.start()
        wait_for(lambda: os.path.exists(path("started")), 60)
        results["second"] = compute(delayed(inc)(5), scheduler="processes", num_workers=3)
        Path(path("gate")).touch()
        thread.join()
        report(**{k: list(v) for k, v in results.items()})
        """,
        timeout=120,
    ).ok()
    assert out.report == {"first": [2], "second": [6]}


@pytest.mark.parametrize("fault", ["worker death", "Ctrl-C"])
def test_one_callers_fault_does_not_fail_another_callers_compute(fault: str) -> None:
    # The healthy compute runs a task while another thread's task kills its
    # worker, or while the main thread's compute is interrupted: either way
    # the whole shared pool stops. The healthy one runs again on a new pool.
    out = scenario(
        f"""
        fault = {fault!r}
        results = {{}}
        def healthy():
            gate = delayed(wait_for_gate)(path("gate"), path("started"), 41)
            results["healthy"] = compute(delayed(inc)(gate), scheduler="processes",
                                         num_workers=2, optimize_graph=False)
        thread = threading.Thread(target=healthy)
        thread.start()
        wait_for(lambda: os.path.exists(path("started")), 60)
        if fault == "worker death":
            victim = delayed(kill_self)(1)
            try:
                compute(victim, scheduler="processes", num_workers=2)
            except WorkerDiedError as err:
                report(error=type(err).__name__, named=victim.key in str(err))
        else:
            def say_when_started():
                wait_for(lambda: os.path.exists(path("other")), 60)
                print("ready", flush=True)
            threading.Thread(target=say_when_started, daemon=True).start()
            try:
                compute(delayed(wait_for_gate)(path("never"), path("other")),
                        scheduler="processes", num_workers=2)
            except KeyboardInterrupt as err:
                report(error=type(err).__name__, named=True)
        Path(path("gate")).touch()
        thread.join()
        report(healthy=list(results.get("healthy", [])))
        """,
        timeout=120,
        interrupt_after="ready" if fault == "Ctrl-C" else None,
    ).ok()
    error = "WorkerDiedError" if fault == "worker death" else "KeyboardInterrupt"
    assert out.report == {"error": error, "named": True, "healthy": [42]}


# -- in this process: what the scenarios rely on ----------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_markers_name_the_run_and_task_of_a_dead_worker(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    for pid, token, key in [(dead, 7, "inc-1"), (alive, 8, "inc-2")]:
        data = markers.MARKER.pack(len(key), token) + key.encode()
        (tmp_path / markers.marker_name(markers.worker_tag(3), pid)).write_bytes(data)
    assert markers.runs_of_dead_workers(str(tmp_path), 3, [dead]) == {dead: 7}
    assert markers.dead_workers_tasks(str(tmp_path)) == ["inc-1"]
    assert os.listdir(tmp_path) == [markers.marker_name(markers.worker_tag(3), alive)]


def test_sweep_removes_what_dead_workers_of_a_pool_left(tmp_path: Path) -> None:
    dead, kept, alive = _dead_pid(), _dead_pid(), os.getpid()
    names = {
        "gone": [f"w5-{dead}-task", f"w5-{dead}-3.value", f"w5-{dead}-4.value"],
        "left": [
            f"w5-{dead}-7.value",  # handed over: this process refers to it
            f"w5-{kept}-task",  # a run reads it
            f"w5-{alive}-task",
            f"w5-{alive}-5.value",  # still being written
            f"w6-{dead}-task",  # another pool
            f"{alive}-6.value",  # the parent's
        ],
    }
    for name in names["gone"] + names["left"]:
        (tmp_path / name).write_bytes(b"x")
    received = transfer.Spilled(str(tmp_path / f"w5-{dead}-7.value"), 1)
    markers.sweep(str(tmp_path), 5, frozenset({kept}))
    assert sorted(os.listdir(tmp_path)) == sorted(names["left"])
    assert transfer.in_use(received.path)
