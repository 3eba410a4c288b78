"""A chain of large arrays on Ray: tarry against hand-written ``@ray.remote`` code.

Twelve steps over 200 MB arrays (``--mb``, ``--steps``), on a local Ray with
a 1 GB object store, so that holding every intermediate result would spill:
prints each run's time and the most bytes Ray's spill folder held during it.
A run holding all of them needs 2.6 GB; one that lets go of each result once
its reader is done needs two arrays at a time.

Then a run whose worker is killed mid-run: eight one-second tasks, the
first of which is killed (SIGKILL of its worker process) half a second
after it starts; Ray runs it again (``max_retries``), on tarry as with
``@ray.remote``. Prints each run's time.

Run ``python benchmarks/bench_ray_chain.py`` (``./dev bench`` runs it too).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def first(n: int) -> Any:
    return np.ones(n, dtype=np.uint8)


def step(a: Any) -> Any:
    return a + 1


def nap_noted(folder: str, i: int, seconds: float) -> int:
    """Nap; task 0 notes ``<pid>`` in ``folder`` first, for the killer to find."""
    if i == 0 and not os.listdir(folder):
        open(os.path.join(folder, str(os.getpid())), "w").close()
    time.sleep(seconds)
    return i


def kill_first_napper(folder: str, after: float) -> None:
    """SIGKILL the worker that noted itself in ``folder``, ``after`` seconds after it did."""
    while not os.listdir(folder):
        time.sleep(0.01)
    time.sleep(after)
    os.kill(int(os.listdir(folder)[0]), signal.SIGKILL)


def with_a_killed_worker(run: Callable[[str], list[int]]) -> float:
    """Seconds ``run`` took while the worker of its first task was killed mid-task."""
    folder = tempfile.mkdtemp(prefix="killed-")
    killer = threading.Thread(target=kill_first_napper, args=(folder, 0.5))
    killer.start()
    began = time.perf_counter()
    assert run(folder) == list(range(8))
    seconds = time.perf_counter() - began
    killer.join()
    return seconds


class SpillWatch:
    """The most bytes a spill folder held since the last :meth:`take`."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.peak = 0
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            total = 0
            for root, _, files in os.walk(self.folder):
                for name in files:
                    try:
                        total += os.path.getsize(os.path.join(root, name))
                    except OSError:
                        continue
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def take(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 MB arrays, 4 steps")
    args = parser.parse_args()
    mb, steps = (20, 4) if args.quick else (args.mb, args.steps)
    import ray

    from tarry import compute, delayed

    spill = tempfile.mkdtemp(prefix="spill-")
    config = {"type": "filesystem", "params": {"directory_path": spill}}
    ray.init(
        address="local",  # its own, even where `ray start` ran
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=1_000_000_000,
        log_to_driver=False,
        _system_config={"object_spilling_config": json.dumps(config)},
    )
    watch = SpillWatch(spill)

    def native() -> int:
        make, grow = ray.remote(first), ray.remote(step)
        x = make.remote(mb * 2**20)
        for _ in range(steps):
            x = grow.remote(x)
        return int(ray.get(x)[0])

    def tarry_chain() -> int:
        x = delayed(first)(mb * 2**20)
        for _ in range(steps):
            x = delayed(step)(x)
        return int(x.compute(scheduler="ray")[0])

    runs: dict[str, list[float]] = {"ray.remote": [], "tarry": []}
    cases: list[tuple[str, Callable[[], int]]] = [("ray.remote", native), ("tarry", tarry_chain)]
    for _ in range(args.repeats):
        for name, run in cases:
            watch.take()
            began = time.perf_counter()
            value = run()
            seconds = time.perf_counter() - began
            spilled = watch.take() // 2**20
            assert value == steps + 1
            runs[name].append(seconds)
            print(f"{name:10s} {seconds:6.2f} s   spilled {spilled} MiB", flush=True)
    ratio = statistics.median(runs["tarry"]) / statistics.median(runs["ray.remote"])
    print(f"chain of {steps} x {mb} MB: median tarry / ray.remote = {ratio:.2f}")

    def native_naps(folder: str) -> list[int]:
        nap = ray.remote(nap_noted)
        return list(ray.get([nap.remote(folder, i, 1.0) for i in range(8)]))

    def tarry_naps(folder: str) -> list[int]:
        (got,) = compute([delayed(nap_noted)(folder, i, 1.0) for i in range(8)], scheduler="ray")
        return list(got)

    killed: dict[str, list[float]] = {"ray.remote": [], "tarry": []}
    for _ in range(args.repeats):
        for name, naps in (("ray.remote", native_naps), ("tarry", tarry_naps)):
            seconds = with_a_killed_worker(naps)
            killed[name].append(seconds)
            print(f"{name:10s} {seconds:6.2f} s   8 x 1 s tasks, one worker killed", flush=True)
    ratio = statistics.median(killed["tarry"]) / statistics.median(killed["ray.remote"])
    print(f"a killed worker: median tarry / ray.remote = {ratio:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
