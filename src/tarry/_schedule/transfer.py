"""How values travel between the parent and worker processes.

A small value travels as pickled bytes through the pool's pipe. A large one
(:data:`FILE_BYTES` or more, pickled) is written once into a file in shared
memory (``/dev/shm`` where it exists, else the temp folder: see
:func:`tarry._platform.shm_dir`) and only the file's name travels: the
pipe would copy it four times on its way (pickled in the sender, the
message, the receiver's buffer, the unpickled value), the file once. Its
large buffers (``bytearray``, NumPy arrays and the pandas blocks built on
them) are written as they are, out of band, and a reader maps the file
copy-on-write, so an array read from it shares the file's pages until it
is written to. On Windows, which cannot remove a file while it is mapped,
a reader reads the file into memory instead (one copy more), so that the
file's lifetime stays what it is elsewhere.

Lifetimes: the file of a value belongs to the parent process. The parent
calls :func:`own` on every :class:`Spilled` it keeps; the file is removed
when the parent drops that object (the run released the value, or failed),
and at the latest when the interpreter exits, never by a forked child that
inherited the object. A worker removes what it wrote but could not hand
over (:func:`discard`). A worker's files start with the tag of its pool
(:func:`tag_files`): what a worker was writing when it was stopped (Ctrl-C,
say), or wrote but never handed over, is found and removed once its pool
has stopped, unless a :class:`Spilled` of this process still refers to it
(:func:`in_use`; see :func:`~tarry._schedule.processes.markers.sweep`).

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> blob = to_blob(bytearray(2 * FILE_BYTES), folder)
>>> type(blob).__name__, len(from_blob(blob))
('Spilled', 2097152)
>>> own(blob)
>>> del blob  # the parent dropped it: the file goes
>>> os.listdir(folder)
[]
>>> from_blob(to_blob([1, 2], folder))  # small values stay bytes
[1, 2]
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import pickle
import struct
import weakref
from typing import Any

from tarry import _platform

__all__ = [
    "FILE_BYTES",
    "Blob",
    "Spilled",
    "discard",
    "from_blob",
    "in_use",
    "own",
    "tag_files",
    "to_blob",
]

#: pickled size from which a value travels as a file rather than through the pipe
FILE_BYTES = 1 << 20
#: parts of a file start at multiples of this, so arrays read from it are aligned
_ALIGN = 64
_names = itertools.count()
#: start of the names of the files this process writes (a worker's pool, see tag_files)
_tag = ""
#: whether readers map files (see the module doc)
_MAP = _platform.maps_removable_files()
#: the Spilled objects alive in this process, by path
_alive: weakref.WeakValueDictionary[str, Spilled] = weakref.WeakValueDictionary()


class Spilled:
    """A pickled value stored in a file; only ``path`` and ``size`` travel."""

    __slots__ = ("__weakref__", "path", "size")

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        _alive[path] = self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Spilled, (self.path, self.size))

    def __repr__(self) -> str:
        return f"Spilled({self.path!r}, {self.size} bytes)"


#: what a value travels as
Blob = bytes | Spilled


def to_blob(value: Any, directory: str | None) -> Blob:
    """``value`` pickled: bytes if small (or ``directory`` is None), else a file there.

    Plain pickle is tried first, then cloudpickle (lambdas, and anything that
    refers to functions or classes defined in ``__main__``). Raises what
    pickling raises. If the file cannot be written (no space left), the value
    travels as bytes after all.
    """
    if directory is None:
        return _pickled(value, None)
    buffers: list[pickle.PickleBuffer] = []
    main = _pickled(value, buffers)
    try:
        views = [b.raw() for b in buffers]
    except BufferError:  # a buffer that is not contiguous: all in band
        return _pickled(value, None)
    size = len(main) + sum(v.nbytes for v in views)
    if size < FILE_BYTES:  # small: bytes, with any out-of-band buffer back in band
        return _pickled(value, None) if buffers else main
    path = os.path.join(directory, f"{_tag}{os.getpid()}-{next(_names)}.value")
    try:
        _write(path, [memoryview(main), *views])
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return _pickled(value, None)
    return Spilled(path, size)


def from_blob(blob: Blob) -> Any:
    """The value ``blob`` holds (the file, if any, stays: see :func:`own`)."""
    if not isinstance(blob, Spilled):
        return pickle.loads(blob)
    with open(blob.path, "rb") as f:
        if _MAP:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        else:  # a mapped file could not be removed until every value read from it is gone
            # anonymous memory: page-aligned, as a mapped file is
            mapped = mmap.mmap(-1, os.fstat(f.fileno()).st_size)
            f.readinto(mapped)
    view = memoryview(mapped)
    (count,) = struct.unpack_from("<Q", view)
    sizes = struct.unpack_from(f"<{count}Q", view, 8)
    parts, offset = [], _aligned(8 * (count + 1))
    for size in sizes:
        parts.append(view[offset : offset + size])
        offset = _aligned(offset + size)
    # arrays unpickled from ``parts`` keep the mapping alive as long as they live
    return pickle.loads(parts[0], buffers=parts[1:])


def own(blob: Blob) -> None:
    """Remove ``blob``'s file (if any) once this process drops ``blob``, or at exit."""
    if type(blob) is Spilled:
        weakref.finalize(blob, _remove_if_owner, blob.path, os.getpid())


def in_use(path: str) -> bool:
    """Whether a :class:`Spilled` of this process refers to the file ``path``."""
    return path in _alive


def tag_files(tag: str) -> None:
    """Start the names of the files this process writes from now on with ``tag``."""
    global _tag
    _tag = tag


def discard(blob: Blob) -> None:
    """Remove ``blob``'s file now, if it has one."""
    if type(blob) is Spilled:
        _remove(blob.path)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _remove_if_owner(path: str, owner: int) -> None:
    # A forked child inherits the parent's objects and runs their finalizers
    # at its exit: the file is still the parent's.
    if os.getpid() == owner:
        _remove(path)


def _pickled(value: Any, buffers: list[pickle.PickleBuffer] | None) -> bytes:
    """Plain pickle, else cloudpickle; large buffers go to ``buffers`` if given."""
    callback = buffers.append if buffers is not None else None
    try:
        pickled = pickle.dumps(value, protocol=5, buffer_callback=callback)
        # Plain pickle refers to functions and classes of ``__main__`` by
        # name, which a worker's own ``__main__`` lacks: those go by value.
        if b"__main__" not in pickled:
            return pickled
    except Exception:
        pass
    if buffers is not None:
        buffers.clear()
    from tarry._schedule.pickling import dumps

    return dumps(value, callback)


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def _write(path: str, parts: list[memoryview]) -> None:
    header = struct.pack(f"<Q{len(parts)}Q", len(parts), *(p.nbytes for p in parts))
    with open(path, "wb") as f:
        f.write(header)
        offset = len(header)
        for part in parts:
            pad = _aligned(offset) - offset
            f.write(b"\0" * pad)
            f.write(part)
            offset += pad + part.nbytes
