"""The seed tutorial's first cells on tarry: sequential, then lazy and parallel.

Run: ``python examples/first_cells.py`` (``--sleep 0.2`` for a quicker look).
"""

from __future__ import annotations

import argparse
import time

from tarry import delayed

SLEEP = 1.0


def inc(x: int) -> int:
    time.sleep(SLEEP)
    return x + 1


def add(x: int, y: int) -> int:
    time.sleep(SLEEP)
    return x + y


def main() -> None:
    global SLEEP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each task sleeps")
    SLEEP = parser.parse_args().sleep

    start = time.perf_counter()
    z = add(inc(1), inc(2))
    print(f"sequential: z = {z} in {time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    lazy = delayed(add)(delayed(inc)(1), delayed(inc)(2))
    print(f"building the graph {lazy!r} took {(time.perf_counter() - start) * 1e6:.0f} µs")
    start = time.perf_counter()
    print(f"tarry:      z = {lazy.compute()} in {time.perf_counter() - start:.2f} s")

    data = [1, 2, 3, 4, 5, 6, 7, 8]
    start = time.perf_counter()
    total = delayed(sum)([delayed(inc)(x) for x in data]).compute()
    print(f"for-loop of 8 incs: total = {total} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
