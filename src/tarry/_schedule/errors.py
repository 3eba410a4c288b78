"""How a task's exception reaches the caller: same object, readable traceback.

The exception raised by the user's function is re-raised as it is (same type,
message and cause), with tarry's own frames cut from the front of its
traceback and a note naming the task, so the first frame the user reads is
their own function.

From a worker process, :func:`pack_error` (in the worker) and
:func:`unpack_error` (in the caller) carry it back: pickled whole with its
traceback and causes where it can be, else rebuilt from its class, arguments
and attributes, else as a :class:`RemoteError` that names the task, the
original type and text, and why it could not travel. Packing never raises,
whatever the exception does (a ``__str__`` or ``__reduce__`` that raises,
``__notes__`` that are not a list of strings).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NamedTuple

from tarry._graph import Task
from tarry._schedule.pickling import dumps

__all__ = [
    "ADVICE", "ErrorPacket", "RemoteError", "Sent", "TaskFailedError", "UnpicklableResultError",
    "UnpicklableTaskError", "WorkerDiedError", "add_note", "annotate", "describe", "is_internal",
    "pack_error", "receive", "result_error", "send", "text_of", "unpack_error",
]  # fmt: skip

#: what to do about an object that cannot travel to or from a worker process
ADVICE = "use objects that pickle, or run this graph with scheduler='threads'"

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_internal(filename: str) -> bool:
    """True for a frame of tarry's own code (not of the user's functions)."""
    return filename.startswith(_PACKAGE_DIR) and "/tests/" not in filename


def annotate(exc: BaseException, task: Task) -> BaseException:
    """Trim tarry's leading frames from ``exc`` and add a note naming ``task``.

    Examples
    --------
    >>> err = annotate(ValueError("bad"), Task.literal("x-1", 0))
    >>> err.__notes__
    ["tarry: raised by task 'x-1' (int)"]
    """
    add_note(exc, f"tarry: raised by task {task.key!r} ({task.name})")
    # BaseException.with_traceback sets the slot directly, past __setattr__
    BaseException.with_traceback(exc, _trim(exc.__traceback__))
    return exc


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` once, even where the exception refuses it; never raises.

    A frozen dataclass exception refuses new attributes, so the note goes
    into the instance dict directly, where ``add_note`` would put it. The
    note is a courtesy: the exception itself is what the caller must get.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Frozen(Exception):
    ...     code: int
    >>> err = Frozen(3)
    >>> add_note(err, "hello"); add_note(err, "hello")
    >>> err.__notes__
    ['hello']
    """
    with contextlib.suppress(Exception):
        notes = vars(exc).setdefault("__notes__", [])
        if isinstance(notes, list) and note not in notes:
            notes.append(note)


def _trim(tb: TracebackType | None) -> TracebackType | None:
    start = tb
    while start is not None and is_internal(start.tb_frame.f_code.co_filename):
        start = start.tb_next
    # An error raised by tarry itself (no user frame at all) keeps everything.
    return start if start is not None else tb


class RemoteError(Exception):
    """Stands in for a task's exception that could not be sent back as it was.

    Its message names the task, the original type (qualified name) and text,
    and why that exception could not travel; the remote traceback is in a note.
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


class UnpicklableResultError(TypeError):
    """A task's result cannot travel back from its worker process.

    It does not pickle in the worker, or does not unpickle in the caller.
    ``task`` is the task concerned; the message names its key, the original
    error's type and text.
    """

    def __init__(self, message: str, task: Task) -> None:
        super().__init__(message)
        self.task = task


class ErrorPacket(NamedTuple):
    """A task's exception as it travels: pickled whole if possible, always as text too.

    ``why`` says why ``blob`` is None (the exception could not be pickled).
    """

    key: str
    blob: bytes | None
    type_name: str
    message: str
    text: str
    why: str = ""


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


# -- errors that travel -----------------------------------------------------------


def pack_error(exc: BaseException, key: str) -> ErrorPacket:
    """In a worker: ``exc`` (raised by task ``key``) ready to travel to the caller; never raises.

    The exception is pickled with its traceback and chained causes when
    :mod:`tblib` is installed; the formatted traceback always travels as text,
    for exceptions that cannot be pickled. Notes that do not pickle travel
    as their text.

    Examples
    --------
    >>> class Mute(Exception):
    ...     def __str__(self):
    ...         raise RuntimeError("no text")
    >>> packet = pack_error(Mute(), "k")
    >>> packet.message, type(unpack_error(packet)).__name__
    ('<exception str() failed>', 'Mute')
    """
    kind = type(exc)
    with contextlib.suppress(Exception):  # a sequence of notes that cannot be read
        _notes_as_text(exc)
    try:
        blob, why = _pickled_whole(exc), ""
    except BaseException as first:  # a __reduce__ may raise anything
        why = describe(first)
        try:
            blob = _pickled_past_setattr(exc)
        except BaseException:
            blob = None
    type_name = f"{kind.__module__}.{kind.__qualname__}"
    return ErrorPacket(key, blob, type_name, text_of(exc), _formatted(exc), why)


def text_of(exc: BaseException) -> str:
    """``str(exc)``, or what :mod:`traceback` shows when that raises."""
    try:
        return str(exc)
    except BaseException:
        return "<exception str() failed>"


def describe(exc: BaseException) -> str:
    """``"Type: text"`` for ``exc``; never raises."""
    return f"{type(exc).__name__}: {text_of(exc)}"


def _formatted(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except BaseException:  # pragma: no cover - traceback guards each part itself
        return f"{describe(exc)}\n"


def _notes_as_text(exc: BaseException) -> None:
    """Replace ``exc``'s notes by their text if they do not pickle (in the worker's copy).

    The text is what a printed traceback shows: each item of a sequence, or
    the ``repr`` of anything else.
    """
    notes = vars(exc).get("__notes__")
    if notes is None or (type(notes) is list and all(type(n) is str for n in notes)):
        return
    try:
        pickle.loads(dumps(notes))
    except BaseException:
        if isinstance(notes, Sequence) and not isinstance(notes, str):
            texts = [_note_text(note, str) for note in notes]
        else:
            texts = [_note_text(notes, repr)]
        vars(exc)["__notes__"] = texts  # past __setattr__, as add_note does


def _note_text(note: object, how: Any) -> str:
    try:
        text: str = how(note)
    except BaseException:
        return f"<note {how.__name__}() failed>"
    return text


def _pickled_whole(exc: BaseException) -> bytes:
    """``exc`` pickled with its traceback and causes; raises if it does not round-trip."""
    import cloudpickle

    try:
        from tblib import pickling_support
    except ImportError:  # pragma: no cover - tblib comes with the extras
        pass
    else:
        pickling_support.install(exc)
    blob: bytes = cloudpickle.dumps(exc, protocol=5)
    # An exception whose __init__ wants other arguments than its args
    # pickles fine and fails only here; better find out in the worker.
    pickle.loads(blob)
    return blob


def _pickled_past_setattr(exc: BaseException) -> bytes:
    """``exc`` pickled to be rebuilt without its class's ``__init__``/``__setattr__``.

    For exceptions that plain unpickling cannot rebuild, such as a frozen
    dataclass (``BaseException.__setstate__`` assigns through the frozen
    ``__setattr__``), or whose ``__reduce__`` raises. Their traceback
    travels as text. Raises if even this does not round-trip.
    """
    import cloudpickle

    state = {k: v for k, v in vars(exc).items() if k != "__notes__"}
    notes = getattr(exc, "__notes__", None)
    blob: bytes = cloudpickle.dumps(_Rebuild(type(exc), exc.args, state, notes), protocol=5)
    pickle.loads(blob)
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
    if notes is not None:
        vars(exc)["__notes__"] = notes
    return exc


def _refill_builtin_fields(exc: BaseException) -> None:
    """Set again what the ``__init__`` of ``exc``'s builtin class sets from its arguments.

    tblib and :func:`_rebuild_exception` make an exception without calling
    it, which leaves ``SystemExit.code`` or ``StopIteration.value`` None.
    """
    builtin: Any = next(kind for kind in type(exc).__mro__ if kind.__module__ == "builtins")
    with contextlib.suppress(Exception):  # arguments it does not take: left as they are
        builtin.__init__(exc, *exc.args)


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
    why = packet.why
    if packet.blob is not None:
        try:
            exc = pickle.loads(packet.blob)
        except Exception as error:  # it loaded in the worker: a module missing here
            why = f"it does not unpickle here: {describe(error)}"
        if isinstance(exc, BaseException):
            _refill_builtin_fields(exc)
    # the text has frames only if the exception was raised, not just made
    frames = packet.text.startswith("Traceback")
    if not isinstance(exc, BaseException):
        exc = RemoteError(
            f"task {packet.key!r} raised {packet.type_name}: {packet.message}\n"
            f"(tarry could not send that exception back as itself: {why}; an exception "
            "whose arguments and attributes pickle comes back with its own type)"
        )
        if frames:
            add_note(exc, f"remote traceback:\n{packet.text.rstrip()}")
    elif exc.__traceback__ is None and frames:
        add_note(exc, f"remote traceback:\n{packet.text.rstrip()}")
    return exc


def result_error(task: Task, exc: BaseException, *, here: bool = False) -> UnpicklableResultError:
    """The error for the result of ``task`` that cannot travel back: ``exc`` pickling it.

    ``here``: it pickled in the worker, and unpickling it in the caller raised ``exc``.

    Examples
    --------
    >>> err = result_error(Task("f-1", abs, (), None, (), "abs"), TypeError("no"))
    >>> print(err)
    the result of task 'f-1' (abs) cannot be pickled to send it back from the worker \
process (TypeError: no); use objects that pickle, or run this graph with scheduler='threads'
    """
    how = (
        "came back from the worker process, but cannot be unpickled here"
        if here
        else "cannot be pickled to send it back from the worker process"
    )
    return UnpicklableResultError(
        f"the result of task {task.key!r} ({task.name}) {how} ({describe(exc)}); {ADVICE}",
        task,
    )


# -- one task's outcome through an executor --------------------------------------------


class Sent(NamedTuple):
    """What a worker process sends back for one task: its value pickled, or its error packed."""

    outcome: bytes | ErrorPacket


def send(task: Task, work: Callable[[], Any]) -> Sent:
    """In a worker process: ``work()`` (which runs ``task``), ready to travel back.

    What this returns always pickles and unpickles: a value or an exception
    that cannot travel fails the task with a clear error, and never reaches
    the executor carrying it (a result that does not unpickle would break a
    standard process pool).

    Examples
    --------
    >>> task = Task("f-1", abs, (-2,), None, (), "abs")
    >>> receive(send(task, lambda: abs(-2)), task)
    (2, None)
    >>> _, err = receive(send(task, lambda: 1 / 0), task)
    >>> type(err).__name__
    'ZeroDivisionError'
    """
    try:
        value = work()
    except BaseException as exc:  # SystemExit too: the task failed, not the worker
        return Sent(pack_error(exc, task.key))
    try:
        return Sent(dumps(value))
    except Exception as exc:
        return Sent(pack_error(result_error(task, exc), task.key))


def receive(sent: Sent, task: Task) -> tuple[Any, BaseException | None]:
    """In the caller: ``(value, None)`` from what :func:`send` returned, or ``(None, error)``."""
    outcome = sent.outcome
    if not isinstance(outcome, bytes):
        return None, unpack_error(outcome)
    try:
        return pickle.loads(outcome), None
    except Exception as exc:
        return None, result_error(task, exc, here=True)
