"""``compute(timeout=...)``: when a run's time is up, and the error that says so.

A backend given ``settings.timeout`` starts a :class:`Deadline` as it
starts the run, waits no longer than :meth:`Deadline.left` at a time, and
when the time is up stops the run as Ctrl-C does, then returns
:meth:`Deadline.error`: a :class:`TimeoutError` naming the tasks still
running and counting those never started.

Examples
--------
>>> from tarry._graph import Task
>>> deadline = Deadline(0.5)
>>> 0 < deadline.left() <= 0.5
True
>>> task = Task("load-1", abs, (-1,), None, (), "load")
>>> print(deadline.error([task], 3, "it runs on"))  # doctest: +NORMALIZE_WHITESPACE
compute did not finish within 0.5 s: running at the deadline: 'load-1' (load);
it runs on; 3 tasks not started
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tarry._graph import Task

__all__ = ["Deadline"]

#: running tasks a timeout error names; the rest are counted
_NAMED = 5


class Deadline:
    """The moment ``timeout`` seconds from now, when a run must stop."""

    __slots__ = ("at", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.at - time.monotonic()

    def error(self, running: Sequence[Task], not_started: int, fate: str) -> TimeoutError:
        """The error a run that ran out of time returns.

        ``running``: the tasks under way when time ran out; ``fate``: what
        became of them (stopped, left to run on); ``not_started``: how many
        tasks never started.
        """
        named = ", ".join(f"{t.key!r} ({t.name})" for t in running[:_NAMED])
        if len(running) > _NAMED:
            named += f" and {len(running) - _NAMED} more"
        message = f"compute did not finish within {self.timeout:g} s"
        if running:
            message += f": running at the deadline: {named}; {fate}"
        plural = "" if not_started == 1 else "s"
        return TimeoutError(f"{message}; {not_started} task{plural} not started")
