"""The ``"sync"`` backend: every task in the calling thread, in a fixed order.

Deterministic and debugger friendly: ``pdb.pm()`` after a failure lands in
the user's function.
"""

from __future__ import annotations

from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.deadline import Deadline

__all__ = ["run_sync"]

#: what a timeout error says of the task that ran past the deadline
_FATE = 'it ran to its end (the "sync" scheduler looks at the time between tasks)'


def run_sync(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run every task of ``run`` here; return the first task error, if any.

    Only ``settings.timeout`` matters here (the rest is accepted for a
    uniform backend signature). It is checked *between* tasks: a task running
    in the calling thread cannot be stopped, so the run ends, with a
    :class:`TimeoutError`, once the task running at the deadline returns.

    Examples
    --------
    >>> import time
    >>> from tarry._graph import Task
    >>> nap = Task("nap", time.sleep, (0.02,), None, (), "sleep")
    >>> run = Run([Task("after", abs, (nap,), None, (nap,), "abs")])
    >>> print(run_sync(run, Settings(timeout=0.01)))  # doctest: +NORMALIZE_WHITESPACE
    compute did not finish within 0.01 s: running at the deadline: 'nap' (sleep);
    it ran to its end (the "sync" scheduler looks at the time between tasks);
    1 task not started
    """
    deadline = None if settings.timeout is None else Deadline(settings.timeout)
    values, pop, finish, call = run.values, run.pop, run.finish, run.runner()
    while (task := pop()) is not None:
        try:
            value = call(task, values)
        except Exception as exc:
            if run.retry(task, exc):
                continue
            return run.fail(task, exc)
        finish(task, value)
        if deadline is not None and run.remaining and deadline.left() <= 0:
            return deadline.error([task], run.remaining, _FATE)
    return None
