"""What tarry asks of the operating system, and its portable mode (``TARRY_PORTABLE=1``).

The portable mode makes tarry on Linux take the ways it takes on macOS and
Windows; ``./dev test`` runs the scheduler tests a second time in it. Here:
that each probe answers as on those systems, that a bad value is refused,
and the conversions that only matter off Linux (a worker's clock, the
console's encoding), made visible by an artificial offset or encoding.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tarry import compute, delayed, profile

PROBES = """
import json, os
from tarry import _platform as p
from tarry._schedule.cpus import usable_cpus
print(json.dumps({
    "affinity": p.affinity(), "cgroups": p.cgroups(), "shm_dir": p.shm_dir(),
    "thread_states": p.thread_states(), "proc_children": p.proc_children(),
    "maps_removable_files": p.maps_removable_files(), "has_pwrite": p.has_pwrite(),
    "reparents_orphans": p.reparents_orphans(), "shared_perf_counter": p.shared_perf_counter(),
    "usable_cpus": usable_cpus(), "cpu_count": os.cpu_count(),
}))
"""


def _python(
    code: str, portable: str | None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    # the same tarry as this process's (PYTHONPATH is inherited)
    env = {k: v for k, v in os.environ.items() if k != "TARRY_PORTABLE"}
    if portable is not None:
        env["TARRY_PORTABLE"] = portable
    return subprocess.run(
        [*prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_portable_mode_turns_every_linux_only_probe_off() -> None:
    done = _python(PROBES, "1")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers == {
        "affinity": None,
        "cgroups": False,
        "shm_dir": None,
        "thread_states": False,
        "proc_children": False,
        "maps_removable_files": False,
        "has_pwrite": False,
        "reparents_orphans": False,
        "shared_perf_counter": False,
        "usable_cpus": answers["cpu_count"],
        "cpu_count": answers["cpu_count"],
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux probes")
def test_without_portable_mode_linux_probes_answer_for_linux() -> None:
    done = _python(PROBES, "0")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers["affinity"] == len(os.sched_getaffinity(0))
    for probe in ("cgroups", "shared_perf_counter", "has_pwrite", "maps_removable_files"):
        assert answers[probe], probe
    assert answers["reparents_orphans"]


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
def test_usable_cpus_follow_the_affinity_mask_except_in_portable_mode() -> None:
    """Off Linux there is no affinity mask to read: all the machine's CPUs count."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: an affinity mask of one CPU changes nothing")
    code = "from tarry._schedule.cpus import usable_cpus; print(usable_cpus())"
    pinned = _python(code, "0", ("taskset", "-c", "0"))
    portable = _python(code, "1", ("taskset", "-c", "0"))
    assert (pinned.returncode, portable.returncode) == (0, 0), pinned.stderr + portable.stderr
    assert int(pinned.stdout) == 1
    assert int(portable.stdout) == os.cpu_count()


def test_a_value_portable_mode_does_not_know_is_refused_at_import() -> None:
    done = _python("import tarry", "yes")
    assert done.returncode != 0
    assert "TARRY_PORTABLE='yes' is not understood: set it to 1" in done.stderr


def _slow_identity(x: int) -> int:
    time.sleep(0.05)
    return x


@pytest.mark.processes
def test_worker_timings_are_converted_to_the_parents_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker adds the offset between its clock and the parent's, measured when it starts.

    The parent pretends its perf_counter reads 1000 s more than it does (its
    anchor, the wall-clock time of its clock's zero, 1000 s earlier): the
    tasks' timings come back 1000 s later than the run's own readings.
    """
    from tarry._schedule.processes import pool, shutdown_pool

    real = time.time() - time.perf_counter()
    monkeypatch.setattr(pool, "clock_anchor", lambda: real - 1000.0)
    shutdown_pool()  # workers that start now get the offset
    try:
        with profile() as prof:
            assert compute([delayed(_slow_identity)(i) for i in range(2)], scheduler="processes",
                           num_workers=1) == ([0, 1],)  # fmt: skip
    finally:
        shutdown_pool()
    (record,) = prof.records
    assert len(record.events) == 2
    for event in record.events:
        # within the run, 1000 s later (a generous margin: this is no speed bound)
        assert record.start + 900 < event.start < event.end < record.end + 1100


def test_output_the_console_cannot_encode_is_replaced_not_fatal() -> None:
    """A Windows console redirected to a file writes in its legacy code page."""
    code = "from tarry._cli import tolerate_unencodable_output as t; t(); print('inc → add ×2')"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"inc ? add ?2"


#: changed by the test below in this process only
_STATE = ["as imported"]


def _state() -> str:
    return _STATE[0]


@pytest.mark.processes
def test_worker_processes_start_fresh_as_windows_spawn_does() -> None:
    """loky starts every worker as a new interpreter (fork + exec on POSIX): nothing of the
    parent's state at run time reaches it, on any system, so no start method needs forcing."""
    from tarry._schedule.processes import shutdown_pool

    _STATE[0] = "changed in the parent"
    shutdown_pool()  # workers that start now
    try:
        (state,) = compute(delayed(_state)(), scheduler="processes", num_workers=1)
    finally:
        _STATE[0] = "as imported"
        shutdown_pool()
    assert state == "as imported"
