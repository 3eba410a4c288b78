"""What runs in dask's workers, and how tarry's tasks become a dask graph.

Each task becomes one dask task that calls a small wrapper (:func:`_call`,
or :func:`_call_task` for tasks with containers or keyword arguments): it
runs the task, retries it in place for the exceptions its options name,
sends its timing in a timed run (an event of :data:`TOPIC`), and raises
its exception packed in a :class:`~tarry._schedule.errors.TaskFailedError`.
Literal values become graph nodes; a value persisted on the cluster (a
:class:`~tarry._schedule.held.Held`) is its future, used in place. Task
options become dask annotations (:func:`placement`, :func:`layer`).
:mod:`tarry._schedule.dask` sends the graph and follows the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tarry._build.traverse import ATOMIC
from tarry._graph import Quote, Task, TaskOptions, call
from tarry._schedule.errors import TaskFailedError
from tarry._schedule.held import Held
from tarry._schedule.timing import HOST, Stopwatch, Timing, for_caller, wall_anchor
from tarry._schedule.wire import Payload, pack_error, slim

__all__ = ["TOPIC", "annotations_of", "layer", "placement", "sent_once", "to_dask"]

#: an object shared by several tasks becomes one graph node from this size on
_SHARE_BYTES = 100_000
#: an argument is scattered to a worker, not sent in the graph, from this
#: pickled size on. Measured on a 2-CPU machine with a command-line cluster,
#: a one-task compute took 13 ms with an argument of 1 MB in the graph and
#: 26 ms scattered, 24 and 27 ms at 3 MB, 39 and 34 ms at 10 MB: scattering
#: pays from about 5 MB. A little lower, as a graph also stays in the
#: scheduler's memory while its tasks live (and dask warns from 10 MB).
_SCATTER_BYTES = 4_000_000
#: the topic of the events tasks of a timed run send as they end. One topic
#: for every run and client: the scheduler keeps the last events of each
#: topic (``distributed.admin.low-level-log-length``), so one topic per run
#: would leave a log behind per run.
TOPIC = "tarry-task-ended"
# Values dask would read as graph structure (a string naming a key, a tuple
# starting with a callable, containers of those) travel inside a Quote.
_PLAIN = ATOMIC - {str}


# -- what runs on the workers ---------------------------------------------------


def _value(quoted: Quote) -> Any:
    """A literal node: its value."""
    return quoted.value


def _call(label: Quote, func: Callable[..., Any], *args: Any) -> Any:
    """A task of plain arguments; ``label`` holds ``(key, context)`` (see :func:`_timed`)."""
    return _timed(label, func, [a.value if type(a) is Quote else a for a in args])


def _call_task(label: Quote, task: Task, *values: Any) -> Any:
    """A task with containers or keyword arguments: the slim task and its inputs."""
    return _timed(label, call, [task, {d.key: v for d, v in zip(task.deps, values, strict=True)}])


def _timed(label: Quote, func: Callable[..., Any], args: list[Any]) -> Any:
    """Run the task; in a timed run, tell the caller.

    ``context``: the run's token, the caller's host and its clock's anchor.

    ``retry`` (attempts, exception classes), when the task has retries: it
    runs again here for those exceptions (distributed's own ``retries``
    would retry any exception, and re-queue the task on the scheduler).
    """
    key, context, retry = label.value
    watch = None if context is None else Stopwatch()
    attempts = 0
    while True:
        try:
            value = func(*args)
            break
        except (Exception, SystemExit) as exc:  # SystemExit too: the task failed, not the worker
            if retry is not None and attempts < retry[0] and _retried(exc, retry[1]):
                attempts += 1
                continue
            if watch is not None:
                _tell(context, key, False, watch.stop(), attempts + 1)
            failure = _failure(exc, label)
        # raised out of the handler: distributed pickles an error's context too,
        # and the task's own exception may not pickle (it travels packed)
        raise failure
    if watch is not None:
        _tell(context, key, True, watch.stop(), attempts + 1)
    return value


def _retried(exc: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    return isinstance(exc, Exception) and isinstance(exc, retry_on)


def _tell(
    context: tuple[str, str, float], key: str, ok: bool, timing: Timing, attempts: int
) -> None:
    """Send the caller the event that task ``key`` ended, with its timing and attempts."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not on a distributed worker (dask's local schedulers): nobody listens
        return
    token, host, anchor = context
    timing = for_caller(timing, host, anchor)
    message = [token, key, ok, attempts, *timing]
    worker.log_event(TOPIC, message)


def _failure(exc: BaseException, label: Quote) -> Exception:
    return TaskFailedError(pack_error(exc, label.value[0]))


# -- translation ------------------------------------------------------------------


def to_dask(
    tasks: Iterable[Task],
    shared: dict[int, Any] | None = None,
    scattered: dict[int, Any] | None = None,
    timed: str | None = None,
    retries: int = 0,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A dask task graph (``key -> task tuple``) that computes the same values as ``tasks``.

    Tasks raise their errors wrapped for :func:`run_dask`. Objects whose
    ``id`` is in ``shared`` become graph nodes of their own, so that dask
    sends each of them once; those in ``scattered`` are read from the given
    futures instead (their data is on the workers already). ``timed``, the
    token of a timed run, makes each task send its timing as it ends, as an
    event of that run. ``retries``: the run's, for tasks whose options set none.
    ``values``: the literals' values, where they differ from the tasks' own (a
    persisted value fetched for this run); a value held in the cluster
    (:class:`~tarry._schedule.held.Held`) stands as its future, used in place.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> two = Task("two", abs, (one,), None, (one,), "abs")
    >>> dsk = to_dask([one, two])
    >>> sorted(dsk), dsk["two"][2:]
    (['one', 'two'], (<built-in function abs>, 'one'))
    """
    shared = shared or {}
    scattered = scattered or {}
    names = {ident: f"object-{ident:x}" for ident in [*shared, *scattered]}
    swap = {ident: Task(key, None, (None,), None, (), "object") for ident, key in names.items()}
    dsk: dict[str, Any] = {names[ident]: (_value, Quote(obj)) for ident, obj in shared.items()}
    dsk.update({names[ident]: future for ident, future in scattered.items()})
    # one object for every task
    context = None if timed is None else (timed, HOST, wall_anchor())
    stubs: dict[str, Task] = {}
    for task in tasks:
        key, func = task.key, task.func
        if func is None:
            value = task.args[0] if values is None else values[key]
            if type(value) is Held:
                dsk[key] = value.handle  # its future: the data stays where it is
                continue
            dsk[key] = names.get(id(value)) or (_value, Quote(value))  # a key: an alias
            continue
        label = Quote((key, context, _retry(task, retries)))
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


def _retry(task: Task, retries: int) -> tuple[int, tuple[type[BaseException], ...]] | None:
    """``(attempts, exception classes)`` a task gets again, or None."""
    options = task.options
    wanted = retries if options is None or options.retries is None else options.retries
    if not wanted:
        return None
    return wanted, (options.retry_on if options is not None else (Exception,))


#: the task options dask honours as annotations of the same name
_PLACEMENT = ("resources", "workers", "priority")


def placement(tasks: Iterable[Task]) -> dict[str, dict[str, Any]]:
    """Per dask annotation, its value per key, for the tasks whose options set it.

    ``resources`` are the workers' declared resources, ``workers`` restrict
    where a task runs, and a higher ``priority`` runs first.

    Examples
    --------
    >>> gpu = Task("g", abs, (-1,), None, (), "abs", options=TaskOptions(resources={"GPU": 1}))
    >>> placement([gpu, Task("h", abs, (-1,), None, (), "abs")])
    {'resources': {'g': {'GPU': 1}}}
    """
    found: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task.options is None or task.func is None:
            continue
        for name, value in annotations_of(task.options).items():
            found.setdefault(name, {})[task.key] = value
    return found


def annotations_of(options: TaskOptions) -> dict[str, Any]:
    """One task's placement as dask's annotations (what ``dask.annotate`` would set).

    Examples
    --------
    >>> annotations_of(TaskOptions(resources={"GPU": 1}, priority=3, retries=2))
    {'resources': {'GPU': 1}, 'priority': 3}
    """
    found: dict[str, Any] = {}
    for name in _PLACEMENT:
        value = getattr(options, name)
        if value is not None:
            found[name] = list(value) if name == "workers" else value
    return found


def sent_once(tasks: Iterable[Task], payload: Payload) -> tuple[dict[int, Any], dict[int, Any]]:
    """The objects to send once, by id: ``(to scatter, to make graph nodes)``.

    Only objects :func:`to_dask` can stand in for: literal values and
    top-level arguments (not an array inside a list argument).
    """
    large = {
        ident: payload.objects[ident]
        for ident, size in payload.sizes.items()
        if size >= _SCATTER_BYTES and ident not in payload.functions
    }
    shared = {k: v for k, v in payload.shared(_SHARE_BYTES).items() if k not in large}
    if large or shared:
        top = {id(arg) for task in tasks for arg in task.args}
        large = {k: v for k, v in large.items() if k in top}
        shared = {k: v for k, v in shared.items() if k in top}
    return large, shared


def layer(dsk: dict[str, Any], annotations: dict[str, dict[str, Any]]) -> Any:
    """``dsk``, with each task's annotations (:func:`placement`) if any task has some.

    An annotation of a layer may be a function of the key, called on the
    scheduler: here the lookup in that annotation's values per key (a key
    without one gets None, which the scheduler skips).
    """
    if not annotations:
        return dsk
    from dask.highlevelgraph import MaterializedLayer

    return MaterializedLayer(dsk, {name: keyed.get for name, keyed in annotations.items()})
