"""The ``"processes"`` backend: warm loky workers, fused units, faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from itertools import combinations
from pathlib import Path
from typing import Any

import psutil
import pytest
from remote_helpers import (
    NeedsTwoError,
    add,
    exited,
    inc,
    interrupt_two_naps,
    make_worker_only,
    pid,
    raise_needs_two,
    wait_for,
)

from tarry import compute, delayed
from tarry._graph import Task
from tarry._schedule import processes, transfer
from tarry._schedule.core import Run
from tarry._schedule.errors import RemoteError
from tarry._schedule.processes import driver as processes_driver
from tarry._schedule.processes import markers as processes_markers

pytestmark = pytest.mark.processes
pytest.importorskip("loky")

PARENT = os.getpid()


def make_lock(_: int) -> threading.Lock:
    return threading.Lock()


def use_locks(a: threading.Lock, b: threading.Lock) -> int:
    return int(a.locked()) + int(b.locked()) + 1


def spin(seconds: float) -> tuple[int, float, float]:
    """Pure Python for ``seconds``; where and when it ran: (pid, start, end)."""
    start = time.perf_counter()  # one clock for every process of the machine
    end = start + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return os.getpid(), start, time.perf_counter()


def read_worker_only(a: Any, b: Any) -> str:
    return f"{a}+{b}"


def inner_total(n: int) -> tuple[int, list[int]]:
    parts = [delayed(pid)(i) for i in range(n)]
    pids = compute(parts, scheduler="processes")[0]
    return os.getpid(), pids


def test_runs_in_warm_worker_processes() -> None:
    first = set(compute([delayed(pid)(i) for i in range(4)], scheduler="processes")[0])
    assert PARENT not in first
    warm = {child.pid for child in psutil.Process().children(recursive=True)}
    again = set(compute([delayed(pid)(i) for i in range(4)], scheduler="processes")[0])
    assert again <= warm  # no new pool: every task ran in a process that was already there
    assert again & first


def test_script_with_lambda_and_no_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from tarry import compute, delayed

            offset = 10
            def shift(x):
                return x + offset

            square = lambda x: x * x
            parts = [delayed(square)(delayed(shift)(i)) for i in range(4)]
            values, pids = compute(parts, [delayed(os.getpid)() for _ in range(2)],
                                   scheduler="processes")
            assert os.getpid() not in pids, pids
            print(sum(values))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sum((i + 10) ** 2 for i in range(4)))


def test_parent_environment_is_left_alone() -> None:
    before = dict(os.environ)
    compute(delayed(inc)(1), scheduler="processes")
    assert dict(os.environ) == before


def test_pure_python_tasks_run_in_parallel() -> None:
    compute([delayed(spin)(0.01) for _ in range(2)], scheduler="processes", num_workers=2)
    (runs,) = compute([delayed(spin)(0.25) for _ in range(4)], scheduler="processes", num_workers=2)
    assert len({pid for pid, _, _ in runs}) == 2
    assert PARENT not in {pid for pid, _, _ in runs}
    # two processes spun at the same time (one after another, no two intervals overlap)
    assert any(
        a_pid != b_pid and a_start < b_end and b_start < a_end
        for (a_pid, a_start, a_end), (b_pid, b_start, b_end) in combinations(runs, 2)
    )


def test_chain_intermediates_stay_in_the_worker() -> None:
    # A lock cannot be pickled: the chain only works if make_lock's result
    # never leaves the worker that made it.
    lock = delayed(make_lock)(1)
    assert compute(delayed(use_locks)(lock, lock), scheduler="processes") == (1,)


def test_optimize_graph_false_ships_every_task_on_its_own() -> None:
    lock = delayed(make_lock)(1)
    # unfused, the lock must travel from one task to the next, and cannot
    with pytest.raises(TypeError, match="cannot be pickled"):
        compute(delayed(use_locks)(lock, lock), scheduler="processes", optimize_graph=False)
    assert delayed(use_locks)(lock, lock).compute(scheduler="processes") == 1


def test_exclusive_branches_stay_in_the_worker() -> None:
    pairs = [
        delayed(use_locks)(delayed(make_lock)(i), delayed(make_lock)(i + 100)) for i in range(16)
    ]
    while len(pairs) > 1:
        pairs = [delayed(add)(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
    assert compute(pairs[0], scheduler="processes", num_workers=2) == (16,)


def test_a_result_read_by_several_tasks_stays_with_them_in_the_worker() -> None:
    # The tutorial's groupby: one table feeds both a sum and a count. A lock
    # cannot be pickled, so this works only if both readers run where it was made.
    tables = [delayed(make_lock)(i) for i in range(8)]
    sums = [delayed(use_locks)(t, t) for t in tables]
    counts = [delayed(use_locks)(t, t) for t in tables]
    total = delayed(sum)(sums) + delayed(sum)(counts)
    assert compute(total, scheduler="processes", num_workers=2) == (16,)


def test_results_between_workers_are_forwarded_without_unpickling() -> None:
    left = delayed(make_worker_only)(PARENT)
    right = delayed(make_worker_only)(PARENT)
    # both results are read by two tasks: they must go through the parent
    both = [delayed(read_worker_only)(left, right), delayed(read_worker_only)(right, left)]
    assert compute(both, scheduler="processes") == (["moved+moved"] * 2,)


def test_short_tasks_share_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [delayed(inc)(i) for i in range(400)]
    compute(tasks, scheduler="processes")  # learns that inc is short
    shipped: list[int] = []
    original = processes_driver._ProcessDriver._ship

    def counting(self: Any, batch: list[Any]) -> BaseException | None:
        shipped.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(processes_driver._ProcessDriver, "_ship", counting)
    assert compute(tasks, scheduler="processes") == ([i + 1 for i in range(400)],)
    assert sum(shipped) == 400
    assert len(shipped) <= 40


def test_timings_are_measured_in_the_workers() -> None:
    one = Task("one", inc, (1,), None, (), "inc")
    two = Task("two", inc, (one,), None, (one,), "inc")  # fused with one
    run = Run([two], timed=True)
    assert run.events is not None
    assert processes.run_processes(run) is None
    assert run.results() == {"two": 3}
    assert [e.key for e in run.events] == ["one", "two"]
    assert all(not e.worker.startswith(f"{PARENT}:") for e in run.events)


def test_nested_compute_runs_inside_the_worker() -> None:
    ((outer, inner),) = compute(delayed(inner_total)(3), scheduler="processes")
    assert outer != PARENT
    assert inner == [outer] * 3


def test_unpicklable_argument_is_named() -> None:
    lock = threading.Lock()
    task = delayed(use_locks)(lock, delayed(make_lock)(0))
    with pytest.raises(TypeError, match=r"argument 0 cannot be pickled: <unlocked _thread\.lock"):
        compute(task, scheduler="processes")


def test_unpicklable_result_that_must_travel_is_named() -> None:
    lock = delayed(make_lock)(0)
    with pytest.raises(TypeError, match=f"result of task '{lock.key}'"):
        compute(lock, scheduler="processes")


def test_worker_exception_keeps_type_message_traceback_and_key() -> None:
    bad = delayed(raise_needs_two)(delayed(inc)(1))
    with pytest.raises(NeedsTwoError) as info:
        compute(bad, scheduler="processes")
    assert str(info.value) == "2 and 3"
    text = "".join(traceback.format_exception(info.value))
    assert "raise NeedsTwoError(x, x + 1)" in text
    assert f"tarry: raised by task {bad.key!r} (raise_needs_two)" in info.value.__notes__


def test_exception_that_cannot_travel_comes_back_as_text() -> None:
    def raise_with_lock() -> None:
        err = RuntimeError("with a lock")
        err.lock = threading.Lock()  # type: ignore[attr-defined]
        raise err

    with pytest.raises(RemoteError, match=r"builtins\.RuntimeError: with a lock") as info:
        compute(delayed(raise_with_lock)(), scheduler="processes")
    assert any("raise err" in note for note in info.value.__notes__)


def test_ctrl_c_stops_running_tasks_and_returns(tmp_path: Path) -> None:
    compute(delayed(inc)(1), scheduler="processes", num_workers=2)
    napping = interrupt_two_naps(tmp_path, scheduler="processes", num_workers=2)
    # stopped: the workers that ran them exit (a pool kept warm would keep them)
    assert wait_for(lambda: all(exited(p) for p in napping), timeout=20)
    assert compute(delayed(inc)(1), scheduler="processes", num_workers=2) == (2,)
    assert compute(delayed(pid)(1), scheduler="processes", num_workers=2)[0] not in napping


def test_pool_can_be_shut_down_and_restarted() -> None:
    compute(delayed(inc)(1), scheduler="processes")
    processes.shutdown_pool()
    assert compute(delayed(inc)(2), scheduler="processes") == (3,)


def big(i: int) -> bytearray:
    return bytearray([i % 256]) * (3 << 20)


def fuse_big(a: bytearray, b: bytearray) -> bytearray:
    out = bytearray(a)
    out[0] = (a[0] + b[0]) % 256
    return out


def fail_on_big(a: bytearray) -> None:
    raise ValueError("no")


def _value_files() -> list[str]:
    folder = processes_markers.marker_dir()
    return [name for name in os.listdir(folder) if name.endswith(".value")]


def test_large_results_travel_as_files_that_are_gone_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str] = []

    def own(blob: Any) -> None:
        received.append(type(blob).__name__)
        real_own(blob)

    real_own = transfer.own
    monkeypatch.setattr(processes_driver, "own", own)
    # no fusion: every result crosses between processes
    parts = [delayed(big)(i) for i in range(4)]
    total = delayed(fuse_big)(delayed(fuse_big)(parts[0], parts[1]), delayed(fuse_big)(*parts[2:]))
    (result,) = compute(total, scheduler="processes", num_workers=2, optimize_graph=False)
    assert len(result) == 3 << 20
    assert result[0] == 6
    assert received == ["Spilled"] * 7
    assert _value_files() == []


def test_a_failed_run_leaves_no_file_behind() -> None:
    parts = [delayed(big)(i) for i in range(4)]
    bad = delayed(fail_on_big)(delayed(fuse_big)(parts[0], parts[1]))
    with pytest.raises(ValueError, match="no"):
        compute([bad, *parts], scheduler="processes", num_workers=2, optimize_graph=False)
    deadline = time.monotonic() + 10
    while _value_files() and time.monotonic() < deadline:  # batches still running
        time.sleep(0.05)
    assert _value_files() == []
