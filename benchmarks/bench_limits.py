"""At the physical limit? tarry vs dask (and joblib) on the cases of issue 7.

1. The tutorial's sleep exercises with default settings, against their
   critical path (inc/add: 2 sleeps; the loops: 1 sleep); tarry also in
   portable mode (``TARRY_PORTABLE=1``: as on macOS and Windows).
2. Tiny tasks: 100,000 calls (trivial, and of a few µs) as map + reduce and
   as a chain, against a plain Python loop making the same calls and against
   the least any lazy graph costs in CPython (one tuple per call).
3. Memory: 20 chunks of 50 MB reduced pairwise (a balanced tree, and a fold)
   on sync, threads and processes; peak memory above the baseline, in chunks,
   counting worker processes and the shared memory between them.
4. Scale: a 1,000,000-task map + tree reduction, build + compute time and
   peak memory.

Run: ``python benchmarks/bench_limits.py [--quick] [--only NAME ...]``. Each case runs in
a fresh subprocess so peak-memory figures do not leak between cases.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tarry.tutorial import toy_functions


def _lib(name: str) -> Any:
    """tarry, dask or joblib, untyped: called the way a user would."""
    return importlib.import_module(name)


# -- 1. sleep exercises -------------------------------------------------------------


def sleep_cases(lib: str, seconds: float) -> dict[str, float]:
    delayed = _lib(lib).delayed
    inc, add, double = toy_functions(seconds)

    graphs: dict[str, Callable[[], Any]] = {
        "inc/add": lambda: delayed(add)(delayed(inc)(1), delayed(inc)(2)),
        "loop of 8": lambda: delayed(sum)([delayed(inc)(x) for x in range(1, 9)]),
        "control flow": lambda: delayed(sum)(
            [delayed(double)(x) if x % 2 == 0 else delayed(inc)(x) for x in range(1, 11)]
        ),
    }
    out = {}
    for name, build in graphs.items():
        obj = build()
        start = time.perf_counter()
        obj.compute()
        out[name] = time.perf_counter() - start
    return out


# -- 2. tiny tasks ------------------------------------------------------------------


def trivial(x: int) -> int:
    return x + 1


def few_us(x: int) -> int:
    """A task of a few microseconds of pure-Python work (the plain chain loop shows how long)."""
    total = 0
    for i in range(100):
        total += i
    return x + 1 + total - 4950


def combine(x: int, y: int) -> int:
    return x + y


TASKS = {"trivial": trivial, "few µs": few_us}


def reduce_pairwise(level: list[Any], pair: Callable[[Any, Any], Any]) -> Any:
    """Reduce ``level`` by pairing neighbours, level by level: a balanced tree."""
    while len(level) > 1:
        paired = [pair(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def tiny_plain(n: int, shape: str, kind: str) -> float:
    """A plain loop making the same calls as the lazy graph."""
    func = TASKS[kind]
    start = time.perf_counter()
    if shape == "map+reduce":
        reduce_pairwise([func(i) for i in range(n)], combine)
    else:
        value = 0
        for _ in range(n):
            value = func(value)
    return time.perf_counter() - start


def tiny_floor(n: int, shape: str, kind: str) -> float:
    """The least any lazy graph can cost in CPython: one tuple per call, noted in
    the order built, then evaluated in that order by the simplest loop (no
    keys, no memory release, no errors, no other thread)."""
    func = TASKS[kind]
    start = time.perf_counter()
    order: list[tuple[Any, ...]] = []
    note = order.append
    node: tuple[Any, ...]
    # inline rather than reduce_pairwise: a call per node would raise the floor
    if shape == "map+reduce":
        level: list[tuple[Any, ...]] = []
        for i in range(n):
            node = (func, i)
            note(node)
            level.append(node)
        while len(level) > 1:
            paired = []
            for a, b in zip(level[::2], level[1::2], strict=False):
                node = (combine, a, b)
                note(node)
                paired.append(node)
            level = paired + ([level[-1]] if len(level) % 2 else [])
    else:
        node = (func, 0)
        note(node)
        for _ in range(n - 1):
            node = (func, node)
            note(node)
    values: dict[int, Any] = {}
    for step in order:
        args = [values[id(a)] if isinstance(a, tuple) else a for a in step[1:]]
        values[id(step)] = step[0](*args)
    return time.perf_counter() - start


def tiny_lazy(lib: str, n: int, shape: str, scheduler: str, kind: str = "trivial") -> float:
    """Build and compute the graph: what a user waits for."""
    module = _lib(lib)
    delayed, func = module.delayed, TASKS[kind]
    start = time.perf_counter()
    if shape == "map+reduce":
        lazy_func = delayed(func)
        obj = reduce_pairwise([lazy_func(i) for i in range(n)], delayed(combine))
    else:
        lazy_func = delayed(func)
        obj = lazy_func(0)
        for _ in range(n - 1):
            obj = lazy_func(obj)
    module.compute(obj, scheduler=scheduler)
    return time.perf_counter() - start


def tiny_joblib(n: int) -> float:
    joblib = _lib("joblib")
    start = time.perf_counter()
    joblib.Parallel(n_jobs=2, backend="threading", batch_size="auto")(
        joblib.delayed(trivial)(i) for i in range(n)
    )
    return time.perf_counter() - start


# -- 3. memory ----------------------------------------------------------------------


def _rss_mb() -> float:
    """Memory of this process, its children (process pool workers) and shared memory.

    Counts each process's private resident memory plus the machine's shared
    memory (``Shmem`` in /proc/meminfo): the files through which large
    results travel between processes, once each, mapped or not.
    """
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            info = proc.memory_info()
        except psutil.Error:  # it exited meanwhile
            continue
        total += info.rss - info.shared
    with open("/proc/meminfo") as f:
        shmem_kb = next(int(line.split()[1]) for line in f if line.startswith("Shmem:"))
    return total / 2**20 + shmem_kb / 1024


class _PeakSampler:
    """Samples RSS every millisecond on a thread; peak above the start value."""

    def __init__(self) -> None:
        import threading

        self.base = _rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


CHUNK_MB = 50


def load_chunk(i: int) -> bytearray:
    chunk = bytearray(CHUNK_MB * 2**20)
    chunk[::4096] = bytes([i % 256]) * len(chunk[::4096])  # touch every page
    time.sleep(0.02)  # a read from disk takes a while
    return chunk


def merge_chunks(a: bytearray, b: bytearray) -> bytearray:
    out = bytearray(a)  # a new chunk, as a real reduction would make
    out[0] = (a[0] + b[0]) % 256
    return out


def memory_case(lib: str, scheduler: str, chunks: int, shape: str) -> dict[str, float]:
    """Peak memory above baseline, in chunks, of reducing ``chunks`` loads.

    ``shape`` "tree" merges pairwise level by level (a balanced tree must
    keep one partial result per level: log2(chunks) of them); "fold" merges
    each new chunk into the running result.
    """
    module = _lib(lib)
    delayed = module.delayed
    loads = [delayed(load_chunk)(i) for i in range(chunks)]
    if shape == "fold":
        merged = loads[0]
        for chunk in loads[1:]:
            merged = delayed(merge_chunks)(merged, chunk)
    else:
        merged = reduce_pairwise(loads, delayed(merge_chunks))
    obj = delayed(len)(merged)
    if scheduler == "processes":  # warm the pool: worker start-up is not the graph's memory
        module.compute(delayed(len)([1]), scheduler=scheduler, num_workers=2)
    with _PeakSampler() as sampler:
        module.compute(obj, scheduler=scheduler, num_workers=2)
    return {"peak_chunks": (sampler.peak - sampler.base) / CHUNK_MB}


# -- 4. scale -----------------------------------------------------------------------


def _own_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def scale_case(n_tasks: int) -> dict[str, float]:
    tarry = _lib("tarry")
    base = _own_rss_mb()  # compared with ru_maxrss below: this process's RSS
    start = time.perf_counter()
    lazy_trivial = tarry.delayed(trivial)
    top = reduce_pairwise([lazy_trivial(i) for i in range(n_tasks // 2)], tarry.delayed(combine))
    built = time.perf_counter()
    tarry.compute(top, scheduler="threads")
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"build_s": built - start, "compute_s": done - built, "total_s": done - start,
            "peak_mb_above_start": peak - base}  # fmt: skip


# -- 5. the tutorial's groupby ----------------------------------------------------------


def groupby_case(folder: str, repeats: int) -> dict[str, float]:
    """Sequential pandas vs tarry threads vs warm tarry processes, medians."""
    tarry = _lib("tarry")
    from tarry.tutorial import exercises, flight_files, prepare_flights

    prepare_flights(folder, progress=False)
    exercise = exercises(0.0, flight_files(folder))[-1]
    tarry.compute(exercise.lazy(), scheduler="processes")  # warm: workers import pandas
    out = {"sequential": _median(lambda: _timed(exercise.sequential), repeats)}
    cpu, start = time.process_time(), time.perf_counter()
    exercise.sequential()
    # pandas parses on several threads itself: the cores it already uses
    # bound any speed-up from running files side by side
    out["cores_used"] = (time.process_time() - cpu) / (time.perf_counter() - start)
    for scheduler in ("threads", "processes"):

        def run(scheduler: str = scheduler) -> float:
            return _timed(lambda: tarry.compute(exercise.lazy(), scheduler=scheduler))

        out[scheduler] = _median(run, repeats)
    return out


def _timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# -- driver -------------------------------------------------------------------------


def _in_subprocess(call: str, env: dict[str, str] | None = None) -> Any:
    """Run ``call`` (an expression in this module) in a fresh interpreter; its JSON result.

    ``env``: variables added to this process's environment.
    """
    code = f"import json, sys; sys.path.insert(0, {sys.path[0]!r}); import bench_limits as b; "
    code += f"print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(call: Callable[[], float], repeats: int) -> float:
    return statistics.median(call() for _ in range(repeats))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter sleeps, smaller sizes")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["sleep", "tiny", "memory", "scale", "groupby"],
        help="run only these cases (default: all)",
    )
    args = parser.parse_args(argv)
    cases = set(args.only or ["sleep", "tiny", "memory", "scale", "groupby"])
    seconds = 0.2 if args.quick else 1.0

    if "sleep" in cases:
        print(f"## 1. tutorial sleep exercises, default settings, sleep = {seconds} s")
        print("| exercise | critical path | tarry | tarry, portable mode | dask "
              "| tarry / critical path | portable / critical path |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        mine = _in_subprocess(f"b.sleep_cases('tarry', {seconds})", {"TARRY_PORTABLE": "0"})
        portable = _in_subprocess(f"b.sleep_cases('tarry', {seconds})", {"TARRY_PORTABLE": "1"})
        theirs = _in_subprocess(f"b.sleep_cases('dask', {seconds})")
        for name, value in mine.items():
            path = (2 if name == "inc/add" else 1) * seconds
            other = portable[name]
            print(f"| {name} | {path:.1f} s | {value:.2f} s | {other:.2f} s | {theirs[name]:.2f} s "
                  f"| {value / path:.2f} | {other / path:.2f} |")  # fmt: skip

    if "tiny" in cases:
        n = 10_000 if args.quick else 100_000
        repeats = 3
        print(f"\n## 2. {n:,} tiny tasks vs a plain loop making the same calls, build + "
              f"compute (medians of {repeats}); map+reduce is {2 * n - 1:,} calls")  # fmt: skip
        print("| shape | task | plain loop | lazy floor | tarry sync | tarry threads "
              "| tarry processes | dask threads | threads / loop | threads / floor |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        if not args.quick:
            tiny_lazy("tarry", 1000, "map+reduce", "processes")  # start the pool
        for kind in TASKS:
            for shape in ("map+reduce", "chain"):
                plain = _median(partial(tiny_plain, n, shape, kind), repeats)
                floor = _median(partial(tiny_floor, n, shape, kind), repeats)
                ours = {
                    scheduler: _median(
                        partial(tiny_lazy, "tarry", n, shape, scheduler, kind), repeats
                    )
                    for scheduler in ("sync", "threads", "processes")
                }
                dn = min(n, 10_000 if shape == "map+reduce" else 2_000)  # dask's chain: quadratic
                dask = _median(partial(tiny_lazy, "dask", dn, shape, "threads", kind), 1) * n / dn
                print(f"| {shape} | {kind} | {plain * 1e3:.0f} ms | {floor * 1e3:.0f} ms | "
                      f"{ours['sync'] * 1e3:.0f} ms | {ours['threads'] * 1e3:.0f} ms | "
                      f"{ours['processes'] * 1e3:.0f} ms | {dask * 1e3:.0f} ms* | "
                      f"{ours['threads'] / plain:.1f}x | "
                      f"{ours['threads'] / floor:.1f}x |")  # fmt: skip
        print(f"joblib threading, {n:,} flat trivial calls: {tiny_joblib(n) * 1e3:.0f} ms")
        print("(* dask measured at 10,000 (map+reduce) or 2,000 (chain, quadratic) tasks and "
              "scaled linearly: a lower bound. Lazy floor: one tuple per call, evaluated in "
              "build order by the simplest loop: what any lazy graph costs at least in "
              "CPython)")  # fmt: skip

    if "memory" in cases:
        chunks = 8 if args.quick else 20
        print(f"\n## 3. {chunks} chunks of {CHUNK_MB} MB reduced pairwise, 2 workers: peak "
              "above baseline, in chunks, highest of 3 runs (target: workers + 2 = 4)")  # fmt: skip
        print("| shape | scheduler | tarry | dask |")
        print("|---|---|---|---|")
        for shape in ("tree", "fold"):
            for scheduler in ("sync", "threads", "processes"):
                call = f"b.memory_case('{{}}', '{scheduler}', {chunks}, '{shape}')"
                # the highest of 3 runs: the sampler can miss a short peak
                # (a copy holding the GIL), never invent one
                mine = max(_in_subprocess(call.format("tarry"))["peak_chunks"] for _ in range(3))
                theirs = max(_in_subprocess(call.format("dask"))["peak_chunks"] for _ in range(3))
                print(f"| {shape} | {scheduler} | {mine:.1f} | {theirs:.1f} |")

    if "scale" in cases:
        n = 100_000 if args.quick else 1_000_000
        result = _in_subprocess(f"b.scale_case({n})")
        print(f"\n## 4. {n:,}-task map + tree reduction on threads: build "
              f"{result['build_s']:.1f} s + compute {result['compute_s']:.1f} s = "
              f"{result['total_s']:.1f} s (target < 10 s); peak memory "
              f"{result['peak_mb_above_start']:.0f} MB above start "
              "(target < 1,500 MB)")  # fmt: skip

    if "groupby" in cases:
        folder = os.path.join("data", "nycflights")
        result = _in_subprocess(f"b.groupby_case({folder!r}, {1 if args.quick else 5})")
        seq = result["sequential"]
        print(f"\n## 5. the tutorial's groupby over the 10 flight files ({folder}), medians: "
              f"sequential pandas {seq:.2f} s, tarry threads {result['threads']:.2f} s "
              f"({seq / result['threads']:.2f}x), tarry processes (warm) "
              f"{result['processes']:.2f} s ({seq / result['processes']:.2f}x); sequential "
              f"pandas already keeps {result['cores_used']:.2f} cores busy, so "
              f"{os.cpu_count()} cores allow at most "
              f"{len(os.sched_getaffinity(0)) / result['cores_used']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
