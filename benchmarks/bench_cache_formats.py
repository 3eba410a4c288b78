"""What a cache entry of a large NumPy array costs to write and to load, per layout.

And what listing a store costs, for eviction and ``tarry cache ls``.

Run ``python benchmarks/bench_cache_formats.py`` (``--mb 100`` for a quick
look; default 1000 MB). On a local store, with the file in the page cache
(it was just written), median of ``--repeat`` runs:

* **write**: ``Store.save`` with the array's buffer out of band (the
  default: written after the pickle stream, 64-byte aligned) and in band
  (inside the stream, as before format 2);
* **load**: ``Store.load`` mapped (the default), read into memory (what
  Windows, ``TARRY_PORTABLE=1`` and remote stores do), and mapped then read
  once in full (``arr.sum()``: what a task reading the whole array pays);
* **crc**: a CRC-32 over the mapped buffer, what checking buffers on load
  would add (formats.py explains why it is not done);
* **threshold**: the load of an array of ``INBAND_BELOW`` bytes (64 KiB),
  and of four times that, mapped and kept in the stream (where its CRC
  covers it);
* **listing**: with ``--entries N`` (default 20,000) small entries, the
  listing an eviction makes (nothing to evict), and ``tarry cache ls``'s
  reading of every header.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable

import numpy as np

from tarry import _platform
from tarry._cache import formats
from tarry._cache.store import Store
from tarry._cache.tidy import entries, evict

KEY = "be" + "0" * 38


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1000, help="array size in MB (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--entries", type=int, default=20_000, help="entries listed")
    parser.add_argument(
        "--frame-rows", type=int, default=1_000_000, help="rows of the pandas frame (default 1e6)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache-formats-") as folder:
        rows = measure(Store(folder), args.mb, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-cache-formats-") as folder:
        rows += listing(Store(folder), args.entries, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-cache-formats-") as folder:
        rows += frames(Store(folder), args.frame_rows, args.repeat)
    print(f"{args.mb} MB float64 array, local store, median of {args.repeat}")
    print("| | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.6f} |")


def measure(store: Store, mb: int, repeat: int) -> list[tuple[str, float]]:
    """The figures, as (what, seconds)."""
    array = np.random.default_rng(0).random(mb * 10**6 // 8)
    rows: list[tuple[str, float]] = []

    real_threshold = formats.INBAND_BELOW
    formats.INBAND_BELOW = 2**62  # type: ignore[misc]  # every buffer in the stream
    rows.append(("write, in band", median_seconds(lambda: store.save(KEY, array, "f", {}),
                                                  repeat)))  # fmt: skip
    formats.INBAND_BELOW = real_threshold  # type: ignore[misc]
    rows.append(("write, out of band (default)",
                 median_seconds(lambda: store.save(KEY, array, "f", {}), repeat)))  # fmt: skip

    def load() -> np.ndarray:
        loaded = store.load(KEY)
        assert loaded is not None
        value: np.ndarray = loaded.value
        return value

    load()  # warm: the page cache holds the file
    rows.append(("load, mapped (default)", median_seconds(load, repeat)))
    rows.append(("load, mapped, then read in full", median_seconds(lambda: load().sum(),
                                                                  repeat)))  # fmt: skip
    real_maps = _platform.maps_removable_files
    _platform.maps_removable_files = lambda: False  # read into memory
    rows.append(("load, read into memory", median_seconds(load, repeat)))
    _platform.maps_removable_files = real_maps
    mapped = load()
    rows.append(("crc32 over the mapped buffer", median_seconds(
        lambda: zlib.crc32(mapped.data), repeat)))  # fmt: skip
    return rows + threshold(store, repeat)


def threshold(store: Store, repeat: int) -> list[tuple[str, float]]:
    """Loads of arrays of formats.INBAND_BELOW bytes and four times that, mapped and in the stream.

    What the threshold weighs: below it, a buffer is read with the stream
    and checked by its CRC; at and above it, it is mapped and not checked.
    """
    real = formats.INBAND_BELOW
    rows = []
    for nbytes in (real, 4 * real):
        small = np.ones(nbytes // 8)
        for name, below in (("mapped", real), ("in the stream", 2**62)):
            formats.INBAND_BELOW = below  # type: ignore[misc]
            store.save(KEY, small, "f", {})
            seconds = median_seconds(lambda: [store.load(KEY) for _ in range(1000)], repeat)
            rows.append((f"load of a {nbytes // 1024} KiB array, {name}, per load",
                         seconds / 1000))  # fmt: skip
    formats.INBAND_BELOW = real  # type: ignore[misc]
    return rows


def frames(store: Store, rows: int, repeat: int) -> list[tuple[str, float]]:
    """A pandas frame (an int, a float and a string column) pickled (the default) and as Parquet.

    What made pickle the default for pandas objects (see :mod:`tarry._cache.formats`).
    """
    import pandas as pd

    frame = pd.DataFrame({"a": np.arange(rows), "b": np.linspace(0, 1, rows), "c": ["x"] * rows})
    found = []
    for fmt in ("auto", "parquet"):
        key = f"{KEY[:-1]}{'p' if fmt == 'parquet' else 'a'}"
        write = median_seconds(lambda: store.save(key, frame, "f", {}, fmt=fmt), repeat)  # noqa: B023
        store.load(key)  # warm: the page cache holds the file
        load = median_seconds(lambda: store.load(key), repeat)  # noqa: B023
        entry = store.load(key)
        assert entry is not None
        name = f"{rows:,}-row frame, {'pickled (default)' if fmt == 'auto' else 'as Parquet'}"
        found += [(f"{name}: write", write), (f"{name}: load", load),
                  (f"{name}: entry size in MB (not seconds)", entry.nbytes / 1e6)]  # fmt: skip
    return found


def listing(store: Store, count: int, repeat: int) -> list[tuple[str, float]]:
    """What eviction's listing and ``tarry cache ls``'s headers cost for ``count`` entries."""
    for i in range(count):
        store.save(hashlib.blake2b(str(i).encode(), digest_size=20).hexdigest(), i, "inc", {})
    return [
        (f"evict's listing of {count:,} entries", median_seconds(
            lambda: evict(store.files, 2**62), repeat)),
        (f"tarry cache ls's headers of {count:,} entries", median_seconds(
            lambda: entries(store.files), repeat)),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
