"""resources={"CPU": n} on the local pools: a task holds n workers while it runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import meet

from tarry import compute, delayed

LOCAL = ["threads", "processes", "executor"]


#: seconds a task waits for the other where they must meet: ample on a busy
#: machine (a worker process may still be starting); met, it returns at once
MEET = 120.0
#: seconds the first waits in vain where the two must not meet
ALONE = 3.0


def run_pair(where: str, cpus: float, tmp_path: Path, seconds: float) -> tuple[Any, ...]:
    """Two tasks that each wait ``seconds`` for the other to start, on a pool of two workers."""
    met = delayed(meet).options(resources={"CPU": cpus})
    pair = [met(str(tmp_path), "a", "b", seconds), met(str(tmp_path), "b", "a", seconds)]
    if where == "executor":
        with ThreadPoolExecutor(2) as executor:
            return compute(*pair, scheduler=executor)
    return compute(*pair, scheduler=where, num_workers=2, optimize_graph=False)


@pytest.mark.parametrize("where", LOCAL)
def test_tasks_asking_for_one_cpu_each_run_side_by_side(where: str, tmp_path: Path) -> None:
    assert run_pair(where, 1, tmp_path, MEET) == (True, True)


@pytest.mark.parametrize("where", LOCAL)
def test_tasks_asking_for_the_whole_pool_run_one_after_the_other(
    where: str, tmp_path: Path
) -> None:
    # the first waits in vain for the second, which starts only once it is done
    assert sorted(run_pair(where, 2, tmp_path, ALONE)) == [False, True]


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_a_task_asking_for_more_cpus_than_the_pool_has_runs_alone(
    where: str, tmp_path: Path
) -> None:
    assert sorted(run_pair(where, 16, tmp_path, ALONE)) == [False, True]


def test_a_task_asking_for_no_cpu_runs_beside_a_task_holding_the_pool(tmp_path: Path) -> None:
    wide = delayed(meet).options(resources={"CPU": 2})(str(tmp_path), "a", "b", MEET)
    light = delayed(meet).options(resources={"CPU": 0})(str(tmp_path), "b", "a", MEET)
    assert compute(wide, light, scheduler="threads", num_workers=2) == (True, True)
