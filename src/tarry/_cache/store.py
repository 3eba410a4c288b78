"""Where cached results live: a directory, or any fsspec URL.

Layout of a store's root::

    FORMAT                      "tarry-cache 2": what a later tarry checks first
    entries/<k[:2]>/<key>       one result per cache key (laid out as :mod:`.formats` says)
    functions/<digest of name>  per function, the code digest its last stored key used

What is written when, and what a crash leaves: the root's ``FORMAT`` is
written when a compute first uses the store; an entry as soon as its task
has finished (:mod:`.lookup`), by whichever process ran it. Every file is
written to a temporary name next to its place, then renamed (:mod:`.files`),
so a reader sees a whole entry or none; two runs writing one key both
succeed (the last rename wins, and both wrote the same result). A crash
mid-write leaves a ``*.tmp`` file, never a partial entry (:mod:`.tidy`
removes old ones). An entry that is damaged anyway (a truncated copy, a
disk error) fails its checks: loading it warns with a
:class:`CacheWarning` naming the key and the file, and the task runs
again and overwrites it. An entry evicted by another run meanwhile reads
as missing. Nothing here raises out of a compute but a store of another
format (:class:`CacheFormatError`), before any task runs.

Format 1 (tarry before memory-mapped entries) had no header and no
out-of-band buffers: such a store is refused, with the command that
empties it for this tarry (``tarry cache clear PATH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Collection
from typing import Any, Final, NamedTuple

from tarry._cache.files import Files, Local, Remote
from tarry._cache.formats import FAMILY, FORMAT, decode_entry, encode, layout
from tarry._cache.tidy import evict
from tarry._extras import CACHE_URL

__all__ = [
    "FORMAT",
    "LIST_FROM",
    "CacheFormatError",
    "CacheWarning",
    "Loaded",
    "Store",
    "check_location",
]

_VERSION: Final = int(FORMAT.removeprefix(FAMILY))
#: from this many keys on, :meth:`Store.existing` lists folders instead of trying each
#: entry: 256 folders at most to list, against a failed open per key (8 µs each;
#: ``python benchmarks/bench_cache.py``'s first run of 100,000 tasks)
LIST_FROM: Final = 256


class CacheWarning(UserWarning):
    """A cache entry could not be read or written; the compute goes on without it."""


class CacheFormatError(ValueError):
    """A cache location holds something this tarry cannot read (or is not a cache)."""


class Loaded(NamedTuple):
    """An entry read back: the result, and what it cost to make and to read."""

    #: the task's result
    value: Any
    #: seconds making the result took, its inputs included: what loading it saves
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


class Store:
    """The cache at ``location``: load, test for and save results by cache key.

    Opening checks the ``FORMAT`` file; ``create=True`` makes the store if
    the location is empty or missing. ``max_size`` (bytes; None: no limit)
    is what :meth:`tidy` evicts down to. A store pickles as its location,
    so workers of another process write to the same place.

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

    def __init__(self, location: str, create: bool = True, max_size: int | None = None) -> None:
        remote = "://" in location
        # absolute: a worker process may start elsewhere
        self.location = location if remote else os.path.abspath(os.path.expanduser(location))
        self.files: Files = Remote(location) if remote else Local(self.location)
        self.max_size = max_size
        #: when this store was opened: what was used since is this run's (or a concurrent one's)
        self.opened = time.time()
        #: whether a task of this run may write here, so that :meth:`tidy` has work
        self.grows = False
        #: the entries this store loaded: :meth:`tidy` evicts them last
        self.loaded: set[str] = set()
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
            text = found.decode(errors="replace").strip()
            if text != FORMAT:
                raise CacheFormatError(format_error(self.location, text))
            return True
        if not files.is_empty():
            raise CacheFormatError(
                f"{self.location} is not empty and holds no tarry cache (no FORMAT file): "
                "give tarry.cache() an empty or new directory of its own"
            )
        if create:
            files.write("FORMAT", [f"{FORMAT}\n".encode()])
        return create

    def existing(self, keys: Collection[str]) -> set[str] | None:
        """Which of ``keys`` have an entry, from a listing of the folders they
        would be in; None when trying each is cheaper (fewer than
        :data:`LIST_FROM`, or an fsspec store).

        A run's lookups miss more often than not the first time; a failed
        open costs about 8 µs, a listed name well under 1.

        Examples
        --------
        >>> import tempfile
        >>> store = Store(tempfile.mkdtemp())
        >>> store.save("ab12", 1, "f", {})
        >>> keys = ["ab12"] + [f"{i:04x}" for i in range(LIST_FROM)]
        >>> store.existing(keys), store.existing(["ab12"])
        ({'ab12'}, None)
        """
        if len(keys) < LIST_FROM or not isinstance(self.files, Local):
            return None
        if not self.present:
            return set()
        found: set[str] = set()
        for folder in {entry_path(key).rpartition("/")[0] for key in keys}:
            try:
                found.update(os.listdir(self.files.where(folder)))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found.intersection(keys)

    def has(self, key: str) -> bool:
        """Whether an entry exists for ``key`` (not whether it is intact)."""
        return self.present and self.files.exists(entry_path(key))

    def load(self, key: str) -> Loaded | None:
        """The intact entry of ``key``; None when there is none.

        Marks the entry used (a local store), which keeps it from eviction
        longest. A corrupt entry warns (:class:`CacheWarning`, with the key
        and the file) and reads as missing, so its task runs again.
        """
        if not self.present:
            return None
        path = entry_path(key)
        try:
            found = self.files.entry(path)
            if found is None:
                return None
            header, data = found
            value = decode_entry(header, data)
            self.loaded.add(path)
            return Loaded(value, float(header.meta["seconds"]), header.size)
        except Exception as exc:
            warnings.warn(
                f"cache entry {key} ({self.files.where(path)}) cannot be read: {exc}; "
                "its task runs again and replaces it",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def save(
        self,
        key: str,
        value: Any,
        label: str,
        functions: dict[str, str],
        seconds: float = 0.0,
        fmt: str = "auto",
    ) -> None:
        """Write ``value`` under ``key``, and the code digests it was keyed with.

        ``seconds`` is how long making the result took (the task, and its
        inputs as far as known): a later load reports it as saved. ``fmt``
        is one of :data:`~tarry._cache.formats.FORMATS`.

        Never raises for an ``Exception``: a result that cannot be pickled or
        written warns (:class:`CacheWarning`) and is simply not cached.
        """
        try:
            meta = {"label": label, "created": time.time(), "seconds": seconds}
            self.files.write(entry_path(key), layout(encode(value, fmt), meta))
            for name, digest in functions.items():
                if self.recorded.get(name) != digest:
                    record = json.dumps({"name": name, "code": digest}).encode()
                    self.files.write(_function_path(name), [record])
                    self.recorded[name] = digest
        except Exception as exc:
            warnings.warn(
                f"the result of {label} was not cached in {self.location}: {exc}",
                CacheWarning,
                stacklevel=2,
            )
        self.present = True
        self.grows = True

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

    def tidy(self) -> None:
        """After a compute: evict the least recently used entries down to ``max_size``.

        Does nothing without a limit, or when no task of the run wrote here
        (so a run of hits costs no listing). Never raises for an
        ``Exception``: a store that cannot be tidied warns.
        """
        if self.max_size is None or not self.grows or not self.present:
            return
        try:
            evict(self.files, self.max_size, self.opened, self.loaded)
        except Exception as exc:
            warnings.warn(f"the cache at {self.location} could not be tidied: {exc}",
                          CacheWarning, stacklevel=2)  # fmt: skip
        self.grows = False


def format_error(location: str, found: str) -> str:
    """What to do about a store whose FORMAT file says ``found``."""
    if older(found):
        return (
            f"the cache at {location} has format {found!r}, made by an older tarry; this "
            f"tarry reads {FORMAT!r}: empty it with `tarry cache clear {location}` "
            "(its results are computed again), or use another location"
        )
    return (
        f"the cache at {location} has format {found[:80]!r}, which this tarry cannot "
        f"read (it reads {FORMAT!r}): use the tarry that made it, or another location"
    )


def older(found: str) -> bool:
    """Whether FORMAT text ``found`` is that of a store an older tarry made.

    >>> older("tarry-cache 1"), older(FORMAT), older("tarry-cache 10"), older("mine")
    (True, False, False, False)
    """
    version = found.removeprefix(FAMILY)
    return found.startswith(FAMILY) and version.isdigit() and int(version) < _VERSION


def entry_path(key: str) -> str:
    """Where the entry of ``key`` lives, below the root."""
    return f"entries/{key[:2]}/{key}"


def _reopened(location: str) -> Store:
    """A store as a worker gets it: opened before, so its root exists."""
    return Store(location, create=True)


def _function_path(name: str) -> str:
    return f"functions/{hashlib.blake2b(name.encode(), digest_size=16).hexdigest()}"
