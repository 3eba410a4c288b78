"""Scheduling: one executor-agnostic core (:mod:`.core`) and a module per backend.

A backend is a function ``(run, num_workers) -> first task error or None``
that drives a :class:`~tarry._schedule.core.Run` to its end. Backends are
found by name here and imported only when first used, so ``import tarry``
stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tarry._schedule.core import Run

__all__ = ["Backend", "SCHEDULERS", "get_backend"]

Backend = Callable[[Run, int | None], BaseException | None]

#: scheduler name -> "module:function" of its backend
SCHEDULERS: dict[str, str] = {
    "sync": "tarry._schedule.sync:run_sync",
    "threads": "tarry._schedule.threads:run_threads",
}


def check_scheduler(name: object) -> str:
    """Return ``name`` if it names a scheduler, else raise a helpful error."""
    if not isinstance(name, str):
        raise TypeError(f"scheduler must be one of {sorted(SCHEDULERS)}, not {name!r}")
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; valid names are: {', '.join(SCHEDULERS)}")
    return name


def get_backend(name: object) -> Backend:
    """The backend function registered under ``name``.

    Examples
    --------
    >>> get_backend("sync").__name__
    'run_sync'
    """
    module, _, func = SCHEDULERS[check_scheduler(name)].partition(":")
    backend: Backend = getattr(importlib.import_module(module), func)
    return backend
