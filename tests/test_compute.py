"""compute() and persist(): shapes, sharing, options and errors, on every scheduler."""

from __future__ import annotations

import dataclasses
import math
import threading
import traceback
from collections import namedtuple
from fractions import Fraction
from operator import add
from pathlib import Path
from typing import Any

import pytest

import tarry
from tarry import compute, delayed, persist
from tarry._compute import keep
from tarry._graph import walk
from tarry._schedule.core import Run
from tarry._tools import observe
from tarry._tools.last_run import last_run


def inc(x: int) -> int:
    return x + 1


def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


@dataclasses.dataclass
class Box:
    value: Any


Pair = namedtuple("Pair", "a b")


def test_results_are_shaped_like_the_arguments(scheduler: str) -> None:
    x = delayed(inc)(1)
    out = compute(x, [x, 5], (x,), {x}, {"k": x}, Box(x), Pair(x, 0), "plain", scheduler=scheduler)
    assert out == (2, [2, 5], (2,), {2}, {"k": 2}, Box(2), Pair(2, 0), "plain")


def test_nothing_lazy_is_passed_through() -> None:
    marker = object()
    assert compute(1, marker, scheduler="sync") == (1, marker)
    assert compute() == ()


def count_call(log: str, value: Any) -> Any:
    """Append a line to ``log`` (a file, so calls in worker processes count too)."""
    with open(log, "a") as f:
        f.write("x\n")
    return value


def calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_shared_intermediates_run_once(scheduler: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    y = delayed(count_call)(str(log), [v * v for v in range(10)])
    low, high = compute(delayed(min)(y), delayed(max)(y), scheduler=scheduler)
    assert (low, high) == (0, 81)
    assert calls(log) == 1


def test_seed_min_max_with_methods(scheduler: str) -> None:
    np = pytest.importorskip("numpy")
    x = delayed(np.arange)(10)
    y = x**2
    assert compute(y.min(), y.max(), scheduler=scheduler) == (0, 81)
    assert (x + 1)[::2].sum().compute(scheduler=scheduler) == 25


def test_unknown_keyword_is_a_type_error() -> None:
    x = delayed(inc)(1)
    with pytest.raises(TypeError, match="schedular"):
        compute(x, schedular="sync")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="schedular"):
        x.compute(schedular="sync")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="schedular"):
        persist(x, schedular="sync")  # type: ignore[call-arg]


def test_unknown_scheduler_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown scheduler 'thread'.*threads"):
        compute(delayed(inc)(1), scheduler="thread")


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_num_workers(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="num_workers"):
        compute(delayed(inc)(1), num_workers=bad)


def test_error_keeps_type_message_user_frame_and_names_the_task(scheduler: str) -> None:
    bad = delayed(fail)(delayed(inc)(1), dask_key_name="the-bad-task")
    with pytest.raises(ValueError, match="bad input 2") as info:
        compute(bad, scheduler=scheduler)
    err = info.value
    assert any("the-bad-task" in note for note in err.__notes__)
    frames = traceback.extract_tb(err.__traceback__)
    names = [f.name for f in frames]
    assert names[-1] == "fail"
    internal = [f for f in frames if "/src/tarry/" in f.filename]
    assert len(internal) == 1, names  # only the public entry point the user called
    assert internal[0].name == "compute"


def test_error_from_method_compute_shows_one_internal_frame(scheduler: str) -> None:
    with pytest.raises(ValueError, match="bad input") as info:
        delayed(fail)(1).compute(scheduler=scheduler)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert [f.name for f in frames if "/src/tarry/" in f.filename] == ["compute"]


def test_error_keeps_the_users_own_cause(scheduler: str) -> None:
    def wraps() -> None:
        try:
            empty: dict[str, int] = {}
            empty["missing"]
        except KeyError as inner:
            raise RuntimeError("outer") from inner

    with pytest.raises(RuntimeError) as info:
        delayed(wraps)().compute(scheduler=scheduler)
    assert isinstance(info.value.__cause__, KeyError)


def test_persist_keeps_keys_and_runs_nothing_again(scheduler: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    x = delayed(count_call)(str(log), 2)
    (kept,) = persist(x, scheduler=scheduler)
    assert kept.key == x.key
    assert compute(kept + 1, scheduler=scheduler) == (3,)
    assert calls(log) == 1  # counted after a compute: on a cluster persist does not wait
    assert kept.compute(scheduler=scheduler) == 2
    assert calls(log) == 1
    assert len(kept.graph) == 1


def test_persisted_task_like_tuple_is_a_value_not_a_task(scheduler: str) -> None:
    (kept,) = persist(delayed(tuple)([add, 1, 2]), scheduler=scheduler)
    assert kept.compute(scheduler=scheduler) == (add, 1, 2)
    assert delayed(lambda t: t)(kept).compute(scheduler=scheduler) == (add, 1, 2)


def test_persist_containers_and_method_form() -> None:
    x = delayed(inc)(1)
    kept_list, plain = persist([x, x + 1], "s", scheduler="sync")
    assert plain == "s"
    assert [k.compute() for k in kept_list] == [2, 3]
    single = x.persist(scheduler="sync")
    assert single.key == x.key
    a, b = delayed(divmod, nout=2)(7, 2).persist(scheduler="sync")
    assert (a.compute(), b.compute()) == (3, 1)


def test_config_sets_the_default_and_a_keyword_wins() -> None:
    seen: list[str] = []

    def where() -> str:
        name = threading.current_thread().name
        seen.append(name)
        return name

    with tarry.config.set(scheduler="sync"):
        assert tarry.config.get("scheduler") == "sync"
        main = threading.current_thread().name
        assert delayed(where)().compute() == main
    assert tarry.config.get("scheduler") == "threads"
    tarry.config.set(num_workers=3)
    try:
        assert tarry.config.get("num_workers") == 3
    finally:
        tarry.config.set(num_workers=None)


def test_config_rejects_unknown_and_invalid_settings() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        tarry.config.set(schedular="sync")
    with pytest.raises(ValueError, match="unknown scheduler"):
        tarry.config.set(scheduler="nope")
    with pytest.raises(ValueError, match="num_workers"):
        tarry.config.set(num_workers=0)
    with pytest.raises(KeyError, match="unknown setting"):
        tarry.config.get("nope")


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1.5, ValueError), (float("nan"), ValueError), ("5", TypeError),
     (True, TypeError), ([1], TypeError)],
)  # fmt: skip
def test_a_bad_timeout_is_refused_with_a_clear_error(value: object, error: type) -> None:
    x = delayed(inc)(1)
    with pytest.raises(error, match="timeout must be a number of seconds"):
        compute(x, scheduler="sync", timeout=value)  # type: ignore[call-overload]
    with pytest.raises(error, match="timeout must be a number of seconds"):
        tarry.config.set(timeout=value)
    assert tarry.config.get("timeout") is None


def test_a_timeout_is_a_number_of_seconds_or_none() -> None:
    with tarry.config.set(timeout=2):
        assert tarry.config.get("timeout") == 2.0
        # math.inf: no limit, whatever the config says
        assert compute(delayed(inc)(1), scheduler="threads", timeout=math.inf) == (2,)
    assert compute(delayed(inc)(1), scheduler="sync", timeout=1) == (2,)
    assert tarry.config.check_timeout(Fraction(1, 2)) == 0.5  # any real number


def test_keep_passes_its_timeout_on() -> None:
    """persist's road: a run that outlasts its timeout raises, and keeps nothing."""
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.1 s"):
            keep((delayed(release.wait)(60),), scheduler="threads", timeout=0.1)
    finally:
        release.set()


def interrupt(x: int) -> int:
    raise KeyboardInterrupt


def test_a_run_stopped_by_ctrl_c_is_recorded() -> None:
    assert delayed(inc)(0).compute(scheduler="sync") == 1  # an earlier run, recorded first
    first = delayed(inc)(1)
    stopped = delayed(interrupt)(first)
    after = delayed(inc)(stopped)
    total = delayed(add)(after, 5)
    with pytest.raises(KeyboardInterrupt):
        total.compute(scheduler="sync")
    record = last_run()
    assert record is not None
    assert record.targets == (total.key,)  # this run, not the earlier one
    assert (record.failed, record.error) == (stopped.key, "KeyboardInterrupt")
    statuses = record.statuses(list(walk([total._task])))
    assert [statuses[x.key] for x in (first, stopped, after, total)] == [
        "done", "failed", "not run", "not run",
    ]  # fmt: skip


class Told(observe.Observer):
    """Writes down what it is told; ``refuse`` makes ``started`` raise."""

    def __init__(self, log: list[str], refuse: bool = False) -> None:
        self.log, self.refuse = log, refuse

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        if self.refuse:
            raise RuntimeError("cannot watch")
        self.log.append(f"started on {scheduler}")

    def finished(self, run: Run, error: BaseException | None) -> None:
        self.log.append(f"finished: {type(error).__name__}")


def test_an_observer_that_cannot_start_stops_the_run_and_ends_the_others() -> None:
    log: list[str] = []
    ran = delayed(count_call)("/nonexistent/never-written", 1)
    with Told(log), Told(log, refuse=True), pytest.raises(RuntimeError, match="cannot watch"):
        ran.compute(scheduler="sync")
    assert log == ["started on sync", "finished: RuntimeError"]  # the refuser is told nothing
    assert observe.active == ()
    record = last_run()
    assert record is not None
    assert (record.targets, record.error) == ((ran.key,), "RuntimeError: cannot watch")
    assert record.not_run == {ran.key}


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tarry\n"
        "heavy = [m for m in ('pandas', 'ray', 'matplotlib', 'numpy', 'distributed', 'dask',"
        " 'graphviz', 'tqdm', 'loky') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_chain_of_a_million_tasks_has_no_recursion_limit() -> None:
    value: Any = delayed(0)
    lazy_inc = delayed(inc)
    for _ in range(1_000_000):
        value = lazy_inc(value)
    assert value.compute(scheduler="sync") == 1_000_000
    assert value.compute(scheduler="threads") == 1_000_000
    del value  # freeing a million-deep chain must not overflow the C stack either
