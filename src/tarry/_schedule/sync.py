"""The ``"sync"`` backend: every task in the calling thread, in a fixed order.

Deterministic and debugger friendly: ``pdb.pm()`` after a failure lands in
the user's function.
"""

from __future__ import annotations

from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run

__all__ = ["run_sync"]


def run_sync(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run every task of ``run`` here; return the first task error, if any.

    ``settings`` are accepted for a uniform backend signature and ignored.
    """
    values, pop, finish, call = run.values, run.pop, run.finish, run.runner()
    while (task := pop()) is not None:
        try:
            value = call(task, values)
        except Exception as exc:
            return run.fail(task, exc)
        finish(task, value)
    return None
