"""Functions the backend tests run in worker processes (Ray, Dask, loky).

One module, importable by every worker: the tests directory is on their
path. Each fault helper ends or breaks the process it runs in. The few
helpers after ``nap_noting`` run in the test itself, to watch those tasks.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tarry import compute, delayed


def pid(_: Any = None) -> int:
    return os.getpid()


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def size(data: Any, extra: int = 0) -> int:
    return len(data) + extra


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def nap_noting(folder: str, seconds: float) -> float:
    """Nap; a file ``<pid>.started`` in ``folder`` says it began, ``<pid>.ended`` that it ended."""
    Path(folder, f"{os.getpid()}.started").touch()
    time.sleep(seconds)
    Path(folder, f"{os.getpid()}.ended").touch()
    return seconds


def meet(folder: str, me: str, other: str, seconds: float = 20.0) -> bool:
    """Note ``me`` in ``folder``, then wait for ``other``: whether the two ran at the same time.

    ``seconds`` only bounds how long a task that runs alone waits in vain.
    """
    Path(folder, me).touch()
    return wait_for(lambda: Path(folder, other).exists(), seconds)


def pids_noted(folder: Path, what: str = "started") -> list[int]:
    """The pids of the ``nap_noting`` calls in ``folder`` that have ``what`` (started, ended)."""
    return sorted(int(path.stem) for path in folder.glob(f"*.{what}"))


def exited(pid: int) -> bool:
    """The process has ended (a zombie its parent has not reaped yet counts)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it holds.

    The timeout is only how long a broken run is waited for, not a bound on speed.
    """
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def fail_first(folder: str, times: int, error: type[Exception]) -> int:
    """Raise ``error`` on the first ``times`` calls (counted in ``folder``), then succeed."""
    attempt = len(list(Path(folder).iterdir())) + 1
    Path(folder, f"attempt-{attempt}").touch()
    if attempt <= times:
        raise error(f"attempt {attempt}")
    return attempt


def touch(path: str) -> str:
    Path(path).write_text("ran")
    return path


def exit_now(_: int) -> int:
    os._exit(1)


def kill_self(_: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def segfault(_: int) -> int:
    ctypes.string_at(0)
    return 0


def _refuse_in(parent: int) -> str:
    if os.getpid() == parent:
        raise AssertionError("unpickled in the caller")
    return "moved"


class WorkerOnly:
    """A value that may be unpickled in a worker, never in the ``parent`` process."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def __reduce__(self) -> tuple[Any, ...]:
        return _refuse_in, (self.parent,)


def make_worker_only(parent: int) -> WorkerOnly:
    return WorkerOnly(parent)


def describe(a: Any, b: Any) -> str:
    return f"{type(a).__name__}+{b}"


class NeedsTwoError(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")


def raise_needs_two(x: int) -> int:
    raise NeedsTwoError(x, x + 1)


def interrupt_two_naps(folder: Path, **options: Any) -> list[int]:
    """Ctrl-C a compute of two 30 s naps once both run; the pids that napped.

    Asserts that the compute raised KeyboardInterrupt while both were still
    napping (neither noted its end).
    """

    def interrupt_once_both_nap() -> None:
        wait_for(lambda: len(pids_noted(folder)) == 2, timeout=60)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_once_both_nap, daemon=True)
    sender.start()
    naps = [delayed(nap_noting)(str(folder), 30), delayed(nap_noting)(str(folder), 31)]
    with pytest.raises(KeyboardInterrupt):
        compute(naps, **options)
    sender.join()
    napping = pids_noted(folder)
    assert len(napping) == 2
    assert pids_noted(folder, "ended") == []  # returned while both still napped
    return napping
