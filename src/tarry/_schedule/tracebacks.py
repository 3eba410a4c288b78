"""A task's error as the caller sees it: the user's frames, without the scheduler's.

A traceback keeps every frame it passes through alive, with their local
variables, and each frame keeps the frame that called it (``f_back``). The
scheduler's frames (the backend's loop, ``call``) hold the run, and the run
holds every result computed and still needed: a notebook that keeps a
failed compute's exception (``sys.last_value`` does) would keep all of
them. So the error the caller gets lists only the frames that are not
tarry's scheduler (:func:`without_own_frames`, when the run books the
failure): the user's function, what it called, and the public ``compute``
the error is raised from; and once the backend has returned, the
scheduler's finished frames behind the user's are cleared
(:func:`release_own_frames`). A debugger (``pdb.pm()``) still lands in the
user's function.

Examples
--------
>>> def users_function():
...     raise ValueError("bad row")
>>> def scheduler_loop():  # stands in for a backend's loop
...     try:
...         users_function()
...     except ValueError as exc:
...         return exc
>>> exc = scheduler_loop()
>>> [tb.tb_frame.f_code.co_name for tb in frames(exc.__traceback__)]
['scheduler_loop', 'users_function']
>>> loop_file = scheduler_loop.__code__.co_filename
>>> tb = without_frames_of(exc.__traceback__, {loop_file})
>>> [tb.tb_frame.f_code.co_name for tb in frames(tb)]
['users_function']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from types import TracebackType

__all__ = ["OWN_FILES", "frames", "release_own_frames", "without_frames_of", "without_own_frames"]

_HERE = os.path.dirname(os.path.abspath(__file__))
#: the tarry package's folder: frames behind a user's frame that start with
#: it are walked through (compute's, run_graph's, the backend's)
_PACKAGE = os.path.dirname(_HERE)
#: the files whose frames hold a run: the scheduler package, and the graph
#: module (``call`` holds the values a task reads)
OWN_FILES: Collection[str] = frozenset([_HERE, os.path.join(os.path.dirname(_HERE), "_graph.py")])


def frames(tb: TracebackType | None) -> Iterator[TracebackType]:
    """The entries of a traceback, outermost first."""
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _own(tb: TracebackType, files: Collection[str]) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    return filename in files or os.path.dirname(filename) in files


def without_frames_of(tb: TracebackType | None, files: Collection[str]) -> TracebackType | None:
    """``tb`` without the entries of frames from ``files`` (file names or folders).

    Returns a new chain; ``tb`` itself is left as it is. If every entry
    would go, the innermost stays, so that the error still says where it
    was raised.
    """
    every = list(frames(tb))
    kept = [entry for entry in every if not _own(entry, files)] or every[-1:]
    new: TracebackType | None = None
    for entry in reversed(kept):
        new = TracebackType(new, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return new


def without_own_frames(exc: BaseException) -> None:
    """Drop the scheduler's frames from ``exc``'s traceback (see the module doc).

    Never raises: ``with_traceback`` sets it even on an exception that
    refuses attribute assignment (a frozen dataclass).
    """
    exc.with_traceback(without_frames_of(exc.__traceback__, OWN_FILES))


def release_own_frames(exc: BaseException) -> None:
    """Clear the local variables of tarry's finished frames behind ``exc``'s frames.

    Call it once the backend has returned: frames still running (the public
    ``compute``, a helper thread's loop) are left alone.
    """
    for entry in frames(exc.__traceback__):
        frame = entry.tb_frame.f_back
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
            with contextlib.suppress(RuntimeError):  # still running: left alone
                frame.clear()
            frame = frame.f_back
