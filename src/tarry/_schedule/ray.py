"""The ``"ray"`` backend: the whole graph goes to Ray at once (extra ``tarry[ray]``).

Every task becomes one Ray task, named by its key, submitted before any of
them is waited for, with the ObjectRefs of its inputs as arguments: data
moves from worker to worker in Ray's object store, and only the results the
caller asked for come back. An argument object that many tasks share and
that is large (a literal input, or the same object passed to several calls)
is put into the object store once.

Where: with ``tarry.config.set(ray_address=...)`` or ``RAY_ADDRESS`` set, the
first Ray compute of the process connects to that cluster; otherwise it starts
a local one with one CPU per usable CPU (or ``num_workers``). Either way it
stays up for the next computes. A Ray already initialised by the user is used
as it is. The nodes of a remote cluster need tarry installed, like any
library the tasks use.

How it runs:

* a function that many tasks of a graph call gets its own Ray remote
  function (created once and cached), called with the task's arguments
  directly, as hand-written ``@ray.remote`` code would; other tasks (rare
  functions, keyword arguments, containers of inputs) go through one generic
  remote function that receives the task itself;
* the caller polls for finished tasks a few times a second, so ``Run``
  counts them (progress bars) and releases what it no longer needs;
* a task's exception comes back with its type, message and traceback and a
  note naming the task (``SystemExit`` too, as on ``"processes"``); a task
  whose worker process died gives
  :class:`~tarry._schedule.errors.WorkerDiedError` naming it; what Ray could
  not carry gives the same errors as ``"processes"`` (an argument that does
  not unpickle in the worker, a result that does not pickle there or does
  not unpickle here); Ctrl-C cancels every task not finished yet. Tasks are
  never retried.

The ObjectRefs of all tasks are held until the compute returns, so that a
failure can be traced to the task that caused it: Ray keeps intermediate
results that long (spilling them to disk when its store fills up).

Examples
--------
>>> import tarry
>>> from tarry import delayed
>>> total = delayed(sum)([delayed(abs)(-i) for i in range(4)])
>>> total.compute(scheduler="ray")  # doctest: +SKIP
6
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tarry._graph import Task, call
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.errors import (
    TaskFailedError,
    UnpicklableTaskError,
    WorkerDiedError,
    text_of,
)
from tarry._schedule.timing import Stopwatch, Timing
from tarry._schedule.wire import (
    find_unloadable,
    not_loaded_error,
    pack_error,
    result_error,
    scan_payload,
    slim,
    unpack_error,
)

__all__ = ["connect", "run_ray"]

#: an object shared by several tasks goes into the object store once from this size on
#: (Ray inlines smaller arguments into each task anyway)
_PUT_BYTES = 100_000
#: a function gets its own remote function when this many tasks of a graph call it
_OWN_REMOTE_FROM = 8
#: seconds between polls for finished tasks
_POLL = 0.1

_lock = threading.Lock()


def connect(settings: Settings = DEFAULTS) -> Any:
    """The ``ray`` module, connected: to ``settings.ray_address``, or a local one started once.

    Without an address, ``RAY_ADDRESS`` is used if set; a local cluster gets
    ``settings.num_workers`` CPUs (default: the usable ones).

    Examples
    --------
    >>> ray = connect()  # doctest: +SKIP
    >>> ray.is_initialized()  # doctest: +SKIP
    True
    """
    import ray

    with _lock:
        if not ray.is_initialized():
            address = settings.ray_address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=settings.num_workers or usable_cpus(),
                    include_dashboard=False,
                    ignore_reinit_error=True,
                    log_to_driver=False,
                )
    return ray


# -- what runs in Ray's workers -----------------------------------------------------


#: what a task's body may raise that fails the task: SystemExit too, as on
#: "processes" (Ray would take it for the worker's death); not
#: KeyboardInterrupt, which is how Ray cancels a task
_TASK_ERRORS = (Exception, SystemExit)


def _run_task(task: Task, *values: Any) -> Any:
    """Generic remote body: a slim task, and the values of its deps in order."""
    try:
        return call(task, {d.key: v for d, v in zip(task.deps, values, strict=True)})
    except _TASK_ERRORS as exc:
        failure = TaskFailedError(pack_error(exc, task.key))
    raise failure  # out of the handler: Ray must not pickle the task's error as its context


def _run_task_timed(task: Task, *values: Any) -> tuple[Any, Timing]:
    watch = Stopwatch()
    return _run_task(task, *values), watch.stop()


def _own_runner(func: Callable[..., Any], timed: bool) -> Callable[..., Any]:
    """Remote body for tasks of one function, called with the task's own arguments."""
    if timed:

        def run_timed(*args: Any) -> tuple[Any, Timing]:
            watch = Stopwatch()
            return run(*args), watch.stop()

    def run(*args: Any) -> Any:
        try:
            return func(*args)
        except _TASK_ERRORS as exc:
            import ray

            key = ray.get_runtime_context().get_task_name() or "?"
            failure = TaskFailedError(pack_error(exc, key))
        raise failure

    return run_timed if timed else run


_generic: dict[bool, Any] = {}
#: (id(func), timed) -> (func, remote function); the func is kept so its id stays its own
_own: OrderedDict[tuple[int, bool], tuple[Any, Any]] = OrderedDict()
_OWN_CACHE = 128


def _remote_for(ray: Any, func: Callable[..., Any] | None, timed: bool) -> Any:
    """The remote function for ``func`` (None: the generic one), made once."""
    returns = 2 if timed else 1
    with _lock:
        if func is None:
            remote = _generic.get(timed)
            if remote is None:
                body = _run_task_timed if timed else _run_task
                remote = _generic[timed] = ray.remote(max_retries=0, num_returns=returns)(body)
            return remote
        key = (id(func), timed)
        cached = _own.get(key)
        if cached is not None:
            _own.move_to_end(key)
            return cached[1]
        remote = ray.remote(max_retries=0, num_returns=returns)(_own_runner(func, timed))
        _own[key] = (func, remote)
        if len(_own) > _OWN_CACHE:
            _own.popitem(last=False)
        return remote


def _submit(remote: Any, args: tuple[Any, ...], name: str, returns: int) -> Any:
    # _remote() is what .options(name=).remote() calls after validating the
    # options anew on every call, a third of the cost of a submit. It takes
    # the options as given, none from the decorator: all of them are here.
    submit = getattr(remote, "_remote", None)
    if submit is not None:
        return submit(args=args, kwargs={}, name=name, max_retries=0, num_returns=returns)
    return remote.options(name=name).remote(*args)  # pragma: no cover - other Ray versions


# -- the caller's side ------------------------------------------------------------


class _RayRun:
    def __init__(self, ray: Any, run: Run) -> None:
        self.ray = ray
        self.run = run
        self.timed = run.events is not None
        #: every submitted task's result ref, held to the end (see module doc)
        self.object_refs: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}

    def submit_all(self) -> None:
        """Submit every task, dependencies first."""
        ray, run, timed = self.ray, self.run, self.timed
        object_refs, values = self.object_refs, run.values
        payload = scan_payload(run.tasks.values())
        calls = payload.uses  # a function counts as an object sent by each task calling it
        shared = {ident: ray.put(obj) for ident, obj in payload.shared(_PUT_BYTES).items()}
        swap = {ident: Task(f"object-{ident:x}", None, (None,), None, (), "object")
                for ident in shared}  # fmt: skip
        by_stub = {swap[ident].key: ref for ident, ref in shared.items()}
        stubs: dict[str, Task] = {}
        generic = _remote_for(ray, None, timed)

        def value_of(key: str) -> Any:
            if key in object_refs:
                return object_refs[key]
            if key in by_stub:
                return by_stub[key]
            value = values[key]  # a literal
            return shared.get(id(value), value)

        for task in run.hand_out_all():
            func = task.func
            if not task.deep and calls.get(id(func), 0) >= _OWN_REMOTE_FROM:
                remote = _remote_for(ray, func, timed)
                args = tuple(
                    value_of(a.key) if type(a) is Task else shared.get(id(a), a) for a in task.args
                )
            else:
                small = slim(task, stubs, swap)
                remote = generic
                args = (small, *[value_of(d.key) for d in small.deps])
            ref = _submit(remote, args, task.key, 2 if timed else 1)
            if timed:
                ref, self.timings[task.key] = ref
            object_refs[task.key] = ref

    def wait(self) -> BaseException | None:
        """Count tasks as they finish, fetch the targets; return the first task error."""
        ray, run, object_refs = self.ray, self.run, self.object_refs
        task_of = {ref: run.tasks[key] for key, ref in object_refs.items()}
        targets = {object_refs[t.key]: t for t in run.targets if t.key in object_refs}
        results: dict[str, Any] = {}
        pending = list(object_refs.values())
        try:
            while pending:
                done, pending = ray.wait(
                    pending, num_returns=len(pending), timeout=_POLL, fetch_local=False
                )
                done_targets = [ref for ref in done if ref in targets]
                if done_targets:
                    try:
                        got = ray.get(done_targets)
                    except ray.exceptions.RayError as err:
                        self._cancel(pending)
                        return self._failure(err, [targets[ref] for ref in done_targets])
                    for ref, value in zip(done_targets, got, strict=True):
                        results[targets[ref].key] = value
                for ref in done:
                    run.count_done(task_of[ref])
        except BaseException:  # Ctrl-C: stop everything now
            self._cancel(pending, force=True)
            raise
        run.keep(results)
        if self.timed:
            for key, timing in zip(self.timings, ray.get(list(self.timings.values())), strict=True):
                run.record(run.tasks[key], timing)
        return None

    def _cancel(self, pending: list[Any], force: bool = False) -> None:
        """Cancel unfinished tasks; ``force`` also kills the workers running them.

        Without force, Ray interrupts a running task only at its next Python
        bytecode: a task blocked in C (a sleep, a big numpy call) goes on.
        """
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished, or its worker is gone
                self.ray.cancel(ref, force=force)

    def _failure(self, err: BaseException, targets: list[Task]) -> BaseException:
        """The error to report for failed targets: traced to the task that caused it."""
        found = None
        for target in targets:
            found = self._error_of(target)
            if found is not None:
                break
        task, error = found if found is not None else (targets[0], err)
        return self.run.fail(task, error)

    def _error_of(self, task: Task) -> tuple[Task, BaseException] | None:
        """If ``task`` failed: the task that caused it and the error to raise."""
        ray = self.ray
        ref = self.object_refs[task.key]
        ready, _ = ray.wait([ref], timeout=0, fetch_local=False)
        if not ready:
            return None
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, TaskFailedError):
                return self.run.tasks[cause.packet.key], unpack_error(cause.packet)
            if isinstance(err, ray.exceptions.RayTaskError):
                # raised for an input that could not be computed: find which
                for dep in task.deps:
                    if dep.key in self.object_refs:
                        found = self._error_of(dep)
                        if found is not None:
                            return found
                return task, self._transfer_error(task, err, cause)
            return task, self._system_error(task, err)
        return None

    def _transfer_error(self, task: Task, err: BaseException, cause: Any) -> BaseException:
        """``task`` failed in Ray's hands, not in its body (whose errors come as TaskFailedError).

        Either its worker could not unpickle what it was sent, or Ray could
        not pickle its result. Ray's error does not always tell which (its
        report of the first can itself fail to pickle), so the task's objects
        are tried here first.
        """
        error: BaseException | None = find_unloadable([task])
        if error is None:
            why = cause if isinstance(cause, BaseException) else err
            if isinstance(why, self.ray.exceptions.RaySystemError):  # Ray says: loading
                error = not_loaded_error(task, getattr(why, "client_exc", None) or why)
            else:
                error = result_error(task, why)
        error.__cause__ = err
        return error

    def _system_error(self, task: Task, err: BaseException) -> BaseException:
        exceptions = self.ray.exceptions
        if isinstance(err, exceptions.RaySystemError) and hasattr(err, "client_exc"):
            # the result pickled in the worker, but unpickling it here failed
            error: BaseException = result_error(task, err.client_exc, here=True)
            error.__cause__ = err
            return error
        deaths = tuple(
            getattr(exceptions, name)
            for name in ("WorkerCrashedError", "OutOfMemoryError", "NodeDiedError",
                         "LocalRayletDiedError", "RayActorError")
            if hasattr(exceptions, name)
        )  # fmt: skip
        if not isinstance(err, deaths):
            return err
        text = _plain(err).strip()
        first_line = text.splitlines()[0] if text else type(err).__name__
        died = WorkerDiedError(
            f"the Ray worker process running task {task.key!r} ({task.name}) died: {first_line}"
        )
        died.__cause__ = err
        return died


#: a terminal colour code: Ray colours the task names in its messages
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _plain(err: BaseException) -> str:
    """``str(err)`` without terminal colour codes."""
    return _COLOUR.sub("", text_of(err))


def run_ray(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run ``run`` on Ray; return the first task error.

    ``settings.num_workers`` sizes a local cluster when this call starts it,
    and is ignored otherwise: the cluster decides how many tasks run at once.
    """
    if not run.remaining:
        return None
    ray = connect(settings)
    job = _RayRun(ray, run)
    try:
        job.submit_all()
    except UnpicklableTaskError as err:
        job._cancel(list(job.object_refs.values()))
        return run.fail(err.task, err)
    except BaseException:
        job._cancel(list(job.object_refs.values()), force=True)
        raise
    return job.wait()
