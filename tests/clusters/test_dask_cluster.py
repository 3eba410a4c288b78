"""tarry on a dask cluster started through dask's command line: ``dask scheduler``, ``dask worker``.

The scheduler and each worker are processes of their own, reached over TCP
on 127.0.0.1 (see :mod:`cli`). Faults that could hang the caller (a worker
or the scheduler killed mid-compute) run in a scenario: a fresh interpreter
with a hard timeout (:func:`harness.run_scenario`).
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from cli import DaskCluster, dask_cluster, left_behind
from cluster_helpers import nbytes, peak_rss
from harness import run_scenario  # importable once cli is imported
from remote_helpers import add, inc, pid, wait_for

import tarry
from tarry import compute, delayed

pytestmark = [pytest.mark.dask, pytest.mark.slow]
distributed = pytest.importorskip("distributed")
np = pytest.importorskip("numpy")

#: the size of the large argument (its scheduler memory is what is measured)
LARGE = 100_000_000


@pytest.fixture
def dask_cli() -> Iterator[DaskCluster]:
    """A ``dask scheduler`` and two one-thread ``dask worker`` processes on 127.0.0.1.

    Stopped after the test, whatever it did; the test fails if a process is left.
    """
    with dask_cluster(workers=2) as cluster:
        yield cluster
    assert left_behind(cluster.tag) == []


@pytest.fixture
def client(dask_cli: DaskCluster) -> Iterator[Any]:
    """A client of the command-line cluster, tarry's configured dask client."""
    with (
        distributed.Client(dask_cli.address, set_as_default=False) as dask_client,
        tarry.config.set(dask_client=dask_client),
    ):
        yield dask_client


def test_results_come_from_the_cluster_workers(client: Any) -> None:
    tree = [delayed(inc)(i) for i in range(8)]
    while len(tree) > 1:
        tree = [delayed(add)(tree[i], tree[i + 1]) for i in range(0, len(tree), 2)]
    total, pids = compute(tree[0], [delayed(pid)(i) for i in range(4)], scheduler="dask")
    assert total == sum(range(1, 9))
    workers = client.run(os.getpid)
    assert set(pids) <= set(workers.values())


def test_a_large_argument_goes_to_a_worker_not_through_the_scheduler(client: Any) -> None:
    big = np.ones(LARGE // 8)
    before = client.run_on_scheduler(peak_rss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute(delayed(nbytes)(big), [delayed(nbytes)(big, i) for i in range(3)],
                      scheduler="dask")  # fmt: skip
    grown = client.run_on_scheduler(peak_rss) - before
    assert got == (LARGE, [LARGE, LARGE + 1, LARGE + 2])
    assert grown < LARGE / 2, f"the scheduler grew by {grown / 1e6:.0f} MB"
    assert not [w for w in caught if "Sending large graph" in str(w.message)]
    # released once the compute ended: the cluster forgets it
    assert wait_for(lambda: not client.who_has(), 60), client.who_has()


def test_persist_keeps_the_result_on_the_workers_and_computes_use_it_there(client: Any) -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    (kept,) = tarry.persist(delayed(np.ones)(LARGE // 8), scheduler="dask")
    key = kept.key
    assert wait_for(lambda: bool(client.who_has().get(key)), 120)  # computed, on a worker
    scheduler_before = client.run_on_scheduler(peak_rss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute([delayed(nbytes)(kept, i) for i in range(3)], scheduler="dask")
    grown = me.memory_info().rss - before  # while this process holds the persisted value
    assert got == ([LARGE, LARGE + 1, LARGE + 2],)
    assert grown < LARGE / 2, f"this process grew by {grown / 1e6:.0f} MB"
    grown = client.run_on_scheduler(peak_rss) - scheduler_before
    assert grown < LARGE / 2, f"the scheduler grew by {grown / 1e6:.0f} MB"
    assert not [w for w in caught if "Sending large graph" in str(w.message)]
    del kept
    gc.collect()
    assert wait_for(lambda: not client.who_has(), 60), client.who_has()


def test_a_killed_worker_costs_only_its_task_which_runs_again(dask_cli: DaskCluster) -> None:
    out = run_scenario(
        f"""
        import tempfile
        from pathlib import Path
        import distributed, tarry
        from tarry import compute, delayed
        from clusters.cluster_helpers import kill_first_napper, nap_first_time
        from remote_helpers import inc, pids_noted

        folder = tempfile.mkdtemp()
        killer = kill_first_napper(folder)
        with distributed.Client({dask_cli.address!r}, set_as_default=False) as client:
            with tarry.config.set(dask_client=client):
                napper, rest = compute(
                    delayed(nap_first_time)(folder, 600),
                    [delayed(inc)(i) for i in range(6)],
                    scheduler="dask",
                )
        killer.join()
        (killed,) = pids_noted(Path(folder))
        report(rest=rest, again_elsewhere=napper != killed)
        """,
        timeout=300,
    ).ok()
    assert out.report == {"rest": list(range(1, 7)), "again_elsewhere": True}


def test_a_killed_scheduler_fails_the_compute_at_once_with_a_connection_error(
    dask_cli: DaskCluster,
) -> None:
    out = run_scenario(
        f"""
        import tempfile
        import distributed, tarry
        from tarry import compute, delayed
        from clusters.cluster_helpers import kill_once_noted
        from remote_helpers import inc, nap_noting

        folder = tempfile.mkdtemp()
        kill_once_noted(folder, {dask_cli.scheduler.pid})
        client = distributed.Client({dask_cli.address!r}, set_as_default=False)
        with tarry.config.set(dask_client=client):
            try:
                compute(delayed(nap_noting)(folder, 600), scheduler="dask")
            except ConnectionError as exc:
                report(during=str(exc), cause=type(exc.__cause__).__name__)
            try:
                compute(delayed(inc)(1), scheduler="dask")
            except ConnectionError as exc:
                report(after=str(exc))
        client.close()
        """,
        timeout=300,
    ).ok()
    during, after = out.report["during"], out.report["after"]
    assert during.startswith(f"lost the connection to the dask scheduler {dask_cli.address}")
    assert out.report["cause"] == "FutureCancelledError"
    assert after.startswith(f"the dask client is not connected to its scheduler {dask_cli.address}")
