"""``compute`` and ``persist``: the user's entry points to running a graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tarry import config
from tarry._build.delayed import Delayed
from tarry._build.traverse import pack
from tarry._graph import Pack, Task, fingerprint, resolve
from tarry._schedule import get_backend
from tarry._schedule.core import Run
from tarry._tools import observe
from tarry._tools.last_run import remember

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["compute", "persist", "run_graph"]


def run_graph(
    objs: tuple[Any, ...],
    scheduler: str | Executor | None,
    num_workers: int | None,
    progress: bool | None = None,
    optimize_graph: bool = True,
) -> tuple[list[Any], dict[str, Any], BaseException | None]:
    """Run everything lazy inside ``objs``.

    Returns ``objs`` packed, the targets' values, and the first task error.
    The error is returned, not raised, so that the public function the user
    called raises it: its traceback then shows one tarry frame, not several.
    Active observers (:mod:`tarry._tools.observe`) are told about the run.
    """
    deps: dict[str, Task] = {}
    packed = [pack(obj, deps) for obj in objs]
    name = config.get("scheduler") if scheduler is None else scheduler
    backend = get_backend(name)
    workers = config.check_num_workers(
        config.get("num_workers") if num_workers is None else num_workers
    )
    show = config.check_progress(config.get("progress") if progress is None else progress)
    if not deps:
        return packed, {}, None
    run = Run(deps.values())
    run.fuse = optimize_graph
    if show or observe.active:
        failure = observe.run_observed(run, backend, name, workers, show)
    else:
        failure = backend(run, workers)
    remember(run, failure)
    if failure is not None:
        return packed, {}, failure
    return packed, run.results(), None


def compute(
    *objs: Any,
    scheduler: str | Executor | None = None,
    num_workers: int | None = None,
    optimize_graph: bool = True,
    progress: bool | None = None,
) -> tuple[Any, ...]:
    """Compute lazy values together, sharing the work they have in common.

    Parameters
    ----------
    *objs
        ``Delayed`` values, or lists, tuples, sets, dicts, dataclasses and
        namedtuples holding them; anything else is returned as it is.
    scheduler
        ``"threads"`` (default), ``"sync"``, ``"processes"``, ``"ray"``,
        ``"dask"``, or a ``concurrent.futures.Executor`` to run the tasks on;
        default from :func:`tarry.config.set`.
    num_workers
        Threads or processes to use (default: the usable CPUs).
    optimize_graph
        Let backends that ship tasks elsewhere fuse tasks whose data can stay
        together into one unit of work ("processes" does: chains, exclusive
        branches, the readers of a shared result); keys stay visible to
        diagnostics. ``False`` ships every task on its own. The in-process
        backends gain nothing from fusing and run tasks as they are.
    progress
        Show a progress bar (tasks done/total, elapsed, time left) if the run
        lasts more than a second; default from :func:`tarry.config.set`. See
        :func:`tarry.progress` for a block of computes.

    Returns
    -------
    tuple
        One result per argument, shaped like the argument.

    Examples
    --------
    >>> from tarry import delayed, compute
    >>> x = delayed(list)(range(10))
    >>> compute(delayed(min)(x), {"max": delayed(max)(x)}, "plain", scheduler="sync")
    (0, {'max': 9}, 'plain')
    """
    packed, values, failure = run_graph(objs, scheduler, num_workers, progress, optimize_graph)
    if failure is not None:
        raise failure
    return tuple(resolve(p, values) for p in packed)


def persist(
    *objs: Any,
    scheduler: str | Executor | None = None,
    num_workers: int | None = None,
    optimize_graph: bool = True,
    progress: bool | None = None,
) -> tuple[Any, ...]:
    """Compute lazy values now and keep them as lazy values with the same keys.

    The results are held in memory; later computes that use them run none of
    the work again. Takes the same options as :func:`compute`.

    Examples
    --------
    >>> from tarry import delayed, persist
    >>> from operator import add
    >>> (kept,) = persist(delayed(tuple)([add, 1, 2]), scheduler="sync")
    >>> kept.compute(scheduler="sync") == (add, 1, 2)  # a value, never run as a task
    True
    """
    packed, values, failure = run_graph(objs, scheduler, num_workers, progress, optimize_graph)
    if failure is not None:
        raise failure
    lengths = {o.key: o._length for o in objs if isinstance(o, Delayed)}
    kept: dict[str, Delayed[Any]] = {
        t.key: Delayed(Task.kept(t.key, values[t.key], t.name, fingerprint(t)), lengths.get(t.key))
        for t in _tasks_in(packed)
    }
    return tuple(resolve(p, kept) for p in packed)


def _tasks_in(packed: list[Any]) -> list[Task]:
    """Tasks that stand directly or inside containers in packed arguments."""
    found: list[Task] = []
    stack = list(packed)
    while stack:
        item = stack.pop()
        if type(item) is Task:
            found.append(item)
        elif type(item) is Pack:
            stack.extend(item.items)
    return found
