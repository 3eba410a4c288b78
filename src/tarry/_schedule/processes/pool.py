"""The shared pool of worker processes: a loky executor that every run leases.

Computes from any thread share one pool, started on first use and kept warm
between computes (idle workers retire after :data:`IDLE_TIMEOUT`). A run
takes a :class:`Lease` (:func:`get_pool`) and submits through it; the lease
knows the run's work in flight, and that is what keeps concurrent callers
from breaking each other:

* **Resizing.** A run that needs more workers than the pool has gets a new,
  larger pool. The old one is retired: what runs in it finishes, the runs
  that used it submit their next work to the new one, and it is stopped
  once nothing of a live run is left in it. Nobody waits for a resize.
* **Stopping a run's tasks** (Ctrl-C, or a run that failed while others of
  its tasks still run: :func:`forget_pool` with ``kill=True``). Only
  stopping the processes stops a running task, and loky stops the whole
  pool when one of its processes goes. So the pool is retired, and its
  workers are killed as soon as no other run has work in it: at once, or
  when the other runs' work there has come back (they go on in a new pool).
  Work left behind never holds up anyone: not the next compute, not the exit.
* **A worker that dies** breaks the pool, and loky stops its other workers
  with it. The run whose task was running in the dead worker fails with a
  :class:`~tarry._schedule.errors.WorkerDiedError`; what the other runs
  lost runs again in a new pool (up to :data:`RETRIES` times), so their
  computes do not notice. Who is to blame comes from the markers (see
  :mod:`~tarry._schedule.processes.markers`): a worker notes the run's token
  next to each task's key, and the markers of the workers found dead are
  read when the pool breaks, before loky stops the others. A batch that had
  already consumed a large input (a worker removes an input's file once it
  has read it for the last time) cannot run again: it fails with an error
  that says another compute broke the pool.
* **Files.** Each pool has a number, and its workers' files carry it. Once
  a stopped pool's workers are gone, what they left is removed: values cut
  short or never handed over, and markers (:func:`markers.sweep
  <tarry._schedule.processes.markers.sweep>`).

The cost, per batch: a second future (the one the run holds, so that a
batch can run again unseen) and a token that travels with the call, a few
microseconds next to the ~100 µs of CPU that loky spends on each call.

After a fork, the child starts with no pool (the parent's executor is of no
use there: its threads did not survive the fork). While a thread is inside
this module's code it holds its locks (and loky's), so a compute started
there, by a signal handler, runs in the caller (see
:func:`~tarry._schedule.processes.worker.in_worker`).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any

from tarry._schedule.processes.markers import (
    marker_dir,
    own_resource_tracker,
    runs_of_dead_workers,
    sweep,
)
from tarry._schedule.processes.worker import in_pool_code, init_worker, run_for
from tarry._schedule.timing import clock_anchor
from tarry._schedule.transfer import Spilled

__all__ = [
    "IDLE_TIMEOUT",
    "RETRIES",
    "Lease",
    "forget_pool",
    "get_pool",
    "shutdown_pool",
]


#: seconds an idle worker waits for work before it exits
IDLE_TIMEOUT = 300.0
#: times the work lost with a pool that another run's task broke runs again:
#: as many as dask.distributed allows a task by default (allowed-failures)
RETRIES = 3


class _Pool:
    """One loky executor, and the work in it."""

    __slots__ = ("blamed", "current", "executor", "keep", "number", "pending", "size", "stopped")

    def __init__(self, size: int) -> None:
        import loky

        self.number = next(_numbers)
        own_resource_tracker()  # before loky registers the executor's semaphores
        self.executor: Any = loky.ProcessPoolExecutor(
            max_workers=size,
            timeout=IDLE_TIMEOUT,
            initializer=init_worker,
            initargs=(os.getpid(), self.number, clock_anchor()),
        )
        self.size = size
        #: the pool new work goes to
        self.current = True
        self.stopped = False
        #: calls submitted and not back yet
        self.pending: set[_Attempt] = set()
        #: tokens of the runs whose tasks broke it; None while it works
        self.blamed: frozenset[int] | None = None
        #: pids of its dead workers whose markers the run they broke reads
        self.keep: frozenset[int] = frozenset()

    def works(self) -> bool:
        flags = self.executor._flags
        return self.blamed is None and not (flags.broken or flags.shutdown)


class Lease:
    """A run's hold on the shared pool: it submits through it, and the pool knows its work."""

    __slots__ = ("ended", "pending", "pid", "pool", "token", "workers")

    def __init__(self, pool: _Pool, workers: int) -> None:
        #: where its work goes
        self.pool = pool
        self.workers = workers
        self.token = next(_tokens)
        #: its calls not back yet
        self.pending: set[_Attempt] = set()
        self.ended = False
        self.pid = os.getpid()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """``fn(*args)`` in a worker; what another run's broken pool lost runs again."""
        in_pool_code.depth += 1
        try:
            attempt = _Attempt(self, fn, args)
            attempt.launch()
        finally:
            in_pool_code.depth -= 1
        return attempt


class _Attempt(Future[Any]):
    """The future of a call through a lease: run again if another run breaks its pool."""

    def __init__(self, lease: Lease, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__()
        self.lease = lease
        self.fn = fn
        self.args = args
        self.pool = lease.pool
        self.inner: Future[Any] | None = None
        self.tries = 0

    def launch(self) -> None:
        """Submit the call to the lease's pool (moving first if that pool is retired)."""
        lease = self.lease
        while True:
            stop: list[_Stop] = []
            with _lock:
                if not lease.pool.current:  # retired: its next work goes to the current pool
                    lease.pool, stop = _usable(lease.workers)
                pool = self.pool = lease.pool
                pool.pending.add(self)  # from now on, the pool is not stopped under it
                lease.pending.add(self)
            _stop(stop)
            try:
                inner = pool.executor.submit(run_for, lease.token, self.fn, *self.args)
                break
            except Exception as exc:
                with _lock:
                    pool.pending.discard(self)
                    lease.pending.discard(self)
                if not _lost_with_pool(exc) or not self._carry_on(pool):
                    raise
        self.inner = inner
        inner.add_done_callback(self._landed)

    def cancel(self) -> bool:
        inner = self.inner  # None once landed, or while it is launched again
        if inner is not None:
            in_pool_code.depth += 1  # its callback takes the lock, in this thread
            try:
                inner.cancel()  # if it was not running yet, its callback cancels this one
            finally:
                in_pool_code.depth -= 1
        return self.cancelled()

    def _landed(self, inner: Future[Any]) -> None:
        pool = self.pool
        with _lock:
            pool.pending.discard(self)
            self.lease.pending.discard(self)
        # no cycle between the two: the result (and the files of its large
        # values, removed when it goes) must go with the last reference
        self.inner = None
        try:
            value = inner.result()
        except CancelledError:
            Future.cancel(self)
        except BaseException as error:
            self._failed(error)
        else:
            self.args = ()  # the inputs are of no use any more: let them go
            self.set_result(value)
        if not pool.current:  # read after the discard: a retirement since then stops it
            with _lock:
                stop = _stop_if_idle(pool)
            _stop(stop)

    def _failed(self, error: BaseException) -> None:
        try:
            if _lost_with_pool(error) and self._again(error):
                return
        except Exception as exc:  # it cannot run again: say why, with the loss as cause
            exc.__cause__ = error
            error = exc
        self.args = ()
        self.set_exception(error)

    def _again(self, error: BaseException) -> bool:
        """Run the call again after a loss that another run caused; whether it does."""
        if not self._carry_on(self.pool):
            return False
        if not _inputs_intact(self.args):
            raise BrokenProcessPool(
                f"another compute broke the shared process pool ({error}) while this batch "
                "ran in it, and the batch cannot run again: it had already consumed its "
                "large inputs"
            )
        self.launch()
        return True

    def _carry_on(self, lost: _Pool) -> bool:
        """Whether the call goes on elsewhere after losing ``lost``; not if its run broke it."""
        with _lock:
            # the first loss noticed is reported before loky stops the other workers
            blamed = lost.blamed if lost.blamed is not None else _blame(lost)
            lease = self.lease
            if self.tries >= RETRIES or lease.ended or lease.pid != os.getpid():
                return False
            self.tries += 1
            return lease.token not in blamed


def _lost_with_pool(error: BaseException) -> bool:
    """Whether ``error`` is the loss of a call with its pool (broken, or shut down)."""
    from loky.process_executor import ShutdownExecutorError

    return isinstance(error, (BrokenProcessPool, ShutdownExecutorError))


def _inputs_intact(args: tuple[Any, ...]) -> bool:
    """Whether the files of the large values among ``args`` (or their dicts' values) are there."""
    found = [v for a in args for v in (a.values() if isinstance(a, dict) else (a,))]
    return all(os.path.exists(v.path) for v in found if type(v) is Spilled)


_lock = threading.Lock()
_current: _Pool | None = None
_numbers = itertools.count(1)
_tokens = itertools.count(1)
#: the pool a forked child inherited: kept, never used (see _after_fork_in_child)
_inherited: list[_Pool] = []


def get_pool(workers: int) -> tuple[Lease, int]:
    """A lease on the shared pool, which has at least ``workers`` processes, and its size."""
    in_pool_code.depth += 1
    try:
        with _lock:
            pool, stop = _usable(workers)
            lease = Lease(pool, workers)
        _stop(stop)
        return lease, pool.size
    finally:
        in_pool_code.depth -= 1


def forget_pool(pool: Lease, kill: bool = False) -> None:
    """The lease's pool broke (the next compute starts a new one); with ``kill``, its run ends.

    ``kill``: the run's work still running stops: the pool is retired, and
    its workers are killed once no other run has work in it.
    """
    in_pool_code.depth += 1
    try:
        with _lock:
            stop: list[_Stop] = []
            if kill:
                stop = _end(pool)
            elif not pool.pool.works():
                stop = _retire(pool.pool)
        _stop(stop)
    finally:
        in_pool_code.depth -= 1


def shutdown_pool() -> None:
    """Stop the worker processes now; the next ``"processes"`` compute starts new ones.

    Work submitted before finishes first; computes still running go on in
    a new pool.

    Examples
    --------
    >>> shutdown_pool()
    """
    in_pool_code.depth += 1
    try:
        with _lock:
            pool = _current
            stop = _retire(pool) if pool is not None else []
        if pool is not None:
            pool.executor.shutdown(wait=True)
            with _lock:
                stop += _stop_if_idle(pool)
        _stop(stop)
    finally:
        in_pool_code.depth -= 1


# -- with _lock held: bookkeeping; what returns a list returns the pools to stop ---------


#: a pool to stop, and whether its workers must be killed (work of ended runs)
_Stop = tuple[_Pool, bool]


def _usable(workers: int) -> tuple[_Pool, list[_Stop]]:
    """The current pool if it works and has ``workers`` processes, else a new one; and to stop."""
    global _current
    pool = _current
    if pool is not None and pool.works() and pool.size >= workers:
        return pool, []
    size = max(workers, pool.size if pool is not None and pool.works() else 0)
    stop = _retire(pool) if pool is not None else []
    _current = _Pool(size)
    return _current, stop


def _retire(pool: _Pool) -> list[_Stop]:
    """``pool`` takes no new work; stopped now if no live run has work in it."""
    _detach(pool)
    return _stop_if_idle(pool)


def _detach(pool: _Pool) -> None:
    global _current
    if _current is pool:
        _current = None
    pool.current = False


def _stop_if_idle(pool: _Pool) -> list[_Stop]:
    """A retired pool with no work of a live run in it, to stop (killed if work is left)."""
    if pool.current or pool.stopped or any(not a.lease.ended for a in pool.pending):
        return []
    pool.stopped = True
    return [(pool, bool(pool.pending))]


def _end(lease: Lease) -> list[_Stop]:
    """The run of ``lease`` ended; the pools its work is left in are retired."""
    if lease.ended or lease.pid != os.getpid():  # ended already, or before a fork
        return []
    lease.ended = True
    left = {a.pool for a in lease.pending}
    return [s for pool in left for s in _retire(pool)]


def _blame(pool: _Pool) -> frozenset[int]:
    """Note (and return) the runs whose tasks ran in the workers of ``pool`` found dead now.

    Called when the first call lost with a broken pool lands, which loky
    reports before it stops the pool's other workers: the dead are the
    workers that broke it.
    """
    processes = list(getattr(pool.executor, "_processes", {}).values())
    try:
        ready = wait([p.sentinel for p in processes], timeout=0)
    except (OSError, ValueError):  # closed already: the workers were joined
        ready = []
    dead = [p.pid for p in processes if p.sentinel in ready]
    runs = runs_of_dead_workers(marker_dir(), pool.number, dead)
    live = {a.lease.token for a in pool.pending if not a.lease.ended}
    pool.blamed = frozenset(runs.values())
    pool.keep = frozenset(pid for pid, token in runs.items() if token in live)
    _detach(pool)  # stopped when its last lost call has landed
    return pool.blamed


# -- without the lock ---------------------------------------------------------------------


def _stop(pools: list[_Stop]) -> None:
    """Stop each pool, then remove the files its workers left once they are gone."""
    for pool, kill in pools:
        manager = getattr(pool.executor, "_executor_manager_thread", None)
        pool.executor.shutdown(wait=False, kill_workers=kill)
        if manager is not None:  # it started workers
            threading.Thread(
                target=_sweep_after,
                args=(manager, pool.number, pool.keep),
                name="tarry-pool-sweep",
                daemon=True,
            ).start()


def _sweep_after(manager: threading.Thread, number: int, keep: frozenset[int]) -> None:
    manager.join()  # it ends once it has stopped and joined the workers
    sweep(marker_dir(), number, keep)


def _after_fork_in_child() -> None:
    global _lock, _current
    # The parent's executor is of no use here: its threads and workers stayed
    # behind. It is kept, not dropped: dropping it would wake the parent's
    # manager thread through a pipe the child shares, under a lock another
    # thread of the parent may have held at the fork.
    if _current is not None:
        _inherited.append(_current)
    _lock = threading.Lock()
    _current = None
    executors = sys.modules.get("loky.process_executor")
    if executors is not None:
        # loky does the same in the children that multiprocessing forks
        executors._threads_wakeups.clear()


if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
