"""``compute``, and the road from every entry point to a backend.

Every entry point reads its arguments the same way: :func:`pack_targets`
finds the lazy values inside them, :func:`resolve_options` settles the
scheduler, the workers, the progress bar and the timeout from the call and
the config (:func:`tarry.explain` uses both, pictures the first). :func:`run_graph` is
then the one road from a compute (or :func:`tarry.persist`, which wraps the
values :func:`keep` returns in ``Delayed``) to a backend: one backend call, inside
:func:`tarry._tools.observe.watching`, with the outcome kept for
:func:`tarry._tools.last_run.last_run` however the run ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from tarry import config
from tarry._build.annotate import check_options
from tarry._build.traverse import pack, shallow
from tarry._cache.lookup import cached_targets
from tarry._cache.switch import store_for, tidy
from tarry._graph import Pack, Task, fingerprint, resolve
from tarry._interop.dask_settings import dask_choice, dask_progress
from tarry._schedule import Settings, check_scheduler, get_backend
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.held import holder, settle
from tarry._schedule.tracebacks import release_own_frames
from tarry._tools import observe
from tarry._tools.last_run import remember
from tarry._tools.progress import ProgressBar

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from os import PathLike

    from tarry._build.delayed import Delayed

# the types of compute()'s results, one per argument (see its overloads)
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")

__all__ = [
    "Options",
    "checked_retries",
    "compute",
    "keep",
    "optimize",
    "pack_targets",
    "resolve_options",
    "run_graph",
]


def pack_targets(objs: tuple[Any, ...], traverse: bool = True) -> tuple[list[Any], list[Task]]:
    """``objs`` as :func:`tarry._build.traverse.pack` stores them, and the tasks they need.

    The tasks are those standing in ``objs`` directly or inside containers
    (with ``traverse=False``, directly only), once each, in the order first
    met: the targets of a run.

    Examples
    --------
    >>> from tarry import delayed
    >>> x = delayed(abs)(-1)
    >>> packed, targets = pack_targets((x, [x, 2], "plain"))
    >>> [t.key for t in targets] == [x.key], packed[2]
    (True, 'plain')
    """
    deps: dict[str, Task] = {}
    wrap = pack if traverse else shallow
    packed = [wrap(obj, deps) for obj in objs]
    return packed, list(deps.values())


class Options(NamedTuple):
    """How to run a graph: the call's options over the config's, checked.

    A named tuple, not a dataclass: every compute makes one, and a tuple is
    made in a third of the time.
    """

    #: a scheduler's name or an Executor, as :func:`tarry._schedule.get_backend` takes it
    scheduler: str | Executor
    #: what the backend is told: workers (None lets it choose) and the settings it needs
    settings: Settings
    progress: bool
    #: what diagnostics are told: the scheduler's name (an Executor's class
    #: name) and how many tasks it runs at once
    name: str
    workers: int


def resolve_options(
    scheduler: str | Executor | None,
    num_workers: int | None,
    progress: bool | None = None,
    timeout: float | None = None,
) -> Options:
    """The options of a compute; None takes the value from :func:`tarry.config.set`.

    A scheduler neither given nor set follows the settings a dask user left
    in place (:mod:`tarry._interop.dask_settings`): ``dask.config``'s
    scheduler, a default ``distributed.Client``; an active
    ``dask.diagnostics.ProgressBar`` turns on tarry's bar.

    Raises a helpful error for an unknown scheduler or a bad value. Workers
    are 1 for ``"sync"``; an Executor is sized by its pool; otherwise
    ``num_workers`` or the usable CPUs (every pool-based backend's default).

    Examples
    --------
    >>> resolve_options("sync", 4)[2:]
    (False, 'sync', 1)
    >>> resolve_options("sync", 4).settings.num_workers
    4
    >>> resolve_options("threads", 3).workers
    3
    """
    dask = None if scheduler is not None or config.chosen("scheduler") else dask_choice()
    if dask is not None:
        chosen = dask.scheduler
    else:
        chosen = check_scheduler(config.get("scheduler") if scheduler is None else scheduler)
    wanted = config.check_num_workers(
        config.get("num_workers") if num_workers is None else num_workers
    )
    if progress is None and not config.chosen("progress") and dask_progress():
        progress = True  # an active dask.diagnostics.ProgressBar
    show = config.check_progress(config.get("progress") if progress is None else progress)
    limit = config.check_timeout(config.get("timeout") if timeout is None else timeout)
    if isinstance(chosen, str):
        name = chosen
        workers = 1 if chosen == "sync" else wanted or usable_cpus()
    else:
        name = type(chosen).__name__
        size = getattr(chosen, "_max_workers", None)
        workers = size if isinstance(size, int) and size > 0 else wanted or usable_cpus()
    settings = Settings(
        wanted,
        config.get("max_threads"),
        config.get("ray_address"),
        config.get("dask_client") if dask is None or dask.client is None else dask.client,
        limit,
    )
    return Options(chosen, settings, show, name, workers)


def run_graph(
    objs: tuple[Any, ...],
    scheduler: str | Executor | None,
    num_workers: int | None,
    progress: bool | None = None,
    optimize_graph: bool = True,
    timeout: float | None = None,
    retries: int = 0,
    traverse: bool = True,
    hold: bool = False,
    cache: str | PathLike[str] | bool | None = None,
) -> tuple[list[Any], dict[str, Any], BaseException | None]:
    """Run everything lazy inside ``objs``.

    Returns ``objs`` packed, the targets' values, and the first task error.
    With ``hold`` (:func:`tarry.persist`), a cluster backend leaves the
    targets' values in the cluster and returns at once; they are then
    :class:`~tarry._schedule.held.Held` handles. Values held in a cluster
    that this run cannot use there are fetched first (see that module).
    The error is returned, not raised, so that the public function the user
    called raises it: its traceback then shows one tarry frame, not several.
    Active observers (:mod:`tarry._tools.observe`) are told about the run,
    and the run is remembered (:mod:`tarry._tools.last_run`) even when
    Ctrl-C stops it. ``traverse=False`` runs only the lazy values that are
    ``objs`` themselves, not those inside containers.
    """
    packed, targets = pack_targets(objs, traverse)
    options = resolve_options(scheduler, num_workers, progress, timeout)
    # looked up before the check below, so a bad scheduler (or a missing
    # extra) is reported even when there is nothing to run
    backend = get_backend(options.scheduler)
    if hold:
        backend = holder(options.scheduler) or backend
    if not targets:
        return packed, {}, None
    store = store_for(cache)
    tally = None
    if store is not None:
        targets, tally = cached_targets(targets, store)
    run = Run(targets, fuse=optimize_graph, retries=retries)
    run.cache = tally
    bar = _bar() if options.progress else ()
    watch = observe.watching(run, options.name, options.workers, bar)
    try:
        with watch:
            watch.error = settle(run, options.scheduler) or backend(run, options.settings)
    finally:
        remember(run, watch.error)
        tidy(store)
    if watch.error is not None:
        return packed, {}, watch.error
    return packed, run.results(), None


def _bar() -> tuple[ProgressBar, ...]:
    """A progress bar for this run alone, unless one is active already."""
    if any(isinstance(o, ProgressBar) for o in observe.active):
        return ()
    return (ProgressBar(),)


@overload
def compute(
    a: Delayed[A],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A]: ...
@overload
def compute(
    a: Delayed[A],
    b: Delayed[B],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A, B]: ...
@overload
def compute(
    a: Delayed[A],
    b: Delayed[B],
    c: Delayed[C],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A, B, C]: ...
@overload
def compute(
    a: Delayed[A],
    b: Delayed[B],
    c: Delayed[C],
    d: Delayed[D],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A, B, C, D]: ...
@overload
def compute(
    a: Delayed[A],
    b: Delayed[B],
    c: Delayed[C],
    d: Delayed[D],
    e: Delayed[E],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A, B, C, D, E]: ...
@overload
def compute(
    a: Delayed[A],
    b: Delayed[B],
    c: Delayed[C],
    d: Delayed[D],
    e: Delayed[E],
    f: Delayed[F],
    /,
    *,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[A, B, C, D, E, F]: ...
@overload
def compute(
    *objs: Any,
    scheduler: str | Executor | None = ...,
    num_workers: int | None = ...,
    optimize_graph: bool = ...,
    progress: bool | None = ...,
    timeout: float | None = ...,
    retries: int | None = ...,
    traverse: bool = ...,
    cache: str | PathLike[str] | bool | None = ...,
) -> tuple[Any, ...]: ...
def compute(
    *objs: Any,
    scheduler: str | Executor | None = None,
    num_workers: int | None = None,
    optimize_graph: bool = True,
    progress: bool | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    traverse: bool = True,
    cache: str | PathLike[str] | bool | None = None,
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
    timeout
        Seconds the run may take, counted from when its tasks start; then
        it stops as Ctrl-C stops it and raises :class:`TimeoutError`, naming
        the tasks that were running. What stops them depends on where they
        run: ``"processes"`` stops their workers; a thread cannot be
        stopped, so on ``"threads"`` or an executor they run on, their
        results unused; ``"sync"`` looks at the time between tasks only.
        Default from :func:`tarry.config.set` (None: no limit; pass
        ``math.inf`` for no limit whatever the config says).
    retries
        Further attempts for a task that raises an ``Exception``, unless its
        own ``.options(retries=...)`` or :func:`tarry.annotate` block says
        otherwise (default 0). Local schedulers run it again at once; Ray
        and Dask retry with their own machinery (``max_retries``,
        ``retries``). ``last_run()`` and the profile show the attempts.
    traverse
        Look for lazy values inside lists, tuples, dicts... of ``objs``
        (default True, as dask); False computes only the arguments that
        are lazy values (or dask collections) themselves, and returns
        the others as they are, unsearched: quicker for big containers.
    cache
        Load the results of pure tasks from this directory or fsspec URL,
        and store those computed (see :func:`tarry.cache`); ``False``: no
        cache for this compute; default from :func:`tarry.config.set`.

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
    packed, values, failure = run_graph(
        objs, scheduler, num_workers, progress, optimize_graph, timeout, checked_retries(retries),
        traverse, cache=cache,
    )  # fmt: skip
    if failure is not None:
        release_own_frames(failure)  # they would keep the run's values alive
        raise failure
    return tuple(resolve(p, values) for p in packed)


def optimize(*objs: Any, traverse: bool = True) -> tuple[Any, ...]:
    """dask's ``optimize`` for code written for dask: returns ``objs``, ready to compute.

    A tarry graph needs no rewriting before it runs: ``compute()`` reads it
    as it is, and the ``"processes"`` scheduler fuses tasks itself when it
    runs them (``optimize_graph=True``). ``traverse`` is accepted as dask
    takes it.

    Examples
    --------
    >>> from tarry import delayed, optimize
    >>> x = delayed(abs)(-1)
    >>> optimize(x, [x])[0] is x
    True
    """
    if not isinstance(traverse, bool):
        raise TypeError(f"traverse must be True or False, not {traverse!r}")
    return objs


def checked_retries(retries: int | None) -> int:
    """``compute(retries=...)``, checked; None is 0."""
    return check_options(retries=retries).get("retries", 0) if retries is not None else 0


def keep(
    objs: tuple[Any, ...],
    scheduler: str | Executor | None = None,
    num_workers: int | None = None,
    progress: bool | None = None,
    optimize_graph: bool = True,
    timeout: float | None = None,
    retries: int | None = None,
    traverse: bool = True,
) -> tuple[list[Any], dict[str, Task]]:
    """Compute ``objs`` now, for :func:`tarry.persist`: their packed form, and per
    computed key a literal task that holds the value (and the call that made it).

    On Ray and Dask the value stays in the cluster: the task holds a
    :class:`~tarry._schedule.held.Held` handle, and the work may still be
    under way (with a ``timeout``, it is done, or the timeout was raised).

    Examples
    --------
    >>> from tarry import delayed
    >>> packed, kept = keep((delayed(sum)([1, 2]),), scheduler="sync")
    >>> [(task.args[0], task.func) for task in kept.values()]
    [(3, None)]
    """
    packed, values, failure = run_graph(
        objs, scheduler, num_workers, progress, optimize_graph, timeout, checked_retries(retries),
        traverse, hold=True,
    )  # fmt: skip
    if failure is not None:
        release_own_frames(failure)
        raise failure
    kept = {
        t.key: Task.kept(t.key, values[t.key], t.name, fingerprint(t)) for t in _tasks_in(packed)
    }
    return packed, kept


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
