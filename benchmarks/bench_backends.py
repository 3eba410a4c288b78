"""Per-task overhead of tarry's out-of-process backends next to what they compete with.

Run ``python benchmarks/bench_backends.py`` (``--quick`` for fewer, smaller
runs). Printed side by side, each the median of several runs, measured in
one process, alternating the two contenders of a pair:

* tree reduction and chain of trivial tasks, in µs per task:
  tarry ``"processes"`` vs dask's processes scheduler; tarry ``"ray"`` vs the
  same graph written with ``@ray.remote``; tarry ``"dask"`` vs
  ``dask.delayed`` on the same ``distributed.Client``;
* 8 pure-Python tasks of about 0.1 s each: serial Python vs tarry
  ``"processes"`` on warm workers;
* data and faults on a Dask cluster (a LocalCluster of two one-thread
  worker processes), in seconds, tarry ``"dask"`` vs ``dask.delayed`` on the
  same client: a chain of large arrays made and transformed in the workers;
  a large argument made in the caller; persist then compute (native
  ``client.persist``); a run whose worker is killed mid-run (the task runs
  again elsewhere);
* persist then compute on Ray, tarry ``"ray"`` vs an ``ObjectRef`` kept by
  hand (``@ray.remote``), in seconds.

Persist is timed until the value is computed in the cluster, on both sides:
tarry's with ``timeout=`` (which makes it wait, fetching nothing), native
code with ``wait``.

Graphs are built before the clock starts (for native Ray, submitting is
building, so it is timed). Needs the ``ray`` and ``dask`` extras; a pair
whose library is missing is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import tarry
from tarry import delayed
from tarry._schedule.cpus import usable_cpus


def optional(name: str) -> Any:
    """The module ``name``, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def burn(n: int) -> int:
    """Pure-Python CPU work: holds the GIL all the time."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


#: which task, by start, kills its worker in the killed-worker case (a few
#: naps have finished on each worker by then, and are lost with it)
KILL_AT = 5
#: seconds a killed dask worker may take to come back before the bench fails
START_TIMEOUT = 120


def make_array(nbytes: int) -> Any:
    """An array of ``nbytes`` bytes, made in the worker."""
    return importlib.import_module("numpy").ones(nbytes // 8)


def step(array: Any) -> Any:
    """One step of a chain: a new array as large as the last."""
    return array + 1


def first(array: Any) -> float:
    """What comes back to the caller: one number, not the array."""
    return float(array[0])


def nap_or_die(i: int, seconds: float, folder: str) -> int:
    """Nap; the fifth task to start kills its worker process instead, once.

    Counted by start, not by ``i``: the two contenders name their tasks
    differently, and dask orders tasks of equal priority by name.
    """
    Path(folder, str(i)).touch()
    if len(list(Path(folder).iterdir())) == KILL_AT:
        with suppress(FileExistsError):
            Path(folder, "killed").touch(exist_ok=False)
            os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(seconds)
    return i


# -- graphs, the same shape for every library -----------------------------------------


def tarry_tree(leaves: int) -> Any:
    level = [delayed(inc)(i) for i in range(leaves)]
    while len(level) > 1:
        level = [delayed(add)(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tarry_chain(length: int) -> Any:
    value: Any = delayed(0)
    for _ in range(length):
        value = delayed(inc)(value)
    return value


def dask_tree(leaves: int) -> Any:
    dask = importlib.import_module("dask")
    level = [dask.delayed(inc)(i) for i in range(leaves)]
    while len(level) > 1:
        level = [dask.delayed(add)(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def dask_chain(length: int) -> Any:
    dask = importlib.import_module("dask")
    value: Any = 0
    for _ in range(length):
        value = dask.delayed(inc)(value)
    return value


def tasks_in_tree(leaves: int) -> int:
    return 2 * leaves - 1


# -- measuring ------------------------------------------------------------------------


def race(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, run alternately after one warm-up each."""
    a(), b()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


Row = tuple[str, str, int, int, float, float, str]
rows: list[Row] = []


def record(
    pair: str, graph: str, tasks: int, runs: int, ours: float, theirs: float, target: str
) -> None:
    rows.append((pair, graph, tasks, runs, ours / tasks * 1e6, theirs / tasks * 1e6, target))
    print(f"  measured {pair} {graph}", flush=True)


#: (engine, case, runs, tarry seconds, native seconds): the cases measured in seconds
second_rows: list[tuple[str, str, int, float, float]] = []


def record_seconds(case: str, runs: int, ours: float, theirs: float, engine: str = "dask") -> None:
    second_rows.append((engine, case, runs, ours, theirs))
    print(f"  measured {engine} {case}", flush=True)


def check(result: object, expected: object) -> None:
    if result != expected:
        raise AssertionError(f"wrong result {result!r}, expected {expected!r}")


def bench_processes(leaves: int, length: int, repeats: int) -> None:
    dask = optional("dask")
    if dask is None:
        print("  dask not installed: skipping tarry-processes vs dask processes")
        return
    tree, chain = tarry_tree(leaves), tarry_chain(length)
    dtree, dchain = dask_tree(leaves), dask_chain(length)
    expect_tree = sum(range(1, leaves + 1))
    ours, theirs = race(
        lambda: check(tree.compute(scheduler="processes"), expect_tree),
        lambda: check(dask.compute(dtree, scheduler="processes")[0], expect_tree),
        repeats,
    )
    record("processes | dask processes", "tree", tasks_in_tree(leaves), repeats, ours, theirs, "")
    ours, theirs = race(
        lambda: check(chain.compute(scheduler="processes"), length),
        lambda: check(dask.compute(dchain, scheduler="processes")[0], length),
        repeats,
    )
    record("processes | dask processes", "chain", length, repeats, ours, theirs, "")


def bench_ray(leaves: int, length: int, repeats: int, nbytes: int) -> None:
    ray = optional("ray")
    if ray is None:
        print("  ray not installed: skipping tarry-ray vs @ray.remote")
        return
    from tarry._schedule.ray import connect

    connect()
    remote_inc, remote_add = ray.remote(inc), ray.remote(add)

    def native_tree() -> int:
        level = [remote_inc.remote(i) for i in range(leaves)]
        while len(level) > 1:
            level = [remote_add.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        result: int = ray.get(level[0])
        return result

    def native_chain() -> int:
        value = remote_inc.remote(0)
        for _ in range(length - 1):
            value = remote_inc.remote(value)
        result: int = ray.get(value)
        return result

    tree, chain = tarry_tree(leaves), tarry_chain(length)
    expect_tree = sum(range(1, leaves + 1))
    ours, theirs = race(
        lambda: check(tree.compute(scheduler="ray"), expect_tree),
        lambda: check(native_tree(), expect_tree),
        repeats,
    )
    record("ray | @ray.remote", "tree", tasks_in_tree(leaves), repeats, ours, theirs, "<= 1.1")
    ours, theirs = race(
        lambda: check(chain.compute(scheduler="ray"), length),
        lambda: check(native_chain(), length),
        repeats,
    )
    record("ray | @ray.remote", "chain", length, repeats, ours, theirs, "<= 1.1")
    if optional("numpy") is not None:
        bench_ray_persist(ray, nbytes, repeats)
    ray.shutdown()  # its daemons would slow the dask runs down


def bench_dask(leaves: int, length: int, repeats: int) -> None:
    dask, distributed = optional("dask"), optional("distributed")
    if distributed is None:
        print("  distributed not installed: skipping tarry-dask vs dask.delayed")
        return
    workers = usable_cpus()
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        tarry.config.set(dask_client=client),
    ):
        tree, chain = tarry_tree(leaves), tarry_chain(length)
        dtree, dchain = dask_tree(leaves), dask_chain(length)
        expect_tree = sum(range(1, leaves + 1))
        ours, theirs = race(
            lambda: check(tree.compute(scheduler="dask"), expect_tree),
            lambda: check(dask.compute(dtree)[0], expect_tree),
            repeats,
        )
        record(
            "dask | dask.delayed", "tree", tasks_in_tree(leaves), repeats, ours, theirs, "<= 1.1"
        )
        ours, theirs = race(
            lambda: check(chain.compute(scheduler="dask"), length),
            lambda: check(dask.compute(dchain)[0], length),
            repeats,
        )
        record("dask | dask.delayed", "chain", length, repeats, ours, theirs, "<= 1.1")


def array_chain(lazy: Any, nbytes: int, steps: int, start: Any = None) -> Any:
    """``steps`` steps on an array made in a worker (or on ``start``), then its first number."""
    value = lazy(make_array)(nbytes) if start is None else lazy(step)(start)
    for _ in range(steps):
        value = lazy(step)(value)
    return lazy(first)(value)


def bench_dask_data(nbytes: int, steps: int, repeats: int) -> None:
    """Large arrays and a killed worker on Dask, tarry vs ``dask.delayed``, in seconds."""
    distributed = optional("distributed")
    if distributed is None or optional("numpy") is None:
        print("  distributed or numpy not installed: skipping the Dask data cases")
        return
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        tarry.config.set(dask_client=client),
    ):
        bench_chains(nbytes, steps, repeats)
        bench_persist(client, nbytes, repeats)
        bench_killed_worker(client, repeats)


def bench_chains(nbytes: int, steps: int, repeats: int) -> None:
    """The chain of arrays made in the workers, then from an argument made here."""
    import warnings

    dask = importlib.import_module("dask")
    size = f"{nbytes / 1e6:.0f} MB"
    ours, theirs = race(
        lambda: check(array_chain(delayed, nbytes, steps).compute(scheduler="dask"), steps + 1),
        lambda: check(dask.compute(array_chain(dask.delayed, nbytes, steps))[0], steps + 1),
        repeats,
    )
    record_seconds(f"chain of {steps} x {size}", repeats, ours, theirs)
    big = importlib.import_module("numpy").ones(nbytes // 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask warns of the large graph it sends
        ours, theirs = race(
            lambda: check(
                array_chain(delayed, nbytes, steps, big).compute(scheduler="dask"), steps + 2
            ),
            lambda: check(
                dask.compute(array_chain(dask.delayed, nbytes, steps, big))[0], steps + 2
            ),
            repeats,
        )
    record_seconds(f"same, from a {size} argument", repeats, ours, theirs)


#: persist's timeout in the persist cases: it makes persist wait for the cluster
WAIT = 3600.0


def bench_persist(client: Any, nbytes: int, repeats: int) -> None:
    """Persist an array, then compute from it: tarry's persist vs ``client.persist``."""
    dask = importlib.import_module("dask")
    wait = importlib.import_module("distributed").wait

    def theirs() -> Any:
        held = client.persist(dask.delayed(make_array)(nbytes))
        wait(held)
        return held

    def then_theirs(held: Any) -> None:
        check(dask.compute(dask.delayed(first)(dask.delayed(step)(held)))[0], 2.0)

    persist_pair(nbytes, repeats, "dask", theirs, then_theirs)


def persist_pair(
    nbytes: int,
    repeats: int,
    engine: str,
    theirs: Callable[[], Any],
    then_theirs: Callable[[Any], None],
) -> None:
    """Persist an array and compute from it, tarry on ``engine`` and native code, alternately."""
    persisting: tuple[list[float], list[float]] = ([], [])
    then: tuple[list[float], list[float]] = ([], [])

    def ours() -> Any:
        return tarry.persist(delayed(make_array)(nbytes), scheduler=engine, timeout=WAIT)[0]

    def then_ours(kept: Any) -> None:
        check(delayed(first)(delayed(step)(kept)).compute(scheduler=engine), 2.0)

    for run in range(repeats + 1):  # the first, a warm-up, is not counted
        for i, (persist, compute) in enumerate(((ours, then_ours), (theirs, then_theirs))):
            start = time.perf_counter()
            held = persist()
            persisted = time.perf_counter()
            compute(held)
            if run:
                persisting[i].append(persisted - start)
                then[i].append(time.perf_counter() - persisted)
            del held
    median = statistics.median
    record_seconds(f"persist {nbytes / 1e6:.0f} MB", repeats, median(persisting[0]),
                   median(persisting[1]), engine)  # fmt: skip
    record_seconds("then compute from it", repeats, median(then[0]), median(then[1]), engine)


def bench_ray_persist(ray: Any, nbytes: int, repeats: int) -> None:
    """Persist an array, then compute from it: tarry vs an ObjectRef kept by hand."""
    remote_make, remote_step, remote_first = (ray.remote(f) for f in (make_array, step, first))

    def theirs() -> Any:
        ref = remote_make.remote(nbytes)
        ray.wait([ref], fetch_local=False)
        return ref

    def then_theirs(ref: Any) -> None:
        check(ray.get(remote_first.remote(remote_step.remote(ref))), 2.0)

    persist_pair(nbytes, repeats, "ray", theirs, then_theirs)


def bench_killed_worker(client: Any, repeats: int) -> None:
    """20 naps of 0.2 s on two workers; one kills its worker once, and runs again."""
    dask = importlib.import_module("dask")
    naps, seconds = 20, 0.2

    def naps_on(lazy: Any) -> list[int]:
        folder = tempfile.mkdtemp(prefix="tarry-bench-")  # one per run: the marker is new
        return [lazy(nap_or_die)(i, seconds, folder) for i in range(naps)]

    def ours() -> None:
        check(tarry.compute(naps_on(delayed), scheduler="dask")[0], list(range(naps)))
        client.wait_for_workers(2, timeout=START_TIMEOUT)  # the nanny restarts the killed one

    def theirs() -> None:
        check(dask.compute(naps_on(dask.delayed))[0], list(range(naps)))
        client.wait_for_workers(2, timeout=START_TIMEOUT)

    mine, other = race(ours, theirs, repeats)
    record_seconds(f"{naps} naps of {seconds} s, a worker killed", repeats, mine, other)


def bench_cpu(repeats: int) -> tuple[float, float]:
    """Serial seconds and tarry-processes seconds for 8 pure-Python tasks of ~0.1 s."""
    n = 200_000
    start = time.perf_counter()
    burn(n)
    n = int(n * 0.1 / (time.perf_counter() - start))
    tasks = [delayed(burn)(n + i) for i in range(8)]  # distinct calls, no shared work

    def serial() -> None:
        for i in range(8):
            burn(n + i)

    return race(serial, lambda: tarry.compute(tasks, scheduler="processes"), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller runs")
    quick = parser.parse_args().quick
    leaves, length, repeats = (128, 128, 3) if quick else (512, 500, 5)
    print(f"{usable_cpus()} usable CPUs; tree of {tasks_in_tree(leaves)} tasks, chain of "
          f"{length}; medians of the runs counted in the table")  # fmt: skip
    # 12 steps of 200 MB as in issue 14 (two arrays live at a time per worker)
    nbytes, steps = (20_000_000, 4) if quick else (200_000_000, 12)
    bench_processes(leaves, length, repeats)
    # before Ray and dask start daemons that would share the CPUs
    serial, parallel = bench_cpu(repeats)
    # Ray's run times scatter most (its own daemons share the CPUs): more runs
    bench_ray(leaves, length, 2 * repeats - 1, nbytes)
    bench_dask(leaves, length, repeats)
    bench_dask_data(nbytes, steps, repeats)

    print()
    print(f"{'tarry backend | compared with':30} {'graph':6} {'tasks':>6} {'runs':>5} "
          f"{'tarry µs/task':>14} {'other µs/task':>14} {'ratio':>7} {'target':>7}")  # fmt: skip
    for pair, graph, tasks, runs, ours, theirs, target in rows:
        print(f"{pair:30} {graph:6} {tasks:>6} {runs:>5} {ours:>14.0f} {theirs:>14.0f} "
              f"{ours / theirs:>7.2f} {target:>7}")  # fmt: skip
    if second_rows:
        print()
        print(f"{'engine':6} {'case: tarry | native':40} {'runs':>5} {'tarry s':>8} "
              f"{'native s':>8} {'ratio':>6}")  # fmt: skip
        for engine, case, runs, ours, theirs in second_rows:
            print(f"{engine:6} {case:40} {runs:>5} {ours:>8.2f} {theirs:>8.2f} "
                  f"{ours / theirs:>6.2f}")  # fmt: skip
    print()
    print(f"8 pure-Python tasks of ~0.1 s, medians of {repeats} runs: serial {serial:.2f} s, "
          f"tarry processes {parallel:.2f} s on {usable_cpus()} CPUs: {parallel / serial:.2f}x "
          "(target < 0.6x)")  # fmt: skip


if __name__ == "__main__":
    main()
