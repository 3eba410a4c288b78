"""Scheduling: one executor-agnostic core (:mod:`.core`) and a module per backend.

A backend is a function ``(run, settings) -> first task error or None``
that drives a :class:`~tarry._schedule.core.Run` to its end through its
methods; :class:`Settings` carries everything else it is told, resolved
once by :func:`tarry.compute` (backends read no configuration themselves). Backends are
found by name here and imported only when first used, so ``import tarry``
stays light.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from tarry import _extras as extras
from tarry._schedule.core import Run

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["ALIASES", "DEFAULTS", "SCHEDULERS", "Backend", "Settings", "get_backend"]


class Settings(NamedTuple):
    """What a backend is told besides the run (see :func:`tarry.config.set`)."""

    #: threads or processes to use; None lets the backend choose
    num_workers: int | None = None
    #: the most threads one adaptive threads run may use
    max_threads: int = 32
    #: the Ray cluster to connect to; None: ``RAY_ADDRESS``, else a local one
    ray_address: str | None = None
    #: the ``distributed.Client`` to run on; None: distributed's default client
    dask_client: Any = None
    #: seconds the run may take, counted from when the backend starts it; at
    #: the deadline the backend stops the run as Ctrl-C does and returns a
    #: :class:`TimeoutError` (see :mod:`tarry._schedule.deadline`); None: no limit
    timeout: float | None = None


#: what a backend is told when its caller says nothing more
DEFAULTS = Settings()

Backend = Callable[[Run, Settings], BaseException | None]

#: scheduler name -> "module:function" of its backend
SCHEDULERS: dict[str, str] = {
    "sync": "tarry._schedule.sync:run_sync",
    "threads": "tarry._schedule.threads:run_threads",
    "processes": "tarry._schedule.processes:run_processes",
    "ray": "tarry._schedule.ray:run_ray",
    "dask": "tarry._schedule.dask:run_dask",
}


#: dask's names for schedulers -> tarry's: code written for dask keeps working
ALIASES: dict[str, str] = {
    "synchronous": "sync",
    "single-threaded": "sync",
    "threading": "threads",
    "multiprocessing": "processes",
    "distributed": "dask",
    "dask.distributed": "dask",
}


def _executor_type() -> type[Executor] | None:
    # Whoever holds an Executor has imported concurrent.futures already, so
    # looking it up costs ``import tarry`` nothing.
    module = sys.modules.get("concurrent.futures")
    return None if module is None else module.Executor


@overload
def check_scheduler(name: str) -> str: ...
@overload
def check_scheduler(name: object) -> str | Executor: ...
def check_scheduler(name: object) -> str | Executor:
    """Return ``name`` if it names a scheduler or is an Executor, else raise a helpful error.

    dask's names (:data:`ALIASES`) are taken for tarry's.

    Examples
    --------
    >>> check_scheduler("threads"), check_scheduler("synchronous")
    ('threads', 'sync')
    """
    executor = _executor_type()
    if executor is not None and isinstance(name, executor):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"scheduler must be one of {sorted(SCHEDULERS)} or a concurrent.futures.Executor, "
            f"not {name!r}"
        )
    name = ALIASES.get(name, name)
    if name not in SCHEDULERS:
        raise ValueError(
            f"unknown scheduler {name!r}; valid names are: {', '.join(SCHEDULERS)} "
            f"(or dask's: {', '.join(ALIASES)}); or pass a concurrent.futures.Executor instance"
        )
    return name


def get_backend(name: object) -> Backend:
    """The backend function registered under ``name``, or one bound to an Executor.

    Raises :class:`tarry._extras.MissingExtraError` naming the pip command
    when the scheduler's packages are missing (``pip install 'tarry[ray]'``).

    Examples
    --------
    >>> get_backend("sync").__name__
    'run_sync'
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1) as pool:
    ...     get_backend(pool).__name__
    'run_on_executor'
    """
    checked = check_scheduler(name)
    if not isinstance(checked, str):
        from tarry._schedule.futures import executor_backend

        return executor_backend(checked)
    needs = extras.SCHEDULERS.get(checked)
    if needs is not None:
        needs.check()  # a missing engine named with its pip command, before anything runs
    module, _, func = SCHEDULERS[checked].partition(":")
    backend: Backend = getattr(importlib.import_module(module), func)
    return backend
