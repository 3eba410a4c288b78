"""resources={"CPU": n} on the local pools: a task holds n workers while it runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import meet

from tarry import compute, delayed

LOCAL = ["threads", "processes", "executor"]


def run_pair(where: str, cpus: float | None, tmp_path: Path) -> tuple[Any, ...]:
    """Two tasks that each wait for the other to start, on a pool of two workers."""
    met = delayed(meet)
    if cpus is not None:
        met = met.options(resources={"CPU": cpus})
    # seconds: how long a task left alone waits; long enough for a busy machine
    pair = [met(str(tmp_path), "a", "b", 5.0), met(str(tmp_path), "b", "a", 5.0)]
    if where == "executor":
        with ThreadPoolExecutor(2) as executor:
            return compute(*pair, scheduler=executor)
    return compute(*pair, scheduler=where, num_workers=2, optimize_graph=False)


@pytest.mark.parametrize("where", LOCAL)
def test_tasks_asking_for_one_cpu_each_run_side_by_side(where: str, tmp_path: Path) -> None:
    assert run_pair(where, 1, tmp_path) == (True, True)


@pytest.mark.parametrize("where", LOCAL)
def test_tasks_asking_for_the_whole_pool_run_one_after_the_other(
    where: str, tmp_path: Path
) -> None:
    # the first waits in vain for the second, which starts only once it is done
    assert sorted(run_pair(where, 2, tmp_path)) == [False, True]


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_a_task_asking_for_more_cpus_than_the_pool_has_runs_alone(
    where: str, tmp_path: Path
) -> None:
    assert sorted(run_pair(where, 16, tmp_path)) == [False, True]


def test_a_task_asking_for_no_cpu_runs_beside_a_task_holding_the_pool(tmp_path: Path) -> None:
    wide = delayed(meet).options(resources={"CPU": 2})(str(tmp_path), "a", "b", 5.0)
    light = delayed(meet).options(resources={"CPU": 0})(str(tmp_path), "b", "a", 5.0)
    assert compute(wide, light, scheduler="threads", num_workers=2) == (True, True)
