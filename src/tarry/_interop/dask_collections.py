"""dask collections inside tarry: their graphs join tarry's run.

A dask collection (a ``dask.array``, ``dask.dataframe``, ``dask.bag``, a
``dask.delayed`` value) met in a task's arguments or in ``compute()``
becomes the tasks of its graph, one tarry task per dask task, under its own
key (as a ``str``), and the collection stands for its finalized output: the
numpy array, the pandas DataFrame, the list. So ``delayed(f)(array)`` hands
``f`` a numpy array on every scheduler, a task of the array's graph runs
where tarry runs tasks (in a worker process on ``"processes"``), and chunks
that several values share are computed once.

The collection is finalized and optimized as ``dask.compute`` does
(``collections_to_expr(x).finalize_compute().optimize()``); a
``dask.delayed`` value keeps its own key, as when dask unpacks it. Only the
part of the graph the output needs is converted. The same dask key always
names the same computation in dask, so two conversions of one key are one
task in tarry's run (:meth:`DaskNode.__tarry_token__`).

Imported when an argument's type has a ``__dask_graph__`` method; dask is
imported only if it is in use already.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from tarry._graph import Task

__all__ = ["DaskNode", "convert", "original", "run_node", "task_of"]


class DaskNode:
    """A dask task (a ``dask._task_spec.GraphNode``), the keys of its inputs in order,
    and the key of its tarry task."""

    __slots__ = ("inputs", "key", "node")

    def __init__(self, node: Any, inputs: tuple[Any, ...], key: str) -> None:
        self.node = node
        self.inputs = inputs
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (DaskNode, (self.node, self.inputs, self.key))

    def __tarry_token__(self) -> tuple[str, str]:
        # dask names a computation by its key: one key, one computation
        return ("dask", self.key)

    def __repr__(self) -> str:
        return f"DaskNode({self.node.key!r})"


def run_node(node: DaskNode, *values: Any) -> Any:
    """Run a dask task given the outputs of its inputs, in the order of ``node.inputs``."""
    return node.node(dict(zip(node.inputs, values, strict=True)))


def original(task: Task) -> Any:
    """The dask task ``task`` was made from, or None for tarry's own tasks."""
    if task.func is run_node:
        node: DaskNode = task.args[0]
        return node.node
    return None


def task_of(collection: Any) -> Task | None:
    """The tarry task of ``collection``'s finalized output, its graph behind it.

    None when it is not a dask collection after all: its ``__dask_graph__()``
    is None (an xarray object holding numpy data), or dask is not imported
    (without dask, nothing holds a dask graph).

    Examples
    --------
    >>> import dask.array as da
    >>> from tarry._graph import walk
    >>> task = task_of(da.ones(4, chunks=2))
    >>> task.name, sorted(t.name for t in walk([task]))
    ('finalize-hlgfinalizecompute', ['finalize-hlgfinalizecompute', 'ones_like', 'ones_like'])
    """
    if sys.modules.get("dask") is None:  # not imported (None: import blocked)
        return None
    from dask.base import is_dask_collection
    from dask.delayed import Delayed as DaskDelayed

    if not is_dask_collection(collection):
        return None
    if isinstance(collection, DaskDelayed):
        return convert(collection.__dask_graph__(), collection.key)
    from dask.base import collections_to_expr, tokenize

    # Without low-level fusion: fused separately, two collections that share
    # a chunk would each compute it; unfused, the chunk is one key, one task.
    expr: Any = collections_to_expr(collection, optimize_graph=False)
    expr = expr.finalize_compute().optimize()
    key = expr.__dask_keys__()
    while isinstance(key, list):  # finalized: one key, maybe nested in lists
        (key,) = key
    return convert(expr.__dask_graph__(), key, tokenize(collection))


def convert(graph: Mapping[Any, Any], target: Any, token: str | None = None) -> Task:
    """The tasks ``target`` needs in a dask graph, as tarry tasks; the target's task.

    ``token``: the collection's, for the target's key, which dask may make anew
    each time it finalizes the same collection.
    """
    from dask._task_spec import DataNode, GraphNode, convert_legacy_task
    from dask.utils import key_split

    made: dict[Any, Task] = {}
    nodes: dict[Any, Any] = {}
    every_key: set[Any] | None = None  # only a graph of legacy tuples needs them
    stack = [target]
    while stack:  # depth first, dependencies before the tasks that read them
        key = stack[-1]
        if key in made:
            stack.pop()
            continue
        node = nodes.get(key)
        if node is None:
            node = graph[key]
            if not isinstance(node, GraphNode):
                every_key = set(graph) if every_key is None else every_key
                node = convert_legacy_task(key, node, every_key)
                node = node if isinstance(node, GraphNode) else DataNode(key, node)
            nodes[key] = node
        waiting = [k for k in node.dependencies if k not in made]
        if waiting:
            stack.extend(waiting)
            continue
        stack.pop()
        inputs = tuple(node.dependencies)
        deps = tuple(made[k] for k in inputs)
        name = key_split(key)
        own = f"{name}-{token}" if key == target and token is not None else str(key)
        made[key] = Task(own, run_node, (DaskNode(node, inputs, own), *deps), None, deps, name)
    return made[target]
