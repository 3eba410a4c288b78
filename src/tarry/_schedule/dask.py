"""The ``"dask"`` backend: run the graph on a dask.distributed cluster (extra ``tarry[dask]``).

The graph is translated into a dask task graph and sent to the scheduler in
one message through an existing :class:`distributed.Client`: the one given
with ``tarry.config.set(dask_client=client)``, else the current default
client (the last one created). Dask's scheduler places the tasks, moves data
between workers and sends back only the results the caller asked for.
tarry must be installed on the scheduler (it unpickles the graph) and on
the workers.

What travels (sizes in :mod:`tarry._schedule.dask_tasks`): a large argument
(4 MB or more pickled) does not go inside the graph, which passes through
the scheduler and stays there while its tasks live; it is scattered
straight to a worker first (``Client.scatter(direct=True)``; through the
scheduler if the client was made with ``direct_to_workers=False``) and
released when the compute ends. A smaller argument that several tasks
share (from 100 kB) is one graph node, sent once.

Task options (:func:`tarry.annotate`, ``f.options``) become dask's
annotations of the same names, per task: ``resources`` (the workers'
declared resources: a task waits for a worker that has them, as in dask),
``workers`` (where it may run) and ``priority`` (higher first);
``retries`` run the task again in its worker.

:func:`persist_dask` submits the same graph and leaves the targets'
results on the workers, one future each (:mod:`tarry._schedule.held`);
a later graph that reads one has the future itself as that input.

What the caller learns as the run goes: a thread asks the scheduler which
tasks have been computed, from :data:`_FIRST_LOOK` on and now and then
(:class:`_Tracker`), and once more after a failure; ``Run`` counts them
done, so progress bars move and the status picture of a failed run shows
what ran. In a timed run each task also sends its timing as it ends,
succeeded or failed: an event of the topic :data:`~tarry._schedule.dask_tasks.TOPIC`, which travels
on the worker's own stream ahead of the task's result, so every timing is
in when the results are. Workers keep nothing of a task once it has ended.
(An event per task made a run up to a fifth slower, so untimed runs send
none.)

Faults:

* a task's exception comes back with its type, message and traceback and a
  note naming the task;
* a worker that dies (killed, out of memory) costs only the tasks it held:
  distributed runs them again on other workers, and gives up on a task
  once more than ``distributed.scheduler.allowed-failures`` (3 by default)
  workers died running it; then the compute raises
  :class:`~tarry._schedule.errors.WorkerDiedError` naming that task;
* a scheduler that dies closes the client's connection: the client drops
  every future at once and the compute raises :class:`ConnectionError`
  (caused by distributed's ``FutureCancelledError``), as does a compute
  while the client is not connected. A scheduler machine that vanishes
  without closing the connection is noticed after
  ``distributed.comm.timeouts.tcp`` (TCP keepalive; 30 s by default, read
  when the client is made); one that hangs with its connections open, never;
* Ctrl-C cancels the compute on the cluster.
"""

from __future__ import annotations

import secrets
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.dask_tasks import TOPIC, layer, placement, sent_once, to_dask
from tarry._schedule.deadline import Deadline
from tarry._schedule.errors import TaskFailedError, UnpicklableTaskError, WorkerDiedError
from tarry._schedule.held import Held, failed_task, settle
from tarry._schedule.timing import Timing
from tarry._schedule.wire import find_unloadable, scan_payload, unpack_error

__all__ = ["held_future", "persist_dask", "run_dask", "to_dask"]

#: seconds before a run first asks the scheduler which of its tasks are
#: computed: a progress bar shows from 1 s, and a shorter run never asks
_FIRST_LOOK = 0.5
#: seconds between two such looks at most: a progress bar redraws every 0.1 s
#: and moves smoothly enough at this pace
_POLL_SECONDS = 0.5
#: keys a look may check per second of run at most: a look cost 1.5-13 µs
#: per key on a 2-CPU machine (the scheduler's lookup, the keys' transfer
#: both ways), so looking takes at most 5% of a core, typically 2%
_KEYS_PER_SECOND = 4_000
#: what a client's status is while it is connected to its scheduler
_CONNECTED = "running"
# -- what the caller learns as the run goes -----------------------------------------------


class _Tracker:
    """What the caller learns of one run as it goes: the tasks computed, their timings.

    News comes from two threads: the timings of a timed run (events of
    :data:`~tarry._schedule.dask_tasks.TOPIC`) in the client's event-loop thread; the keys computed
    from a thread of its own, started by :meth:`start`, which asks the
    scheduler from :data:`_FIRST_LOOK` seconds on (a shorter run never
    asks), then every :data:`_POLL_SECONDS`, or less often for a large run:
    a look costs the scheduler a lookup per key not counted yet, kept under
    :data:`_KEYS_PER_SECOND`. A task is counted done once (distributed may
    run it again after its worker died); every attempt's timing is kept.
    Once :meth:`stop` returns, nothing touches the run.
    """

    def __init__(self, run: Run, dask_client: Any) -> None:
        self.run = run
        self.client = dask_client
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.open = True
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="tarry-dask-progress", daemon=True)

    def take(self, message: list[Any]) -> None:
        """One task's event: ``[token, key, ok, attempts, worker, start, end, cpu]``."""
        _, key, ok, attempts, *timing = message
        with self.lock:
            if self.open:
                task = self.run.tasks[key]
                self.run.record(task, Timing(*timing))
                if attempts > 1:
                    self.run.count_attempts(task, attempts)
        if ok:
            self.finished([key])

    def finished(self, keys: list[str]) -> None:
        """``keys`` are computed."""
        with self.lock:
            if self.open:
                for key in keys:
                    if key not in self.done:
                        self.done.add(key)
                        self.run.count_done(self.run.tasks[key])

    def start(self) -> None:
        """Start asking the scheduler (the graph is on its way there)."""
        self.thread.start()

    def _watch(self) -> None:
        wait = _FIRST_LOOK
        while not self.stopped.wait(wait) and self.client.status == _CONNECTED:
            wait = max(_POLL_SECONDS, self.look() / _KEYS_PER_SECOND)

    def look(self) -> int:
        """Ask once; how many tasks were left to count."""
        done = self.done
        pending = [
            t.key for t in self.run.tasks.values() if t.func is not None and t.key not in done
        ]
        if pending:
            with suppress(OSError):  # the connection broke: the compute itself reports that
                self.finished(self.client.run_on_scheduler(_finished, pending))
        return len(pending)

    def stop(self, look: bool = False) -> None:
        """Take no more news; with ``look`` (after a failure), ask once more if connected."""
        self.stopped.set()
        if self.thread.ident is not None:
            self.thread.join()
        if look and self.client.status == _CONNECTED:
            self.look()
        with self.lock:
            self.open = False


#: the timed runs under way in this process, by token
_timed_runs: dict[str, _Tracker] = {}


def _hear(event: tuple[float, list[Any]]) -> None:
    """A client's handler of the tasks' events: hand the event to its run, if ours and on."""
    tracker = _timed_runs.get(event[1][0])
    if tracker is not None:
        tracker.take(event[1])


def _finished(keys: list[str], dask_scheduler: Any = None) -> list[str]:
    """Run on the scheduler: which of ``keys`` have been computed.

    A computed task has its result's size (``nbytes``), and keeps it once
    the result is freed. A task the scheduler does not know has not
    arrived yet: none of the run's tasks is forgotten while the caller
    holds the targets, which every task of the run leads to.
    """
    tasks = dask_scheduler.tasks
    return [key for key in keys if (task := tasks.get(key)) is not None and task.nbytes >= 0]


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


def run_dask(run: Run, settings: Settings = DEFAULTS, hold: bool = False) -> BaseException | None:
    """Run ``run`` on ``settings.dask_client`` (or the default one); return the first error.

    ``settings.num_workers`` is ignored: the cluster's workers decide. With
    ``hold``, see :func:`persist_dask`.
    """
    if not run.remaining:
        return settle(run, "dask", targets=not hold)
    dask_client = client(settings.dask_client)
    if dask_client.status != _CONNECTED:
        return run.fail(run.targets[0], _not_connected(dask_client))
    fetched = settle(run, "dask", dask_client, targets=not hold)
    if fetched is not None:
        return fetched
    try:
        payload = scan_payload(run.tasks.values())
    except UnpicklableTaskError as err:
        return run.fail(err.task, err)
    tracker = _Tracker(run, dask_client)
    token = None
    if run.events is not None:
        token = secrets.token_hex(8)
        _timed_runs[token] = tracker
        # Before the graph, on the same stream: subscribed before a task can end.
        dask_client.subscribe_topic(TOPIC, _hear)
    scattered: dict[int, Any] = {}
    try:
        large, shared = sent_once(run.tasks.values(), payload)
        scattered = _scatter(dask_client, large)
        dsk = to_dask(run.tasks.values(), shared, scattered, token, run.retries, run.values)
        annotations = placement(run.tasks.values())
        if "resources" in annotations:
            _warn_if_nowhere(run, dask_client, annotations["resources"])
        graph = layer(dsk, annotations)
        deadline = None if settings.timeout is None else Deadline(settings.timeout)
        return _compute(run, dask_client, tracker, graph, deadline, hold)
    finally:
        tracker.stop()
        _timed_runs.pop(token or "", None)
        for future in scattered.values():
            future.release()


def _warn_if_nowhere(run: Run, dask_client: Any, needs: dict[str, dict[str, float]]) -> None:
    """Warn if a task needs resources no worker has now: dask lets it wait for one.

    Workers declare resources when they start (``dask worker --resources
    "GPU=1"``); none are declared by default, not even ``CPU``, which Ray
    counts without being told.
    """
    declared: dict[str, dict[str, float]] = dask_client.run_on_scheduler(_declared)
    for key, wanted in needs.items():
        missing = {
            name: amount
            for name, amount in wanted.items()
            if amount > max(declared.get(name, {}).values(), default=0)
        }
        if missing:
            task = run.tasks[key]
            warnings.warn(
                f"task {key!r} ({task.name}) needs resources {missing}, and no worker of the "
                f"dask cluster has that much now: it waits until such a worker joins. Start "
                f'workers with them (dask worker --resources "NAME=AMOUNT"), or drop them '
                "from the task's resources on Dask",
                stacklevel=2,
            )
            return


def _declared(dask_scheduler: Any = None) -> dict[str, dict[str, float]]:
    """Run on the scheduler: per resource, the amount each worker declares."""
    return {name: dict(amounts) for name, amounts in dask_scheduler.resources.items()}


def _scatter(dask_client: Any, objects: dict[int, Any]) -> dict[int, Any]:
    """Scatter ``objects`` (by id) to the workers; their futures, by the same ids."""
    if not objects:
        return {}
    direct = dask_client.direct_to_workers is not False
    futures = dask_client.scatter(list(objects.values()), hash=False, direct=direct)
    return dict(zip(objects, futures, strict=True))


def _compute(
    run: Run,
    dask_client: Any,
    tracker: _Tracker,
    dsk: Any,
    deadline: Deadline | None = None,
    hold: bool = False,
) -> BaseException | None:
    """Submit the graph ``dsk`` of ``run`` (a dict or a layer) and wait for the targets;
    return the first error.

    With ``hold``, the targets' results stay in the cluster: ``run`` keeps a
    :class:`~tarry._schedule.held.Held` per target, at once, or once they
    are computed if there is a ``deadline``.
    """
    handed_out = run.hand_out_all()
    keys = [t.key for t in run.targets if t.func is not None]
    from dask.highlevelgraph import HighLevelGraph

    # As one layer of a high-level graph, not a plain dict: the client would
    # tokenize every task of a dict to name it, which costs as much as
    # running the tasks does. tarry's keys are unique already.
    layer = f"tarry-{run.targets[0].key}"
    layers: dict[str, Any] = {layer: dsk}
    futures = dask_client.get(HighLevelGraph(layers, {layer: set()}), keys, sync=False)
    tracker.start()
    try:
        if deadline is not None and not _done_by(deadline, futures):
            tracker.stop()
            return _time_up(run, dask_client, futures, deadline)
        if hold:
            values = _held(run, dask_client, futures, check=deadline is not None)
        else:
            values = dask_client.gather(futures)
    except TaskFailedError as failure:
        tracker.stop(look=True)
        # let go of the failed keys now, not when the error's traceback (which
        # holds these futures) is collected: until then the scheduler keeps the
        # erred tasks, and a new compute of the same keys gets this error again.
        # A release is queued on the client's loop: wait for it to run, or the
        # next compute's futures of the same keys would count before it does
        # and the keys would never be released (tests/test_dask.py, a graph that failed)
        for future in futures:
            future.release()
        dask_client.sync(_loop_turn)
        task = failed_task(run, failure.packet.key)
        return run.fail(task, unpack_error(failure.packet))
    except Exception as exc:
        tracker.stop(look=True)
        return _system_error(run, exc, dask_client, futures)
    except BaseException:  # Ctrl-C
        tracker.stop()
        dask_client.cancel(futures)
        raise
    tracker.finished([task.key for task in handed_out])
    tracker.stop()
    run.keep(dict(zip(keys, values, strict=True)))
    return None


def persist_dask(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Submit ``run`` as :func:`run_dask` does, and leave the targets' results on the cluster.

    Returns at once (see :mod:`tarry._schedule.held`); with
    ``settings.timeout``, once the results are computed, or with the error.
    """
    return run_dask(run, settings, hold=True)


def _held(run: Run, dask_client: Any, futures: list[Any], check: bool) -> list[Held]:
    """A :class:`Held` per future; with ``check`` (all ended), raise the first one's error.

    The error comes as :meth:`distributed.Client.gather` would raise it, with
    no result fetched.
    """
    if check:
        for future in futures:
            if future.status != "finished":
                future.result()  # raises its error
    names = {key: task.name for key, task in run.tasks.items() if task.func is not None}
    return [held_future(future, names) for future in futures]


def held_future(future: Any, names: Mapping[str, str]) -> Held:
    """A :class:`Held` for a ``distributed.Future``, fetched with its own client.

    ``names``: per key, the task that made it (for the error a later compute raises).
    """
    return Held("dask", future, _fetch, future.client, names)


def _fetch(run: Run, held: dict[str, Held]) -> dict[str, Any] | BaseException:
    """Bring held results into the caller: one gather per client (see :data:`.held.Fetch`)."""
    fetched: dict[str, Any] = {}
    for owner in {id(h.handle.client): h.handle.client for h in held.values()}.values():
        keys = [key for key, h in held.items() if h.handle.client is owner]
        try:
            fetched.update(zip(keys, owner.gather([held[k].handle for k in keys]), strict=True))
        except TaskFailedError as failure:
            return run.fail(failed_task(run, failure.packet.key), unpack_error(failure.packet))
        except Exception as exc:
            # dask's own tasks (a client.persist of a tarry value) raise as they
            # are: the failed future names the task
            failed = [k for k in keys if held[k].handle.status == "error"]
            if failed and owner.status == _CONNECTED:
                return run.fail(failed_task(run, failed[0]), exc)
            return _system_error(run, exc, owner, [])
    return fetched


async def _loop_turn() -> None:
    """Nothing: run on a client's loop, it ends once what was queued there before it ran."""


def _done_by(deadline: Deadline, futures: list[Any]) -> bool:
    """Wait for ``futures`` until ``deadline``; whether they all ended (failures included).

    Polled: ``distributed.wait`` would use the default client, not this one.
    """
    while not all(future.done() for future in futures):
        left = deadline.left()
        if left <= 0:
            return False
        time.sleep(min(_DEADLINE_POLL, left))
    return True


#: seconds between looks at a timed compute's futures: short against any timeout
#: a person sets, long against the cost of a look (a few µs per future)
_DEADLINE_POLL = 0.05


def _time_up(run: Run, dask_client: Any, futures: list[Any], deadline: Deadline) -> BaseException:
    """The deadline passed: cancel the compute on the cluster; the error names what ran."""
    processing = dask_client.processing()  # worker -> keys it runs now
    keys = {key for found in processing.values() for key in found}
    running = [task for key, task in run.tasks.items() if key in keys]
    dask_client.cancel(futures, force=True)
    return deadline.error(running, run.remaining - len(running), "cancelled on the cluster")


def _not_connected(dask_client: Any) -> ConnectionError:
    return ConnectionError(
        f"the dask client is not connected to its scheduler {_address(dask_client)} (its "
        f"status is {dask_client.status!r}): if the scheduler is starting again, wait for the "
        "client to reconnect; else create a new Client"
    )


def _address(dask_client: Any) -> str:
    return str(getattr(dask_client.scheduler, "address", "(unknown address)"))


def _system_error(run: Run, exc: Exception, dask_client: Any, futures: Any) -> BaseException:
    """An error of the cluster rather than of a task: name the task concerned."""
    if dask_client.status != _CONNECTED:
        error: BaseException = ConnectionError(
            f"lost the connection to the dask scheduler {_address(dask_client)} during the "
            "compute (the scheduler died, or the network failed); what the cluster held for "
            "this compute is gone. Start the scheduler again and compute again"
        )
        error.__cause__ = exc
        return run.fail(run.targets[0], error)
    dask_client.cancel(futures)
    key = getattr(exc, "task", None)  # distributed's KilledWorker names it
    task = run.tasks.get(key) if isinstance(key, str) else None
    if task is None:
        unloadable = find_unloadable(run.tasks.values())  # a worker could not load a task
        if unloadable is not None:
            unloadable.__cause__ = exc
            return run.fail(unloadable.task, unloadable)
        task = run.targets[0]
        error = exc
    else:
        error = WorkerDiedError(
            f"dask workers died while running task {task.key!r} ({task.name}): {exc}"
        )
        error.__cause__ = exc
    return run.fail(task, error)
