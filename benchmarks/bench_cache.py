"""What the cache across runs costs and saves, beside ``joblib.Memory`` in the same run.

1. **A pipeline read from a file.** Ten steps over a NumPy array (1 GB by
   default) that the first step reads with ``np.load``, with tarry (sync,
   each step ``delayed(step, pure=True)``) and with ``joblib.Memory`` (each
   step ``memory.cache(step)``, called eagerly): the first run, the second,
   and the run after the same edit to the body of the sixth step (the step
   functions live in a module written to a temporary folder, edited and
   reloaded). tarry must run that step and the four after it only: the
   benchmark counts the calls and fails if not; joblib's count is shown.
   The second run is set beside the floor of any load of the final result:
   ``np.load`` of it saved as ``.npy`` (and unpickling it from a file).
   The tools take turns, each cache removed before the next: at 1 GB each
   holds 10 GB, and 5 GB more while an edited run is timed.
2. **A large literal.** The same pipeline over an array (200 MB) passed in
   as the first step's argument, so its content is hashed in every run: the
   two second runs, each including building its graph (tarry hashes the
   literal twice: for the task keys when it builds the graph, and once for
   the cache keys; joblib at every step).
3. **Many small tasks** (``inc(i)``, 100,000 by default, read by one sum):
   without a cache, the first run with one (every task a miss, its result
   written), the second (the sum loads), every ``inc`` as a target (all
   hits) and ``tarry.explain``; set beside the floor of the I/O a hit and a
   miss need: unpickling each result from its own file, and pickling each
   to a file of its own written atomically (a temporary name, then a
   rename), in the store's folder layout. On disk, then in ``/dev/shm``,
   where the disk's share (and its noise) is gone.

Every figure is a median of ``--repeats`` (the first and edited runs of
the 1 GB pipeline once each unless ``--repeats`` is given: each writes
gigabytes), on the sync scheduler: the cache's own costs, not a
scheduler's. The machine is shared and noisy.

Run: ``python benchmarks/bench_cache.py`` (about 15 minutes and 16 GB of
free disk at the default sizes; ``--quick`` for a smoke run of a few
seconds; ``--size-mb``, ``--literal-mb``, ``--tasks`` to resize).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np

import tarry

STEPS = 10
#: the step whose body is edited: one in the middle
EDITED = 5
# Each step notes its call in a file: a list in the module would be a global
# the steps read, whose value (the calls so far) would be part of their keys.
STEP_SOURCE = '''
import os

import numpy as np

LOG = os.path.join(os.path.dirname(__file__), "calls.log")


def note(i):
    with open(LOG, "a") as f:
        f.write(f"{i}\\n")


def step0(start):
    """The first step: the input, read from a file (or given as it is)."""
    note(0)
    return np.load(start) if isinstance(start, str) else start
'''
STEP_TEMPLATE = """

def step{i}(x):
    note({i})
    out = x * {factor!r}
    out += {i}
    return out
"""


def median(action: Callable[[], Any], repeats: int, fresh: Callable[[], None]) -> float:
    """Median seconds of ``action``, each after ``fresh()`` (not timed)."""
    times = []
    for _ in range(repeats):
        fresh()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def shown(seconds: float) -> str:
    """Seconds, right-aligned in 10 characters, in ms below one second."""
    return f"{seconds:8.2f} s" if seconds >= 1 else f"{seconds * 1e3:7.1f} ms"


def medians(
    actions: list[Callable[[], Any]], repeats: int, fresh: Callable[[], None]
) -> list[float]:
    """Median seconds of each of ``actions``, taking turns, each after ``fresh()``.

    Each starts with the disk's writes flushed (``os.sync``), and they swap
    places from one repeat to the next: on a shared disk, what ran before
    (removing 100,000 files, say) would slow down whatever comes first.
    """
    times: list[list[float]] = [[] for _ in actions]
    for repeat in range(repeats):
        order = list(range(len(actions)))
        for i in order[repeat % 2 :] + order[: repeat % 2]:
            fresh()
            os.sync()
            start = time.perf_counter()
            actions[i]()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]


def nothing() -> None:
    """No preparation."""


class Steps:
    """The step functions, in a module of their own that is edited and reloaded."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.path = folder / "cachebench_steps.py"
        self.edits = 0
        self.write()
        sys.path.insert(0, str(folder))
        self.module: ModuleType = importlib.import_module("cachebench_steps")

    def write(self) -> None:
        bodies = [
            STEP_TEMPLATE.format(i=i, factor=1.0001 + (i == EDITED) * self.edits * 1e-4)
            for i in range(1, STEPS)
        ]
        self.path.write_text(textwrap.dedent(STEP_SOURCE) + "".join(bodies))

    def edit(self, edits: int | None = None) -> None:
        """A new factor in the middle step's body (the n-th edit is the same every time);
        ``edit(0)``: back to the code before any edit."""
        self.edits = self.edits + 1 if edits is None else edits
        self.write()
        self.module = importlib.reload(self.module)

    def functions(self) -> list[Callable[..., Any]]:
        return [getattr(self.module, f"step{i}") for i in range(STEPS)]

    def calls(self) -> list[int]:
        """The steps run since the last call."""
        log = self.path.parent / "calls.log"
        found = [int(i) for i in log.read_text().split()] if log.exists() else []
        log.unlink(missing_ok=True)
        return found


def tarry_run(steps: Steps, start: Any, cache: str | None) -> Any:
    x = start
    for func in steps.functions():
        x = tarry.delayed(func, pure=True)(x)
    return x.compute(scheduler="sync", cache=cache)


def joblib_run(steps: Steps, start: Any, folder: str) -> Any:
    memory = joblib.Memory(folder, verbose=0)
    x = start
    for func in steps.functions():
        x = memory.cache(func)(x)
    return x


def made_since(folder: str, mark: float) -> None:
    """Remove the files written into ``folder`` since ``mark``: back to the cache before."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and path.stat().st_mtime > mark:
            path.unlink()


class Side:
    """One tool's cache of the pipeline: emptied before a first run, filled before a second."""

    def __init__(self, run: Callable[[Steps, Any, str], Any], steps: Steps, folder: Path) -> None:
        self.run, self.steps, self.where = run, steps, str(folder)
        #: the pipeline's input: a file name, or an array
        self.start: Any = None

    def once(self) -> Any:
        return self.run(self.steps, self.start, self.where)

    def empty(self) -> None:
        shutil.rmtree(self.where, ignore_errors=True)

    def warm(self) -> None:
        if not Path(self.where).exists():
            self.once()

    def measure(self, start: Any, repeats: int, heavy: int) -> dict[str, Any]:
        """The first run, from an empty cache, and the second."""
        self.start = start
        return {
            "first": median(self.once, heavy, self.empty),
            "second": median(self.once, repeats, self.warm),
        }


def edited(steps: Steps, side: Side, heavy: int) -> tuple[float, list[int]]:
    """The median run after an edit to a middle step, and the steps the last one ran.

    Each repeat makes a new edit, and then removes what it stored
    (gigabytes), so the next starts from the cache of the unedited pipeline
    again. The tools take turns from the same code: their edits are the same.
    """
    times = []
    ran: list[int] = []
    for _ in range(heavy):
        steps.edit()
        mark = time.time()
        steps.calls()
        began = time.perf_counter()
        side.once()
        times.append(time.perf_counter() - began)
        ran = steps.calls()
        made_since(side.where, mark)
    return statistics.median(times), ran


def pipeline(megabytes: int, literal_mb: int, repeats: int, heavy: int, folder: Path) -> None:
    steps = Steps(folder / "code")
    data = np.random.default_rng(0).random(megabytes * 2**20 // 8)
    source = str(folder / "input.npy")
    np.save(source, data)
    del data
    sides = {
        "tarry": Side(tarry_run, steps, folder / "tarry"),
        "joblib": Side(joblib_run, steps, folder / "joblib"),
    }
    plain = median(lambda: tarry_run(steps, source, None), repeats, nothing)
    floors = load_floors(tarry_run(steps, source, None), folder, repeats)
    found: dict[str, dict[str, Any]] = {}
    for name, side in sides.items():  # one after the other: each cache holds gigabytes
        steps.edit(0)
        found[name] = side.measure(source, repeats, heavy)
        found[name]["edited"], found[name]["ran"] = edited(steps, side, heavy)
        side.empty()
    ran = found["tarry"]["ran"]
    if ran != list(range(EDITED, STEPS)):
        raise AssertionError(f"after an edit to step {EDITED}, tarry ran steps {ran}")
    print(f"{STEPS}-step pipeline over a {megabytes:,} MB array read from a file, sync:")
    print(
        f"  no cache: {shown(plain)};  " + ";  ".join(f"{k} {shown(v)}" for k, v in floors.items())
    )
    print(f"  {'':38}{'tarry':>10}{'joblib':>10}")
    for label, name in [("first run", "first"), ("second run", "second")]:
        print(f"  {label:<38}" + "".join(shown(found[t][name]) for t in sides))
    for floor_name, floor in (("np.load", floors["np.load"]),
                              ("mapping", floors["np.load(mmap_mode='c')"])):  # fmt: skip
        row = [found[tool]["second"] / floor for tool in sides]
        label = f"second run / {floor_name} of the result"
        print(f"  {label:<38}" + "".join(f"{r:9.2f}×" for r in row))
    label = f"after an edit to step {EDITED}"
    print(f"  {label:<38}" + "".join(shown(found[t]["edited"]) for t in sides))
    counts = "".join(f"{len(found[t]['ran']):>10}" for t in sides)
    print(f"  {'  steps it ran (of ' + str(STEPS) + ')':<38}{counts}")
    steps.edit(0)
    literal(steps, sides, literal_mb, repeats)


def load_floors(final: Any, folder: Path, repeats: int) -> dict[str, float]:
    """What any load of the final result costs: np.load, unpickling it, and mapping it
    copy-on-write (as a hit of a local store does), from a file."""
    np.save(folder / "final.npy", final)
    with open(folder / "final.pickle", "wb") as f:
        pickle.dump(final, f, protocol=5)

    def unpickled() -> Any:
        with open(folder / "final.pickle", "rb") as f:
            return pickle.load(f)

    def mapped() -> Any:  # what tarry's store does with a local entry's array
        return np.load(folder / "final.npy", mmap_mode="c")

    return {
        "np.load": median(lambda: np.load(folder / "final.npy"), repeats, nothing),
        "unpickling": median(unpickled, repeats, nothing),
        "np.load(mmap_mode='c')": median(mapped, repeats, nothing),
    }


def literal(steps: Steps, sides: dict[str, Side], megabytes: int, repeats: int) -> None:
    data = np.random.default_rng(1).random(megabytes * 2**20 // 8)
    second = {}
    for name, side in sides.items():
        side.start = data
        side.empty()
        second[name] = median(side.once, repeats, side.warm)
        side.empty()
    print(f"  the same over a {megabytes:,} MB array passed as a literal, second run:")
    print(f"  {'':38}" + "".join(shown(second[tool]) for tool in sides))
    print(f"  {'  tarry / joblib':<38}{second['tarry'] / second['joblib']:9.2f}×")


def inc(x: int) -> int:
    return x + 1


def total(values: list[int]) -> int:
    return sum(values)


def small_tasks(n: int, repeats: int, folder: Path, where_label: str) -> None:
    lazy_inc = tarry.delayed(inc, pure=True)
    incs = [lazy_inc(i) for i in range(n)]
    graph = tarry.delayed(total, pure=True)(incs)
    where = str(folder / "small")

    def warm() -> None:
        if not Path(where).exists():
            tarry.compute(graph, incs, scheduler="sync", cache=where)

    files = folder / "plain-files"

    def write_files() -> None:
        write_each(files, n)

    def first_run() -> None:
        graph.compute(scheduler="sync", cache=where)

    def empty() -> None:
        shutil.rmtree(where, ignore_errors=True)
        shutil.rmtree(files, ignore_errors=True)

    tarry.compute(lazy_inc(-1), scheduler="sync", cache=str(folder / "warm-up"))  # imports
    plain = median(lambda: graph.compute(scheduler="sync"), repeats, nothing)
    # a miss and its floor side by side in each repeat: the disk's speed varies by the minute
    first, write = medians([first_run, write_files], repeats, empty)
    second = median(lambda: graph.compute(scheduler="sync", cache=where), repeats, warm)
    explain = median(lambda: tarry.explain(graph, cache=where), repeats, warm)
    # the hits, the same without a cache, and the floor of their reads, in turns
    hits, plain_all, read = medians(
        [
            lambda: tarry.compute(*incs, scheduler="sync", cache=where),
            lambda: tarry.compute(*incs, scheduler="sync"),
            lambda: read_each(files, n),
        ],
        repeats,
        warm,
    )
    per = 1e6 / n
    miss, hit = (first - plain) * per, (hits - plain_all) * per
    print(f"{n:,} small pure tasks (inc(i), then a sum), sync, cache {where_label}:")
    rows = [
        ("no cache", plain),
        ("first run, all misses", first),
        ("second run (the sum loads)", second),
        (f"{n:,} incs as targets, all hits", hits),
        ("  the same without a cache", plain_all),
        ("explain(cache=)", explain),
        ("pickle + atomic write, a file each", write),
        ("open + read + unpickle, a file each", read),
    ]
    for label, seconds in rows:
        print(f"  {label:<38}{seconds * 1e3:9.1f} ms {seconds * per:8.1f} µs/task")
    print(f"  a miss costs {miss:.1f} µs: {miss / (write * per):.2f}× writing its result alone")
    print(f"  a hit costs {hit:.1f} µs: {hit - read * per:.1f} µs on top of reading its result")


def _names(n: int) -> Iterator[tuple[int, str]]:
    for i in range(n):
        yield i, hashlib.blake2b(str(i).encode(), digest_size=20).hexdigest()


def write_each(folder: Path, n: int) -> None:
    """The floor of a miss's write: each result pickled to a file of its own, atomically."""
    made: set[str] = set()
    for i, name in _names(n):
        sub = os.path.join(folder, name[:2])
        if sub not in made:
            os.makedirs(sub, exist_ok=True)
            made.add(sub)
        final = os.path.join(sub, name)
        temp = f"{final}.tmp"
        with open(temp, "wb") as f:
            f.write(pickle.dumps(i + 1, protocol=5))
        os.replace(temp, final)


def read_each(folder: Path, n: int) -> None:
    """The floor of a hit's read: each result unpickled from its own file."""
    for _, name in _names(n):
        with open(os.path.join(folder, name[:2], name), "rb") as f:
            pickle.loads(f.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, once")
    parser.add_argument("--size-mb", type=int, default=1000, help="array read from a file")
    parser.add_argument("--literal-mb", type=int, default=200, help="array passed as a literal")
    parser.add_argument("--tasks", type=int, default=100_000, help="small tasks")
    parser.add_argument("--repeats", type=int, default=None, help="runs per median (3)")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.literal_mb, args.tasks = 16, 16, 2_000
    repeats = args.repeats or (1 if args.quick else 3)
    heavy = args.repeats or (1 if args.quick or args.size_mb >= 500 else repeats)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joblib's notes about the edited function
        sys.dont_write_bytecode = True  # an edit within a second is read
        small_tasks(args.tasks, repeats, Path(folder), f"on disk ({folder})")
        if os.path.isdir("/dev/shm"):  # the same in memory: tarry's costs, less the disk's
            with tempfile.TemporaryDirectory(dir="/dev/shm") as memory:
                small_tasks(args.tasks, repeats, Path(memory), "in memory (/dev/shm)")
        pipeline(args.size_mb, args.literal_mb, repeats, heavy, Path(folder))


if __name__ == "__main__":
    main()
