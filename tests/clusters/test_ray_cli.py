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
