"""Faults of the ``"ray"`` backend that end a process: each runs in a scenario of its own.

These start a local Ray of their own (beside the test session's), as a user's
script does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from harness import run_scenario

pytestmark = [pytest.mark.ray, pytest.mark.slow]
pytest.importorskip("ray")


def test_many_failing_computes_leave_the_driver_alive() -> None:
    # Before, one of the first few dozen killed the process, with no Python
    # error (the test suite ended silently): see the test above
    out = run_scenario(
        """
        import ray
        from tarry import compute, delayed

        def bad(i):
            raise ValueError(i)

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        failed = 0
        for i in range(200):
            try:
                compute(delayed(bad)(i), scheduler="ray")
            except ValueError:
                failed += 1
        report(failed=failed)
        """,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.report == {"failed": 200}


def test_the_local_cluster_tarry_starts_is_its_own_and_uses_a_token() -> None:
    # Short: Ray's unix sockets go under it (a socket path has at most 107 bytes)
    folder = Path(tempfile.mkdtemp(prefix="tr-", dir="/tmp"))
    try:
        # as `ray start --head` notes its cluster for the next ray.init() of the machine
        (folder / "ray").mkdir()
        (folder / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")  # nothing listens
        out = run_scenario(
            """
            import os
            os.environ.pop("RAY_AUTH_MODE", None)  # the user chose no mode
            from tarry import delayed

            value = delayed(abs)(-6).compute(scheduler="ray")
            import ray
            from ray._raylet import AuthenticationMode, get_authentication_mode

            report(
                value=value,
                token=get_authentication_mode() == AuthenticationMode.TOKEN,
                left_set="RAY_AUTH_MODE" in os.environ,
                address=ray.get_runtime_context().gcs_address,
            )
            """,
            timeout=300,
            env={"RAY_TMPDIR": str(folder)},
        )
        noted = (folder / "ray" / "ray_current_cluster").read_text()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.report.pop("address") != noted
    assert out.report == {"value": 6, "token": True, "left_set": False}
