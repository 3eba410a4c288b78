"""A task's error as the caller gets it: the user's frames, and nothing that pins the run."""

from __future__ import annotations

import gc
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from tarry import compute, delayed


class Big:
    """Stands for a large intermediate result; weakly referenceable, to see it go."""


def _fail(_: int) -> int:
    raise ValueError("bad row")


def _later(big: Big, x: int) -> int:
    return x


def _compute_it(x: Any, scheduler: str) -> Any:
    return compute(x, scheduler=scheduler)


def _compute_method(x: Any, scheduler: str) -> Any:
    return x.compute(scheduler=scheduler)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("entry", [_compute_it, _compute_method], ids=["compute", "method"])
def test_a_kept_error_does_not_keep_the_runs_other_results_alive(
    scheduler: str, entry: Callable[[Any, str], Any]
) -> None:
    made: list[weakref.ref[Big]] = []

    def make() -> Big:
        big = Big()
        made.append(weakref.ref(big))
        return big

    # make()'s result waits for its reader while the other input fails
    out = delayed(_later)(delayed(make)(), delayed(_fail)(1))
    with pytest.raises(ValueError, match="bad row") as info:
        entry(out, scheduler)
    kept = info.value  # as a notebook keeps sys.last_value
    gc.collect()
    assert len(made) == 1
    assert made[0]() is None, "the failed run's intermediate result is still alive"
    assert kept.__traceback__ is not None


def test_the_traceback_shows_the_users_frames_and_not_the_schedulers() -> None:
    with pytest.raises(ValueError, match="bad row") as info:
        compute(delayed(_fail)(1), scheduler="sync")
    files = [frame.filename for frame in traceback.extract_tb(info.value.__traceback__)]
    assert any(name.endswith("test_tracebacks.py") for name in files)
    assert not any("_schedule" in name or name.endswith("_graph.py") for name in files)
