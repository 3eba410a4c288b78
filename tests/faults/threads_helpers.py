"""What the thread fault scenarios run: tasks that hang, fail or meet, and a thread limit.

Scenario scripts import this module (the faults folder is on their path).
Nothing here bounds how long a working run takes: :data:`FOREVER` is how
long an abandoned task blocks (far longer than any scenario's timeout, so
waiting for it shows as a hang), :data:`PATIENCE` how long a task waits for
others before giving up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: seconds an abandoned task blocks: a run that waits for it hangs the scenario
FOREVER = 600.0
#: seconds a task waits for others to join it; only a broken run waits this long
PATIENCE = 60.0

#: set by nothing in a working run: the tasks blocked on it are abandoned
never = threading.Event()
_lock = threading.Lock()
_started = threading.Condition(_lock)
_count = 0


def hang(i: int = 0) -> int:
    """Block for :data:`FOREVER` (on :data:`never`), noting that it started."""
    global _count
    with _started:
        _count += 1
        _started.notify_all()
    never.wait(FOREVER)
    return i


def hanging() -> int:
    """How many :func:`hang` calls have started."""
    with _lock:
        return _count


def fail_once_hanging(count: int = 1) -> int:
    """Raise ``ValueError("boom")`` once ``count`` :func:`hang` calls have started."""
    with _started:
        _started.wait_for(lambda: _count >= count, PATIENCE)
    raise ValueError("boom")


class Meeting:
    """Tasks that each wait until ``size`` of them run at once (or :data:`PATIENCE` passes).

    ``most`` is the most that ran at once: a scheduler that cannot run
    ``size`` tasks side by side leaves it below ``size`` (and, once the
    patience is spent, the tasks stop waiting).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.met = threading.Event()

    def task(self, i: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running >= self.size:
                self.met.set()
        if not self.met.wait(PATIENCE):
            self.met.set()
        with self.lock:
            self.running -= 1
        return i


@contextmanager
def thread_starts_fail(times: int, prefix: str = "tarry-worker") -> Iterator[list[str]]:
    """The next ``times`` starts of threads named ``prefix...`` raise "can't start new thread".

    As when the process hits its thread limit (``RLIMIT_NPROC``, memory):
    ``threading.Thread.start`` raises ``RuntimeError``. Yields the names of
    the threads refused.
    """
    refused: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith(prefix) and len(refused) < times:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        original(self)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield refused
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
