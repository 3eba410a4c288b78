"""The ``"ray"`` backend: the whole graph goes to Ray at once (extra ``tarry[ray]``).

Every task becomes one Ray task, named by its key, submitted before any of
them is waited for, with the ObjectRefs of its inputs as arguments: data
moves from worker to worker in Ray's object store, and only the results the
caller asked for come back. An argument object that many tasks share and
that is large (a literal input, or the same object passed to several calls)
is put into the object store once.

Where: with ``tarry.config.set(ray_address=...)`` or ``RAY_ADDRESS`` set, the
first Ray compute of the process connects to that cluster (a GCS address
``host:port``, or ``ray://host:10001``; nothing listening there is a
``ConnectionError`` at once); otherwise it starts a local one of its own with
one CPU per usable CPU (or ``num_workers``), never joining a cluster that
``ray start`` started on the machine. Either way it stays up for the next
computes. A Ray already initialised by the user is used as it is. The nodes
of a remote cluster need tarry installed, like any library the tasks use.
See :mod:`tarry._schedule.ray_connect`.

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
  not unpickle here); Ctrl-C cancels every task not finished yet;
* the first failure ends the run at once: finished tasks are checked as they
  finish (a small result is in the caller's memory already; a large one is
  never an error), and every task not finished is cancelled;
* retries are Ray's: a task whose worker dies is run again as often as Ray's
  default allows (``max_retries``), and ``retries=``/``retry_on=`` (of
  :func:`tarry.annotate`, ``f.options`` or ``compute``) become
  ``max_retries``/``retry_exceptions``; ``resources=`` become ``num_cpus``,
  ``num_gpus``, ``memory`` and custom resources; ``workers=`` and
  ``priority=`` are Dask's and ignored here;
* :func:`persist_ray` submits the same graph and leaves the targets'
  results in the object store, one ObjectRef each
  (:mod:`tarry._schedule.held`); a later graph that reads one has the
  ObjectRef itself as that argument;
* the caller holds a task's ObjectRef only until the task has finished
  (targets: until compute returns), as hand-written Ray code that drops its
  refs does: Ray frees an intermediate result once its readers are done.
* losing the cluster's head (killed, or ``ray stop``) during a compute
  raises :class:`~tarry._schedule.ray_connect.ClusterLostError`, a
  ``ConnectionError`` naming the address, once the head has refused
  connections for 10 s (by GCS address), or once Ray's client gives up (by
  ``ray://``: 10 s on a connection tarry made). If tarry made the
  connection it shuts it down, so the process lives on and the next compute
  connects again; on the user's own connection, Ray ends the process 60 s
  after the head went, as it does for any driver. The tasks of the compute
  are lost: Ray's cluster state lives in its head.

A local cluster that tarry starts is started with Ray's token
authentication (``RAY_AUTH_MODE=token``): its ports are open on the network,
and without a token anyone who reaches them could run code on this machine.

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
import re
from typing import Any

from tarry._graph import Task
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.deadline import Deadline
from tarry._schedule.errors import (
    TaskFailedError,
    UnpicklableTaskError,
    WorkerDiedError,
    text_of,
)
from tarry._schedule.held import Held, failed_task, settle
from tarry._schedule.ray_connect import (
    ClusterLostError,
    Lifeline,
    connect,
    disconnect,
    lifeline_for,
)
from tarry._schedule.ray_tasks import ray_options, remote_for, retry_on_of, submit
from tarry._schedule.wire import (
    find_unloadable,
    not_loaded_error,
    result_error,
    scan_payload,
    slim,
    unpack_error,
)

__all__ = ["connect", "persist_ray", "run_ray"]

#: an object shared by several tasks goes into the object store once from this size on
#: (Ray inlines smaller arguments into each task anyway)
_PUT_BYTES = 100_000
#: a function gets its own remote function when this many tasks of a graph call it
_OWN_REMOTE_FROM = 8
#: seconds between polls for finished tasks
_POLL = 0.1
#: what a timeout error says became of the running tasks
_STOPPED = "their Ray workers were stopped"


# -- the caller's side ------------------------------------------------------------


class _RayRun:
    def __init__(
        self, ray: Any, run: Run, lifeline: Lifeline | None = None, hold: bool = False
    ) -> None:
        self.ray = ray
        self.run = run
        self.lifeline = lifeline
        #: leave the targets' results in the cluster (see :func:`persist_ray`)
        self.hold = hold
        self.timed = run.events is not None
        #: per task not finished yet, the ObjectRef of its second, tiny result
        #: (see :func:`_with_meta`), and the task
        self.pending: dict[Any, Task] = {}
        #: the ObjectRefs of the targets' results, by key (held to the end)
        self.target_refs: dict[str, Any] = {}

    def submit_all(self) -> None:
        """Submit every task, dependencies first."""
        ray, run, timed = self.ray, self.run, self.timed
        values, retries = run.values, run.retries
        object_refs: dict[str, Any] = {}  # dropped when this returns: see the module doc
        payload = scan_payload(run.tasks.values())
        calls = payload.uses  # a function counts as an object sent by each task calling it
        shared = {ident: ray.put(obj) for ident, obj in payload.shared(_PUT_BYTES).items()}
        swap = {ident: Task(f"object-{ident:x}", None, (None,), None, (), "object")
                for ident in shared}  # fmt: skip
        by_stub = {swap[ident].key: ref for ident, ref in shared.items()}
        stubs: dict[str, Task] = {}
        targets = {t.key for t in run.targets}
        plain = ray_options(Task("", None, (), None, (), ""), retries)  # tasks without options

        def value_of(key: str) -> Any:
            if key in object_refs:
                return object_refs[key]
            if key in by_stub:
                return by_stub[key]
            value = values[key]  # a literal
            if type(value) is Held:
                return value.handle  # its ObjectRef: the data stays where it is
            return shared.get(id(value), value)

        for task in run.hand_out_all():
            func = task.func
            retry_on = retry_on_of(task, retries)
            if not task.deep and calls.get(id(func), 0) >= _OWN_REMOTE_FROM:
                remote = remote_for(ray, func, timed, retry_on)
                args = tuple(
                    value_of(a.key) if type(a) is Task else shared.get(id(a), a) for a in task.args
                )
            else:
                small = slim(task, stubs, swap)
                remote = remote_for(ray, None, timed, retry_on)
                args = (small, *[value_of(d.key) for d in small.deps])
            options = plain if task.options is None else ray_options(task, retries)
            ref, meta = submit(remote, args, task.key, 2, options)
            object_refs[task.key] = ref
            self.pending[meta] = task
            if task.key in targets:
                self.target_refs[task.key] = ref

    def wait(self, deadline: Deadline | None = None) -> BaseException | None:
        """Count tasks as they finish, fetch the targets; return the first task error.

        At ``deadline``, every task not finished is cancelled (its worker
        killed, as at Ctrl-C) and the error names those whose inputs were all
        ready: Ray does not say which had started.
        """
        ray, run, pending = self.ray, self.run, self.pending
        try:
            while pending:
                poll = _POLL if deadline is None else max(0.0, min(_POLL, deadline.left()))
                done, _ = ray.wait(
                    list(pending), num_returns=len(pending), timeout=poll, fetch_local=False
                )
                if not done:
                    if deadline is not None and deadline.left() <= 0:
                        return self._time_up(deadline)
                    if self.lifeline is not None:
                        self.lifeline.check()
                    continue
                try:
                    metas = ray.get(done)
                except ray.exceptions.RayError:
                    failure = self._first_failure(done)
                    for meta in done:  # finished: never cancelled (see _cancel)
                        self._record(pending.pop(meta), meta)
                    self._cancel(list(pending))
                    return failure
                for meta, timing in zip(done, metas, strict=True):
                    task = pending.pop(meta)  # its readers hold its result now
                    if timing is not None:
                        run.record(task, timing)
                    run.count_done(task)
            fetched = self._held_targets() if self.hold else self._fetch(self.target_refs)
        except ConnectionError:  # the cluster is gone: nothing to cancel
            raise
        except BaseException:  # Ctrl-C: stop everything now
            self._cancel(list(pending), force=True)
            raise
        if isinstance(fetched, BaseException):
            return fetched
        run.keep(fetched)
        return None

    def _record(self, task: Task, meta: Any) -> None:
        """Record ``task``'s timing, if it succeeded: a failed run's profile shows what ran."""
        try:
            timing = self.ray.get(meta)
        except self.ray.exceptions.RayError:  # it failed: its meta is the error
            return
        if timing is not None:
            self.run.record(task, timing)

    def _time_up(self, deadline: Deadline) -> BaseException:
        """The deadline passed: stop every task not finished; the error names the likely running."""
        waiting = set(self.pending.values())
        running = [t for t in waiting if not any(d in waiting for d in t.deps)]
        self._cancel(list(self.pending), force=True)
        return deadline.error(running, self.run.remaining - len(running), _STOPPED)

    def _held_targets(self) -> dict[str, Any]:
        """A :class:`Held` per target, its result left in the cluster."""
        run = self.run
        names = {key: task.name for key, task in run.tasks.items() if task.func is not None}
        return {key: Held("ray", ref, _fetch, None, names) for key, ref in self.target_refs.items()}

    def _fetch(self, refs: dict[str, Any]) -> dict[str, Any] | BaseException:
        """The results of ``refs`` by key, or the error (booked) of one that does not arrive."""
        ray = self.ray
        try:
            return dict(zip(refs, ray.get(list(refs.values())), strict=True))
        except ray.exceptions.RayError:
            pass
        for key, ref in refs.items():
            try:
                ray.get(ref)
            except ray.exceptions.RayError as err:
                task, error = self._error_of(self.run.tasks[key], err)
                return self.run.fail(task, error)
        raise AssertionError("ray.get failed for the targets but for none of them alone")

    def _first_failure(self, done: list[Any]) -> BaseException:
        """The error of the first failed task among ``done``, booked with the run."""
        ray = self.ray
        for meta in done:  # in finishing order
            try:
                ray.get(meta)
            except ray.exceptions.RayError as err:
                task, error = self._error_of(self.pending[meta], err)
                return self.run.fail(task, error)
        raise AssertionError("ray.get failed for the batch but for none of its refs")

    def _cancel(self, pending: list[Any], force: bool = False) -> None:
        """Cancel unfinished tasks (by one ref each); ``force`` also kills their workers.

        Without force, Ray interrupts a running task only at its next Python
        bytecode: a task blocked in C (a sleep, a big numpy call) goes on.

        Only tasks not seen finishing are cancelled: Ray (2.60) aborts this
        whole process, with no Python error, when a task is cancelled while
        Ray records its result (a failed check, "Tried to complete task that
        was not pending"; ray-project/ray#54798 fixed the same race for
        retries). The task whose failure ends a run is such a task, every
        time. A task finishing at the very moment it is cancelled still can
        meet that race: Ray does not say which tasks are running.
        """
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished, or its worker is gone
                self.ray.cancel(ref, force=force)

    def _error_of(self, task: Task, err: BaseException) -> tuple[Task, BaseException]:
        """``task``'s result is the error ``err``: the task that caused it, and what to raise."""
        cause = getattr(err, "cause", None)
        if isinstance(cause, TaskFailedError):  # a task's own error, perhaps an input's
            return failed_task(self.run, cause.packet.key), unpack_error(cause.packet)
        if isinstance(err, self.ray.exceptions.RayTaskError):
            return task, self._transfer_error(task, err, cause)
        return task, self._system_error(task, err)

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


def _fetch(run: Run, held: dict[str, Held]) -> dict[str, Any] | BaseException:
    """Bring held results into the caller, in one ``ray.get`` (see :data:`.held.Fetch`)."""
    import ray

    return _RayRun(ray, run)._fetch({key: h.handle for key, h in held.items()})


def persist_ray(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Submit ``run`` as :func:`run_ray` does, and leave the targets' results in the cluster.

    Returns at once (see :mod:`tarry._schedule.held`); with
    ``settings.timeout``, once the results are computed, or with the error.
    """
    return run_ray(run, settings, hold=True)


def run_ray(run: Run, settings: Settings = DEFAULTS, hold: bool = False) -> BaseException | None:
    """Run ``run`` on Ray; return the first task error.

    ``settings.num_workers`` sizes a local cluster when this call starts it,
    and is ignored otherwise: the cluster decides how many tasks run at once.
    With ``hold``, see :func:`persist_ray`.
    """
    fetched = settle(run, "ray", targets=not hold)
    if fetched is not None or not run.remaining:
        return fetched
    ray = connect(settings)
    watch = lifeline_for(ray)
    job = _RayRun(ray, run, watch, hold)
    deadline = None if settings.timeout is None else Deadline(settings.timeout)
    try:
        job.submit_all()
    except UnpicklableTaskError as err:
        job._cancel(list(job.pending))
        return run.fail(err.task, err)
    except BaseException:
        job._cancel(list(job.pending), force=True)
        raise
    if hold and deadline is None:  # handed to the cluster: nothing to wait for
        for task in job.pending.values():
            run.count_done(task)
        run.keep(job._held_targets())
        return None
    try:
        return job.wait(deadline)
    except ConnectionError as err:  # the cluster is gone (a ray:// client says so itself)
        lost = err if isinstance(err, ClusterLostError) else watch.lost(f"Ray said: {err}")
        if watch.ours:
            disconnect(ray)
        if lost is err:
            raise
        raise lost from err
