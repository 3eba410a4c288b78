"""Faults of the processes driver: what a failed run leaves running."""

from __future__ import annotations

import pytest
from harness import run_scenario

pytestmark = pytest.mark.processes


def test_a_failed_run_stops_its_other_tasks_so_neither_exit_nor_the_next_compute_waits() -> None:
    out = run_scenario(
        """
        import os, tempfile, time
        from pathlib import Path
        from tarry import compute, delayed
        from remote_helpers import exited, nap_noting, pids_noted, wait_for

        folder = tempfile.mkdtemp()

        def fail_once_the_nap_started(folder):
            assert wait_for(lambda: pids_noted(Path(folder)), 60)
            raise ValueError("failed while another task naps")

        nap = delayed(nap_noting)(folder, 600)
        bad = delayed(fail_once_the_nap_started)(folder)
        try:
            compute([nap, bad], scheduler="processes", num_workers=2)
        except ValueError as exc:
            report(error=str(exc))
        (napper,) = pids_noted(Path(folder))
        report(napper_gone=wait_for(lambda: exited(napper), 60))
        report(next=compute(delayed(sum)([1, 2]), scheduler="processes", num_workers=3)[0])
        """,
        timeout=180,
    ).ok()
    assert out.report == {
        "error": "failed while another task naps",
        "napper_gone": True,
        "next": 3,
    }
