"""Where cached results live: a directory, or any fsspec URL.

Layout of a store's root::

    FORMAT                      "tarry-cache 1": what a later tarry checks first
    entries/<k[:2]>/<key>       one result per cache key
    functions/<digest of name>  per function, the code digest its last stored key used

An entry is a header (magic, payload length, CRC-32 of the payload)
followed by the result pickled with cloudpickle (protocol 5). CRC-32 is
there to detect damage, not tampering: it reads 100 MB in about 25 ms
where blake2b takes 145 ms, which would double a large entry's load.

What is written when, and what a crash leaves: the root's ``FORMAT`` is
written when a compute first uses the store; an entry as soon as its task
has finished (:mod:`.lookup`), by whichever process ran it. Every file is
written to a temporary name next to its place, then renamed, so a reader
sees a whole entry or none; two runs writing one key both succeed (the
last rename wins, and both wrote the same result). A crash mid-write
leaves a ``*.tmp`` file, never a partial entry. An entry that is corrupt
anyway (a truncated copy, a disk error) fails its checksum: loading it warns
with a :class:`CacheWarning` naming the key and the file, and the task runs
again and overwrites it. Nothing here raises out of a compute but a store
of unknown format (:class:`CacheFormatError`), before any task runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import uuid
import warnings
import zlib
from typing import Any, Final, NamedTuple, Protocol

from tarry._extras import CACHE_URL

__all__ = [
    "FORMAT",
    "CacheFormatError",
    "CacheWarning",
    "Loaded",
    "Store",
    "check_location",
]

#: the content of a store's FORMAT file; a store with another is refused
FORMAT: Final = "tarry-cache 1"
_MAGIC: Final = b"TARRYC\x00\x01"
_HEADER: Final = len(_MAGIC) + 8 + 4


class CacheWarning(UserWarning):
    """A cache entry could not be read or written; the compute goes on without it."""


class CacheFormatError(ValueError):
    """A cache location holds something this tarry cannot read (or is not a cache)."""


class Loaded(NamedTuple):
    """An entry read back: the result, and what it cost to make and to read."""

    #: the task's result
    value: Any
    #: seconds the task ran when its result was stored: what loading it saves
    seconds: float
    #: size of the entry in the store, in bytes
    nbytes: int


def check_location(value: object) -> str | None:
    """``cache=`` as a location: a path or URL string; None or False: no cache.

    Examples
    --------
    >>> check_location(None), check_location(False)
    (None, None)
    >>> check_location(42)
    Traceback (most recent call last):
    ...
    TypeError: cache must be a directory or an fsspec URL such as 's3://bucket/cache' \
(or None/False: no cache), not 42
    """
    if value is None or value is False:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise TypeError(
            "cache must be a directory or an fsspec URL such as 's3://bucket/cache' "
            f"(or None/False: no cache), not {value!r}"
        )
    if "://" in value:
        CACHE_URL.check()
    return value


class _Files(Protocol):
    """Whole-file access below a store's root (paths relative to it)."""

    def read(self, path: str) -> bytes | None: ...
    def write(self, path: str, data: bytes) -> None: ...
    def exists(self, path: str) -> bool: ...
    def is_empty(self) -> bool: ...
    def where(self, path: str) -> str: ...


class _Local:
    """A local directory, through ``os``: no fsspec needed."""

    def __init__(self, root: str) -> None:
        self.root = root
        #: folders made (or found) already: a mkdir per write costs as much as the write
        self.made: set[str] = set()

    def where(self, path: str) -> str:
        return os.path.join(self.root, path)

    def read(self, path: str) -> bytes | None:
        try:
            with open(self.where(path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes) -> None:
        final = self.where(path)
        folder = os.path.dirname(final)
        if folder not in self.made:
            os.makedirs(folder, exist_ok=True)
            self.made.add(folder)
        temp = f"{final}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, final)
        except BaseException:
            _remove_quietly(temp)
            raise

    def exists(self, path: str) -> bool:
        return os.path.exists(self.where(path))

    def is_empty(self) -> bool:
        return not os.path.isdir(self.root) or not os.listdir(self.root)


class _Remote:
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

    def write(self, path: str, data: bytes) -> None:
        final = self.where(path)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        temp = f"{final}.{uuid.uuid4().hex}.tmp"
        self.fs.pipe_file(temp, data)
        self.fs.mv(temp, final)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.where(path)))

    def is_empty(self) -> bool:
        return not self.fs.exists(self.root) or not self.fs.ls(self.root)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


class Store:
    """The cache at ``location``: load, test for and save results by cache key.

    Opening checks the ``FORMAT`` file; ``create=True`` makes the store if
    the location is empty or missing. A store pickles as its location, so
    workers of another process write to the same place.

    Examples
    --------
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> store.has("ab12"), store.load("ab12")
    (False, None)
    >>> store.save("ab12", [1, 2], "f", {"mod:f": "c0de"}, seconds=1.5)
    >>> store.has("ab12"), store.function_digest("mod:f")
    (True, 'c0de')
    >>> store.load("ab12").value, store.load("ab12").seconds
    ([1, 2], 1.5)
    """

    def __init__(self, location: str, create: bool = True) -> None:
        remote = "://" in location
        # absolute: a worker process may start elsewhere
        self.location = location if remote else os.path.abspath(os.path.expanduser(location))
        self.files: _Files = _Remote(location) if remote else _Local(self.location)
        #: functions whose digest this process recorded already: not written again
        self.recorded: dict[str, str] = {}
        #: False when the location holds no store yet (and ``create`` was False)
        try:
            self.present = self._check(create)
        except OSError as exc:  # a file where a folder should be, no permission...
            raise OSError(f"cannot use {self.location} as a cache: {exc}") from exc

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopened, (self.location,))

    def _check(self, create: bool) -> bool:
        files = self.files
        found = files.read("FORMAT")
        if found is not None:
            if found.decode(errors="replace").strip() != FORMAT:
                raise CacheFormatError(
                    f"the cache at {self.location} has format "
                    f"{found.decode(errors='replace').strip()[:80]!r}, which this tarry cannot "
                    f"read (it reads {FORMAT!r}): use the tarry that made it, or another location"
                )
            return True
        if not files.is_empty():
            raise CacheFormatError(
                f"{self.location} is not empty and holds no tarry cache (no FORMAT file): "
                "give tarry.cache() an empty or new directory of its own"
            )
        if create:
            files.write("FORMAT", f"{FORMAT}\n".encode())
        return create

    def _entry(self, key: str) -> str:
        return f"entries/{key[:2]}/{key}"

    def has(self, key: str) -> bool:
        """Whether an entry exists for ``key`` (not whether it is intact)."""
        return self.present and self.files.exists(self._entry(key))

    def load(self, key: str) -> Loaded | None:
        """The intact entry of ``key``; None when there is none.

        A corrupt entry warns (:class:`CacheWarning`, with the key and the
        file) and reads as missing, so its task runs again.
        """
        if not self.present:
            return None
        path = self._entry(key)
        try:
            data = self.files.read(path)
            if data is None:
                return None
            seconds, value = pickle.loads(_payload(data))
            return Loaded(value, seconds, len(data))
        except Exception as exc:
            warnings.warn(
                f"cache entry {key} ({self.files.where(path)}) cannot be read: {exc}; "
                "its task runs again and replaces it",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def save(
        self, key: str, value: Any, label: str, functions: dict[str, str], seconds: float = 0.0
    ) -> None:
        """Write ``value`` under ``key``, and the code digests it was keyed with.

        ``seconds`` is how long the task ran: a later load reports it as saved.

        Never raises for an ``Exception``: a result that cannot be pickled or
        written warns (:class:`CacheWarning`) and is simply not cached.
        """
        import cloudpickle

        try:
            payload = cloudpickle.dumps((seconds, value), protocol=5)
            self.files.write(self._entry(key), _framed(payload))
            for name, digest in functions.items():
                if self.recorded.get(name) != digest:
                    record = json.dumps({"name": name, "code": digest}).encode()
                    self.files.write(_function_path(name), record)
                    self.recorded[name] = digest
        except Exception as exc:
            warnings.warn(
                f"the result of {label} was not cached in {self.location}: {exc}",
                CacheWarning,
                stacklevel=2,
            )
        self.present = True

    def function_digest(self, name: str) -> str | None:
        """The code digest of function ``name`` (``module:qualname``) in the last key stored."""
        if not self.present:
            return None
        try:
            data = self.files.read(_function_path(name))
            digest = None if data is None else json.loads(data)["code"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # only explain reads it: a damaged record just says less
        return digest if isinstance(digest, str) else None


def _reopened(location: str) -> Store:
    """A store as a worker gets it: opened before, so its root exists."""
    return Store(location, create=True)


def _function_path(name: str) -> str:
    return f"functions/{hashlib.blake2b(name.encode(), digest_size=16).hexdigest()}"


def _framed(payload: bytes) -> bytes:
    check = zlib.crc32(payload).to_bytes(4, "little")
    return b"".join((_MAGIC, len(payload).to_bytes(8, "little"), check, payload))


def _payload(data: bytes) -> memoryview:
    """The payload of an entry, checked; raises ``ValueError`` saying what is wrong."""
    if len(data) < _HEADER or not data.startswith(_MAGIC):
        raise ValueError("not a tarry cache entry, or cut short in its header")
    size = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 8], "little")
    payload = memoryview(data)[_HEADER:]
    if len(payload) != size:
        raise ValueError(f"{len(payload)} bytes of {size}: cut short")
    if zlib.crc32(payload).to_bytes(4, "little") != data[_HEADER - 4 : _HEADER]:
        raise ValueError("its checksum does not match its content")
    return payload
