"""A Ray cluster started with ``ray start --head``, reached by a driver in another process.

Ray connects a process to one cluster only, and the test session runs a
local one of its own, so the driver code runs in a fault scenario: a fresh
interpreter (:func:`harness.run_scenario`).
"""

from __future__ import annotations

import pytest
from cli import left_behind, ray_cluster
from harness import run_scenario  # importable once cli is imported

pytestmark = [pytest.mark.ray, pytest.mark.slow]
pytest.importorskip("ray")


def test_a_compute_on_a_cluster_started_by_the_command_line() -> None:
    with ray_cluster(num_cpus=2) as cluster:
        out = run_scenario(
            f"""
            import os
            import tarry
            from tarry import compute, delayed
            from remote_helpers import add, inc, pid

            with tarry.config.set(ray_address={cluster.address!r}):
                total, pids = compute(
                    delayed(add)(delayed(inc)(1), delayed(inc)(2)),
                    [delayed(pid)(i) for i in range(4)],
                    scheduler="ray",
                )
            import ray

            # Ray names the head by this machine's address, not 127.0.0.1
            port = ray.get_runtime_context().gcs_address.rpartition(":")[2]
            report(total=total, elsewhere=os.getpid() not in pids, port=port)
            """,
            timeout=300,
            env=cluster.env,
        ).ok()
    assert left_behind(cluster.tag) == []
    port = cluster.address.rpartition(":")[2]
    assert out.report == {"total": 5, "elsewhere": True, "port": port}


def test_a_killed_worker_costs_only_its_task_which_runs_again() -> None:
    with ray_cluster(num_cpus=2) as cluster:
        out = run_scenario(
            f"""
            import tempfile
            from pathlib import Path
            import tarry
            from tarry import compute, delayed
            from clusters.cluster_helpers import kill_first_napper, nap_first_time
            from remote_helpers import inc, pids_noted

            folder = tempfile.mkdtemp()
            killer = kill_first_napper(folder)
            with tarry.config.set(ray_address={cluster.address!r}):
                napper, rest = compute(
                    delayed(nap_first_time)(folder, 600),
                    [delayed(inc)(i) for i in range(6)],
                    scheduler="ray",
                )
            killer.join()
            (killed,) = pids_noted(Path(folder))
            report(rest=rest, again_elsewhere=napper != killed)
            """,
            timeout=300,
            env=cluster.env,
        ).ok()
    assert out.report == {"rest": list(range(1, 7)), "again_elsewhere": True}


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_a_killed_head_fails_the_compute_promptly_with_a_connection_error(how: str) -> None:
    with ray_cluster(num_cpus=2) as cluster:
        address = cluster.address if how == "gcs" else cluster.client_address
        out = run_scenario(
            f"""
            import tempfile
            import tarry
            from tarry import compute, delayed
            from clusters.cluster_helpers import kill_once_noted
            from remote_helpers import inc, nap_noting

            folder = tempfile.mkdtemp()

            with tarry.config.set(ray_address={address!r}):
                # on a busy machine, Ray's client server may fail to start a
                # server for a new client (ConnectionAbortedError): ask again
                for attempt in range(3):
                    try:
                        compute(delayed(inc)(0), scheduler="ray")
                        break
                    except ConnectionAbortedError:
                        if attempt == 2:
                            raise
                kill_once_noted(folder, {cluster.head.pid}, group=True)  # the head's daemons too
                try:
                    compute(delayed(nap_noting)(folder, 600), scheduler="ray")
                except ConnectionError as exc:
                    report(during=str(exc), type=type(exc).__name__)
                try:
                    compute(delayed(inc)(1), scheduler="ray")
                except ConnectionError as exc:
                    report(after=str(exc))
            """,
            timeout=400,
            env=cluster.env,
        )
    # before: the process was killed by Ray 60 s after the head, with no error
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.report.get("type") == "ClusterLostError", out.stderr[-3000:]
    assert out.report["during"].startswith(f"lost the Ray cluster at {address} (")
    assert out.report["after"].startswith(f"no Ray cluster answers at {address}: ")


def test_a_chain_of_large_arrays_spills_nothing() -> None:
    # 11 arrays of 50 MiB in a 300 MB object store: holding every result
    # until the end would spill; dropping each once its reader is done does not
    with ray_cluster(2, "--object-store-memory=300000000") as cluster:
        out = run_scenario(
            f"""
            import numpy as np
            import tarry
            from ray._private.internal_api import get_memory_info_reply, get_state_from_address
            from tarry import delayed

            def first(n):
                return np.ones(n, dtype=np.uint8)

            def step(a):
                return a + 1

            with tarry.config.set(ray_address={cluster.address!r}):
                x = delayed(first)(50 * 2**20)
                for _ in range(10):
                    x = delayed(step)(x)
                value = x.compute(scheduler="ray")
            stats = get_memory_info_reply(get_state_from_address({cluster.address!r})).store_stats
            report(
                values=sorted({{int(value.min()), int(value.max())}}),
                size=int(value.size),
                spilled=int(stats.spilled_bytes_total),
            )
            """,
            timeout=300,
            env=cluster.env,
        ).ok()
    assert out.report == {"values": [11], "size": 50 * 2**20, "spilled": 0}


def test_a_task_needing_both_cpus_runs_alone_and_one_cpu_tasks_run_together() -> None:
    with ray_cluster(num_cpus=2) as cluster:
        out = run_scenario(
            f"""
            import tempfile, time
            from pathlib import Path
            import tarry
            from tarry import compute, delayed

            def interval(seconds, n):
                began = time.time()
                time.sleep(seconds)
                return began, time.time()

            def meet(folder, me, other):
                # returns once the other task has begun too: both ran at once
                Path(folder, me).touch()
                give_up = time.monotonic() + 120  # the other never came: no hang
                while not Path(folder, other).exists():
                    if time.monotonic() > give_up:
                        return False
                    time.sleep(0.05)
                return True

            folder = tempfile.mkdtemp()
            whole = delayed(interval).options(resources={{"CPU": 2}})
            half = delayed(meet).options(resources={{"CPU": 1}})
            with tarry.config.set(ray_address={cluster.address!r}):
                a, b = compute(whole(0.5, 1), whole(0.5, 2), scheduler="ray")
                met = compute(half(folder, "a", "b"), half(folder, "b", "a"), scheduler="ray")
            report(apart=a[1] <= b[0] or b[1] <= a[0], met=list(met))
            """,
            timeout=300,
            env=cluster.env,
        ).ok()
    assert out.report == {"apart": True, "met": [True, True]}
