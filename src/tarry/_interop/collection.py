"""dask's collection protocol, as a base class of :class:`tarry.Delayed`.

With it, dask takes a tarry value wherever it takes a ``dask.delayed`` one:
``dask.compute(x)``, ``dask.persist(x)``, ``client.compute(x)``,
``client.persist(x)``, ``dask.array.from_delayed(x, ...)``,
``dask.dataframe.from_delayed([...])``, ``dask.bag.from_delayed([...])``,
``dask.graph_manipulation.bind(x, parents)``. This module imports no dask:
the methods import :mod:`.dask_protocol` when dask calls them.

Examples
--------
>>> import dask
>>> from tarry import delayed
>>> x = delayed(sum)([1, 2])
>>> dask.is_dask_collection(x), dask.compute(x + 1)
(True, (4,))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tarry._graph import Task, TaskGraph, fingerprint

if TYPE_CHECKING:
    from tarry._build.delayed import Delayed

__all__ = ["DaskCollection"]


class DaskCollection:
    """dask's names on a lazy value: ``x.dask``, ``x._key`` and the ``__dask_*__`` methods.

    ``_task`` and ``_length`` are the value's.
    """

    __slots__ = ()

    _task: Task
    _length: int | None

    @classmethod
    def _of_task(cls, task: Task, length: int | None) -> Delayed[Any]:
        """A new lazy value for ``task`` (what a persisted or rebuilt value becomes)."""
        raise NotImplementedError  # Delayed says how it is made

    @property
    def dask(self) -> Mapping[Any, Any]:
        """dask's graph of this value, as ``dask.delayed`` has it (``x.key in x.dask``).

        A ``HighLevelGraph`` of dask tasks, with a layer per key, when dask is
        installed (reading it imports dask); else the same mapping as ``x.graph``.
        """
        try:
            import dask  # noqa: F401 - only whether it is installed
        except ImportError:
            return TaskGraph([self._task])
        return self.__dask_graph__()

    @property
    def _key(self) -> str:
        # dask's private name for the key, which code written for dask reads
        return self._task.key

    def __dask_graph__(self) -> Mapping[Any, Any]:
        from tarry._interop.dask_protocol import dask_graph

        return dask_graph(self._task)

    def __dask_keys__(self) -> list[Any]:
        from tarry._interop.dask_protocol import dask_key

        return [dask_key(self._task)]

    def __dask_layers__(self) -> Sequence[str]:
        from tarry._interop.dask_protocol import dask_key, layer_of

        return (layer_of(dask_key(self._task)),)

    def __dask_tokenize__(self) -> str:
        return self._task.key

    def __dask_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _only, ()

    def __dask_postpersist__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        from tarry._interop.dask_protocol import dask_key

        task = self._task
        return _rebuilt, (self._of_task, task, dask_key(task), self._length)

    @staticmethod
    def __dask_optimize__(graph: Any, keys: Any, **options: Any) -> Any:
        # dask.delayed's own: culls, and fuses chains when dask's config asks
        from dask.delayed import optimize

        delayed_optimize: Any = optimize  # untyped in dask
        return delayed_optimize(graph, keys, **options)

    @property
    def __dask_scheduler__(self) -> Callable[..., Any]:
        # dask.delayed's default, the same function object, so mixing tarry's
        # values with dask's in one dask.compute finds one default scheduler
        import dask.threaded

        return dask.threaded.get


def _only(results: Sequence[Any]) -> Any:
    return results[0]


def _rebuilt(
    graph: Mapping[Any, Any],
    make: Callable[[Task, int | None], Delayed[Any]],
    task: Task,
    key: Any,
    length: int | None,
    *,
    rename: Mapping[str, str] | None = None,
) -> Delayed[Any]:
    """A value dask rebuilt: persisted (``graph`` holds its result) or rewritten (``bind``)."""
    from dask.base import replace_name_in_key
    from dask.highlevelgraph import HighLevelGraph

    from tarry._interop.dask_collections import convert

    key = replace_name_in_key(key, rename) if rename else key
    if isinstance(graph, HighLevelGraph):  # rewritten (bind, clone): it joins tarry's graph
        return make(convert(graph, key), length)
    held = graph[key]  # persisted: the result, or where it is kept
    if type(held).__name__ == "Future" and callable(getattr(held, "result", None)):
        # client.persist: the value stays on the cluster, held as tarry's own
        # persist on Dask holds it (fetched once by a compute elsewhere)
        from tarry._schedule.dask import held_future

        held = held_future(held, {str(key): task.name})
    return make(Task.kept(str(key), held, task.name, fingerprint(task)), length)
