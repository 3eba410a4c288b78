"""How much the caller grows when it persists a large array on a cluster and computes from it.

Run ``python benchmarks/bench_persist_memory.py`` (``--quick``: 20 MB instead
of 200 MB). For ``"dask"`` (a LocalCluster of two one-thread worker
processes) and ``"ray"`` (a local cluster): this process's resident memory
before ``tarry.persist`` of an array made in a worker, and after a compute
that reads it. A persist that keeps the result in the cluster grows the
caller by next to nothing; one that brought it back grew it by the array's
size (and Ray's by twice that, there and back). Needs the ``ray`` and
``dask`` extras; an engine that is missing is skipped.
"""

from __future__ import annotations

import argparse
import os

import psutil

# the workers unpickle bench_backends' functions: they must find this folder too
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")]
)

from bench_backends import first, make_array, optional, step

import tarry
from tarry import delayed


def grown(engine: str, nbytes: int) -> float:
    """MB this process grew by, persisting an array of ``nbytes`` on ``engine`` and reading it."""
    me = psutil.Process()
    before = me.memory_info().rss
    (kept,) = tarry.persist(delayed(make_array)(nbytes), scheduler=engine, timeout=3600)
    assert delayed(first)(delayed(step)(kept)).compute(scheduler=engine) == 2.0
    return (me.memory_info().rss - before) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB instead of 200 MB")
    nbytes = 20_000_000 if parser.parse_args().quick else 200_000_000
    print(f"persist then compute from a {nbytes / 1e6:.0f} MB array: growth of this process")
    distributed = optional("distributed")
    if distributed is not None:
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
            tarry.config.set(dask_client=client),
        ):
            print(f"  dask: {grown('dask', nbytes):.0f} MB")
    if optional("ray") is not None:
        from tarry._schedule.ray import connect

        ray = connect()
        try:
            print(f"  ray:  {grown('ray', nbytes):.0f} MB")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
