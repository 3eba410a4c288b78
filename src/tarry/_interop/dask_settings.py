"""What a dask user leaves in place, and what tarry does with it.

Read at each compute that chose no scheduler (neither ``compute(scheduler=)``
nor ``tarry.config.set(scheduler=)``), and only when the user has imported
dask (``sys.modules``): nothing here imports dask or distributed.

* ``dask.config.set(scheduler=...)``: honoured. dask's names map to tarry's
  (``"synchronous"`` is ``"sync"``, ``"dask.distributed"`` is ``"dask"``),
  an ``Executor`` or a ``distributed.Client`` is used as it is. A
  ``distributed.Client`` made as the default sets this to
  ``"dask.distributed"``, so tarry, like dask, then runs on that client,
  and says so once (a warning names the client and how to run locally); the
  profile's scheduler is ``"dask"`` and the progress bar's label ``dask``.
  A compute inside a task on a dask worker stays local. A setting tarry cannot follow (a
  ``get`` function) is named in a warning, once, with tarry's spelling.
* an active ``dask.diagnostics.ProgressBar``: honoured, as tarry's progress
  bar, when the compute says nothing of ``progress``. Other dask callbacks
  (``Profiler``, ``ResourceProfiler``...) see no tarry task: a warning says
  so, once per kind, and names ``tarry.profile()``.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

from tarry._schedule import ALIASES, SCHEDULERS, check_scheduler

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["DaskChoice", "dask_choice", "dask_progress"]

_warned: set[str] = set()


class DaskChoice(NamedTuple):
    """The scheduler dask's settings choose, and the ``distributed.Client`` to run on."""

    scheduler: str | Executor
    client: Any = None


def dask_choice() -> DaskChoice | None:
    """What ``dask.config``'s ``scheduler`` chooses; None when dask is not in use or it is unset.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set(scheduler="synchronous"):
    ...     dask_choice()
    DaskChoice(scheduler='sync', client=None)
    """
    dask = sys.modules.get("dask")
    if dask is None:
        return None
    wanted = dask.config.get("scheduler", None)
    if wanted is None:
        return None
    if isinstance(wanted, str):
        name = wanted.lower()
        if name not in SCHEDULERS and name not in ALIASES:
            _warn_once(f"dask.config scheduler={wanted!r}", _ignored(repr(wanted)))
            return None
        checked = check_scheduler(name)
        if checked != "dask":
            return DaskChoice(checked)
        if _in_worker_task():
            return None
        return _on_client(_default_client())
    if "Client" in type(wanted).__name__ and callable(getattr(wanted, "gather", None)):
        return _on_client(wanted)
    executor = sys.modules.get("concurrent.futures")
    if executor is not None and isinstance(wanted, executor.Executor):
        return DaskChoice(wanted)
    _warn_once(f"dask.config scheduler {type(wanted).__name__}", _ignored(repr(wanted)))
    return None


def _in_worker_task() -> bool:
    """Whether this is a task on a dask worker: a compute in it stays local, as before.

    (Sent back to the cluster, it would wait for workers while holding one.)
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _default_client() -> Any:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.Client.current(allow_global=True)
    except ValueError:  # none: tarry's "dask" backend says what to do
        return None


def _on_client(client: Any) -> DaskChoice:
    if client is not None:
        address = getattr(client.scheduler, "address", None) if client.scheduler else None
        _warn_once(
            f"client {address}",
            f"tarry computes on the distributed.Client of dask's settings ({address}), as dask "
            "does. To run locally, pass scheduler='threads' (or another) to compute(), or set "
            "tarry.config.set(scheduler='threads').",
        )
    return DaskChoice("dask", client)


def _ignored(what: str) -> str:
    return (
        f"tarry ignores dask.config's scheduler={what}: it takes a scheduler name "
        f"({', '.join(SCHEDULERS)}, or dask's), an Executor or a distributed.Client. Set "
        "tarry's with tarry.config.set(scheduler=...) or compute(scheduler=...)."
    )


def dask_progress() -> bool:
    """True while a ``dask.diagnostics.ProgressBar`` is active; warns once of other callbacks.

    Examples
    --------
    >>> from dask.diagnostics import ProgressBar
    >>> with ProgressBar():
    ...     dask_progress()
    True
    >>> dask_progress()
    False
    """
    callbacks = sys.modules.get("dask.callbacks")
    if callbacks is None or not callbacks.Callback.active:
        return False
    progress = sys.modules.get("dask.diagnostics.progress")
    bar = progress.ProgressBar if progress is not None else ()
    shown = False
    for methods in callbacks.Callback.active:
        owner = next((getattr(m, "__self__", None) for m in methods if m is not None), None)
        if isinstance(owner, bar):
            shown = True
            continue
        kind = type(owner).__name__ if owner is not None else "Callback"
        _warn_once(
            f"callback {kind}",
            f"tarry does not call dask's callbacks: the active dask {kind} sees no tarry task. "
            "tarry's own: `with tarry.profile() as p:` (timings, report()), "
            "tarry.progress() (a progress bar).",
        )
    return shown


def _warn_once(topic: str, message: str) -> None:
    if topic in _warned:
        return
    _warned.add(topic)
    warnings.warn(message, UserWarning, stacklevel=4)
