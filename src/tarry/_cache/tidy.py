"""Keeping a store tidy: its entries listed, a size limit kept, old entries cleared.

Eviction is least recently used: a local load marks its entry used (the
file's modification time, :mod:`.files`), and :func:`evict` removes the
entries used longest ago until the store is under its limit. It runs in
the caller once a compute has finished (:meth:`Store.tidy
<tarry._cache.store.Store.tidy>`), not per write, and only when a task of
the compute wrote to the store; it lists the store once (0.16 s for
20,000 local entries; ``python benchmarks/bench_cache_formats.py``), which
the run's writes amortise. The entries this run wrote or loaded go last,
only if the rest does not get the store under its limit.

Concurrent runs stay safe: an entry is removed whole (never truncated), a
reader that has it open or mapped keeps its bytes (POSIX), and one that
looks for it afterwards sees a miss and computes it again. A remote
(fsspec) store is evicted by its files' modification times, which are
when they were written: there, "least recently used" is "least recently
written".

The command ``tarry cache ls | du | clear`` (:mod:`.command`) uses
:func:`entries` (which reads the headers only), :func:`evict` and
:func:`clear`; :func:`parse_size` and :func:`parse_duration` read its
arguments, and :func:`parse_size` the ``max_size`` of :func:`tarry.cache`.
"""

from __future__ import annotations

import builtins
import math
import re
import time
from collections.abc import Collection
from typing import Final, NamedTuple

from tarry._cache.files import Files, Found
from tarry._cache.formats import FORMAT

__all__ = ["Entry", "Removed", "clear", "entries", "evict", "human", "parse_duration",
           "parse_size"]  # fmt: skip

#: a temporary file older than this is a crashed writer's (a write takes seconds, not hours)
STALE_TEMP: Final = 3600.0
#: seconds a file's modification time may lag the clock (FAT keeps it to 2 s)
MTIME_SLACK: Final = 2.0
_UNITS: Final = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUMBER: Final = r"\s*(\d+(?:\.\d*)?|\.\d+)\s*"


class Entry(NamedTuple):
    """One entry of a store, as ``tarry cache ls`` shows it."""

    key: str
    #: the task's function (its label), or "(damaged)" when the header cannot be read
    label: str
    size: int
    #: epoch seconds when it was written, and when it was last loaded (or written)
    created: float
    used: float


class Removed(NamedTuple):
    """What :func:`evict` or :func:`clear` removed, and what the store still holds."""

    #: entries removed, and their bytes
    removed: int
    removed_bytes: int
    #: entries left, and their bytes
    left: int
    left_bytes: int


def parse_size(value: object, name: str = "max_size") -> int | None:
    """Bytes from an int, or a string such as ``"500 MB"`` or ``"2GiB"``; None stays None.

    Examples
    --------
    >>> parse_size("500 MB"), parse_size("2GiB"), parse_size(1024), parse_size(None)
    (500000000, 2147483648, 1024, None)
    >>> parse_size("lots")
    Traceback (most recent call last):
    ...
    ValueError: max_size must be a number of bytes or a size such as '500 MB', '20GB' or \
'2 GiB' (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), not 'lots'
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, builtins.bool) and value >= 0:
        return value
    text = value.lower() if isinstance(value, str) else ""
    found = re.fullmatch(_NUMBER + r"([a-z]*)\s*", text)
    if found is None or found.group(2) not in _UNITS:
        raise ValueError(
            f"{name} must be a number of bytes or a size such as '500 MB', '20GB' or '2 GiB' "
            f"(units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), not {value!r}"
        )
    return math.floor(float(found.group(1)) * _UNITS[found.group(2)])


def parse_duration(text: str) -> float:
    """Seconds from a duration such as ``"7d"``, ``"12h"``, ``"30m"``, ``"90s"`` or ``"2w"``.

    Examples
    --------
    >>> parse_duration("7d"), parse_duration("1.5h")
    (604800.0, 5400.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: a duration must be a number and a unit, such as 7d, 12h, 30m, 90s or 2w \
(weeks, days, hours, minutes, seconds), not 'soon'
    """
    found = re.fullmatch(_NUMBER + r"([a-z])\s*", text.lower())
    if found is None or found.group(2) not in _SECONDS:
        raise ValueError(
            "a duration must be a number and a unit, such as 7d, 12h, 30m, 90s or 2w "
            f"(weeks, days, hours, minutes, seconds), not {text!r}"
        )
    return float(found.group(1)) * _SECONDS[found.group(2)]


def human(nbytes: float) -> str:
    """A size for people, in decimal units as ``du -h --si`` gives them.

    >>> human(999), human(1_500_000), human(20 * 10**9)
    ('999 B', '1.5 MB', '20.0 GB')
    """
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def _files(files: Files) -> tuple[list[Found], list[Found]]:
    """The store's entries, and its temporary files (being written, or left by a crash)."""
    found: list[Found] = []
    temporary: list[Found] = []
    for item in files.listing("entries"):
        (temporary if item.path.endswith(".tmp") else found).append(item)
    return found, temporary


def entries(files: Files) -> list[Entry]:
    """Every entry of a store, newest first, from their headers alone."""
    listed = []
    for item in _files(files)[0]:
        key = item.path.rsplit("/", 1)[-1]
        try:
            meta = files.header(item.path).meta
            label, created = str(meta["label"]), float(meta["created"])
        except FileNotFoundError:
            continue  # evicted meanwhile
        except (OSError, ValueError, KeyError, TypeError):
            label, created = "(damaged)", item.modified
        listed.append(Entry(key, label, item.size, created, item.modified))
    listed.sort(key=lambda e: e.created, reverse=True)
    return listed


def evict(
    files: Files,
    max_size: int,
    keep_since: float | None = None,
    keep: Collection[str] = (),
) -> Removed:
    """Remove the least recently used entries until the store holds at most ``max_size`` bytes.

    This run's entries go last, only when the others are not enough: those
    used at or after ``keep_since`` (epoch seconds: written, or loaded from
    a local store) and those at the paths in ``keep`` (loaded: a remote
    store does not mark them used). Also removes temporary files older than
    :data:`STALE_TEMP`.
    """
    found, temporary = _files(files)
    now = time.time()
    for item in temporary:
        if item.modified < now - STALE_TEMP:
            files.remove(item.path)
    total = sum(item.size for item in found)
    since = math.inf if keep_since is None else keep_since - MTIME_SLACK
    # the others by last use, then this run's by last use
    order = sorted(found, key=lambda item: (item.modified >= since or item.path in keep,
                                            item.modified))  # fmt: skip
    count = removed = 0
    for item in order:
        if total - removed <= max_size:
            break
        try:
            files.remove(item.path)
        except OSError:  # open elsewhere, on Windows: it goes next time
            continue
        count += 1
        removed += item.size
    return Removed(count, removed, len(found) - count, total - removed)


def clear(files: Files, older_than: float | None = None, max_size: int | None = None) -> Removed:
    """Remove every entry, or those unused for ``older_than`` seconds, or down to ``max_size``.

    Clearing everything also removes the functions' records and rewrites
    ``FORMAT``: the store is empty, and usable by this tarry (whatever
    format it had).
    """
    if older_than is None and max_size is None:
        found, temporary = _files(files)
        for item in [*found, *temporary, *files.listing("functions")]:
            files.remove(item.path)
        files.write("FORMAT", [f"{FORMAT}\n".encode()])
        return Removed(len(found), sum(item.size for item in found), 0, 0)
    count = nbytes = 0
    if older_than is not None:
        cutoff = time.time() - older_than
        found = _files(files)[0]
        for item in found:
            if item.modified < cutoff:
                files.remove(item.path)
                count += 1
                nbytes += item.size
    if max_size is not None:
        evicted = evict(files, max_size)
        return Removed(count + evicted.removed, nbytes + evicted.removed_bytes, evicted.left,
                       evicted.left_bytes)  # fmt: skip
    left = _files(files)[0]
    return Removed(count, nbytes, len(left), sum(item.size for item in left))
