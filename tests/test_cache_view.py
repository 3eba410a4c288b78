"""What the user sees of the cache: the profile's counts, its report line, last_run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarry
from tarry import delayed, to_dot
from tarry._tools.last_run import forget, last_run

SCHEDULERS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
    pytest.param("processes", id="processes", marks=pytest.mark.processes),
]

NAP = 0.05


def nap_double(x: int) -> int:
    time.sleep(NAP)
    return 2 * x


def plus_one(x: int) -> int:
    return x + 1


def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@pytest.fixture(autouse=True)
def _fresh_last_run() -> Iterator[None]:
    forget()
    yield
    forget()


def pipeline(n: int = 3) -> tarry.Delayed[int]:
    """n cacheable naps summed (cacheable too), read by a task that is not cacheable."""
    doubled = [delayed(nap_double, pure=True)(i) for i in range(n)]
    total = delayed(sum, name="total", pure=True)(doubled)
    return delayed(plus_one, name="impure")(total)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_the_profile_counts_misses_then_hits(scheduler: str, tmp_path: Path) -> None:
    result = pipeline()
    with tarry.profile() as first:
        assert result.compute(scheduler=scheduler, cache=tmp_path) == 7
    counts = first.report().cache
    assert counts is not None
    assert (counts.hits, counts.misses, counts.uncacheable, counts.skipped) == (0, 4, 1, 0)
    assert str(last_run().cache_counts()) == str(counts)  # type: ignore[union-attr]
    frame = first.to_dataframe()
    assert sorted(frame[frame.cache == "miss"].name) == ["nap_double"] * 3 + ["total"]
    assert list(frame[frame.cache.isna()].name) == ["impure"]  # not cacheable

    with tarry.profile() as second:
        assert result.compute(scheduler=scheduler, cache=tmp_path) == 7
    report = second.report()
    counts = report.cache
    assert counts is not None
    assert (counts.hits, counts.misses, counts.uncacheable, counts.skipped) == (1, 0, 1, 3)
    assert counts.nbytes > 0
    # what making `total` took, its inputs included: all of them in one process,
    # a lower bound on processes (an input made in another worker counts 0)
    assert counts.saved > 0
    assert counts.saved >= (3 * NAP if scheduler != "processes" else 0)
    assert report.tasks == 1  # only the task that is not cacheable ran
    assert re.search(r"^  cache +1 hit \(saved .+, loaded in .+, \d+ B\), 0 misses stored, "
                     r"1 not cached, 3 skipped$", str(report), re.M)  # fmt: skip
    frame = second.to_dataframe()
    hit = frame[frame.cache == "hit"].iloc[0]
    assert (hit["name"], hit.worker, hit.attempts) == ("total", "cache", 0)
    assert hit.duration == pytest.approx(counts.loading)
    assert hit.saved == pytest.approx(counts.saved)
    assert hit.start >= 0  # the profile's time 0 is the first load
    ran = frame[frame.cache != "hit"]
    assert list(ran["name"]) == ["impure"]
    assert ran.start.min() >= hit.end  # loaded before the run started
    assert str(last_run().cache_counts()) == str(counts)  # type: ignore[union-attr]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_an_edited_input_counts_hits_and_misses_together(scheduler: str, tmp_path: Path) -> None:
    doubled = [delayed(nap_double, pure=True)(i) for i in range(3)]
    delayed(sum, pure=True)(doubled).compute(scheduler=scheduler, cache=tmp_path)
    doubled[2] = delayed(nap_double, pure=True)(10)  # a new input: sum runs again
    with tarry.profile() as prof:
        assert delayed(sum, pure=True)(doubled).compute(scheduler=scheduler, cache=tmp_path) == 22
    counts = prof.report().cache
    assert counts is not None
    assert (counts.hits, counts.misses, counts.uncacheable, counts.skipped) == (2, 2, 0, 0)
    assert counts.saved >= 2 * NAP  # the two naps loaded
    assert "2 hits (saved " in str(prof.report())


def test_a_failed_run_counts_only_the_misses_that_finished(tmp_path: Path) -> None:
    fine = delayed(nap_double, pure=True)(1)
    failing = delayed(boom, pure=True)(fine)
    with tarry.profile() as prof, pytest.raises(ValueError, match="boom"):
        delayed(sum, pure=True)([failing, 2]).compute(scheduler="sync", cache=tmp_path)
    counts = prof.report().cache
    assert counts is not None
    assert counts.misses == 1  # nap_double: boom failed and sum never ran
    assert last_run().cache_counts().misses == 1  # type: ignore[union-attr]


def test_nothing_ran_when_the_cache_held_every_result(tmp_path: Path) -> None:
    result = delayed(sum, pure=True)([delayed(nap_double, pure=True)(i) for i in range(2)])
    result.compute(scheduler="sync", cache=tmp_path)
    with tarry.profile() as prof:
        result.compute(scheduler="sync", cache=tmp_path)
    assert prof.report().findings == ["nothing ran: the cache held every result needed (1 hit)"]


def test_without_a_cache_nothing_changes(tmp_path: Path) -> None:
    with tarry.profile() as prof:
        pipeline().compute(scheduler="sync")
    assert prof.report().cache is None
    assert "cache" not in str(prof.report())
    assert "cache" not in prof.to_dataframe().columns
    assert last_run().cache_counts() is None  # type: ignore[union-attr]


def test_tasks_beneath_a_hit_are_not_in_the_run(tmp_path: Path) -> None:
    result = pipeline(2)
    result.compute(scheduler="sync", cache=tmp_path)
    result.compute(scheduler="sync", cache=tmp_path)
    dot = to_dot(result, color="status")
    assert "not in the last run (2)" in dot  # the two naps: the sum loaded
    assert "done (2)" in dot  # the sum, loaded, and the impure task, run


def test_a_profile_sums_the_counts_of_its_computes(tmp_path: Path) -> None:
    first = delayed(nap_double, pure=True)(1)
    second = delayed(nap_double, pure=True)(2)
    with tarry.profile() as prof:
        first.compute(scheduler="sync", cache=tmp_path)  # a miss
        first.compute(scheduler="sync", cache=tmp_path)  # a hit
        second.compute(scheduler="sync", cache=tmp_path)  # a miss
        second.compute(scheduler="sync")  # no cache: nothing to count
    counts = prof.report().cache
    assert counts is not None
    assert (counts.hits, counts.misses) == (1, 2)
    assert counts.saved >= NAP


def test_the_memo_of_making_times_keeps_the_newest_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from collections import OrderedDict

    from tarry._cache import lookup
    from tarry._cache.keys import CacheKeys, Keyed

    monkeypatch.setattr(lookup, "_MADE", OrderedDict())
    monkeypatch.setattr(lookup, "_MADE_LIMIT", 5)
    chain = [delayed(plus_one, pure=True)(0)]
    for _ in range(7):  # a chain: made in this order
        chain.append(delayed(plus_one, pure=True)(chain[-1]))
    assert chain[-1].compute(scheduler="sync", cache=tmp_path) == 8
    keys = CacheKeys()
    made = [keys.of(x._task) for x in chain]
    assert all(isinstance(k, Keyed) for k in made)
    assert list(lookup._MADE) == [k.key for k in made[-5:]]  # type: ignore[union-attr]
