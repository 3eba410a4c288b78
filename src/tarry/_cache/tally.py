"""What a cached compute did with its cache, in keys and numbers: hits, misses, the rest.

:func:`tarry._cache.lookup.cached_targets` makes one :class:`CacheTally`
per compute before the run starts; the run carries it
(``Run.cache``), and profiles and :func:`tarry._tools.last_run.last_run`
keep it. It holds keys and numbers, never a task or a value, so a kept
record of a big run keeps no result alive.

* a *hit* was loaded instead of run: when (the load's perf_counter
  readings), how long making it took when it was stored, its inputs
  included (what loading it saved) and the entry's size;
* a *miss* is a cacheable task that runs, and stores its result when it
  returns;
* a task *not cacheable* runs without a key (impure, ``cache=False``, an
  argument that cannot be described, or such an input);
* a *skipped* task is not needed: only hits read it.

:meth:`CacheTally.counts` sums that up as :class:`CacheCounts`, counting
the misses and tasks not cacheable that finished; ``str()`` of those is the
profile report's ``cache`` line.

Examples
--------
>>> hit = Hit("total-1", "total", 10.0, 10.25, 0.2, 41.0, 120_000_000)
>>> tally = CacheTally("/tmp/c", (hit,), frozenset({"mean-2"}), frozenset(), 3)
>>> print(tally.counts(lambda key: True))
1 hit (saved 41.0 s, loaded in 250 ms, 120 MB), 1 miss stored, 3 skipped
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from tarry._tools.text import counted, format_seconds

__all__ = ["CacheCounts", "CacheTally", "Hit", "format_bytes"]


class Hit(NamedTuple):
    """A task loaded from the cache instead of run."""

    key: str
    name: str
    #: perf_counter readings when its load started and ended (in the caller)
    start: float
    end: float
    #: CPU time of the thread that loaded it
    cpu: float
    #: seconds making the result took (its inputs included) when stored: what the load saved
    saved: float
    #: size of its entry in the store
    nbytes: int


@dataclass(frozen=True, slots=True)
class CacheTally:
    """Per task key, what one compute's cache did; see the module docstring."""

    #: the store's location, as :class:`~tarry._cache.store.Store` names it
    location: str
    #: the tasks loaded, inputs first
    hits: tuple[Hit, ...]
    #: cacheable tasks the run was to run (and store)
    misses: frozenset[str]
    #: tasks the run was to run without storing them: no key, or ``cache=False``
    uncacheable: frozenset[str]
    #: tasks not needed, since only hits read them
    skipped: int

    def counts(self, finished: Callable[[str], bool]) -> CacheCounts:
        """The numbers, counting misses and tasks not cacheable for which ``finished`` is true."""
        return CacheCounts(
            hits=len(self.hits),
            saved=sum(h.saved for h in self.hits),
            loading=sum(h.end - h.start for h in self.hits),
            nbytes=sum(h.nbytes for h in self.hits),
            misses=sum(1 for key in self.misses if finished(key)),
            uncacheable=sum(1 for key in self.uncacheable if finished(key)),
            skipped=self.skipped,
        )


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """What the cache did in one compute or several: ``str()`` says it in a line.

    Examples
    --------
    >>> one = CacheCounts(2, 3.0, 0.1, 2048, 1, 0, 0)
    >>> print(one + CacheCounts(0, 0.0, 0.0, 0, 4, 1, 0))
    2 hits (saved 3.00 s, loaded in 100 ms, 2.05 kB), 5 misses stored, 1 not cached
    """

    hits: int
    #: seconds making the hits' results took (inputs included): the time loading saved
    saved: float
    #: seconds spent loading the hits
    loading: float
    #: bytes of the entries loaded
    nbytes: int
    #: cacheable tasks that ran and stored their result
    misses: int
    #: tasks that ran without storing their result: no key, or ``cache=False``
    uncacheable: int
    #: tasks not run, since only hits read them
    skipped: int

    def __add__(self, other: CacheCounts) -> CacheCounts:
        return CacheCounts(
            self.hits + other.hits,
            self.saved + other.saved,
            self.loading + other.loading,
            self.nbytes + other.nbytes,
            self.misses + other.misses,
            self.uncacheable + other.uncacheable,
            self.skipped + other.skipped,
        )

    def __str__(self) -> str:
        hits = counted(self.hits, "hit")
        if self.hits:
            hits += (
                f" (saved {format_seconds(self.saved)}, loaded in"
                f" {format_seconds(self.loading)}, {format_bytes(self.nbytes)})"
            )
        misses = "miss" if self.misses == 1 else "misses"
        parts = [hits, f"{self.misses:,} {misses} stored"]
        if self.uncacheable:
            parts.append(f"{self.uncacheable:,} not cached")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped")
        return ", ".join(parts)


def format_bytes(nbytes: int) -> str:
    """A size with three significant digits and a decimal unit (kB = 1,000 bytes).

    Examples
    --------
    >>> [format_bytes(n) for n in (0, 999, 2048, 120_000_000, 3 * 10**9)]
    ['0 B', '999 B', '2.05 kB', '120 MB', '3.00 GB']
    """
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{nbytes} B"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"
