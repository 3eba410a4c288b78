"""The pool of daemon threads the ``"threads"`` backend borrows its helpers from.

One process-wide pool (:func:`default_pool`) is started on first use and
shared by every threaded compute, nested and concurrent ones too, so nesting
never starts a new pool. Its threads retire after ``idle_timeout`` seconds
without work. A job is never queued: :meth:`WorkerPool.submit` hands it to
a thread at once or says no, and the backend then runs the tasks itself. So
no job ever waits for a thread that a nested compute holds (no deadlock),
and a refused thread start (the system's limit on threads) costs one retry
later, not the run.

At exit, idle threads are stopped and joined; busy ones run work that was
abandoned (a run that failed, timed out or was interrupted leaves its
running tasks behind): as daemons they do not hold the interpreter, so exit
does not wait for them.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import time
from collections.abc import Callable

from tarry._schedule.cpus import usable_cpus

__all__ = ["RETRY_START", "WorkerPool", "default_pool", "shutdown_default_pool"]

#: seconds during which a pool tries no thread start after the system
#: refused one ("can't start new thread"): a refusal costs about as much as
#: a start, and a limit (RLIMIT_NPROC, memory) rarely lifts sooner; the
#: threads backend's recruiter looks again after as long (its LOOK_INTERVAL)
RETRY_START = 0.01
#: seconds :func:`shutdown_default_pool` waits, in all, for threads to end
SHUTDOWN_WAIT = 5.0


class WorkerPool:
    """Daemon threads that run submitted jobs; started on demand, retired when idle.

    Parameters
    ----------
    max_threads
        Upper bound on live threads.
    idle_timeout
        Seconds a thread waits for a job before it exits.

    Examples
    --------
    >>> pool = WorkerPool(max_threads=1)
    >>> done = threading.Event()
    >>> pool.submit(lambda: done.wait(5))
    True
    >>> pool.submit(done.set)  # its one thread is busy: not taken
    False
    >>> done.set()
    >>> pool.shutdown()
    >>> pool.thread_count()
    0
    """

    def __init__(self, max_threads: int, idle_timeout: float = 5.0) -> None:
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        # one token per idle thread: a submitter that takes one knows a
        # thread will pick its job up; otherwise it starts a thread.
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        #: threads started and not ended (never one whose start failed)
        self._threads: set[threading.Thread] = set()
        #: threads running a job
        self._busy: set[threading.Thread] = set()
        self._names = itertools.count()
        self._closed = False
        #: no thread start is tried before this time (see RETRY_START)
        self._refused_until = 0.0

    def submit(self, job: Callable[[], None]) -> bool:
        """Run ``job()`` on an idle thread, or a new one; whether a thread took it.

        False, and ``job`` is dropped, when the pool is shut down, or every
        one of ``max_threads`` threads is busy, or the system refused a new
        thread. ``job`` must not raise.
        """
        with self._lock:  # against shutdown(): a job queued after its stop signals would be lost
            if self._closed:
                return False
            if self._idle.acquire(blocking=False):
                self._jobs.put(job)
                return True
            if len(self._threads) >= self.max_threads or time.monotonic() < self._refused_until:
                return False
            # the job travels in a list the thread empties: a thread keeps its
            # args for life, and a job holds a run with all its values
            thread = threading.Thread(
                target=self._work, args=([job],), name=f"tarry-worker-{next(self._names)}",
                daemon=True,
            )  # fmt: skip
            try:
                thread.start()
            except RuntimeError:  # "can't start new thread": the system's limit, for now
                self._refused_until = time.monotonic() + RETRY_START
                return False
            # under the lock: the thread cannot end (and discard itself) before this
            self._threads.add(thread)
        return True

    def thread_count(self) -> int:
        """Number of live pool threads."""
        with self._lock:
            return len(self._threads)

    def _work(self, first: list[Callable[[], None]]) -> None:
        me = threading.current_thread()
        job: Callable[[], None] | None = first.pop()
        try:
            while job is not None:
                with self._lock:
                    self._busy.add(me)
                job()
                with self._lock:
                    self._busy.discard(me)
                self._idle.release()
                del job  # an idle thread must not keep its last run alive
                job = self._next_job()
        finally:
            with self._lock:
                self._threads.discard(me)
                self._busy.discard(me)

    def _next_job(self) -> Callable[[], None] | None:
        """The next job, or None once idle for ``idle_timeout`` or told to stop."""
        while True:
            try:
                return self._jobs.get(timeout=self.idle_timeout)
            except queue.Empty:
                if self._idle.acquire(blocking=False):
                    return None  # took back its own token: nobody counts on it
                # a submitter took our token: its job is on the way

    def shutdown(self, timeout: float = SHUTDOWN_WAIT, *, wait_busy: bool = True) -> None:
        """Stop every thread, idle ones now, busy ones once their job ends.

        Waits up to ``timeout`` seconds in all for them to end; with
        ``wait_busy=False`` only for the idle ones.
        """
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            busy = set(self._busy)
            for _ in threads:  # after every job taken: the queue is FIFO
                self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is threading.current_thread() or (thread in busy and not wait_busy):
                continue
            thread.join(max(0.0, deadline - time.monotonic()))


_default: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool shared by every threaded compute (started lazily)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = WorkerPool(max_threads=max(32, 4 * usable_cpus()))
        return _default


def shutdown_default_pool(*, wait_busy: bool = True) -> None:
    """Stop the default pool's threads now; the next compute starts a new pool.

    Waits up to :data:`SHUTDOWN_WAIT` seconds in all for its threads to end;
    with ``wait_busy=False`` only for the idle ones.
    """
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None:
        pool.shutdown(wait_busy=wait_busy)


# at exit, busy threads run abandoned work: waiting for them would hold the exit
atexit.register(shutdown_default_pool, wait_busy=False)
