"""What travels to a worker process and back, for every out-of-process backend.

Used by ``"processes"``, ``"ray"``, ``"dask"`` and executors that pickle::

    caller                                   worker
    ------                                   ------
    slim(task)  -- key-only stubs -------->  call(task, inputs)
    scan_payload(tasks): pickles each          |
      function/argument once, fails early      v
      with UnpicklableTaskError            pack_error(exc)
    unpack_error(packet) <-- ErrorPacket ---   (pickled whole if it can be,
      (the task's own exception type)           always as text too)

* :func:`slim` turns a task into what travels: its dependencies become
  key-only stubs, so pickling a task never pickles the graph above it;
* :func:`scan_payload` pickles each distinct function and argument once before
  anything is submitted, so an unpicklable one fails early with
  :class:`~tarry._schedule.errors.UnpicklableTaskError` naming the task and
  the object;
* :func:`pack_error` (in the worker) and :func:`unpack_error` (in the caller)
  carry a task's exception back with its type, message and traceback (they
  live in :mod:`~tarry._schedule.errors`);
* what pickles may still not unpickle (a ``unittest.mock`` object that has
  recorded calls): when a worker could not load what it was sent,
  :func:`find_unloadable` finds the task and the object.
"""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tarry._build.traverse import ATOMIC
from tarry._graph import Pack, Quote, Task
from tarry._schedule.errors import (
    ADVICE,
    UnpicklableTaskError,
    describe,
    pack_error,
    result_error,
    unpack_error,
)
from tarry._schedule.pickling import pickled_size

__all__ = [
    "Payload", "find_unloadable", "not_loaded_error", "pack_error", "result_error", "scan_payload",
    "slim", "unloadable_error", "unpack_error",
]  # fmt: skip


# -- tasks that travel -------------------------------------------------------


def slim(task: Task, stubs: dict[str, Task], swap: dict[int, Task] | None = None) -> Task:
    """``task`` as it is sent to a worker: each dependency becomes a key-only stub.

    ``stubs`` caches one stub per key across the tasks of a run. Objects
    whose ``id`` is in ``swap`` (top-level arguments only) are replaced by the
    given stub too, and appended to the deps: a backend passes them as inputs,
    so a large argument shared by many tasks can travel once.

    Examples
    --------
    >>> from tarry._graph import call
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


def _picklable(obj: Any, outer: frozenset[int] = frozenset()) -> bool:
    """True if ``obj`` pickles (``outer``: see :func:`_culprit`)."""
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
        f"be pickled: {_short_repr(culprit)} ({describe(exc)}); {ADVICE}"
    )


def _short_repr(obj: Any, limit: int = 100) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__qualname__} object>"
    return text if len(text) <= limit else text[: limit - 4] + " ...>"


def _load_failure(obj: Any, outer: frozenset[int] = frozenset()) -> Exception | None:
    """What pickling ``obj`` and unpickling it again raises, if anything.

    The objects whose ids are in ``outer`` travel as stubs, so that a part
    that refers back to what holds it is judged on its own.
    """
    import cloudpickle

    buffer = io.BytesIO()
    pickler = cloudpickle.CloudPickler(buffer, protocol=5)
    if outer:
        pickler.persistent_id = lambda item: id(item) if id(item) in outer else None
    try:
        pickler.dump(obj)
        unpickler = pickle.Unpickler(io.BytesIO(buffer.getvalue()))
        unpickler.persistent_load = lambda ident: None  # type: ignore[method-assign]
        unpickler.load()
    except Exception as exc:
        return exc
    return None


def _round_trips(obj: Any, outer: frozenset[int] = frozenset()) -> bool:
    """True if ``obj`` pickles and unpickles again (``outer``: see :func:`_load_failure`)."""
    return _load_failure(obj, outer) is None


#: how deep :func:`_culprit` looks into an object for the part that fails:
#: deep enough for an item of an attribute of a closure variable
_CULPRIT_DEPTH = 6


def _culprit(
    obj: Any,
    path: list[str],
    depth: int,
    fine: Callable[[Any, frozenset[int]], bool] = _picklable,
    outer: frozenset[int] = frozenset(),
) -> tuple[list[str], Any]:
    """The innermost part of ``obj`` that is not ``fine`` (pickles), and how to reach it.

    ``outer`` holds the ids of the objects ``obj`` was found in: a part that
    is one of them is a way back (a cycle), never the culprit.
    """
    if depth < _CULPRIT_DEPTH:
        inner = outer | {id(obj)}
        for name, part in _components(obj):
            if type(part) in ATOMIC or id(part) in inner or fine(part, inner):
                continue
            return _culprit(part, [*path, name], depth + 1, fine, inner)
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


# -- what may fail on arrival ---------------------------------------------------------


def unloadable_error(tasks: Iterable[Task], exc: BaseException) -> UnpicklableTaskError:
    """The error for ``tasks`` that a worker could not load (it raised ``exc``).

    The one :func:`find_unloadable` finds; else an error naming the first
    task and ``exc``.
    """
    tasks = list(tasks)
    found = find_unloadable(tasks)
    if found is not None:
        return found
    return not_loaded_error(next(t for t in tasks if t.func is not None), exc)


def not_loaded_error(task: Task, exc: BaseException) -> UnpicklableTaskError:
    """The error for ``task`` whose worker could not load it or its inputs (raising ``exc``)."""
    return UnpicklableTaskError(
        f"task {task.key!r} ({task.name}) could not start in its worker process, which "
        f"could not load it or its inputs ({describe(exc)}); {ADVICE}",
        task,
    )


def find_unloadable(tasks: Iterable[Task]) -> UnpicklableTaskError | None:
    """The error for the first object of ``tasks`` that pickles but does not unpickle.

    Each object is pickled and unpickled here, as a worker would: the first
    that fails is named, with the innermost part of it that fails. Slow:
    for when a worker could not load what it was sent.

    Examples
    --------
    >>> from unittest import mock
    >>> recorder = mock.MagicMock()
    >>> _ = recorder.save(1)  # a recorded call: it pickles, but never unpickles
    >>> task = Task("f-1", repr, (recorder,), None, (), "repr")
    >>> print(str(find_unloadable([task]))[:95])
    task 'f-1' (repr) cannot be sent to another process: attribute '_mock_call_args' of item 'save'
    """
    for task in tasks:
        if task.func is None:
            continue
        for label, obj in _parts(task):
            why = None if type(obj) in ATOMIC else _load_failure(obj)
            if why is None:
                continue
            path, culprit = _culprit(obj, [], 0, _round_trips)
            where = " of ".join([*reversed(path), label])
            return UnpicklableTaskError(
                f"task {task.key!r} ({task.name}) cannot be sent to another process: {where} "
                f"pickles, but cannot be unpickled: {_short_repr(culprit)} ({describe(why)}); "
                f"{ADVICE}",
                task,
            )
    return None
