"""The ``"dask"`` backend: run the graph on a dask.distributed cluster (extra ``tarry[dask]``).

The graph is translated into a dask task graph and sent to the scheduler in
one message through an existing :class:`distributed.Client`: the one given
with ``tarry.config.set(dask_client=client)``, else the current default
client (the last one created). Dask's scheduler places the tasks, moves data
between workers and sends back only the results the caller asked for.
tarry must be installed on the workers.

A task's exception comes back with its type, message and traceback and a
note naming the task; a task whose worker died (once more often than the
scheduler's ``allowed-failures``) gives
:class:`~tarry._schedule.errors.WorkerDiedError` naming it; Ctrl-C cancels
the compute on the cluster. Timings asked for in ``run.events`` are taken in
the workers and collected at the end; ``Run`` counts the tasks as finished
when the results arrive, not one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tarry._build.traverse import ATOMIC
from tarry._graph import Quote, Task, call
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.errors import (
    TaskFailedError,
    UnpicklableTaskError,
    WorkerDiedError,
)
from tarry._schedule.timing import Stopwatch, Timing
from tarry._schedule.wire import pack_error, scan_payload, slim, unpack_error

__all__ = [
    "run_dask",
    "to_dask",
]

#: an object shared by several tasks becomes one graph node from this size on
_SHARE_BYTES = 100_000
# Values dask would read as graph structure (a string naming a key, a tuple
# starting with a callable, containers of those) travel inside a Quote.
_PLAIN = ATOMIC - {str}


# -- what runs on the workers ---------------------------------------------------


def _value(quoted: Quote) -> Any:
    """A literal node: its value."""
    return quoted.value


#: in a worker: timings of the tasks run here, by key, until the caller takes them
_timings: dict[str, Timing] = {}


def _call(label: Quote, func: Callable[..., Any], *args: Any) -> Any:
    """A task of plain arguments; ``label`` holds ``(key, name, timed)``."""
    return _timed(label, func, [a.value if type(a) is Quote else a for a in args])


def _call_task(label: Quote, task: Task, *values: Any) -> Any:
    """A task with containers or keyword arguments: the slim task and its inputs."""
    return _timed(label, call, [task, {d.key: v for d, v in zip(task.deps, values, strict=True)}])


def _timed(label: Quote, func: Callable[..., Any], args: list[Any]) -> Any:
    watch = Stopwatch() if label.value[2] else None
    try:
        value = func(*args)
    except Exception as exc:
        raise _failure(exc, label) from None
    if watch is not None:
        _timings[label.value[0]] = watch.stop()
    return value


def _take_timings(keys: list[str]) -> dict[str, Timing]:
    """Run on each worker by the caller: the timings of ``keys`` taken there."""
    return {key: _timings.pop(key) for key in keys if key in _timings}


def _failure(exc: Exception, label: Quote) -> Exception:
    return TaskFailedError(pack_error(exc, label.value[0]))


# -- translation ------------------------------------------------------------------


def to_dask(
    tasks: Iterable[Task],
    shared: dict[int, Any] | None = None,
    timed: bool = False,
) -> dict[str, Any]:
    """A dask task graph (``key -> task tuple``) that computes the same values as ``tasks``.

    Tasks raise their errors wrapped for :func:`run_dask`. Objects
    whose ``id`` is in ``shared`` become graph nodes of their own, so that
    dask sends each of them once. ``timed`` makes tasks keep their timings
    in the worker, for :func:`_take_timings`.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> two = Task("two", abs, (one,), None, (one,), "abs")
    >>> dsk = to_dask([one, two])
    >>> sorted(dsk), dsk["two"][2:]
    (['one', 'two'], (<built-in function abs>, 'one'))
    """
    shared = shared or {}
    names = {ident: f"object-{ident:x}" for ident in shared}
    swap = {ident: Task(key, None, (None,), None, (), "object") for ident, key in names.items()}
    dsk: dict[str, Any] = {key: (_value, Quote(shared[ident])) for ident, key in names.items()}
    stubs: dict[str, Task] = {}
    for task in tasks:
        key, func = task.key, task.func
        if func is None:
            dsk[key] = (_value, Quote(task.args[0]))
            continue
        label = Quote((key, task.name, timed))
        if task.deep:
            small = slim(task, stubs, swap)
            dsk[key] = (_call_task, label, small, *[d.key for d in small.deps])
            continue
        args: list[Any] = []
        for arg in task.args:
            if type(arg) is Task:
                args.append(arg.key)
            elif id(arg) in names:
                args.append(names[id(arg)])
            else:
                args.append(arg if type(arg) in _PLAIN else Quote(arg))
        dsk[key] = (_call, label, func, *args)
    return dsk


# -- the backend ---------------------------------------------------------------------


def client(configured: Any = None) -> Any:
    """The client to run on: ``configured``, else distributed's default client."""
    if configured is not None:
        return configured
    from distributed import default_client

    try:
        return default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        raise RuntimeError(
            "scheduler='dask' runs on a dask.distributed cluster, and there is no Client: "
            "create one first (from distributed import Client; client = Client()) or pass "
            "one with tarry.config.set(dask_client=client)"
        ) from None


def run_dask(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run ``run`` on ``settings.dask_client`` (or the default one); return the first error.

    ``settings.num_workers`` is ignored: the cluster's workers decide.
    """
    if not run.remaining:
        return None
    dask_client = client(settings.dask_client)
    try:
        payload = scan_payload(run.tasks.values())
    except UnpicklableTaskError as err:
        return run.fail(err.task, err)
    timed = run.events is not None
    handed_out = run.hand_out_all()
    dsk = to_dask(run.tasks.values(), shared=payload.shared(_SHARE_BYTES), timed=timed)
    keys = [t.key for t in run.targets if t.func is not None]
    from dask.highlevelgraph import HighLevelGraph

    # As one layer of a high-level graph, not a plain dict: the client would
    # tokenize every task of a dict to name it, which costs as much as
    # running the tasks does. tarry's keys are unique already.
    layer = f"tarry-{run.targets[0].key}"
    layers: dict[str, Any] = {layer: dsk}
    futures = dask_client.get(HighLevelGraph(layers, {layer: set()}), keys, sync=False)
    try:
        values = dask_client.gather(futures)
    except TaskFailedError as failure:
        task = run.tasks[failure.packet.key]
        return run.fail(task, unpack_error(failure.packet))
    except Exception as exc:
        return _system_error(run, exc, dask_client, futures)
    except BaseException:  # Ctrl-C
        dask_client.cancel(futures)
        raise
    for task in handed_out:
        run.count_done(task)
    run.keep(dict(zip(keys, values, strict=True)))
    if timed:
        computed = [task.key for task in handed_out]
        for found in dask_client.run(_take_timings, computed).values():
            for key, timing in found.items():
                run.record(run.tasks[key], timing)
    return None


def _system_error(run: Run, exc: Exception, dask_client: Any, futures: Any) -> BaseException:
    """An error of the cluster rather than of a task: name the task concerned."""
    dask_client.cancel(futures)
    key = getattr(exc, "task", None)  # distributed's KilledWorker names it
    task = run.tasks.get(key) if isinstance(key, str) else None
    if task is None:
        task = run.targets[0]
        error: BaseException = exc
    else:
        error = WorkerDiedError(
            f"dask workers died while running task {task.key!r} ({task.name}): {exc}"
        )
        error.__cause__ = exc
    return run.fail(task, error)
