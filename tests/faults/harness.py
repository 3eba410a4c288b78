"""Run one fault scenario in its own Python process, with a hard timeout.

A scenario is a script. It runs in a fresh interpreter, so a hang fails the
test (the process group is killed after ``timeout`` seconds) instead of
hanging the suite, and a leak shows after the interpreter has gone: child
processes still alive, files left in ``/dev/shm``. The timeout is how long a
broken run is waited for, never a bound on speed.

Inside the script, three names are predefined:

* ``report(**values)``: hand JSON-able values back to the test
  (:attr:`Outcome.report` merges every call);
* ``snapshot()``: this process's threads, open file descriptors and live
  child processes, to compare before and after the faults;
* ``tests``: the tests folder is on ``sys.path``, so ``remote_helpers`` and
  the scenario helpers of :mod:`fault_helpers` import in worker processes too.

Examples
--------
>>> out = run_scenario("report(answer=6 * 7)")
>>> out.report, out.returncode, out.leaks
({'answer': 42}, 0, [])
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Outcome", "ScenarioHungError", "run_scenario", "shm_entries", "tagged"]

TESTS = Path(__file__).resolve().parent.parent
_MARK = "@@tarry-fault-report@@"
#: the environment variable that tags every process a scenario starts (children inherit it)
TAG = "TARRY_FAULT_SCENARIO"
#: how long processes a scenario started get to exit after it ended, before
#: they count as leaked (loky's workers notice a closed pipe at their next poll)
GRACE = 30.0

_PRELUDE = f"""
import json as _json, os as _os, signal as _signal, sys as _sys, threading as _threading
_sys.path[:0] = [{str(TESTS)!r}, {str(TESTS / "faults")!r}]
# Ctrl-C as an interactive program gets it, whoever started the suite: a
# shell's background job (``./.ci/run &``) starts with SIGINT ignored, and a
# child inherits that, so a scenario's Ctrl-C would never arrive
_signal.signal(_signal.SIGINT, _signal.default_int_handler)

def report(**values):
    print({_MARK!r} + _json.dumps(values), flush=True)

def snapshot():
    import psutil
    me = psutil.Process()
    alive = [c for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    return {{
        "threads": sorted(t.name for t in _threading.enumerate()),
        "fds": me.num_fds(),
        "children": len(alive),
    }}
"""


class ScenarioHungError(AssertionError):
    """The scenario did not end within its timeout: a hang."""


@dataclass
class Outcome:
    """How a scenario ended."""

    returncode: int
    stdout: str
    stderr: str
    #: the values the script passed to ``report()``, merged
    report: dict[str, Any] = field(default_factory=dict)
    #: what it left behind: processes still alive, files in /dev/shm
    leaks: list[str] = field(default_factory=list)

    def ok(self) -> Outcome:
        """Assert a clean exit and no leak; return self, for chaining."""
        assert self.returncode == 0, f"exit code {self.returncode}\n{self.stderr}"
        assert not self.leaks, f"left behind: {self.leaks}\n{self.stderr}"
        return self


def shm_entries() -> set[str]:
    """The tarry entries of ``/dev/shm`` (empty where it does not exist)."""
    shm = Path("/dev/shm")
    return {p.name for p in shm.glob("tarry-*")} if shm.is_dir() else set()


def tagged(tag: str, variable: str = TAG) -> list[psutil.Process]:
    """The live processes whose environment has ``variable=tag`` (zombies not counted)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(variable) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def run_scenario(
    body: str,
    *,
    timeout: float = 120.0,
    interrupt_after: str | None = None,
    env: dict[str, str] | None = None,
    grace: float = GRACE,
) -> Outcome:
    """Run ``body`` as a script in a new interpreter; raise :class:`ScenarioHungError` on timeout.

    ``interrupt_after``: once the script prints this line, send it SIGINT
    (as Ctrl-C in a terminal does). ``grace``: how long processes it started
    may take to exit after it ended.
    """
    tag = uuid.uuid4().hex
    before = shm_entries()
    script = _PRELUDE + "\n" + textwrap.dedent(body)
    # Files, not pipes: a process the scenario leaks would hold a pipe open,
    # and reading it to the end would wait for that process.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {}), TAG: tag, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        signalled = interrupt_after is None
        while proc.poll() is None and time.monotonic() < deadline:
            if not signalled:
                out.seek(0)
                if any(line.strip() == interrupt_after for line in out):
                    proc.send_signal(signal.SIGINT)
                    signalled = True
            time.sleep(0.02)
        hung = proc.poll() is None
        if hung:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if hung:
        for stray in tagged(tag):
            stray.kill()
        raise ScenarioHungError(
            f"the scenario did not end within {timeout} s\n--- stdout\n{stdout}\n"
            f"--- stderr\n{stderr}"
        )
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            report.update(json.loads(line[len(_MARK) :]))
    leaks: list[str] = []
    deadline = time.monotonic() + grace
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for leaked in left:
        leaks.append(f"process {leaked.pid} ({' '.join(leaked.cmdline())[:80]})")
        leaked.kill()
    leaks.extend(
        f"/dev/shm/{name}"
        for name in sorted(shm_entries() - before)
        if not _someone_elses(name, tag)
    )
    return Outcome(proc.returncode, stdout, stderr, report, leaks)


def _someone_elses(name: str, tag: str) -> bool:
    """A folder named after a live process the scenario did not start (a test run beside it)."""
    pid = name.removeprefix("tarry-workers-").partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        return psutil.Process(int(pid)).environ().get(TAG) != tag
    except (psutil.Error, OSError):
        return False
