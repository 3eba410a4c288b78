"""Holding loads back: the one policy, for tasks (threads) and units (processes).

With several workers, a worker that finds only *roots* (work that reads no
computed result: it loads data) while another worker runs what some finished
result waits for would load data that then waits too. So while such a
*parked* result exists and some work is under way, roots wait:

* a fold (``acc = merge(acc, load(i))``) loads one chunk ahead, not all of
  them: ``load(i + 1)``'s result is parked while ``merge(acc, load(i))`` runs;
* a gather (``combine([load(i) for i in ...])``) is never held: its reader
  waits for loads not started yet, so the loads run side by side.

The policy is the same whatever a piece of *work* is: a task for
:class:`~tarry._schedule.core.Run`, a unit of fused tasks for the processes
driver. A :class:`HoldBack` knows work only through two functions given at
construction: ``inputs(work)``, the keys of the results it reads, and
``work_of(key)``, the work that makes a result.

Examples
--------
A fold: ``merge(load0, load1)`` runs, ``load2`` finished; its reader waits
only for the running merge, so roots are held until the merge finishes.

>>> reads = {"load2": [], "merge1": ["load0", "load1"], "merge2": ["merge1", "load2"]}
>>> hold = HoldBack(reads.__getitem__, str, look_down=0)
>>> hold.started("merge1")
>>> hold.park("load2", ["merge2"], have={"load2"})
>>> hold.holding()
True
>>> hold.started("merge2"); hold.stopped("merge1"); hold.holding()  # load2 is read now
False
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Generic, TypeVar

__all__ = ["HoldBack"]

W = TypeVar("W")


class HoldBack(Generic[W]):
    """Which results wait only for work under way, and so whether roots must wait.

    Parameters
    ----------
    inputs
        The keys of the results a piece of work reads (results made by other work).
    work_of
        The piece of work that makes the result ``key``.
    look_down
        How many levels of unfinished inputs to look through: a task-level
        fold needs two (the next merge waits for the previous merge, which
        waits for a load under way, or for the merge before); a unit
        contains its loads, so units need none.
    """

    __slots__ = ("inputs", "look_down", "parked", "under_way", "work_of")

    def __init__(
        self, inputs: Callable[[W], Iterable[str]], work_of: Callable[[str], W], look_down: int
    ) -> None:
        self.inputs = inputs
        self.work_of = work_of
        self.look_down = look_down
        #: ids of the work handed out and not finished
        self.under_way: set[int] = set()
        #: keys of finished results whose reader waits only for work under way
        self.parked: set[str] = set()

    def holding(self) -> bool:
        """Whether roots must wait now."""
        return bool(self.parked) and bool(self.under_way)

    def started(self, work: W) -> None:
        """``work`` was handed out: the results it reads are no longer parked."""
        self.under_way.add(id(work))
        parked = self.parked
        if parked:
            parked.difference_update(self.inputs(work))

    def stopped(self, work: W) -> None:
        """``work`` finished (or failed)."""
        self.under_way.discard(id(work))

    def park(self, key: str, readers: Iterable[W], have: Collection[str]) -> None:
        """Park the finished result ``key`` if one of its ``readers`` waits only for
        work under way; ``have`` holds the keys of the results at hand."""
        for reader in readers:
            if self.waits_for_under_way(reader, have, self.look_down):
                self.parked.add(key)
                return

    def park_inputs_of(self, readers: Iterable[W], have: Collection[str]) -> None:
        """Work was just started: park the results at hand of those of its
        ``readers`` that now wait only for work under way."""
        for reader in readers:
            if self.waits_for_under_way(reader, have, self.look_down):
                self.parked.update(k for k in self.inputs(reader) if k in have)

    def waits_for_under_way(self, work: W, have: Collection[str], depth: int) -> bool:
        """Whether ``work`` waits, and only for work under way (``depth`` levels down)."""
        missing = [key for key in self.inputs(work) if key not in have]
        return bool(missing) and all(self._under_way(key, have, depth) for key in missing)

    def _under_way(self, key: str, have: Collection[str], depth: int) -> bool:
        work = self.work_of(key)
        if id(work) in self.under_way:
            return True
        return depth > 0 and self.waits_for_under_way(work, have, depth - 1)
