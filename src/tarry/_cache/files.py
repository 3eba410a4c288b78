"""A store's files: a local directory through ``os``, or any fsspec URL.

Both write a file to a temporary name next to its place and rename it, so
a reader sees a whole file or none. They differ in what a read gives: a
local entry with out-of-band buffers is mapped copy-on-write (see
:mod:`.formats`), unless :func:`tarry._platform.maps_removable_files`
says a mapped file could not be removed, or :data:`MAX_MAPPED` mappings
are alive already, then it is read into memory; a remote one is always
read. A local load marks the entry used (its
modification time, which :mod:`.tidy` evicts by); fsspec has no portable
way to do that, so a remote entry's last use is when it was written.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import sys
import uuid
import weakref
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from tarry import _platform
from tarry._cache.formats import Bytes, Header, read_header

__all__ = ["Files", "Found", "Local", "Remote"]

#: bytes read first from an entry: its header fits in them unless it lists many buffers
_FIRST_READ = 4096
#: mappings alive at once at most: before Python 3.13 each holds a file descriptor, and a
#: compute loading thousands of arrays would run out of them (1024 is a common limit)
MAX_MAPPED = 256 if sys.version_info < (3, 13) else sys.maxsize
#: the mappings alive (they go when the last array using one goes)
_mapped: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()


def _mapping(fd: int) -> mmap.mmap:
    """A copy-on-write mapping of the whole file ``fd``."""
    if sys.version_info >= (3, 13):
        return mmap.mmap(fd, 0, access=mmap.ACCESS_COPY, trackfd=False)
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)
    _mapped.add(mapped)
    return mapped


class Found(NamedTuple):
    """One file of a listing."""

    path: str  # relative to the root, with "/"
    size: int
    #: when it was last modified (a local entry: last loaded), epoch seconds
    modified: float


class Files(Protocol):
    """Whole-file access below a store's root (paths relative to it, with "/")."""

    root: str

    def read(self, path: str) -> bytes | None: ...
    def write(self, path: str, parts: Sequence[Bytes]) -> None: ...
    def exists(self, path: str) -> bool: ...
    def is_empty(self) -> bool: ...
    def where(self, path: str) -> str: ...
    def entry(self, path: str) -> tuple[Header, Bytes] | None: ...
    def header(self, path: str) -> Header: ...
    def listing(self, folder: str) -> Iterator[Found]: ...
    def remove(self, path: str) -> None: ...


def _header_of(read: Any) -> Header:
    """The header of an entry, ``read(n)`` giving its first ``n`` bytes."""
    start = read(_FIRST_READ)
    found = read_header(start)
    if isinstance(found, int):
        start = read(found)
        found = read_header(start)
    if isinstance(found, int):
        raise ValueError("not a tarry cache entry, or cut short in its header")
    return found


#: this process's part of a temporary file's name: random, so that processes
#: of two machines sharing a store never pick the same name
_PROCESS_TAG = uuid.uuid4().hex[:16]
_TEMP_COUNT = itertools.count()


def _temp_name() -> str:
    """A name no other writer uses: the process's tag, its pid (a forked child
    keeps the tag) and a count (threads): no uuid4 per file.

    Examples
    --------
    >>> _temp_name() != _temp_name()
    True
    """
    return f"{_PROCESS_TAG}-{os.getpid()}-{next(_TEMP_COUNT)}"


class Local:
    """A local directory, through ``os``: no fsspec needed."""

    def __init__(self, root: str) -> None:
        self.root = root
        #: folders made (or found) already: a mkdir per write costs as much as the write
        self.made: set[str] = set()

    def where(self, path: str) -> str:
        return os.path.join(self.root, path)  # "/" separates on Windows too

    def read(self, path: str) -> bytes | None:
        try:
            with open(self.where(path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, path: str, parts: Sequence[Bytes]) -> None:
        final = self.where(path)
        folder = os.path.dirname(final)
        if folder not in self.made:
            os.makedirs(folder, exist_ok=True)
            self.made.add(folder)
        temp = f"{final}.{_temp_name()}.tmp"
        try:
            with open(temp, "wb") as f:
                for part in parts:
                    f.write(part)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temp)
            raise

    def exists(self, path: str) -> bool:
        return os.path.exists(self.where(path))

    def is_empty(self) -> bool:
        return not os.path.isdir(self.root) or not os.listdir(self.root)

    def entry(self, path: str) -> tuple[Header, Bytes] | None:
        """An entry's header and its bytes (mapped when it has buffers); marks it used."""
        where = self.where(path)
        try:
            f = open(where, "rb")  # noqa: SIM115 - closed below; a mapping outlives it
        except FileNotFoundError:
            return None  # never written, or evicted by another run meanwhile
        with f:
            # a hit of a small result is a few syscalls: each one counts
            start = f.read(_FIRST_READ)
            header = read_header(start)
            if isinstance(header, int):  # a header longer than the first read
                start += f.read(header - len(start))
                header = read_header(start)
            if isinstance(header, int):
                raise ValueError("not a tarry cache entry, or cut short in its header")
            data: Bytes
            if not header.meta["buffers"] or os.fstat(f.fileno()).st_size != header.size:
                # the whole entry, or its cut-short part that the decoder reports
                data = start if len(start) < _FIRST_READ else start + f.read()
            elif _platform.maps_removable_files() and len(_mapped) < MAX_MAPPED:
                data = memoryview(_mapping(f.fileno()))
            else:
                data = bytearray(header.size)
                f.seek(0)
                f.readinto(data)
            with contextlib.suppress(OSError):  # a read-only store still loads
                os.utime(f.fileno() if os.utime in os.supports_fd else where)
        return header, data

    def header(self, path: str) -> Header:
        with open(self.where(path), "rb") as f:
            return _header_of(lambda n: _pread(f, n))

    def listing(self, folder: str) -> Iterator[Found]:
        """Every file below ``folder``; those removed meanwhile are left out."""
        pending = [folder]
        while pending:
            below = pending.pop()
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for item in os.scandir(self.where(below)):
                    path = f"{below}/{item.name}"
                    with contextlib.suppress(FileNotFoundError):
                        if item.is_dir():
                            pending.append(path)
                        else:
                            stat = item.stat()
                            yield Found(path, stat.st_size, stat.st_mtime)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.where(path))


def _pread(f: Any, n: int) -> bytes:
    f.seek(0)
    data: bytes = f.read(n)
    return data


class Remote:
    """Any fsspec URL (imported here, when such a store is first used)."""

    def __init__(self, url: str) -> None:
        import fsspec.core

        self.fs, self.root = fsspec.core.url_to_fs(url)

    def where(self, path: str) -> str:
        return f"{self.root.rstrip('/')}/{path}"

    def read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self.where(path))
        except FileNotFoundError:
            return None
        return data

    def write(self, path: str, parts: Sequence[Bytes]) -> None:
        final = self.where(path)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        temp = f"{final}.{_temp_name()}.tmp"
        self.fs.pipe_file(temp, b"".join(parts))
        self.fs.mv(temp, final)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.where(path)))

    def is_empty(self) -> bool:
        return not self.fs.exists(self.root) or not self.fs.ls(self.root)

    def entry(self, path: str) -> tuple[Header, Bytes] | None:
        data = self.read(path)
        if data is None:
            return None
        header = _header_of(lambda n: data[:n])
        # a bytearray: loaded arrays are writable, as from a local store
        return header, bytearray(data) if header.meta["buffers"] else data

    def header(self, path: str) -> Header:
        where = self.where(path)
        return _header_of(lambda n: self.fs.cat_file(where, start=0, end=n))

    def listing(self, folder: str) -> Iterator[Found]:
        base = self.root.rstrip("/") + "/"
        try:
            found = self.fs.find(self.where(folder), detail=True)
        except FileNotFoundError:
            return
        for name, info in found.items():
            yield Found(name[len(base) :] if name.startswith(base) else name,
                        int(info.get("size") or 0), _modified(info))  # fmt: skip

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.where(path))


def _modified(info: dict[str, Any]) -> float:
    """A listing's modification time, whichever key and type this filesystem uses."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0
