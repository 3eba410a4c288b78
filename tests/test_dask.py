"""The ``"dask"`` backend on the session's LocalCluster, and tarry values in ``dask.compute``."""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import (
    NeedsTwoError,
    add,
    describe,
    inc,
    make_worker_only,
    pid,
    raise_needs_two,
    size,
    wait_for,
)

import tarry
from tarry import compute, delayed
from tarry._graph import walk
from tarry._schedule import dask as tarry_dask
from tarry._schedule import dask_tasks, timing
from tarry._schedule.core import Run
from tarry._schedule.wire import scan_payload
from tarry._tools.last_run import last_run, record_timings
from tarry._tools.observe import Observer

pytestmark = pytest.mark.dask
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def client(dask_client: Any) -> Iterator[Any]:
    """The session's client, as tarry's configured dask client in every test here."""
    with tarry.config.set(dask_client=dask_client):
        yield dask_client


def test_runs_on_the_cluster_workers() -> None:
    pids = [delayed(pid)(i) for i in range(6)]
    tree = [delayed(inc)(i) for i in range(16)]
    while len(tree) > 1:
        tree = [delayed(add)(tree[i], tree[i + 1]) for i in range(0, len(tree), 2)]
    text = delayed(str.join)(",", [delayed(str)(1), "(x, 'key')"])  # strings dask must not parse
    got_pids, got_tree, got_text = compute(pids, tree[0], text, scheduler="dask")
    assert PARENT not in got_pids
    assert got_tree == sum(range(1, 17))
    assert got_text == "1,(x, 'key')"


def test_uses_the_default_client_when_none_is_configured(client: Any) -> None:
    with tarry.config.set(dask_client=None), client.as_current():
        assert compute(delayed(inc)(1), scheduler="dask") == (2,)


def test_without_a_client_the_error_says_how_to_get_one() -> None:
    if distributed.client._get_global_client() is not None:
        pytest.skip("another test left a default dask client")
    with tarry.config.set(dask_client=None), pytest.raises(RuntimeError, match=r"Client\(\)"):
        compute(delayed(inc)(1), scheduler="dask")


def test_intermediate_results_move_between_workers_only() -> None:
    made = delayed(make_worker_only)(PARENT)
    readers = [delayed(describe)(made, i) for i in range(3)]
    (got,) = compute(readers, scheduler="dask")
    # "str": unpickled in another worker; "WorkerOnly": read where it was made
    assert [g.split("+")[1] for g in got] == ["0", "1", "2"]
    assert {g.split("+")[0] for g in got} <= {"str", "WorkerOnly"}


def test_large_shared_argument_is_one_graph_node() -> None:
    big = bytes(300_000)
    tasks = [delayed(size)(big, i) for i in range(5)]
    payload = [t._task for t in tasks]
    graph = tarry_dask.to_dask(payload, shared={id(big): big})
    nodes = [key for key in graph if key.startswith("object-")]
    assert len(nodes) == 1
    assert all(graph[t.key][3] == nodes[0] for t in payload)
    assert compute(tasks, scheduler="dask") == ([300_000 + i for i in range(5)],)


def test_worker_exception_keeps_type_message_traceback_and_key() -> None:
    bad = delayed(raise_needs_two)(delayed(inc)(1))
    with pytest.raises(NeedsTwoError) as info:
        compute(delayed(inc)(bad), scheduler="dask")
    assert str(info.value) == "2 and 3"
    text = "".join(traceback.format_exception(info.value))
    assert "raise NeedsTwoError(x, x + 1)" in text
    assert f"tarry: raised by task {bad.key!r} (raise_needs_two)" in info.value.__notes__


def fails_while(path: str, value: int) -> int:
    if os.path.exists(path):
        raise RuntimeError(f"{path} is there")
    return value


def test_a_graph_that_failed_computes_again_once_the_cause_is_gone(tmp_path: Path) -> None:
    # the same keys, at once: the scheduler must have forgotten the erred task
    flag = tmp_path / "fail"
    stale = 0
    for n in range(20):
        parts = [delayed(fails_while, pure=True)(str(flag), n + i) for i in (0, 100)]
        x = delayed(sum, pure=True)(parts)
        flag.touch()
        with pytest.raises(RuntimeError, match="is there"):
            compute(x, scheduler="dask")
        flag.unlink()
        with contextlib.suppress(RuntimeError):
            compute(x, scheduler="dask")
            continue
        stale += 1
    assert stale == 0


# -- what the caller learns as the run goes ----------------------------------------------


def wait_for_file(path: str, _after: Any) -> bool:
    """Wait (60 s at most) for ``path`` to exist; whether it did. ``_after``: an input."""
    return wait_for(lambda: os.path.exists(path), 60)


class _CountsWhileRunning(Observer):
    """Creates ``path`` once the run has counted a task done while others still run."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.threads: list[threading.Thread] = []

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        total = run.remaining

        def watch() -> None:
            if wait_for(lambda: 0 < run.remaining < total, 120):
                Path(self.path).touch()

        self.threads.append(threading.Thread(target=watch, daemon=True))
        self.threads[-1].start()

    def finished(self, run: Run, error: BaseException | None) -> None:
        pass


def test_tasks_count_done_as_they_end_so_progress_moves(tmp_path: Path) -> None:
    go = str(tmp_path / "go")
    first = delayed(inc)(1)
    with _CountsWhileRunning(go) as watcher:
        (released,) = compute(delayed(wait_for_file)(go, first), scheduler="dask")
    watcher.threads[0].join()
    assert released  # before: nothing counted until the end, and the gate gave up


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_a_failed_run_keeps_timings_and_statuses_of_the_tasks_that_ran(timed: bool) -> None:
    first = delayed(inc)(1)
    second = delayed(inc)(first)
    bad = delayed(raise_needs_two)(second)
    after = delayed(add)(bad, 1)
    with record_timings() if timed else contextlib.nullcontext(), pytest.raises(NeedsTwoError):
        compute(after, scheduler="dask")
    record = last_run()
    assert record is not None
    if timed:
        assert record.events is not None
        assert sorted(e.key for e in record.events) == sorted([first.key, second.key, bad.key])
    assert record.statuses(list(walk([after._task]))) == {
        first.key: "done",
        second.key: "done",
        bad.key: "failed",
        after.key: "not run",
    }


def _tarry_state_in_worker() -> int:
    """Run in a worker: how many entries the dask backend's module-level containers hold."""
    return sum(
        len(value)
        for name, value in vars(tarry_dask).items()
        if not name.startswith("__") and isinstance(value, dict | list | set)
    )


def test_workers_keep_nothing_of_a_run_timed_or_failed(client: Any) -> None:
    before = client.run(_tarry_state_in_worker)
    with record_timings():
        compute([delayed(inc)(i) for i in range(10)], scheduler="dask")
        with pytest.raises(NeedsTwoError):
            compute([delayed(inc)(i) for i in range(10)] + [delayed(raise_needs_two)(1)],
                    scheduler="dask")  # fmt: skip
    assert client.run(_tarry_state_in_worker) == before


def _pretend_host(name: str) -> str:
    """Run in a worker: call this machine ``name``; the name it had."""
    old = timing.HOST
    timing.HOST = name
    return old


def test_a_worker_on_another_machine_is_named_with_its_host(client: Any) -> None:
    (host,) = set(client.run(_pretend_host, "elsewhere").values())
    try:
        with record_timings():
            compute([delayed(inc)(i) for i in range(4)], scheduler="dask")
    finally:
        client.run(_pretend_host, host)
    record = last_run()
    assert record is not None
    assert record.events is not None
    for event in record.events:
        pid, _, rest = event.worker.partition(":")
        assert int(pid) != PARENT
        assert rest.endswith("@elsewhere")
    with record_timings():
        compute(delayed(inc)(1), scheduler="dask")
    record = last_run()
    assert record is not None
    assert record.events is not None
    assert "@" not in record.events[0].worker  # the same machine


# -- what travels ------------------------------------------------------------------------


def test_a_large_argument_is_scattered_not_sent_in_the_graph() -> None:
    big = bytes(20_000_000)  # dask warns of a graph from 10 MB
    literal = delayed(bytes(5_000_000))
    readers = [delayed(size)(big, i) for i in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute(delayed(size)(big), delayed(size)(literal), readers, scheduler="dask")
    assert got == (20_000_000, 5_000_000, [20_000_000 + i for i in range(3)])
    assert not [w for w in caught if "Sending large graph" in str(w.message)]


def test_only_what_the_graph_can_stand_in_for_is_sent_once() -> None:
    big, inner, shared = bytes(5_000_000), bytes(5_000_000), bytes(200_000)
    tasks = [
        delayed(size)(big),
        delayed(describe)([inner, delayed(inc)(1)], 1),  # inside a list with a lazy value
        delayed(size)(delayed(big)),  # a literal input
        delayed(size)(shared, 1),
        delayed(size)(shared, 2),
    ]
    payload = list(walk([t._task for t in tasks]))
    large, once = dask_tasks.sent_once(payload, scan_payload(payload))
    assert list(large) == [id(big)]
    assert list(once) == [id(shared)]
    assert compute(tasks, scheduler="dask") == ([5_000_000, "list+1", 5_000_000, 200_001, 200_002],)
