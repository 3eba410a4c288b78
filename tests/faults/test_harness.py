"""The fault harness itself: it must see a hang, a leaked process and a leaked file."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import ScenarioHungError, run_scenario


def test_a_scenario_that_never_ends_fails_as_a_hang() -> None:
    with pytest.raises(ScenarioHungError, match="did not end within"):
        run_scenario("import time; report(started=True); time.sleep(600)", timeout=5)


def test_a_process_left_running_after_exit_is_a_leak() -> None:
    out = run_scenario(
        """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        """,
        grace=1,
    )
    assert out.returncode == 0
    assert len(out.leaks) == 1
    assert out.leaks[0].startswith("process ")


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm")
def test_a_file_left_in_dev_shm_is_a_leak() -> None:
    out = run_scenario("import tempfile; tempfile.mkstemp(prefix='tarry-leak-', dir='/dev/shm')")
    assert len(out.leaks) == 1
    assert out.leaks[0].startswith("/dev/shm/tarry-leak-")
    Path(out.leaks[0]).unlink()


def test_reports_and_snapshots_come_back() -> None:
    out = run_scenario("report(before=snapshot()); report(two=2)").ok()
    assert out.report["two"] == 2
    assert out.report["before"]["children"] == 0
    assert "MainThread" in out.report["before"]["threads"]


def test_sigint_arrives_once_the_script_says_so() -> None:
    out = run_scenario(
        """
        import time
        try:
            print("ready", flush=True)
            time.sleep(600)
        except KeyboardInterrupt:
            report(interrupted=True)
        """,
        interrupt_after="ready",
    ).ok()
    assert out.report == {"interrupted": True}
