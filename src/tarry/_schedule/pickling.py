"""Pickling for other processes: cloudpickle with file names kept, and sizes without bytes.

:func:`dumps` is what every out-of-process backend sends tasks and values
with; :func:`pickled_size` measures an object the same way without building
the bytes (it backs the early check of :mod:`~tarry._schedule.wire`).
"""

from __future__ import annotations

import io
import marshal
import pickle
import types
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "pickled_size"]


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
