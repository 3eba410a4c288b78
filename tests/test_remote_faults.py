"""Faults every backend that runs tasks in other processes must handle alike."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import exit_now, inc, kill_self, segfault, touch

from tarry import compute, delayed
from tarry._schedule.errors import UnpicklableTaskError, WorkerDiedError


def test_unpicklable_task_fails_before_anything_runs(remote_scheduler: str, tmp_path: Path) -> None:
    lock = threading.Lock()
    marker = tmp_path / "ran"
    ran = delayed(touch)(str(marker))
    bad = delayed(lambda x: (lock, x)[1], name="holds_lock")(1)
    with pytest.raises(
        UnpicklableTaskError, match=r"closure variable 'lock'|global 'lock'"
    ) as info:
        compute([ran, bad], scheduler=remote_scheduler)
    assert bad.key in str(info.value)
    assert "_thread.lock" in str(info.value)
    assert any(bad.key in note for note in info.value.__notes__)
    time.sleep(0.5)
    assert not marker.exists()


@pytest.mark.parametrize("death", [exit_now, kill_self, segfault], ids=["exit", "sigkill", "segv"])
def test_dead_worker_names_its_task_and_the_next_compute_works(
    remote_scheduler: str, death: Any
) -> None:
    victim = delayed(death)(1)
    began = time.perf_counter()
    with pytest.raises(WorkerDiedError, match=f"running task '{victim.key}'") as info:
        compute(delayed(inc)(victim), scheduler=remote_scheduler)
    # generous, not a speed check: a death noticed only by a long timeout would fail it
    assert time.perf_counter() - began < 60
    assert any(victim.key in note for note in info.value.__notes__)
    assert compute(delayed(inc)(1), scheduler=remote_scheduler) == (2,)
