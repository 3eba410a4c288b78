"""Running a graph through futures, and what every out-of-process backend shares.

:class:`FutureDriver` is the loop common to backends that hand work to a
:class:`concurrent.futures.Executor`: submit what :meth:`Run.pop
<tarry._schedule.core.Run.pop>` gives, take completed futures from a queue,
feed :meth:`Run.finish <tarry._schedule.core.Run.finish>`, stop at the first
error or at Ctrl-C. :func:`run_executor` drives it over any executor the user
passes as ``scheduler=``, one task per future; the ``"processes"`` backend
builds on the same loop with batches of fused tasks.

The rest serves every backend whose tasks run in another process
(``"processes"``, ``"ray"``, ``"dask"``):

* :func:`slim` turns a task into what travels: its dependencies become
  key-only stubs, so pickling a task never pickles the graph above it;
* :func:`scan_payload` pickles each distinct function and argument once before
  anything is submitted, so an unpicklable one fails early with
  :class:`UnpicklableTaskError` naming the task and the object;
* :func:`pack_error` (in the worker) and :func:`unpack_error` (in the caller)
  carry a task's exception back with its type, message and traceback.

Examples
--------
>>> from concurrent.futures import ThreadPoolExecutor
>>> from tarry import compute, delayed
>>> with ThreadPoolExecutor(2) as pool:
...     compute(delayed(sum)([delayed(abs)(-1), 2]), scheduler=pool)
(3,)
"""

from __future__ import annotations

import io
import marshal
import pickle
import queue
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from tarry._build.traverse import ATOMIC
from tarry._graph import Pack, Quote, Task, call
from tarry._schedule.core import Run, timed_call, worker_name
from tarry._schedule.errors import add_note, annotate

__all__ = [
    "ErrorPacket",
    "FutureDriver",
    "Payload",
    "RemoteError",
    "TaskFailedError",
    "Timing",
    "UnpicklableTaskError",
    "WorkerDiedError",
    "dumps",
    "executor_backend",
    "pack_error",
    "run_executor",
    "scan_payload",
    "slim",
    "unpack_error",
]

#: how a task ran, as a backend reports it: worker name, start, end, CPU seconds
Timing = tuple[str, float, float, float]


class RemoteError(Exception):
    """Stands in for a task's exception that could not be sent back as it was.

    Its message starts with the original type's qualified name; the remote
    traceback is in a note.
    """


class WorkerDiedError(RuntimeError):
    """The process running a task died (killed, crashed, ``os._exit``) before it finished."""


class UnpicklableTaskError(TypeError):
    """A task cannot be sent to another process: its function or an argument does not pickle.

    ``task`` is the task concerned; the message names its key and the object.
    """

    def __init__(self, message: str, task: Task) -> None:
        super().__init__(message)
        self.task = task


class ErrorPacket(NamedTuple):
    """A task's exception as it travels: pickled whole if possible, always as text too."""

    key: str
    blob: bytes | None
    type_name: str
    message: str
    text: str


class TaskFailedError(Exception):
    """Raised in a remote worker so that the engine marks the task failed; carries the packet.

    The caller unwraps it with :func:`unpack_error`; users never see it.
    """

    def __init__(self, packet: ErrorPacket) -> None:
        super().__init__(packet)
        self.packet = packet

    def __str__(self) -> str:
        p = self.packet
        return f"task {p.key!r} raised {p.type_name}: {p.message}"


# -- tasks that travel -------------------------------------------------------


def slim(task: Task, stubs: dict[str, Task], swap: dict[int, Task] | None = None) -> Task:
    """``task`` as it is sent to a worker: each dependency becomes a key-only stub.

    ``stubs`` caches one stub per key across the tasks of a run. Objects
    whose ``id`` is in ``swap`` (top-level arguments only) are replaced by the
    given stub too, and appended to the deps: a backend passes them as inputs,
    so a large argument shared by many tasks can travel once.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> two = Task("two", max, (one, 5), None, (one,), "max")
    >>> s = slim(two, {})
    >>> s.args[0] is one, s.args[0].key, s.deps[0] is s.args[0]
    (False, 'one', True)
    >>> call(s, {"one": 7})
    7
    """
    if task.func is None:
        return task
    deps = tuple([_stub(d, stubs) for d in task.deps])
    kwargs = None
    if task.deep:
        args = tuple([_strip(a, stubs) for a in task.args])
        if task.kwargs:
            kwargs = {k: _strip(v, stubs) for k, v in task.kwargs.items()}
    elif task.args is task.deps:  # f(x, y) on lazy x, y: one tuple serves both
        args = deps
    else:
        args = tuple([_stub(a, stubs) if type(a) is Task else a for a in task.args])
    if swap:
        swapped: list[Task] = []
        new_args = []
        for a in args:
            stub = swap.get(id(a))
            if stub is not None:
                swapped.append(stub)
                a = stub
            new_args.append(a)
        args = tuple(new_args)
        deps += tuple(s for s in dict.fromkeys(swapped) if s not in deps)
    return Task(task.key, task.func, args, kwargs, deps, task.name, task.deep)


def _stub(task: Task, stubs: dict[str, Task]) -> Task:
    stub = stubs.get(task.key)
    if stub is None:
        stub = stubs[task.key] = Task(task.key, None, (None,), None, (), "input")
    return stub


def _strip(obj: Any, stubs: dict[str, Task]) -> Any:
    kind = type(obj)
    if kind is Task:
        return _stub(obj, stubs)
    if kind is Pack:
        return Pack(obj.build, [_strip(item, stubs) for item in obj.items], obj.type_name)
    return obj


# -- checking what travels -------------------------------------------------------


@dataclass
class Payload:
    """What :func:`scan_payload` learnt about the objects a graph sends along.

    ``sizes`` maps ``id(obj)`` to its pickled size in bytes (buffers that
    pickle protocol 5 sends out of band included); ``uses`` to the number
    of tasks that send it; ``objects`` keeps each object by ``id``;
    ``functions`` holds the ids of the tasks' functions.
    """

    sizes: dict[int, int] = field(default_factory=dict)
    uses: dict[int, int] = field(default_factory=dict)
    objects: dict[int, Any] = field(default_factory=dict)
    functions: set[int] = field(default_factory=set)

    def shared(self, min_bytes: int) -> dict[int, Any]:
        """Arguments that several tasks send and that are at least ``min_bytes`` big, by id.

        A backend sends each of them once instead of once per task.
        """
        return {
            ident: self.objects[ident]
            for ident, uses in self.uses.items()
            if uses > 1 and self.sizes[ident] >= min_bytes and ident not in self.functions
        }


def scan_payload(tasks: Iterable[Task]) -> Payload:
    """Pickle each distinct function and argument object of ``tasks`` once.

    Objects are told apart by identity, so a function used by a thousand
    tasks is pickled once. Numbers and other scalars always pickle and are
    skipped; strings and bytes are only measured. The values of literal
    dependencies count as arguments: they travel too.

    Raises
    ------
    UnpicklableTaskError
        For the first task that cannot be sent, naming its key and the
        innermost object that fails to pickle.

    Examples
    --------
    >>> import threading
    >>> def make():
    ...     lock = threading.Lock()
    ...     return lambda: lock
    >>> task = Task("f-1", make(), (), None, (), "f")
    >>> try:
    ...     scan_payload([task])
    ... except UnpicklableTaskError as exc:
    ...     err = exc
    >>> print(str(err)[:89])
    task 'f-1' (f) cannot be sent to another process: closure variable 'lock' of its function
    >>> "cannot pickle '_thread.lock' object" in str(err)
    True
    """
    payload = Payload()
    sizes, uses, objects = payload.sizes, payload.uses, payload.objects
    for task in tasks:
        if task.func is None:
            continue
        counted: set[int] = set()
        payload.functions.add(id(task.func))
        for obj in _objects(task):
            kind = type(obj)
            if kind in _SCALARS:
                continue
            ident = id(obj)
            if ident not in sizes:
                if kind is str or kind is bytes:  # they always pickle, but may be large
                    sizes[ident] = len(obj)
                else:
                    try:
                        sizes[ident] = pickled_size(obj)
                    except Exception as exc:
                        label = next(label for label, o in _parts(task) if o is obj)
                        message = _unpicklable_message(task, label, obj, exc)
                        raise UnpicklableTaskError(message, task) from None
                objects[ident] = obj
            if ident not in counted:
                counted.add(ident)
                uses[ident] = uses.get(ident, 0) + 1
    return payload


def _objects(task: Task) -> list[Any]:
    """The objects :func:`_parts` names, without the names (the common, fast case)."""
    if task.deep:
        return [obj for _, obj in _parts(task)]
    objs = [task.func]
    if task.args is not task.deps:
        objs += [a for a in task.args if type(a) is not Task]
    objs += [d.args[0] for d in task.deps if d.func is None]
    return objs


_SCALARS = ATOMIC - {str, bytes}


def _parts(task: Task) -> Iterator[tuple[str, Any]]:
    """``(label, object)`` for everything of ``task`` that travels besides computed inputs."""
    yield "its function", task.func
    for i, arg in enumerate(task.args):
        yield from _arg_parts(f"argument {i}", arg)
    for name, arg in (task.kwargs or {}).items():
        yield from _arg_parts(f"keyword argument {name!r}", arg)
    for dep in task.deps:
        if dep.func is None:
            yield f"the value of its input {dep.key!r}", dep.args[0]


def _arg_parts(label: str, arg: Any) -> Iterator[tuple[str, Any]]:
    kind = type(arg)
    if kind is Task:
        return
    if kind is Pack:
        for j, item in enumerate(arg.items):
            yield from _arg_parts(f"{label}, item {j}", item)
        yield f"{label} (container rebuild)", arg.build
    elif kind is Quote:
        yield label, arg.value
    else:
        yield label, arg


class _Sink:
    """A file that only counts what is written to it."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n

    def buffer(self, buf: pickle.PickleBuffer) -> None:
        # returning None keeps the buffer out of band: counted, never copied
        self.size += buf.raw().nbytes


_pickler: Any = None
#: the tables ``_pickler``'s dispatch table was built from, and copies of them
_table_sources: list[dict[Any, Any]] = []
_table_copies: list[dict[Any, Any]] = []


def _pickler_class() -> type[pickle.Pickler]:
    """cloudpickle's pickler, except that code objects keep their file name.

    cloudpickle names the file of every function it sends by value
    ``<dynamic-code>``; a traceback from a worker then shows no file and no
    source line for the user's lambdas and ``__main__`` functions. marshal
    keeps code objects exactly, and workers run the same Python.

    Its dispatch table is a plain dict: the pickler looks it up for every
    object, and cloudpickle's own is a ChainMap, a Python-level call each
    time. The dict is rebuilt whenever copyreg's or cloudpickle's tables
    have changed since, so later registrations count as they would there.
    """
    global _pickler, _table_sources, _table_copies
    if _pickler is None:
        import cloudpickle

        class Pickler(cloudpickle.CloudPickler):  # type: ignore[misc]
            pass

        _table_sources = cloudpickle.CloudPickler.dispatch_table.maps
        _pickler = Pickler
    if _table_sources != _table_copies:  # compared in C: far cheaper than a rebuild
        table: dict[Any, Any] = {}
        for entries in reversed(_table_sources):
            table.update(entries)
        table[types.CodeType] = _reduce_code
        _pickler.dispatch_table = table
        _table_copies = [dict(entries) for entries in _table_sources]
    result: type[pickle.Pickler] = _pickler
    return result


def _reduce_code(code: types.CodeType) -> tuple[Callable[[bytes], Any], tuple[bytes]]:
    return marshal.loads, (marshal.dumps(code),)


def dumps(obj: Any, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None) -> bytes:
    """Pickle ``obj`` for another process: cloudpickle, protocol 5, file names kept.

    ``buffer_callback`` as in :class:`pickle.Pickler` (large buffers out of band).

    Examples
    --------
    >>> f = pickle.loads(dumps(lambda: 1))
    >>> f(), f.__code__.co_filename.startswith("<doctest")
    (1, True)
    """
    buffer = io.BytesIO()
    _pickler_class()(buffer, protocol=5, buffer_callback=buffer_callback).dump(obj)
    return buffer.getvalue()


def pickled_size(obj: Any) -> int:
    """Bytes ``obj`` takes pickled by :func:`dumps`, without building the bytes.

    Examples
    --------
    >>> pickled_size(list(range(10))) > 10
    True
    """
    sink = _Sink()
    _pickler_class()(sink, protocol=5, buffer_callback=sink.buffer).dump(obj)
    return sink.size


def _picklable(obj: Any) -> bool:
    try:
        pickled_size(obj)
    except Exception:
        return False
    return True


def _unpicklable_message(task: Task, label: str, obj: Any, exc: BaseException) -> str:
    path, culprit = _culprit(obj, [], 0)
    where = " of ".join([*reversed(path), label])
    return (
        f"task {task.key!r} ({task.name}) cannot be sent to another process: {where} cannot "
        f"be pickled: {_short_repr(culprit)} ({type(exc).__name__}: {exc})"
    )


def _short_repr(obj: Any, limit: int = 100) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__qualname__} object>"
    return text if len(text) <= limit else text[: limit - 4] + " ...>"


def _culprit(obj: Any, path: list[str], depth: int) -> tuple[list[str], Any]:
    """The innermost part of ``obj`` that does not pickle, and how to reach it."""
    if depth < 6:
        for name, part in _components(obj):
            if type(part) not in ATOMIC and not _picklable(part):
                return _culprit(part, [*path, name], depth + 1)
    return path, obj


def _components(obj: Any) -> Iterator[tuple[str, Any]]:
    """Named parts of ``obj`` that pickling it would pickle too."""
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
            try:
                yield f"closure variable {name!r}", cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for i, default in enumerate(obj.__defaults__ or ()):
            yield f"default {i}", default
        for name, default in (obj.__kwdefaults__ or {}).items():
            yield f"default of {name!r}", default
        for name in _global_names(code):
            if name in obj.__globals__:
                yield f"global {name!r}", obj.__globals__[name]
    elif isinstance(obj, types.MethodType):
        yield "the object the method is bound to", obj.__self__
        yield "the method's function", obj.__func__
    elif isinstance(obj, partial):
        yield "the partial's function", obj.func
        for i, arg in enumerate(obj.args):
            yield f"partial argument {i}", arg
        for name, arg in obj.keywords.items():
            yield f"partial argument {name!r}", arg
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, item in enumerate(obj):
            yield f"item {i}", item
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield f"item {key!r}", value
    else:
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            for name, value in attributes.items():
                yield f"attribute {name!r}", value


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


# -- errors that travel -----------------------------------------------------------


def pack_error(exc: BaseException, key: str) -> ErrorPacket:
    """In a worker: ``exc`` (raised by task ``key``) ready to travel to the caller.

    The exception is pickled with its traceback and chained causes when
    :mod:`tblib` is installed; the formatted traceback always travels as text,
    for exceptions that cannot be pickled.
    """
    text = "".join(traceback.format_exception(exc))
    blob: bytes | None = None
    try:
        import cloudpickle

        try:
            from tblib import pickling_support
        except ImportError:  # pragma: no cover - tblib comes with the extras
            pass
        else:
            pickling_support.install(exc)
        blob = cloudpickle.dumps(exc, protocol=5)
        # An exception whose __init__ wants other arguments than its args
        # pickles fine and fails only here; better find out in the worker.
        pickle.loads(blob)
    except Exception:
        blob = _pickled_past_setattr(exc)
    kind = type(exc)
    return ErrorPacket(key, blob, f"{kind.__module__}.{kind.__qualname__}", str(exc), text)


def _pickled_past_setattr(exc: BaseException) -> bytes | None:
    """``exc`` pickled to be rebuilt without its class's ``__init__``/``__setattr__``.

    For exceptions that plain unpickling cannot rebuild, such as a frozen
    dataclass (``BaseException.__setstate__`` assigns through the frozen
    ``__setattr__``). Their traceback travels as text. None if even this fails.
    """
    try:
        import cloudpickle

        state = {k: v for k, v in vars(exc).items() if k != "__notes__"}
        blob: bytes = cloudpickle.dumps(
            _Rebuild(type(exc), exc.args, state, getattr(exc, "__notes__", None)), protocol=5
        )
        pickle.loads(blob)
    except Exception:
        return None
    return blob


class _Rebuild:
    """Pickles as a call of :func:`_rebuild_exception` (see :func:`_pickled_past_setattr`)."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_exception, self.parts)


def _rebuild_exception(
    kind: type[BaseException], args: tuple[Any, ...], state: dict[str, Any], notes: Any
) -> BaseException:
    exc = kind.__new__(kind, *args)
    BaseException.args.__set__(exc, args)  # type: ignore[attr-defined]
    vars(exc).update(state)
    if isinstance(notes, list):
        for note in notes:
            add_note(exc, note)
    return exc


def unpack_error(packet: ErrorPacket) -> BaseException:
    """In the caller: the task's exception, with its original type whenever possible.

    Examples
    --------
    >>> try:
    ...     int("x")
    ... except ValueError as exc:
    ...     err = unpack_error(pack_error(exc, "parse-1"))
    >>> type(err).__name__, str(err)
    ('ValueError', "invalid literal for int() with base 10: 'x'")
    >>> err.__traceback__ is not None
    True
    """
    exc: object = None
    if packet.blob is not None:
        try:
            exc = pickle.loads(packet.blob)
        except Exception:
            exc = None
    # the text has frames only if the exception was raised, not just made
    frames = packet.text.startswith("Traceback")
    if not isinstance(exc, BaseException):
        exc = RemoteError(f"{packet.type_name}: {packet.message}")
        if frames:
            add_note(exc, f"remote traceback:\n{packet.text.rstrip()}")
    elif exc.__traceback__ is None and frames:
        add_note(exc, f"remote traceback:\n{packet.text.rstrip()}")
    return exc


# -- the driver ---------------------------------------------------------------


class FutureDriver:
    """The loop of a futures-based backend: submit, wait, finish, stop on the first error.

    Subclasses implement :meth:`submit_ready` (start what is ready, keeping
    each future with :meth:`track`) and :meth:`complete` (apply one finished
    future to the run). Completed futures arrive through a queue filled by
    done-callbacks, so waiting costs O(1) however many futures are pending.
    """

    #: seconds between checks while waiting; bounds Ctrl-C latency where a
    #: signal does not interrupt a lock wait
    wait_slice = 0.2

    def __init__(self, run: Run) -> None:
        self.run = run
        #: pending futures and the work each one carries
        self.in_flight: dict[Future[Any], Any] = {}
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def submit_ready(self) -> BaseException | None:
        """Submit the work that is ready now; return an error that ends the run, if any."""
        raise NotImplementedError

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        """Apply a finished future to the run; return the task error, if any."""
        raise NotImplementedError

    def track(self, future: Future[Any], work: Any) -> None:
        """Keep ``future`` pending with ``work``; it is handed to :meth:`complete` when done."""
        self.in_flight[future] = work
        future.add_done_callback(self._done.put)

    def interrupt(self) -> None:
        """Ctrl-C (or another BaseException) in the caller: cancel what has not started."""
        for future in self.in_flight:
            future.cancel()

    def drive(self) -> BaseException | None:
        """Run to the end; return the first task error (the run's ``failed`` is set)."""
        try:
            while True:
                error = self.submit_ready()
                if error is not None:
                    return self._stop(error)
                if not self.in_flight:
                    if self.run.remaining:
                        raise RuntimeError(
                            f"tarry: {self.run.remaining} tasks can never run (nothing is ready "
                            "or running); this is a bug in tarry, please report it"
                        )
                    return None
                for future in self._completed():
                    work = self.in_flight.pop(future)
                    error = self.complete(work, future)
                    if error is not None:
                        return self._stop(error)
        except BaseException:
            self.interrupt()
            raise

    def _completed(self) -> list[Future[Any]]:
        """Wait for one future to finish; return it with any others finished meanwhile."""
        done = self._done
        while True:
            try:
                first = done.get(timeout=self.wait_slice)
                break
            except queue.Empty:
                continue
        found = [first]
        while True:
            try:
                found.append(done.get_nowait())
            except queue.Empty:
                return found

    def _stop(self, error: BaseException) -> BaseException:
        # A failed run starts nothing more: futures not started are dropped;
        # running ones finish on their own, their results are ignored.
        for future in self.in_flight:
            future.cancel()
        return error


def _call_task(task: Task, inputs: dict[str, Any], timed: bool) -> tuple[Any, Timing | None]:
    """What an executor runs for one task: its value, and its timing if asked for."""
    if not timed:
        return call(task, inputs), None
    value, start, end, cpu = timed_call(task, inputs)
    return value, (worker_name(), start, end, cpu)


class _ExecutorDriver(FutureDriver):
    """One future per task on a user's executor."""

    def __init__(self, run: Run, executor: Executor) -> None:
        super().__init__(run)
        self.executor = executor
        self.stubs: dict[str, Task] = {}
        self.timed = run.events is not None

    def submit_ready(self) -> BaseException | None:
        run, values, submit = self.run, self.run.values, self.executor.submit
        while (task := run.pop()) is not None:
            inputs = {d.key: values[d.key] for d in task.deps}
            # slim: an executor that pickles (a process pool) must not
            # pickle the whole graph above the task
            try:
                future = submit(_call_task, slim(task, self.stubs), inputs, self.timed)
            except Exception as exc:  # shut down, or it pickles at submit and failed
                run.failed = task.key
                return annotate(exc, task)
            self.track(future, task)
        return None

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        task: Task = work
        try:
            value, timing = future.result()
        except Exception as exc:  # the task's own error, or the executor's (cancelled, broken)
            self.run.failed = task.key
            return annotate(exc, task)
        if timing is not None:
            self.run.record(task, *timing)
        self.run.finish(task, value)
        return None


def run_executor(
    run: Run, num_workers: int | None = None, *, executor: Executor
) -> BaseException | None:
    """Run every task of ``run`` as one future on ``executor``; return the first task error.

    The executor is used as it is and never shut down: its own size limits
    the parallelism, so ``num_workers`` is ignored. Any
    :class:`concurrent.futures.Executor` works; one that runs tasks in other
    processes must be able to pickle the functions and values involved (the
    standard library's process pool cannot pickle lambdas, for instance).
    Ctrl-C cancels the futures that have not started.
    """
    if not run.remaining:
        return None
    return _ExecutorDriver(run, executor).drive()


def executor_backend(executor: Executor) -> Callable[[Run, int | None], BaseException | None]:
    """The backend function that runs graphs on ``executor``.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1) as pool:
    ...     backend = executor_backend(pool)
    ...     run = Run([Task("t", abs, (-2,), None, (), "abs")])
    ...     backend(run, None), run.results()
    (None, {'t': 2})
    """

    def run_on_executor(run: Run, num_workers: int | None = None) -> BaseException | None:
        return run_executor(run, num_workers, executor=executor)

    return run_on_executor
