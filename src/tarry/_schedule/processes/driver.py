"""The driver: the futures loop of :mod:`~tarry._schedule.futures`, over batches of units.

It submits ready units in batches, keeps results that other tasks read
pickled in the parent (resident) and forwards them as they are, unpickles
only the caller's results, and turns a broken pool into a
:class:`~tarry._schedule.errors.WorkerDiedError` naming the task that was
running.
"""

from __future__ import annotations

import re
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tarry._graph import Task
from tarry._schedule import DEFAULTS, Settings, interrupts
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.errors import ErrorPacket, UnpicklableTaskError, WorkerDiedError
from tarry._schedule.futures import FutureDriver
from tarry._schedule.holdback import HoldBack
from tarry._schedule.pickling import dumps
from tarry._schedule.processes.markers import dead_workers_tasks, marker_dir
from tarry._schedule.processes.pool import forget_pool, get_pool
from tarry._schedule.processes.units import (
    Unit,
    note_duration,
    plan_units,
    pop_first,
    reads_results,
)
from tarry._schedule.processes.worker import Outcome, in_pool_code, in_worker, run_batch
from tarry._schedule.sync import run_sync
from tarry._schedule.timing import Timing
from tarry._schedule.transfer import Blob, discard, from_blob, own, to_blob
from tarry._schedule.wire import (
    result_error,
    scan_payload,
    slim,
    unloadable_error,
    unpack_error,
)

__all__ = ["BATCHES_PER_WORKER", "BATCH_SECONDS", "run_processes"]

#: a batch holds ready units up to this many seconds of estimated work: long
#: enough that a round trip (~0.2 ms) is a small part of it, short enough
#: that the last batch does not keep one worker busy while others idle
BATCH_SECONDS = 0.02
#: batches in flight per worker: one running, one queued behind it
BATCHES_PER_WORKER = 2


class _Resident:
    """A result kept pickled in the parent: forwarded to workers as it is."""

    __slots__ = ("data",)

    def __init__(self, data: Blob) -> None:
        self.data = data


class _ProcessDriver(FutureDriver):
    fate = "their worker processes were stopped"

    def __init__(self, run: Run, pool: Any, workers: int, pool_size: int) -> None:
        super().__init__(run)
        self.pool = pool
        # keep a batch queued behind each running one, so a worker never
        # waits for a round trip; not when the pool is bigger than asked for
        self.slots = BATCHES_PER_WORKER * workers if pool_size == workers else workers
        self.workers = workers
        self.units = plan_units(run, workers)
        self.ready_units: list[Unit] = []
        self.targets = {t.key for t in run.targets}
        self.stubs: dict[str, Task] = {}
        #: pickled inputs that are not resident results (literals, targets)
        self.blobs: dict[str, Blob] = {}
        self.timed = run.events is not None
        self.markers = marker_dir()
        #: the hold-back policy of core.Run, over units: roots wait while a
        #: result waits only for units in flight
        self.hold: HoldBack[Unit] = HoldBack(self._inputs, self.units.__getitem__, look_down=0)

    def _next_unit(self) -> Unit | None:
        """The ready unit to ship next; None if only root units are ready and must wait.

        As :class:`~tarry._schedule.core.Run` does for threads: while a result
        waits only for units in flight, a root unit (one that reads no other
        unit's result) is held back, so a fold loads one chunk ahead, not all.
        """
        ready, hold = self.ready_units, self.hold
        # no root unit waits in the queue behind running ones either: it
        # would run as soon as a worker is free, whether its result is
        # wanted then or not
        if not hold.holding() and len(hold.under_way) < self.workers:
            return ready.pop()
        return pop_first(ready, reads_results)

    def _reading_units(self, key: str) -> list[Unit]:
        """The units of the tasks that read ``key`` and are not finished."""
        units = self.units
        return [units[reader.key] for reader in self.run.dependents.get(key, ())]

    def _inputs(self, unit: Unit) -> list[str]:
        """Keys of the results of other units that ``unit`` reads."""
        units = self.units
        return [
            dep.key
            for task in unit.tasks
            for dep in task.deps
            if dep.func is not None and units[dep.key] is not unit
        ]

    def submit_ready(self) -> BaseException | None:
        run, units, ready = self.run, self.units, self.ready_units
        popped: list[Task] = []
        while (task := run.pop()) is not None:
            popped.append(task)
        for task in reversed(popped):  # the task Run gave first ends on top
            unit = units[task.key]
            unit.entries -= 1
            if not unit.entries:
                ready.append(unit)
        free = self.slots - len(self.in_flight)
        while free > 0 and ready:
            share = -(-len(ready) // free)  # spread what is ready over the free slots
            first = self._next_unit()
            if first is None:
                break
            batch = [first]
            cost = first.cost()
            while ready and cost is not None and len(batch) < share:
                more = ready[-1].cost()
                if more is None or cost + more > BATCH_SECONDS:
                    break
                if ready[-1].root and self.hold.parked:
                    break
                batch.append(ready.pop())
                cost += more
            error = self._ship(batch)
            if error is not None:
                return error
            free -= 1
        return None

    def _ship(self, batch: list[Unit]) -> BaseException | None:
        units, stubs = self.units, self.stubs
        code_units = [([slim(t, stubs) for t in unit.tasks], unit.outputs) for unit in batch]
        inputs: dict[str, Blob] = {}
        readers: dict[str, int] = {}  # tasks of the batch reading each input
        for unit in batch:
            for task in unit.tasks:
                for dep in task.deps:
                    if units.get(dep.key) is not unit:
                        readers[dep.key] = readers.get(dep.key, 0) + 1
                        if dep.key not in inputs:
                            inputs[dep.key] = self._blob(dep.key)
        refs = self.run.refs
        last = frozenset(k for k, n in readers.items() if refs[k] == n and k not in self.targets)
        try:
            code = dumps(code_units)
        except Exception as exc:
            return self._unpicklable(batch, exc)
        try:
            future = self.pool.submit(run_batch, self.markers, code, inputs, self.timed, last)
        except Exception as exc:  # the pool broke between two computes
            forget_pool(self.pool)
            task = batch[0].tasks[0]
            return self.run.fail(task, exc)
        self.track(future, batch)
        hold, values = self.hold, self.run.values
        for unit in batch:
            hold.started(unit)
        for unit in batch:  # results its readers hold ready may be parked now
            for key in unit.outputs:
                hold.park_inputs_of(self._reading_units(key), values)
        return None

    def _blob(self, key: str) -> Blob:
        value = self.run.values[key]
        if type(value) is _Resident:
            return value.data
        blob = self.blobs.get(key)
        if blob is None:
            blob = to_blob(value, self.markers)
            own(blob)
            if self.run.refs[key] > 1:  # more readers to come
                self.blobs[key] = blob
        return blob

    def _unpicklable(self, batch: list[Unit], exc: BaseException) -> BaseException:
        # scan_payload found nothing, yet the batch does not pickle (an object
        # that pickles alone but not with others): name the first task that fails
        for unit in batch:
            try:
                scan_payload(unit.tasks)
            except UnpicklableTaskError as found:
                return self.run.fail(found.task, found)
        task = batch[0].tasks[-1]
        err = UnpicklableTaskError(
            f"tasks {[t.key for u in batch for t in u.tasks]!r} cannot be sent to a worker "
            f"process: {type(exc).__name__}: {exc}",
            task,
        )
        return self.run.fail(task, err)

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        batch: list[Unit] = work
        try:
            worker, outcomes = future.result()
        except BaseException as exc:  # the pool broke, or the batch was cancelled
            return self._lost(batch, exc)
        run = self.run
        for unit in batch:
            self.hold.stopped(unit)
        for blob in _handed_over(outcomes):
            own(blob)
        for i, (unit, (ok, payload, times)) in enumerate(zip(batch, outcomes, strict=False)):
            self._learn(unit, times, worker)
            if not ok:
                packet: ErrorPacket = payload
                task = run.tasks[packet.key]
                raised = unpack_error(packet)
                if run.retry(task, raised, again=False):
                    # the unit runs again whole (what it made stayed in the
                    # worker), and so do the units behind it, which never ran
                    self.ready_units.extend(reversed(batch[i:]))
                    return None
                return run.fail(task, raised)
            error = self._finish(unit, payload)
            if error is not None:
                return error
        return None

    def tasks_of(self, work: Any) -> list[Task]:
        batch: list[Unit] = work
        return [task for unit in batch for task in unit.tasks]

    def _learn(self, unit: Unit, times: list[float], worker: str) -> None:
        """Update duration estimates, and keep timings if they are wanted."""
        step = 3 if self.timed else 2
        record = self.run.record
        for i, task in enumerate(unit.tasks[: len(times) // step]):
            start, end = times[i * step], times[i * step + 1]
            note_duration(task.name, end - start)
            if self.timed:
                record(task, Timing(worker, start, end, times[i * step + 2]))

    def _finish(self, unit: Unit, blobs: list[Blob]) -> BaseException | None:
        """Book ``unit``'s results; the error if a target's result does not unpickle here."""
        run = self.run
        outputs = dict(zip(unit.outputs, blobs, strict=True))
        readers = {key: self._reading_units(key) for key in outputs}
        done: list[tuple[Task, Any]] = []
        for task in unit.tasks:
            blob = outputs.get(task.key)
            value: Any = None  # stayed in the worker: only readers inside the unit
            if blob is not None:
                if task.key in self.targets:
                    try:
                        value = from_blob(blob)
                    except Exception as exc:  # it pickled in the worker, yet does not load here
                        return run.fail(task, result_error(task, exc, here=True))
                    if run.refs[task.key] > 1:
                        self.blobs[task.key] = blob
                else:
                    value = _Resident(blob)
            done.append((task, value))
        run.finish_together(done)
        for task in unit.tasks:
            for dep in task.deps:
                if dep.key not in run.values:
                    self.blobs.pop(dep.key, None)
        for key, reading in readers.items():
            if key in run.values:
                self.hold.park(key, reading, run.values)
        return None

    def _lost(self, batch: list[Unit], exc: BaseException) -> BaseException:
        """A batch ended without a result: a dead worker, a broken pool, a cancellation."""
        run = self.run
        if isinstance(exc, CancelledError):
            return run.fail(batch[0].tasks[0], exc)
        if not isinstance(exc, BrokenProcessPool):
            # run_batch raised: the worker could not load the batch or its inputs
            unloadable = unloadable_error([t for unit in batch for t in unit.tasks], exc)
            unloadable.__cause__ = exc
            return run.fail(unloadable.task, unloadable)
        forget_pool(self.pool)
        ours = {t.key: t for b in [batch, *self.in_flight.values()] for u in b for t in u.tasks}
        running = [k for k in dead_workers_tasks(self.markers) if k in ours]
        codes = re.search(r"exit codes of the workers are (\{.*?\})", str(exc))
        how = f" (exit code {codes.group(1)})" if codes else ""
        if running:
            task = ours[running[0]]
            message = f"a worker process died{how} while running task {task.key!r} ({task.name})"
            if len(running) > 1:
                others = ", ".join(repr(k) for k in running[1:])
                message += f"; the pool stopped with it other workers, running {others}"
        else:
            task = batch[0].tasks[0]
            message = (
                f"the process pool broke{how} while task {task.key!r} ({task.name}) was "
                "queued or running"
            )
        error = WorkerDiedError(message + "; the next compute starts new worker processes")
        error.__cause__ = exc
        return run.fail(task, error)

    def _stop(self, error: BaseException) -> BaseException:
        # The run is over: its tasks still running would run on for nobody,
        # and the pool's next user (or the interpreter's exit) would wait for
        # them. Stop them as Ctrl-C does.
        self.interrupt()
        return error

    def _abandon(self) -> None:
        """The run ends without results: remove its files now, in-flight ones later.

        Now, not when the run is dropped: a traceback the caller keeps would
        keep the run, and its files, alive.
        """
        for future in self.in_flight:
            future.add_done_callback(_discard_outcomes)
        for value in self.run.values.values():
            if type(value) is _Resident:
                discard(value.data)
        for blob in self.blobs.values():
            discard(blob)

    def interrupt(self) -> None:
        self._abandon()
        stuck = [f for f in self.in_flight if not f.cancel()]
        if stuck:
            # Running tasks would go on for as long as they take: Ctrl-C must
            # stop them. Only killing their processes can; the pool goes too.
            forget_pool(self.pool, kill=True)


def _handed_over(outcomes: list[Outcome]) -> list[Blob]:
    """The results a batch's outcomes hand over (those of the units that succeeded)."""
    return [blob for ok, payload, _ in outcomes if ok for blob in payload]


def _discard_outcomes(future: Future[Any]) -> None:
    try:
        _, outcomes = future.result()
    except BaseException:  # cancelled, or lost with its worker: nothing was handed over
        return
    for blob in _handed_over(outcomes):
        discard(blob)


def run_processes(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run ``run`` on the shared pool of worker processes; return the first task error.

    ``settings.num_workers`` bounds how many tasks run at once (default: the
    usable CPUs); the pool grows to it if needed.
    """
    if in_worker():
        return run_sync(run, settings)
    if not run.remaining:
        return None
    try:
        scan_payload(run.tasks.values())
    except UnpicklableTaskError as err:
        return run.fail(err.task, err)
    workers = settings.num_workers or usable_cpus()
    run.limit_cpus(workers)  # a task asking for CPUs holds that many workers
    # Ctrl-C waits while the pool starts a worker: it would leave one unknown to loky
    with interrupts.watching(defer_while=_in_pool_code):
        pool, size = get_pool(workers)
        return _ProcessDriver(run, pool, workers, size).drive(settings.timeout)


def _in_pool_code() -> bool:
    return in_pool_code.depth > 0
