"""How a task's exception reaches the caller: same object, readable traceback.

The exception raised by the user's function is re-raised as it is (same type,
message and cause), with tarry's own frames cut from the front of its
traceback and a note naming the task, so the first frame the user reads is
their own function.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import NamedTuple

from tarry._graph import Task

__all__ = [
    "ErrorPacket", "RemoteError", "TaskFailedError", "UnpicklableTaskError", "WorkerDiedError",
    "add_note", "annotate", "is_internal",
]  # fmt: skip

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
