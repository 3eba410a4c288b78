"""The ``"ray"`` backend, on the session's local 2-CPU Ray cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import (
    NeedsTwoError,
    add,
    describe,
    exited,
    fail_first,
    inc,
    interrupt_two_naps,
    make_worker_only,
    pid,
    raise_needs_two,
    size,
    wait_for,
)

from tarry import compute, delayed
from tarry._graph import Task
from tarry._schedule import errors
from tarry._schedule.core import Run

pytestmark = pytest.mark.ray
pytest.importorskip("ray")

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def ray(ray_cluster: Any) -> Any:
    """The session's Ray, for every test of this module."""
    return ray_cluster


def scaled(x: int, *, scale: int) -> int:
    return x * scale


def test_frequent_and_rare_functions_run_in_ray_workers() -> None:
    pids = [delayed(pid)(i) for i in range(10)]  # own remote function
    rare = delayed(scaled)(delayed(inc)(1), scale=delayed(inc)(2))  # generic path
    tree = [delayed(inc)(i) for i in range(16)]
    while len(tree) > 1:
        tree = [delayed(add)(tree[i], tree[i + 1]) for i in range(0, len(tree), 2)]
    got_pids, got_rare, got_tree = compute(pids, rare, tree[0], scheduler="ray")
    assert PARENT not in got_pids
    assert (got_rare, got_tree) == (6, sum(range(1, 17)))


def test_intermediate_results_move_between_workers_only() -> None:
    made = delayed(make_worker_only)(PARENT)
    readers = [delayed(describe)(made, i) for i in range(3)]
    (got,) = compute(readers, scheduler="ray")
    # "str": unpickled in another worker; "WorkerOnly": read where it was made
    assert [g.split("+")[1] for g in got] == ["0", "1", "2"]
    assert {g.split("+")[0] for g in got} <= {"str", "WorkerOnly"}


def test_large_shared_arguments_go_to_the_object_store_once(
    ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    puts: list[int] = []
    real_put = ray.put

    def counting_put(value: Any, **kwargs: Any) -> Any:
        puts.append(len(value))
        return real_put(value, **kwargs)

    monkeypatch.setattr(ray, "put", counting_put)
    big = bytes(300_000)
    literal = delayed(list(range(40_000)))
    small = [1, 2, 3]
    tasks = [delayed(size)(big, i) for i in range(10)]
    tasks += [delayed(size)(literal, i) for i in range(3)]
    tasks += [delayed(size)(small, i) for i in range(3)]
    got = compute(tasks, scheduler="ray")[0]
    assert got == [300_000 + i for i in range(10)] + [40_000 + i for i in range(3)] + [3, 4, 5]
    assert sorted(puts) == [40_000, 300_000]


def test_worker_exception_keeps_type_message_traceback_and_key() -> None:
    bad = delayed(raise_needs_two)(delayed(inc)(1))
    after = delayed(inc)(bad)
    with pytest.raises(NeedsTwoError) as info:
        compute(after, scheduler="ray")
    assert str(info.value) == "2 and 3"
    text = "".join(traceback.format_exception(info.value))
    assert "raise NeedsTwoError(x, x + 1)" in text
    assert f"tarry: raised by task {bad.key!r} (raise_needs_two)" in info.value.__notes__


def test_timings_are_measured_in_the_workers() -> None:
    one = Task("one", inc, (1,), None, (), "inc")
    two = Task("two", inc, (one,), None, (one,), "inc")
    run = Run([two], timed=True)
    assert run.events is not None
    from tarry._schedule.ray import run_ray

    assert run_ray(run) is None
    assert run.results() == {"two": 3}
    assert run.remaining == 0
    assert sorted(e.key for e in run.events) == ["one", "two"]
    assert all(not e.worker.startswith(f"{PARENT}:") for e in run.events)


def test_ctrl_c_cancels_running_tasks_and_returns(tmp_path: Path) -> None:
    napping = interrupt_two_naps(tmp_path, scheduler="ray")
    # both CPUs were taken for 30 s: the workers that ran the naps are stopped
    assert wait_for(lambda: all(exited(p) for p in napping), timeout=20)
    assert compute(delayed(inc)(1), scheduler="ray") == (2,)


def test_configured_address_connects_to_the_existing_cluster(ray: Any, tmp_path: Path) -> None:
    context = ray.get_runtime_context()
    script = tmp_path / "connect.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import ray, tarry
            tarry.config.set(ray_address={context.gcs_address!r})
            print(tarry.delayed(abs)(-5).compute(scheduler="ray"))
            print(ray.get_runtime_context().get_node_id())
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    value, node = out.stdout.split()
    assert value == "5"
    assert node == context.get_node_id()


def exit_at(i: int, at: int) -> int:
    if i == at:
        sys.exit(4)
    return i


def lock_at(i: int, at: int) -> Any:
    return threading.Lock() if i == at else i


def test_system_exit_on_the_own_remote_function_fails_the_task_not_the_worker() -> None:
    # 8 calls of one function: it gets its own remote function (the other path)
    tasks = [delayed(exit_at)(i, 5) for i in range(8)]
    with pytest.raises(SystemExit) as info:
        compute(tasks, scheduler="ray")
    assert info.value.code == 4
    assert f"tarry: raised by task {tasks[5].key!r} (exit_at)" in info.value.__notes__
    assert compute(delayed(inc)(1), scheduler="ray") == (2,)


def test_a_result_that_does_not_pickle_is_named_without_colour_codes() -> None:
    tasks = [delayed(lock_at)(i, 2) for i in range(8)]
    with pytest.raises(errors.UnpicklableResultError) as info:
        compute(tasks, scheduler="ray")
    message = str(info.value)
    assert message.startswith(f"the result of task {tasks[2].key!r} (lock_at) cannot be pickled")
    assert "cannot pickle '_thread.lock' object" in message
    assert "\x1b[" not in message


def die_first(folder: str) -> int:
    """Kill this worker process on the first call (counted in ``folder``), then succeed."""
    attempt = len(list(Path(folder).iterdir())) + 1
    Path(folder, f"attempt-{attempt}").touch()
    if attempt == 1:
        os._exit(1)
    return attempt


def test_retries_run_a_task_again_for_the_exceptions_named(tmp_path: Path) -> None:
    flaky = delayed(fail_first).options(retries=2, retry_on=ConnectionError)
    assert compute(flaky(str(tmp_path), 2, ConnectionError), scheduler="ray") == (3,)


def test_other_exceptions_fail_at_once_and_exhausted_retries_raise_the_last_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "many").mkdir()
    flaky = delayed(fail_first).options(retries=2, retry_on=ConnectionError)
    with pytest.raises(ValueError, match="attempt 1"):
        compute(flaky(str(tmp_path / "other"), 5, ValueError), scheduler="ray")
    with pytest.raises(ConnectionError, match="attempt 3"):
        compute(flaky(str(tmp_path / "many"), 5, ConnectionError), scheduler="ray")
    assert len(list((tmp_path / "other").iterdir())) == 1
    assert len(list((tmp_path / "many").iterdir())) == 3


def test_a_worker_death_is_retried_as_ray_does_by_default(tmp_path: Path) -> None:
    assert compute(delayed(die_first)(str(tmp_path)), scheduler="ray") == (2,)


def fail_soon(_: Any) -> int:
    raise ValueError("failed early")


def test_the_first_failure_arrives_while_other_tasks_still_run(tmp_path: Path) -> None:
    from remote_helpers import nap_noting

    naps = [delayed(nap_noting)(str(tmp_path), 30) for _ in range(3)]
    bad = delayed(fail_soon)(1)  # submitted first: it starts beside the first nap
    with pytest.raises(ValueError, match="failed early"):
        compute(delayed(sum)([bad, *naps]), scheduler="ray")
    # raised before any nap ended: the run did not wait for the naps
    assert not list(tmp_path.glob("*.ended"))


def test_a_failed_runs_profile_shows_every_task_that_ran() -> None:
    import tarry

    parts = [delayed(inc)(i) for i in range(4)]
    with tarry.profile() as prof, pytest.raises(ValueError, match="failed early"):
        compute(delayed(fail_soon)(parts), scheduler="ray")
    # the failure and the parts finish close together: read in one batch
    assert sorted(e.name for e in prof.events) == ["inc"] * 4


def test_a_timeout_stops_the_tasks_and_names_those_running(tmp_path: Path) -> None:
    from remote_helpers import nap_noting

    naps = [delayed(nap_noting)(str(tmp_path), 30, dask_key_name=f"nap-{i}") for i in range(2)]
    with pytest.raises(TimeoutError, match=r"within 1 s: running at the deadline: .*'nap-"):
        compute(delayed(sum)(naps), scheduler="ray", timeout=1)
    assert not list(tmp_path.glob("*.ended"))  # stopped, not waited for


def test_the_task_whose_failure_ends_the_run_is_not_cancelled(
    ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray 2.60 aborts the driver when a task is cancelled while its result is
    # being recorded, as the failed task's is when its failure is seen
    cancelled: list[Any] = []
    monkeypatch.setattr(ray, "cancel", lambda ref, **_: cancelled.append(ref))
    with pytest.raises(ValueError, match="failed early"):
        compute(delayed(fail_soon)(1), scheduler="ray")
    assert cancelled == []
