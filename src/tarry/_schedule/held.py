"""A value that lives in a cluster: what :func:`tarry.persist` keeps on Ray or Dask.

On ``"ray"`` and ``"dask"``, ``persist`` hands the graph to the cluster and
returns at once, as ``client.persist`` does. Each persisted ``Delayed`` then
holds a :class:`Held`: the engine's handle to its result (a Ray
``ObjectRef``, a ``distributed.Future``), never the value. Where the value
goes from there:

* a later compute on the same cluster puts the handle itself into the graph
  it submits, as the input of the tasks that read it: the value stays on the
  workers, and none of it passes through the caller;
* a compute anywhere else (a local scheduler, an Executor, the other engine,
  a dask client of another cluster) fetches it before its tasks start
  (:func:`settle`), each held value once per compute: those tasks run in
  threads or processes that cannot reach the cluster's memory. The
  ``Delayed`` goes on holding the handle, not the fetched value;
* a compute that asks for the persisted value itself (as a target) fetches
  it: the caller wants the value.

Lifetimes: the data lives in the cluster as long as its handle does, by the
engine's own reference counting. After ``persist`` returns, the handle lives
only in the persisted ``Delayed`` (in its literal task, and so in every graph
built on it), and in a compute's run while that compute runs. Dropping the
last of those releases the data: distributed forgets the key, Ray frees the
object.

Failures: a persisted task that fails keeps its error in the cluster, as the
engines do, and the compute that needs the value raises it, with the type,
text and note a compute of that task would have given (the task that failed
is named even when it is not part of the later graph, through
:attr:`Held.names`).

Examples
--------
>>> from tarry._graph import Task
>>> def fetch(run, held):
...     return {key: h.handle * 10 for key, h in held.items()}
>>> kept = Task.kept("x-1", Held("demo", 4, fetch, names={"x-1": "make"}), "make", "token")
>>> run = Run([Task("y-1", abs, (kept,), None, (kept,), "abs")])
>>> type(run.values["x-1"]).__name__
'Held'
>>> settle(run, "sync"), run.values["x-1"]
(None, 40)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from tarry._graph import Task
from tarry._schedule.core import Run

__all__ = ["HOLDERS", "Fetch", "Held", "failed_task", "fetched", "holder", "settle"]

#: fetches held values of one engine into the caller: per key the value, or
#: the error (booked with ``run.fail``) of the first one that failed
Fetch = Callable[[Run, dict[str, "Held"]], dict[str, Any] | BaseException]

#: scheduler name -> "module:function" of the backend that persists on it
#: (submits and returns with a :class:`Held` per target, waiting for nothing)
HOLDERS: dict[str, str] = {
    "ray": "tarry._schedule.ray:persist_ray",
    "dask": "tarry._schedule.dask:persist_dask",
}


class Held:
    """A result that stays in a cluster: the engine's handle to it.

    Parameters
    ----------
    engine
        The scheduler that made it, ``"ray"`` or ``"dask"``.
    handle
        A Ray ``ObjectRef`` or a ``distributed.Future``.
    fetch
        How to bring held values of this engine into the caller (:data:`Fetch`).
    owner
        What the handle is valid with besides its engine: the ``distributed.Client``
        (a Ray process has one connection, so None).
    names
        Per key, the name of every task the persisting run computed: the
        task an error comes from may not be part of a later graph.
    """

    __slots__ = ("engine", "fetch", "handle", "names", "owner")

    def __init__(
        self,
        engine: str,
        handle: Any,
        fetch: Fetch,
        owner: Any = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.handle = handle
        self.fetch = fetch
        self.owner = owner
        self.names = names or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # the handle alone: a client does not pickle, and only tasks' sizes are
        # measured by pickling (a held value travels as its handle, or fetched)
        return (Held, (self.engine, self.handle, self.fetch))

    def __repr__(self) -> str:
        return f"<held in the {self.engine} cluster: {type(self.handle).__name__}>"


def holder(scheduler: object) -> Callable[[Run, Any], BaseException | None] | None:
    """The backend that persists on ``scheduler`` without waiting, or None (it computes).

    Examples
    --------
    >>> holder("threads") is None, holder("dask").__name__
    (True, 'persist_dask')
    """
    if not isinstance(scheduler, str) or scheduler not in HOLDERS:
        return None
    module, _, func = HOLDERS[scheduler].partition(":")
    backend: Callable[[Run, Any], BaseException | None] = getattr(
        importlib.import_module(module), func
    )
    return backend


def settle(
    run: Run, engine: object, owner: object = None, targets: bool = False
) -> BaseException | None:
    """Fetch the held values ``run`` cannot use where it runs; return the first error.

    Fetched are those of another ``engine``; with ``owner``, those valid with
    another owner; with ``targets``, the targets' own (the caller wants
    their values). The rest stay held, for the backend to put in place.
    """
    values = run.values
    wanted = {t.key for t in run.targets} if targets else set()
    groups: dict[Fetch, dict[str, Held]] = {}
    for key, value in values.items():
        if type(value) is Held and (
            value.engine != engine
            or (owner is not None and value.owner is not owner)
            or key in wanted
        ):
            groups.setdefault(value.fetch, {})[key] = value
    for fetch, held in groups.items():
        fetched = fetch(run, held)
        if isinstance(fetched, BaseException):
            return fetched
        run.keep(fetched)
    return None


def fetched(task: Task) -> Any:
    """The value of the literal ``task``, brought here if it is held in a cluster.

    For graphs that another engine runs as they are (dask's schedulers
    running a tarry value): it cannot read the cluster's memory either.
    Raises the error of a persisted task that failed.

    Examples
    --------
    >>> fetched(Task.literal("x", 5))
    5
    """
    value = task.args[0]
    if type(value) is not Held:
        return value
    run = Run([task])
    error = settle(run, None)
    if error is not None:
        raise error
    return run.values[task.key]


def failed_task(run: Run, key: str) -> Task:
    """The task ``key`` whose error reached ``run``: the run's own, else one a
    persisted value was made from (named as it was then).

    Examples
    --------
    >>> made = Held("demo", None, lambda run, held: {}, names={"div-1": "div"})
    >>> kept = Task.kept("y-1", made, "inc", "token")
    >>> failed_task(Run([kept]), "div-1")
    Task('div-1', value=None)
    >>> failed_task(Run([kept]), "div-1").name
    'div'
    """
    task = run.tasks.get(key)
    if task is not None:
        return task
    for value in run.values.values():
        if type(value) is Held and key in value.names:
            return Task.literal(key, None, value.names[key])
    return Task.literal(key, None, "?")
