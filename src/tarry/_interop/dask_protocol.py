"""tarry values inside dask: the graph dask sees when it meets a :class:`tarry.Delayed`.

dask asks a collection for its graph (``__dask_graph__``) and runs it with
its own schedulers, so every task of the value's graph becomes a dask task:

* a literal (a wrapped value, a result kept by :func:`tarry.persist`) becomes
  a ``DataNode`` holding the value;
* a task that came from a dask collection (see :mod:`.dask_collections`)
  becomes the dask task it was, under its own key, so ``delayed(f)(array)``
  holds the array's keys as dask does;
* any other task becomes a dask ``Task`` that runs it: its function and
  arguments travel as the task slimmed for a worker
  (:func:`tarry._schedule.wire.slim`: dependencies are key-only stubs, so a
  task never carries the graph above it), its inputs as references to the
  keys of its dependencies.

Each key is one layer of a ``HighLevelGraph``, with the layers of its
dependencies as the layer's dependencies, as in ``dask.delayed``. A task's
options (``f.options(...)``, :func:`tarry.annotate`) go with it: ``retries``
and ``retry_on`` as a retry in place, where the task runs (dask's own
``retries`` would retry any exception, and only on distributed);
``resources``, ``workers`` and ``priority`` as the annotations of its layer,
which distributed honours as it does ``dask.annotate``'s. Imported only
when dask calls a ``__dask_*__`` method: dask is imported already.
"""

from __future__ import annotations

from typing import Any

from dask._task_spec import DataNode, GraphNode, TaskRef
from dask._task_spec import Task as DaskTask
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from tarry._graph import Task, call, walk
from tarry._interop.dask_collections import original
from tarry._schedule.dask_tasks import annotations_of
from tarry._schedule.held import fetched
from tarry._schedule.wire import slim

__all__ = ["dask_graph", "dask_key", "layer_of", "run_retried", "run_task"]


def dask_key(task: Task) -> Any:
    """The key dask knows ``task`` by: a task that came from dask keeps its dask key.

    Examples
    --------
    >>> dask_key(Task.literal("one", 1))
    'one'
    """
    node = original(task)
    return task.key if node is None else node.key


def layer_of(key: Any) -> str:
    """The ``HighLevelGraph`` layer of ``key``: a chunk ``("x-1", 0)`` lives in ``"x-1"``.

    Examples
    --------
    >>> layer_of(("array-1", 0, 2)), layer_of("inc-2")
    ('array-1', 'inc-2')
    """
    return str(key[0]) if isinstance(key, tuple) else str(key)


def dask_graph(target: Task) -> HighLevelGraph:
    """The ``HighLevelGraph`` of everything ``target`` needs, as dask tasks.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> graph = dask_graph(Task("two", abs, (one,), None, (one,), "abs"))
    >>> sorted(graph.layers), graph.dependencies["two"]
    (['one', 'two'], {'one'})
    """
    nodes: dict[str, dict[Any, GraphNode]] = {}
    needs: dict[str, set[str]] = {}
    placed: dict[str, dict[str, Any]] = {}
    stubs: dict[str, Task] = {}
    for task in walk([target]):
        key = dask_key(task)
        layer = layer_of(key)
        nodes.setdefault(layer, {})[key] = _node(task, key, stubs)
        wanted = needs.setdefault(layer, set())
        wanted.update(layer_of(dask_key(d)) for d in task.deps)
        wanted.discard(layer)
        if task.options is not None and original(task) is None:
            placed[layer] = annotations_of(task.options)
    layers = {
        name: MaterializedLayer(tasks, annotations=placed.get(name) or None)
        for name, tasks in nodes.items()
    }
    return HighLevelGraph(layers, needs)


def _node(task: Task, key: Any, stubs: dict[str, Task]) -> GraphNode:
    node: GraphNode | None = original(task)
    if node is not None:
        return node
    if task.func is None:
        return DataNode(key, fetched(task))  # a value persisted on a cluster comes here
    small = slim(task, stubs)
    inputs = [TaskRef(dask_key(d)) for d in task.deps]
    options = task.options
    if options is not None and options.retries:
        return DaskTask(key, run_retried, small, options.retries, options.retry_on, *inputs)
    return DaskTask(key, run_task, small, *inputs)


def run_task(task: Task, *inputs: Any) -> Any:
    """Run a slimmed tarry task in dask, given its dependencies' outputs in order.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> run_task(slim(Task("two", max, (one, 5), None, (one,), "max"), {}), 7)
    7
    """
    return call(task, {d.key: value for d, value in zip(task.deps, inputs, strict=True)})


def run_retried(
    task: Task, retries: int, retry_on: tuple[type[BaseException], ...], *inputs: Any
) -> Any:
    """:func:`run_task`, run again up to ``retries`` times for the exceptions of ``retry_on``.

    Examples
    --------
    >>> tries = iter([ValueError("first"), 7])
    >>> def flaky():
    ...     got = next(tries)
    ...     if isinstance(got, Exception):
    ...         raise got
    ...     return got
    >>> run_retried(Task("f", flaky, (), None, (), "flaky"), 1, (ValueError,))
    7
    """
    for _ in range(retries):
        try:
            return run_task(task, *inputs)
        except Exception as exc:
            if not isinstance(exc, retry_on):
                raise
    return run_task(task, *inputs)
