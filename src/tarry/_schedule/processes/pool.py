"""The shared pool of worker processes: loky's reusable executor, one per process.

Started on first use, kept between computes (idle workers retire after
:data:`IDLE_TIMEOUT`), replaced after a worker dies or when a compute needs
more workers than it has.
"""

from __future__ import annotations

import threading
from typing import Any

from tarry._schedule.processes.worker import init_worker

__all__ = ["IDLE_TIMEOUT", "forget_pool", "get_pool", "shutdown_pool"]


#: seconds an idle worker waits for work before it exits
IDLE_TIMEOUT = 300.0


_pool_lock = threading.Lock()
_pool: Any = None
_pool_size = 0


def get_pool(workers: int) -> tuple[Any, int]:
    """The shared pool, with at least ``workers`` processes, and its size.

    loky keeps one reusable executor per thread; tarry keeps one per process
    (computes from any thread share it), so it holds it here.
    """
    global _pool, _pool_size
    import loky

    with _pool_lock:
        pool = _pool
        if pool is not None and _pool_size >= workers and not _broken(pool):
            return pool, _pool_size
        size = max(workers, _pool_size if pool is not None and not _broken(pool) else 0)
        fresh = loky.get_reusable_executor(
            max_workers=size, timeout=IDLE_TIMEOUT, initializer=init_worker
        )
        if pool is not None and fresh is not pool:
            # made in another thread: loky would keep both alive
            pool.shutdown(wait=False)
        _pool, _pool_size = fresh, size
        return fresh, size


def _broken(pool: Any) -> bool:
    flags = getattr(pool, "_flags", None)
    return flags is not None and bool(flags.broken or flags.shutdown)


def forget_pool(pool: Any, kill: bool = False) -> None:
    """Drop ``pool`` (broken, or to be killed) so the next compute starts a new one."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is pool:
            _pool, _pool_size = None, 0
    if kill:
        pool.shutdown(wait=False, kill_workers=True)


def shutdown_pool() -> None:
    """Stop the worker processes now; the next ``"processes"`` compute starts new ones.

    Examples
    --------
    >>> shutdown_pool()
    """
    global _pool, _pool_size
    with _pool_lock:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True)
