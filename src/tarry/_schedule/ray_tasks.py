"""What runs in Ray's workers, and how tarry's tasks become Ray tasks.

Each task becomes one Ray task returning two results: its value, and a
tiny second one (its timing, or None) that the caller reads as tasks
finish (see :func:`_with_meta`). A task's exception travels packed in a
:class:`~tarry._schedule.errors.TaskFailedError`, raised out of the handler
so that Ray never pickles the task's own exception. tarry's task options
become Ray's: ``retries``/``retry_on`` are ``max_retries`` and
``retry_exceptions`` (the body raises :class:`RetryableTaskError` for the
exceptions named), ``resources`` are ``num_cpus``, ``num_gpus``, ``memory``
and custom resources (:func:`ray_options`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tarry._graph import Task, call
from tarry._schedule.errors import TaskFailedError
from tarry._schedule.timing import HOST, Stopwatch, Timing, for_caller, wall_anchor
from tarry._schedule.wire import pack_error

__all__ = ["RetryableTaskError", "ray_options", "remote_for", "retry_on_of", "submit"]

_lock = threading.Lock()


#: what a task's body may raise that fails the task: SystemExit too, as on
#: "processes" (Ray would take it for the worker's death); not
#: KeyboardInterrupt, which is how Ray cancels a task
_TASK_ERRORS = (Exception, SystemExit)


class RetryableTaskError(TaskFailedError):
    """A task's error its ``retry_on`` names: Ray runs the task again (if attempts are left)."""


def _failure(exc: BaseException, key: str, retry_on: tuple[type[BaseException], ...]) -> Exception:
    packet = pack_error(exc, key)
    if retry_on and isinstance(exc, retry_on) and isinstance(exc, Exception):
        return RetryableTaskError(packet)
    return TaskFailedError(packet)


def _generic_body(timed: bool, retry_on: tuple[type[BaseException], ...]) -> Callable[..., Any]:
    """Generic remote body: a slim task, and the values of its deps in order."""

    def run_task(task: Task, *values: Any) -> Any:
        try:
            return call(task, {d.key: v for d, v in zip(task.deps, values, strict=True)})
        except _TASK_ERRORS as exc:
            failure = _failure(exc, task.key, retry_on)
        raise failure  # out of the handler: Ray must not pickle the task's error as its context

    return _with_meta(run_task, timed)


def _own_body(
    func: Callable[..., Any], timed: bool, retry_on: tuple[type[BaseException], ...]
) -> Callable[..., Any]:
    """Remote body for tasks of one function, called with the task's own arguments."""

    def run(*args: Any) -> Any:
        try:
            return func(*args)
        except _TASK_ERRORS as exc:
            import ray

            key = ray.get_runtime_context().get_task_name() or "?"
            failure = _failure(exc, key, retry_on)
        raise failure

    return _with_meta(run, timed)


def _with_meta(body: Callable[..., Any], timed: bool) -> Callable[..., tuple[Any, Timing | None]]:
    """``body`` returning a second, tiny result: its timing if ``timed``, else None.

    The caller reads only that one as tasks finish: it fails when the task
    fails, and it always unpickles here, unlike a result (made for another
    worker, it may need what only workers have).
    """
    if not timed:

        def run_plain(*args: Any) -> tuple[Any, None]:
            return body(*args), None

        return run_plain

    # made in the caller: the closure carries its host and clock to the worker
    caller, anchor = HOST, wall_anchor()

    def run_timed(*args: Any) -> tuple[Any, Timing]:
        watch = Stopwatch()
        value = body(*args)
        return value, for_caller(watch.stop(), caller, anchor)

    return run_timed


#: (id(func) or 0 for the generic body, timed, retry_on) -> (func, remote
#: function); the func is kept so its id stays its own
_remotes: OrderedDict[tuple[int, bool, tuple[type[BaseException], ...]], tuple[Any, Any]] = (
    OrderedDict()
)
_REMOTES_CACHE = 128


def remote_for(
    ray: Any,
    func: Callable[..., Any] | None,
    timed: bool,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """The remote function for ``func`` (None: the generic one), made once.

    ``retry_on``: the exceptions the body raises as retryable (see :func:`ray_options`).
    """
    key = (0 if func is None else id(func), timed, retry_on)
    with _lock:
        cached = _remotes.get(key)
        if cached is not None:
            _remotes.move_to_end(key)
            return cached[1]
        body = _generic_body(timed, retry_on) if func is None else _own_body(func, timed, retry_on)
        remote = ray.remote(num_returns=2)(body)
        _remotes[key] = (func, remote)
        if len(_remotes) > _REMOTES_CACHE:
            _remotes.popitem(last=False)
        return remote


def _default_max_retries() -> int:
    """Ray's default for how often a task whose worker died runs again."""
    try:
        from ray._private.ray_constants import DEFAULT_TASK_MAX_RETRIES
    except ImportError:  # pragma: no cover - other Ray versions
        return 3
    return int(DEFAULT_TASK_MAX_RETRIES)


def ray_options(task: Task, retries: int) -> dict[str, Any]:
    """Ray's task options for ``task``: retries and resources (``retries``: the run's).

    Examples
    --------
    >>> from tarry._graph import TaskOptions
    >>> t = Task("t", abs, (-1,), None, (), "abs", options=TaskOptions(
    ...     retries=2, retry_on=(OSError,), resources={"CPU": 2, "GPU": 1, "disk": 1}))
    >>> sorted(ray_options(t, 0).items())  # doctest: +NORMALIZE_WHITESPACE
    [('max_retries', 2), ('num_cpus', 2), ('num_gpus', 1), ('resources', {'disk': 1}),
     ('retry_exceptions', [<class 'tarry._schedule.ray_tasks.RetryableTaskError'>])]
    >>> ray_options(Task("u", abs, (-1,), None, (), "abs"), 0)["retry_exceptions"]
    False
    """
    options = task.options
    wanted = retries if options is None or options.retries is None else options.retries
    found: dict[str, Any] = {
        # Ray counts a worker's death and a retried exception alike: without
        # retries asked for, deaths are retried as Ray does by default
        "max_retries": wanted or _default_max_retries(),
        "retry_exceptions": [RetryableTaskError] if wanted else False,
    }
    resources = options.resources if options is not None else None
    if resources:
        custom = dict(resources)
        for name, option in (("CPU", "num_cpus"), ("GPU", "num_gpus"), ("memory", "memory")):
            if name in custom:
                found[option] = custom.pop(name)
        if custom:
            found["resources"] = custom
    return found


def retry_on_of(task: Task, retries: int) -> tuple[type[BaseException], ...]:
    """The exceptions the body of ``task`` marks retryable; () when it has no retries."""
    options = task.options
    wanted = retries if options is None or options.retries is None else options.retries
    if not wanted:
        return ()
    return options.retry_on if options is not None else (Exception,)


def submit(
    remote: Any, args: tuple[Any, ...], name: str, returns: int, options: dict[str, Any]
) -> Any:
    # _remote() is what .options(name=).remote() calls after validating the
    # options anew on every call, a third of the cost of a submit. It takes
    # the options as given, none from the decorator: all of them are here.
    submit = getattr(remote, "_remote", None)
    if submit is not None:
        return submit(args=args, kwargs={}, name=name, num_returns=returns, **options)
    return remote.options(name=name, **options).remote(*args)  # pragma: no cover
