"""The ``"processes"`` backend: a warm pool of worker processes, for pure-Python CPU work.

Threads share one GIL; worker processes do not. The pool is loky's reusable
executor: started on first use, kept between computes (idle workers retire
after five minutes), replaced after a worker dies. Functions and values go
through cloudpickle, so lambdas, closures and functions defined in
``__main__`` (a script without a ``__main__`` guard, a notebook) work, and the
parent's environment variables are left alone.

What travels, and how often:

* **Units.** Before the run, tasks are grouped into units, each run by one
  worker in one go: a linear chain is one unit, and so is a task together
  with the exclusive branch below it (inputs no other task uses), as long as
  merging several branches leaves enough units to keep every worker busy.
  Results inside a unit never leave the worker; only a unit's last task
  sends its result back.
* **Batches.** Several ready units go to a worker per round trip when their
  tasks are known (from earlier runs of functions of the same name) to be
  short; a unit of unknown or long duration goes alone, so long tasks spread
  over the workers.
* **Resident results.** A result sent back for other tasks stays pickled in
  the parent and is forwarded as it is; only the caller's results are
  unpickled. A large one travels as a file in shared memory, not through the
  pipe (see :mod:`~tarry._schedule.transfer`): written once by the worker
  that made it, mapped by the one that reads it, never copied into the
  parent.

Failures: a task's exception comes back with its type, message and
traceback, and a note naming the task; a task that cannot be pickled fails
before anything runs; a worker that dies gives a :class:`WorkerDiedError`
naming the task it was running (each worker notes its current task key in a
small file, read only after a death). Ctrl-C cancels queued work and stops
the workers that run this compute's tasks (the next compute starts new ones).

A compute nested in a task runs with the ``"sync"`` scheduler inside that
worker when it asks for ``"processes"``: every worker already has a CPU of
its own, and a pool inside each worker would only oversubscribe them.

Examples
--------
>>> from tarry import delayed
>>> total = delayed(sum)([delayed(pow)(i, 2) for i in range(4)])
>>> total.compute(scheduler="processes", num_workers=1)
14
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pickle
import re
import shutil
import signal
import struct
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tarry._graph import Task, call
from tarry._schedule.core import Run, pop_first, worker_name
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.errors import ErrorPacket, UnpicklableTaskError, WorkerDiedError, annotate
from tarry._schedule.futures import FutureDriver
from tarry._schedule.pickling import dumps
from tarry._schedule.sync import run_sync
from tarry._schedule.transfer import Blob, discard, from_blob, own, to_blob
from tarry._schedule.wire import pack_error, scan_payload, slim, unpack_error

__all__ = ["run_processes", "shutdown_pool"]

#: seconds an idle worker waits for work before it exits
_IDLE_TIMEOUT = 300.0
#: a batch holds ready units up to this many seconds of estimated work
_BATCH_SECONDS = 0.02

# -- the pool -------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: Any = None
_pool_size = 0


def _get_pool(workers: int) -> tuple[Any, int]:
    """The shared pool, with at least ``workers`` processes, and its size.

    loky keeps one reusable executor per thread; tarry keeps one per process
    (computes from any thread share it), so it holds it here.
    """
    global _pool, _pool_size
    import loky

    with _pool_lock:
        pool = _pool
        if pool is not None and _pool_size >= workers and not _broken(pool):
            return pool, _pool_size
        size = max(workers, _pool_size if pool is not None and not _broken(pool) else 0)
        fresh = loky.get_reusable_executor(
            max_workers=size, timeout=_IDLE_TIMEOUT, initializer=_init_worker
        )
        if pool is not None and fresh is not pool:
            # made in another thread: loky would keep both alive
            pool.shutdown(wait=False)
        _pool, _pool_size = fresh, size
        return fresh, size


def _broken(pool: Any) -> bool:
    flags = getattr(pool, "_flags", None)
    return flags is not None and bool(flags.broken or flags.shutdown)


def _forget_pool(pool: Any, kill: bool = False) -> None:
    """Drop ``pool`` (broken, or to be killed) so the next compute starts a new one."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is pool:
            _pool, _pool_size = None, 0
    if kill:
        pool.shutdown(wait=False, kill_workers=True)


def shutdown_pool() -> None:
    """Stop the worker processes now; the next ``"processes"`` compute starts new ones.

    Examples
    --------
    >>> shutdown_pool()
    """
    global _pool, _pool_size
    with _pool_lock:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True)


# -- markers: which task each worker is running ------------------------------

_marker_dir: str | None = None


def _markers() -> str:
    """The directory where workers note their current task (made on first use)."""
    global _marker_dir
    with _pool_lock:
        if _marker_dir is None:
            shm = "/dev/shm"
            base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            _marker_dir = tempfile.mkdtemp(prefix="tarry-workers-", dir=base)
            atexit.register(shutil.rmtree, _marker_dir, True)
        return _marker_dir


def _dead_workers_tasks(directory: str) -> list[str]:
    """Keys noted by worker processes that are dead now (their notes are removed)."""
    keys: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return keys
    for name in names:
        if not name.isdigit() or not _is_dead(int(name)):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
        except OSError:
            continue
        if len(data) >= 4:
            (size,) = struct.unpack_from("<I", data)
            if size:
                keys.append(data[4 : 4 + size].decode("utf-8", "replace"))
    return keys


def _is_dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state in (b"Z", b"X")  # a zombie is dead, just not reaped yet
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


# -- the worker side ------------------------------------------------------------

#: True in a worker process of the pool
_in_worker = False
#: this worker's marker file: (directory, descriptor); descriptor -1 when unusable
_marker: tuple[str, int] | None = None
_IDLE = struct.pack("<I", 0)


def _init_worker() -> None:
    """Run once in each new worker process."""
    global _in_worker
    _in_worker = True
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # what stops (and stops workers itself), so a worker never dies of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _open_marker(directory: str) -> int:
    global _marker
    if _marker is None or _marker[0] != directory:
        try:
            fd = os.open(os.path.join(directory, str(os.getpid())), os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            fd = -1
        _marker = (directory, fd)
    return _marker[1]


def _note(fd: int, key: str | None) -> None:
    if fd >= 0:
        data = key.encode() if key is not None else b""
        with contextlib.suppress(OSError):
            os.pwrite(fd, struct.pack("<I", len(data)) + data, 0)


#: one unit's outcome: (True, result bytes, timings) or (False, error, timings)
Outcome = tuple[bool, Any, list[float]]


def _run_batch(
    markers: str, code: bytes, inputs: dict[str, Blob], timed: bool, last: frozenset[str]
) -> tuple[str, list[Outcome]]:
    """In a worker: run the units of one batch, stop at the first error.

    ``code`` is the pickled list of units, each its slim tasks in dependency
    order and the keys of its outputs (the results that leave it); ``inputs``
    the pickled values of what they need from outside; ``last`` the inputs
    that no task outside this batch reads: their files are removed as soon as
    the batch has read them (not when the parent learns it is done), so a
    value does not exist twice longer than needed. Returns the worker's
    name and, per unit run, its outcome: the pickled outputs (large ones as
    files in ``markers``, the parent's folder for such files), and the start,
    end (and CPU time, if ``timed``) of each task run.
    """
    units: list[tuple[list[Task], list[str]]] = pickle.loads(code)
    fd = _open_marker(markers)
    clock, cpu_clock = time.perf_counter, time.thread_time
    values: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    # per input, how many units of the batch still have to read it
    loads: dict[str, int] = {}
    for tasks, _ in units:
        for key in {d.key for t in tasks for d in t.deps if d.key in inputs}:
            loads[key] = loads.get(key, 0) + 1
    try:
        for tasks, outputs in units:
            # readers inside the unit of each value it uses: a value no output
            # needs is dropped as soon as its last reader here has run
            readers: dict[str, int] = {}
            for task in tasks:
                for dep in task.deps:
                    readers[dep.key] = readers.get(dep.key, 0) + 1
            keep = set(outputs)
            times: list[float] = []
            for task in tasks:
                for dep in task.deps:
                    if dep.key not in values:
                        values[dep.key] = from_blob(inputs[dep.key])
                        loads[dep.key] -= 1
                        if not loads[dep.key] and dep.key in last:
                            discard(inputs[dep.key])
                _note(fd, task.key)
                cpu = cpu_clock() if timed else 0.0
                start = clock()
                try:
                    value = call(task, values)
                except BaseException as exc:  # SystemExit too: the task failed, not the worker
                    outcomes.append((False, pack_error(exc, task.key), times))
                    return worker_name(), outcomes
                times.append(start)
                times.append(clock())
                if timed:
                    times.append(cpu_clock() - cpu)
                for dep in task.deps:
                    left = readers.get(dep.key)
                    if left is not None:
                        readers[dep.key] = left - 1
                        if left == 1 and dep.key not in keep:
                            del values[dep.key]
                values[task.key] = value
            blobs: list[Blob] = []
            for key in outputs:
                try:
                    blobs.append(to_blob(values.pop(key), markers))
                except Exception as exc:
                    for blob in blobs:
                        discard(blob)
                    task = next(t for t in tasks if t.key == key)
                    err = TypeError(
                        f"the result of task {key!r} ({task.name}) cannot be pickled to send "
                        f"it back from the worker process: {exc}"
                    )
                    outcomes.append((False, pack_error(err, key), times))
                    return worker_name(), outcomes
            for task in tasks:  # what stayed (results read by no one) goes now
                values.pop(task.key, None)
            outcomes.append((True, blobs, times))
    finally:
        _note(fd, None)
    return worker_name(), outcomes


# -- planning units -------------------------------------------------------------

#: per task name, the running estimate of its duration in seconds (kept
#: between computes: functions keep their names)
_estimates: dict[str, float] = {}


class _Unit:
    """Tasks that run together in one worker; only the outputs' results leave it."""

    __slots__ = ("entries", "into", "outputs", "root", "tasks")

    def __init__(self, tasks: list[Task], entries: int) -> None:
        #: dependencies first
        self.tasks = tasks
        #: while planning: the unit this one was merged into
        self.into: _Unit | None = None
        #: tasks of the unit Run has still to hand out before the unit can go
        self.entries = entries
        #: keys of the tasks whose results someone outside the unit reads
        self.outputs: list[str] = []
        #: True when the unit reads no result of another unit (it loads data)
        self.root = False

    def cost(self) -> float | None:
        """Estimated seconds of work, or None if some task has never been timed."""
        total = 0.0
        for task in self.tasks:
            seconds = _estimates.get(task.name)
            if seconds is None:
                return None
            total += seconds
        return total


def _plan_units(run: Run, workers: int) -> dict[str, _Unit]:
    """Group the run's tasks into units; returns the unit of every computed task.

    A task takes in the units of its computed inputs when each of those has
    it as only reader (and is not a target). One such input (a chain) is
    always taken in: nothing could run beside it anyway. Several are taken
    in only while the unit stays below ``cap`` tasks, so that a wide branch
    still splits into enough units for all workers. A task is never merged
    with some of its inputs but not others: a unit is ready exactly when
    Run has handed out all its first tasks.

    Otherwise a task whose computed inputs all lie in one unit joins that
    unit (below ``cap``), so those inputs never leave the worker: the
    tutorial's groupby, where one parsed table feeds both a sum and a count.
    Such a unit has several outputs, and is never merged into another (a
    unit that both feeds and reads another unit would wait for itself).
    """
    dependents, refs = run.dependents, run.refs
    computed = [t for t in run.tasks.values() if t.func is not None]
    cap = max(2, math.ceil(len(computed) / (4 * workers)))
    units: dict[str, _Unit] = {}
    several: set[int] = set()  # ids of units with more than one output
    fuse = run.fuse
    for task in computed:
        if not fuse:  # optimize_graph=False: every task on its own
            units[task.key] = _Unit([task], 1)
            continue
        inner = [d for d in task.deps if d.func is not None]
        parts: list[_Unit] = []
        take, size = bool(inner), 1
        for dep in inner:
            part = _merged(units[dep.key])
            if refs[dep.key] != 1 or len(dependents[dep.key]) != 1 or id(part) in several:
                take = False
            if part not in parts:  # identity: units define no __eq__
                parts.append(part)
                size += len(part.tasks)
        if take and (len(inner) == 1 or size <= cap):  # a chain is always taken in
            # the largest takes the others in; their tasks find it through
            # ``into`` (updating each task's entry would be O(n log n))
            if len(parts) == 2:
                if len(parts[1].tasks) > len(parts[0].tasks):
                    parts.reverse()
            else:
                parts.sort(key=_size, reverse=True)
            unit = parts[0]
            for other in parts[1:]:
                unit.tasks.extend(other.tasks)
                unit.entries += other.entries
                other.into = unit
            unit.tasks.append(task)
        elif len(parts) == 1 and size <= cap:
            unit = parts[0]
            unit.tasks.append(task)
            several.add(id(unit))
        else:
            unit = _Unit([task], 1)
        units[task.key] = unit
    for key, unit in units.items():
        units[key] = _merged(unit)
    targets = {t.key for t in run.targets}
    for unit in {id(u): u for u in units.values()}.values():
        outputs, root = unit.outputs, True
        for task in unit.tasks:
            key = task.key
            if key in targets:
                outputs.append(key)
            else:
                for reader in dependents.get(key, ()):
                    if units[reader.key] is not unit:
                        outputs.append(key)
                        break
            if root:
                for dep in task.deps:
                    if dep.func is not None and units[dep.key] is not unit:
                        root = False
                        break
        unit.root = root
    return units


def _size(unit: _Unit) -> int:
    return len(unit.tasks)


def _reads_results(unit: _Unit) -> bool:
    return not unit.root


def _merged(unit: _Unit) -> _Unit:
    """The unit ``unit`` now belongs to (itself, unless merged into another)."""
    while unit.into is not None:
        unit = unit.into
    return unit


# -- the driver -----------------------------------------------------------------


class _Resident:
    """A result kept pickled in the parent: forwarded to workers as it is."""

    __slots__ = ("data",)

    def __init__(self, data: Blob) -> None:
        self.data = data


class _ProcessDriver(FutureDriver):
    def __init__(self, run: Run, pool: Any, workers: int, pool_size: int) -> None:
        super().__init__(run)
        self.pool = pool
        # keep a batch queued behind each running one, so a worker never
        # waits for a round trip; not when the pool is bigger than asked for
        self.slots = 2 * workers if pool_size == workers else workers
        self.workers = workers
        self.units = _plan_units(run, workers)
        self.ready_units: list[_Unit] = []
        self.targets = {t.key for t in run.targets}
        self.stubs: dict[str, Task] = {}
        #: pickled inputs that are not resident results (literals, targets)
        self.blobs: dict[str, Blob] = {}
        self.timed = run.events is not None
        self.markers = _markers()
        #: ids of the units in flight
        self.flying: set[int] = set()
        #: results whose reading unit waits only for units in flight (see _next_unit)
        self.parked: set[str] = set()

    def _next_unit(self) -> _Unit | None:
        """The ready unit to ship next; None if only root units are ready and must wait.

        As :class:`~tarry._schedule.core.Run` does for threads: while a result
        waits only for units in flight, a root unit (one that reads no other
        unit's result) is held back, so a fold loads one chunk ahead, not all.
        """
        ready = self.ready_units
        # no root unit waits in the queue behind running ones either: it
        # would run as soon as a worker is free, whether its result is
        # wanted then or not
        hold = bool(self.parked and self.flying) or len(self.flying) >= self.workers
        if not hold:
            return ready.pop()
        return pop_first(ready, _reads_results)

    def _park(self, key: str, readers: list[Task]) -> None:
        """Note ``key`` as parked if one of its readers waits only for units in flight."""
        for reader in readers:
            if self._waits_only_for_flying(self.units[reader.key]):
                self.parked.add(key)
                return

    def _inputs(self, unit: _Unit) -> list[str]:
        """Keys of the results of other units that ``unit`` reads."""
        units = self.units
        return [
            dep.key
            for task in unit.tasks
            for dep in task.deps
            if dep.func is not None and units[dep.key] is not unit
        ]

    def _waits_only_for_flying(self, unit: _Unit) -> bool:
        units, values, flying = self.units, self.run.values, self.flying
        missing = [key for key in self._inputs(unit) if key not in values]
        return bool(missing) and all(id(units[key]) in flying for key in missing)

    def _park_inputs_of_readers(self, unit: _Unit) -> None:
        """``unit`` was shipped: results its readers hold ready may be parked now."""
        units, values, dependents = self.units, self.run.values, self.run.dependents
        for key in unit.outputs:
            for reader in dependents.get(key, ()):
                other = units[reader.key]
                if self._waits_only_for_flying(other):
                    self.parked.update(k for k in self._inputs(other) if k in values)

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
                if more is None or cost + more > _BATCH_SECONDS:
                    break
                if ready[-1].root and self.parked:
                    break
                batch.append(ready.pop())
                cost += more
            error = self._ship(batch)
            if error is not None:
                return error
            free -= 1
        return None

    def _ship(self, batch: list[_Unit]) -> BaseException | None:
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
                            self.parked.discard(dep.key)
        refs = self.run.refs
        last = frozenset(k for k, n in readers.items() if refs[k] == n and k not in self.targets)
        try:
            code = dumps(code_units)
        except Exception as exc:
            return self._unpicklable(batch, exc)
        try:
            future = self.pool.submit(_run_batch, self.markers, code, inputs, self.timed, last)
        except Exception as exc:  # the pool broke between two computes
            _forget_pool(self.pool)
            task = batch[0].tasks[0]
            self.run.failed = task.key
            return annotate(exc, task)
        self.track(future, batch)
        self.flying.update(id(unit) for unit in batch)
        for unit in batch:
            self._park_inputs_of_readers(unit)
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

    def _unpicklable(self, batch: list[_Unit], exc: BaseException) -> BaseException:
        # scan_payload found nothing, yet the batch does not pickle (an object
        # that pickles alone but not with others): name the first task that fails
        for unit in batch:
            try:
                scan_payload(unit.tasks)
            except UnpicklableTaskError as found:
                self.run.failed = found.task.key
                return annotate(found, found.task)
        task = batch[0].tasks[-1]
        err = UnpicklableTaskError(
            f"tasks {[t.key for u in batch for t in u.tasks]!r} cannot be sent to a worker "
            f"process: {type(exc).__name__}: {exc}",
            task,
        )
        self.run.failed = task.key
        return annotate(err, task)

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        batch: list[_Unit] = work
        try:
            worker, outcomes = future.result()
        except BaseException as exc:  # the pool broke, or the batch was cancelled
            return self._lost(batch, exc)
        run = self.run
        self.flying.difference_update(id(unit) for unit in batch)
        for blob in _handed_over(outcomes):
            own(blob)
        for unit, (ok, payload, times) in zip(batch, outcomes, strict=False):
            self._learn(unit, times, worker)
            if not ok:
                packet: ErrorPacket = payload
                task = run.tasks[packet.key]
                run.failed = task.key
                return annotate(unpack_error(packet), task)
            self._finish(unit, payload)
        return None

    def _learn(self, unit: _Unit, times: list[float], worker: str) -> None:
        """Update duration estimates, and keep timings if they are wanted."""
        step = 3 if self.timed else 2
        record = self.run.record
        for i, task in enumerate(unit.tasks[: len(times) // step]):
            start, end = times[i * step], times[i * step + 1]
            seconds = end - start
            old = _estimates.get(task.name)
            _estimates[task.name] = seconds if old is None else 0.7 * old + 0.3 * seconds
            if self.timed:
                record(task, worker, start, end, times[i * step + 2])

    def _finish(self, unit: _Unit, blobs: list[Blob]) -> None:
        run, units, ready = self.run, self.units, self.run.ready
        outputs = dict(zip(unit.outputs, blobs, strict=True))
        readers = {key: run.dependents.get(key, []) for key in outputs}
        for task in unit.tasks:
            blob = outputs.get(task.key)
            value: Any = None  # stayed in the worker: only readers inside the unit
            if blob is not None:
                if task.key in self.targets:
                    value = from_blob(blob)
                    if run.refs[task.key] > 1:
                        self.blobs[task.key] = blob
                else:
                    value = _Resident(blob)
            before = len(ready)
            run.finish(task, value)
            if len(ready) > before:  # the unit's own tasks among them ran already
                ready[before:] = [t for t in ready[before:] if units.get(t.key) is not unit]
        for task in unit.tasks:
            for dep in task.deps:
                if dep.key not in run.values:
                    self.blobs.pop(dep.key, None)
        for key, waiting in readers.items():
            if key in run.values:
                self._park(key, waiting)

    def _lost(self, batch: list[_Unit], exc: BaseException) -> BaseException:
        """A batch ended without a result: a dead worker, a broken pool, a cancellation."""
        run = self.run
        if not isinstance(exc, BrokenProcessPool):
            task = batch[0].tasks[0]
            run.failed = task.key
            return annotate(exc, task)
        _forget_pool(self.pool)
        ours = {t.key: t for b in [batch, *self.in_flight.values()] for u in b for t in u.tasks}
        running = [k for k in _dead_workers_tasks(self.markers) if k in ours]
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
        run.failed = task.key
        return annotate(error, task)

    def _stop(self, error: BaseException) -> BaseException:
        self._abandon()
        return super()._stop(error)

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
            _forget_pool(self.pool, kill=True)


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


def run_processes(run: Run, num_workers: int | None = None) -> BaseException | None:
    """Run ``run`` on the shared pool of worker processes; return the first task error.

    ``num_workers`` bounds how many tasks run at once (default: the usable
    CPUs); the pool grows to it if needed.
    """
    if _in_worker:
        return run_sync(run)
    if not run.remaining:
        return None
    try:
        scan_payload(run.tasks.values())
    except UnpicklableTaskError as err:
        run.failed = err.task.key
        return annotate(err, err.task)
    workers = num_workers or usable_cpus()
    pool, size = _get_pool(workers)
    return _ProcessDriver(run, pool, workers, size).drive()
