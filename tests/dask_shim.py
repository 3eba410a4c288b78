"""A stand-in for the ``dask`` module whose lazy API is tarry's.

``import dask_shim as dask`` gives a module that behaves like ``dask``, except
that ``delayed``, ``compute``, ``persist`` and ``Delayed`` are tarry's, and
``config.set(scheduler=..., delayed_pure=...)`` sets tarry's configuration.
Every other attribute (``dask.threaded``, ``dask.annotate``, ``dask.base``...)
is the real dask's. The module also stands in for ``dask.delayed`` in
``from dask.delayed import Delayed, delayed, to_task_dask``; ``to_task_dask`` is
dask's own, as it builds dask's graph representation.

tests/test_dask_conformance.py uses it to run dask's own tests against tarry.
"""

from __future__ import annotations

import contextlib
from typing import Any

import dask
import dask.config
from dask.delayed import to_task_dask

import tarry
from tarry import Delayed, compute, delayed, persist

__all__ = ["Delayed", "compute", "config", "delayed", "persist", "to_task_dask"]


def _tarry_has_setting(name: str) -> bool:
    try:
        tarry.config.get(name)
    except KeyError:
        return False
    return True


class _Config:
    """``dask.config``, except that ``set`` sends tarry's settings to tarry."""

    def set(self, arg: dict[str, Any] | None = None, **kwargs: Any) -> contextlib.ExitStack:
        """Like ``dask.config.set``; ``scheduler=`` and ``delayed_pure=`` go to tarry.

        ``delayed_pure=`` becomes tarry's ``pure=`` where tarry has that
        setting, else it goes to dask, where it has no effect on tarry.
        """
        to_tarry: dict[str, Any] = {}
        if "scheduler" in kwargs:
            to_tarry["scheduler"] = kwargs.pop("scheduler")
        if "delayed_pure" in kwargs and _tarry_has_setting("pure"):
            to_tarry["pure"] = kwargs.pop("delayed_pure")
        stack = contextlib.ExitStack()
        # Both take effect at once; as a context manager, both are undone on exit.
        if to_tarry:
            stack.enter_context(tarry.config.set(**to_tarry))
        if arg is not None or kwargs:
            stack.enter_context(dask.config.set(arg, **kwargs))
        return stack

    def __getattr__(self, name: str) -> Any:
        return getattr(dask.config, name)


config = _Config()


def __getattr__(name: str) -> Any:
    """Everything else is the real dask's."""
    return getattr(dask, name)
