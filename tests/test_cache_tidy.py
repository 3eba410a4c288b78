"""Keeping a cache tidy: sizes and durations, LRU eviction after a compute, concurrent readers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import tarry
from tarry import delayed
from tarry._cache import tidy
from tarry._cache.store import Store
from tarry._cache.tidy import clear, entries, evict, parse_duration, parse_size

SCHEDULERS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
    pytest.param("processes", id="processes", marks=pytest.mark.processes),
]
BLOB = 10_000  # bytes of each value below: an entry is a little more


def key(n: int) -> str:
    return f"{n:02d}" + "e" * 38


def entry(root: Path, n: int) -> Path:
    return root / "entries" / key(n)[:2] / key(n)


def filled(root: Path, count: int) -> Store:
    """A store with ``count`` entries of about BLOB bytes, entry n last used at time n."""
    store = Store(str(root))
    for n in range(count):
        store.save(key(n), bytes([n]) * BLOB, f"f{n % 2}", {})
        os.utime(entry(root, n), (1_000 + n, 1_000 + n))
    return store


@pytest.mark.parametrize(
    ("text", "size"),
    [("500 MB", 500 * 10**6), ("2GiB", 2 * 2**30), ("10gb", 10 * 10**9), ("1.5 kB", 1500),
     ("123", 123), (0, 0), (4096, 4096)],
)  # fmt: skip
def test_sizes_are_bytes_or_numbers_with_units(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "5 XB", "-1 GB", -1, 1.5, True])
def test_a_bad_size_says_what_is_accepted(bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_size must be a number of bytes or a size such as"):
        parse_size(bad)
    with pytest.raises(ValueError, match=r"cache_max_size must be"):
        tarry.config.set(cache_max_size=bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), ("90 s", 90),
                          ("2w", 14 * 86400), ("0.5h", 1800)],
)  # fmt: skip
def test_durations_are_numbers_with_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "7", "7y", "d", "-1d"])
def test_a_bad_duration_says_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="a duration must be a number and a unit, such as 7d"):
        parse_duration(bad)


def test_eviction_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    store = filled(tmp_path, 6)
    os.utime(entry(tmp_path, 0), (2_000, 2_000))  # the oldest is used again
    size = entry(tmp_path, 1).stat().st_size
    done = evict(store.files, max_size=3 * size)
    assert (done.removed, done.left) == (3, 3)
    assert [n for n in range(6) if entry(tmp_path, n).exists()] == [0, 4, 5]


def test_a_load_marks_its_entry_used_so_it_is_evicted_last(tmp_path: Path) -> None:
    store = filled(tmp_path, 3)
    assert store.load(key(0)) is not None
    size = entry(tmp_path, 0).stat().st_size
    evict(store.files, max_size=size)
    assert [n for n in range(3) if entry(tmp_path, n).exists()] == [0]


def test_the_entries_of_this_run_go_last_and_only_when_unavoidable(tmp_path: Path) -> None:
    store = filled(tmp_path, 4)
    size = entry(tmp_path, 0).stat().st_size
    for n in (0, 1):  # used by this run (after keep_since) though long ago by their number
        os.utime(entry(tmp_path, n), (5_000 + n, 5_000 + n))
    evict(store.files, max_size=2 * size, keep_since=5_000)
    assert [n for n in range(4) if entry(tmp_path, n).exists()] == [0, 1]
    evict(store.files, max_size=size, keep_since=5_000)
    assert [n for n in range(4) if entry(tmp_path, n).exists()] == [1]


def test_a_stale_temporary_file_is_removed_and_a_fresh_one_kept(tmp_path: Path) -> None:
    store = filled(tmp_path, 1)
    stale = tmp_path / "entries" / "00" / "x.tmp"
    fresh = tmp_path / "entries" / "00" / "y.tmp"
    stale.write_bytes(b"crashed writer")
    fresh.write_bytes(b"a writer at work")
    os.utime(stale, (1_000, 1_000))
    evict(store.files, max_size=10**9)
    assert not stale.exists()
    assert fresh.exists()


def test_a_reader_of_an_evicted_entry_sees_a_miss_and_a_mapped_one_keeps_its_data(
    tmp_path: Path,
) -> None:
    np = pytest.importorskip("numpy")
    store = Store(str(tmp_path))
    store.save(key(1), np.arange(100_000), "f", {})
    loaded = store.load(key(1))
    assert loaded is not None
    other = Store(str(tmp_path))  # another run, with a limit of nothing
    evict(other.files, max_size=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a miss, not a damaged entry
        assert store.load(key(1)) is None
    assert int(loaded.value.sum()) == sum(range(100_000))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_compute_that_wrote_evicts_older_entries_down_to_max_size(
    tmp_path: Path, scheduler: str
) -> None:
    where = tmp_path / "cache"
    filled(where, 5)
    limit = 3 * entry(where, 0).stat().st_size + 100  # the new entries are a little larger
    blob = delayed(bytes, pure=True)
    with tarry.cache(where, max_size=limit):
        tarry.compute(blob(BLOB), blob(BLOB + 1), scheduler=scheduler)
    listed = entries(Store(str(where)).files)
    assert sum(e.size for e in listed) <= limit
    # the run's two entries stayed, and the most recently used of the others
    assert [e.label for e in listed] == ["bytes", "bytes", "f0"]
    assert listed[-1].key == key(4)


def test_a_compute_of_hits_alone_does_not_list_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[str] = []
    real = tidy.evict

    def counted(*args: object, **kwargs: object) -> tidy.Removed:
        listings.append("evict")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("tarry._cache.store.evict", counted)
    blob = delayed(bytes, pure=True)
    with tarry.cache(tmp_path / "cache", max_size="1 GB"):
        blob(10).compute(scheduler="sync")
        assert listings == ["evict"]
        blob(10).compute(scheduler="sync")
    assert listings == ["evict"]


def test_without_a_limit_nothing_is_evicted(tmp_path: Path) -> None:
    where = tmp_path / "cache"
    filled(where, 3)
    with tarry.cache(where):
        delayed(bytes, pure=True)(BLOB).compute(scheduler="sync")
    assert len(entries(Store(str(where)).files)) == 4


def test_a_remote_store_evicts_what_this_run_loaded_last(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    filled(tmp_path, 4)
    remote = Store(f"file://{tmp_path}", max_size=2 * entry(tmp_path, 0).stat().st_size)
    assert remote.load(key(0)) is not None  # the oldest, and fsspec cannot mark it used
    remote.grows = True  # as when a task of the run wrote to it
    remote.tidy()
    assert [n for n in range(4) if entry(tmp_path, n).exists()] == [0, 3]


def test_a_remote_store_evicts_by_write_time(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    store = filled(tmp_path, 4)  # written locally; read back through fsspec
    remote = Store(f"file://{tmp_path}")
    size = entry(tmp_path, 0).stat().st_size
    evict(remote.files, max_size=2 * size)
    assert [n for n in range(4) if entry(tmp_path, n).exists()] == [2, 3]
    assert store.has(key(3))


def test_clear_older_than_removes_what_was_not_used_for_that_long(tmp_path: Path) -> None:
    store = filled(tmp_path, 3)
    os.utime(entry(tmp_path, 2))  # used now
    done = clear(store.files, older_than=86400)
    assert (done.removed, done.left) == (2, 1)
    assert entry(tmp_path, 2).exists()
