"""The seed tutorial's exercises, each written twice: plain Python and tarry.

Each :class:`Exercise` holds the sequential code and the lazy code of one
exercise of the dask.delayed tutorial, so :mod:`tarry._cli` can time both,
compare their results and explain the difference: an :class:`Outcome`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarry import delayed

__all__ = ["Exercise", "Outcome", "exercises", "flight_files", "same_result", "toy_functions"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its name, what it shows, and the two ways to run it."""

    #: short name, also used for the output files
    name: str
    title: str
    #: runs the plain Python version and returns its result
    sequential: Callable[[], Any]
    #: builds the lazy version (runs nothing) and returns the value to compute
    lazy: Callable[[], Any]


@dataclass
class Outcome:
    """What running one exercise both ways gave: a row of the tutorial's table."""

    title: str
    #: seconds: the plain Python version, tarry's, and tarry's critical path
    sequential: float
    parallel: float
    critical_path: float
    #: tarry's result is the plain version's
    same: bool
    #: the text under the table
    explanation: str
    #: pictures written for it
    files: list[Path]


def toy_functions(seconds: float) -> tuple[Callable[[int], int], Callable[[int, int], int], Any]:
    """The tutorial's inc, add and double, sleeping ``seconds`` each.

    Examples
    --------
    >>> inc, add, double = toy_functions(0.0)
    >>> add(inc(1), double(2))
    6
    """

    def inc(x: int) -> int:
        time.sleep(seconds)
        return x + 1

    def add(x: int, y: int) -> int:
        time.sleep(seconds)
        return x + y

    def double(x: int) -> int:
        time.sleep(seconds)
        return 2 * x

    return inc, add, double


def is_even(x: int) -> bool:
    """The tutorial's cheap test, run eagerly while building the graph."""
    return not x % 2


def exercises(sleep: float, filenames: Sequence[str]) -> list[Exercise]:
    """The tutorial's four exercises, with ``sleep`` seconds per toy call.

    Examples
    --------
    >>> [e.name for e in exercises(0.0, [])]
    ['inc-add', 'for-loop', 'control-flow']
    >>> from tarry import compute
    >>> loop = exercises(0.0, [])[1]
    >>> loop.sequential() == compute(loop.lazy(), scheduler="sync")[0] == 44
    True
    """
    inc, add, double = toy_functions(sleep)
    data = [1, 2, 3, 4, 5, 6, 7, 8]
    flow = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]

    def inc_add_sequential() -> int:
        return add(inc(1), inc(2))

    def inc_add_lazy() -> Any:
        x = delayed(inc)(1)
        y = delayed(inc)(2)
        return delayed(add)(x, y)

    def loop_sequential() -> int:
        return sum(inc(x) for x in data)

    def loop_lazy() -> Any:
        return delayed(sum)([delayed(inc)(x) for x in data])

    def flow_sequential() -> int:
        return sum(double(x) if is_even(x) else inc(x) for x in flow)

    def flow_lazy() -> Any:
        return delayed(sum)([delayed(double)(x) if is_even(x) else delayed(inc)(x) for x in flow])

    found = [
        Exercise("inc-add", "inc/add", inc_add_sequential, inc_add_lazy),
        Exercise("for-loop", "for-loop of 8 incs", loop_sequential, loop_lazy),
        Exercise("control-flow", "for-loop with control flow", flow_sequential, flow_lazy),
    ]
    if filenames:
        import pandas  # noqa: F401 - imported now, so its import time is not timed as work

        found.append(
            Exercise(
                "groupby",
                f"pandas groupby over {len(filenames)} files",
                lambda: _mean_delay_sequential(filenames),
                lambda: _mean_delay_lazy(filenames),
            )
        )
    return found


def _mean_delay_sequential(filenames: Sequence[str]) -> Any:
    """The tutorial's sequential code: mean departure delay per airport."""
    import pandas as pd

    sums, counts = [], []
    for fn in filenames:
        df = pd.read_csv(fn)
        by_origin = df.groupby("Origin")
        sums.append(by_origin.DepDelay.sum())
        counts.append(by_origin.DepDelay.count())
    return sum(sums) / sum(counts)


def _mean_delay_lazy(filenames: Sequence[str]) -> Any:
    """The tutorial's solution: read_csv delayed, the rest lazy method calls."""
    import pandas as pd

    sums, counts = [], []
    for fn in filenames:
        df = delayed(pd.read_csv)(fn)
        by_origin = df.groupby("Origin")
        sums.append(by_origin.DepDelay.sum())
        counts.append(by_origin.DepDelay.count())
    return delayed(sum)(sums) / delayed(sum)(counts)


def same_result(a: Any, b: Any) -> bool:
    """Equal results, for plain values and pandas objects alike.

    Examples
    --------
    >>> same_result(44, 44), same_result([1], [2])
    (True, False)
    """
    equals = getattr(a, "equals", None)
    if callable(equals) and type(a) is type(b):
        return bool(equals(b))
    return bool(a == b)


def flight_files(folder: str | os.PathLike[str]) -> list[str]:
    """The tutorial's ``sorted(glob('data/nycflights/*.csv'))``."""
    from glob import glob

    return sorted(glob(os.path.join(os.fspath(folder), "*.csv")))
