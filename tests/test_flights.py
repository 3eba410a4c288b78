"""Tests of the synthetic NYC-flights data set of the tutorial."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tarry._tutorial import flights
from tarry._tutorial.flights import prepare_flights

EXPECTED_COLUMNS = [
    "Year",
    "Month",
    "DayofMonth",
    "DayOfWeek",
    "DepTime",
    "CRSDepTime",
    "ArrTime",
    "CRSArrTime",
    "UniqueCarrier",
    "FlightNum",
    "TailNum",
    "ActualElapsedTime",
    "CRSElapsedTime",
    "AirTime",
    "ArrDelay",
    "DepDelay",
    "Origin",
    "Dest",
    "Distance",
    "TaxiIn",
    "TaxiOut",
    "Cancelled",
    "Diverted",
]
EXPECTED_NAMES = [f"{year}.csv" for year in range(1990, 2000)]
NO_ARRIVAL = ["ArrTime", "ArrDelay", "AirTime", "ActualElapsedTime", "TaxiIn"]
NO_DEPARTURE = ["DepTime", "DepDelay", "TaxiOut", *NO_ARRIVAL]
ROWS = 2000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> list[pathlib.Path]:
    """A data set of ROWS rows per file, shared by the read-only tests."""
    return prepare_flights(tmp_path_factory.mktemp("flights"), rows_per_file=ROWS, progress=False)


@pytest.fixture(scope="module")
def small_df(small: list[pathlib.Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(path) for path in small], ignore_index=True)


#: one list per files_opened() block running, noting the paths opened
_watching: list[list[str]] = []
_hooked = False


def _note_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watching and isinstance(args[0], str | bytes | os.PathLike):
        for paths in _watching:
            paths.append(os.fsdecode(args[0]))


@contextlib.contextmanager
def files_opened() -> Iterator[list[str]]:
    """The paths this process opens inside the block, as an audit hook sees them.

    An audit hook cannot be removed: it is added once and notes nothing outside a block.
    """
    global _hooked
    if not _hooked:
        sys.addaudithook(_note_open)
        _hooked = True
    paths: list[str] = []
    _watching.append(paths)
    try:
        yield paths
    finally:
        _watching.remove(paths)


def snapshot(folder: pathlib.Path) -> dict[str, tuple[int, int, bytes]]:
    """Inode, modification time and content of every file in ``folder``."""
    return {
        path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(folder.iterdir())
    }


def hhmm_to_minutes(hhmm: pd.Series[float]) -> pd.Series[float]:
    return (hhmm // 100) * 60 + hhmm % 100


# ---------------------------------------------------------------------------------------------
# Files, caching and regeneration
# ---------------------------------------------------------------------------------------------


def test_writes_ten_files_sorted_into_new_folder(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "nested" / "nycflights"
    paths = prepare_flights(str(folder), rows_per_file=50, progress=False)
    assert [path.name for path in paths] == EXPECTED_NAMES
    assert all(path.parent == folder and path.is_file() for path in paths)
    assert sorted(p.name for p in folder.glob("*.csv")) == EXPECTED_NAMES
    # No temporary files are left behind, only the CSV files and the manifest.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*EXPECTED_NAMES, ".tarry-flights.json"]
    )
    manifest = json.loads((folder / ".tarry-flights.json").read_text())
    assert (manifest["seed"], manifest["rows_per_file"]) == (0, 50)


def test_columns_and_order(small: list[pathlib.Path]) -> None:
    for path in small:
        with path.open() as file:
            assert file.readline().rstrip("\n").split(",") == EXPECTED_COLUMNS
        assert list(pd.read_csv(path, nrows=5).columns) == EXPECTED_COLUMNS


def test_rows_per_file_and_year(small: list[pathlib.Path]) -> None:
    for year, path in zip(range(1990, 2000), small, strict=True):
        df = pd.read_csv(path)
        assert len(df) == ROWS
        assert (df.Year == year).all()


def test_deterministic_for_same_seed_and_different_otherwise(tmp_path: pathlib.Path) -> None:
    a = prepare_flights(tmp_path / "a", rows_per_file=300, seed=7, progress=False)
    b = prepare_flights(tmp_path / "b", rows_per_file=300, seed=7, progress=False)
    c = prepare_flights(tmp_path / "c", rows_per_file=300, seed=8, progress=False)
    for pa, pb, pc in zip(a, b, c, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
        assert pa.read_bytes() != pc.read_bytes()


def test_second_call_does_not_rewrite(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prepare_flights(tmp_path, rows_per_file=200, progress=False)
    before = snapshot(tmp_path)

    def fail(*args: object) -> None:
        raise AssertionError("the data must not be generated again")

    monkeypatch.setattr(flights, "_generate_year", fail)
    with files_opened() as opened:
        second = prepare_flights(tmp_path, rows_per_file=200, progress=False)
    assert any(path.endswith(".tarry-flights.json") for path in opened)  # the manifest
    assert [path for path in opened if path.endswith(".csv")] == []  # the data: not even read
    assert second == first
    assert snapshot(tmp_path) == before


def test_regenerates_when_parameters_differ(tmp_path: pathlib.Path) -> None:
    prepare_flights(tmp_path, rows_per_file=200, seed=0, progress=False)
    seed0 = (tmp_path / "1990.csv").read_bytes()
    prepare_flights(tmp_path, rows_per_file=200, seed=1, progress=False)
    assert (tmp_path / "1990.csv").read_bytes() != seed0
    assert json.loads((tmp_path / ".tarry-flights.json").read_text())["seed"] == 1
    prepare_flights(tmp_path, rows_per_file=300, seed=1, progress=False)
    assert all(len(pd.read_csv(tmp_path / name)) == 300 for name in EXPECTED_NAMES)
    prepare_flights(tmp_path, rows_per_file=200, seed=0, progress=False)
    assert (tmp_path / "1990.csv").read_bytes() == seed0


@pytest.mark.parametrize("damage", ["delete_file", "truncate_file", "delete_manifest", "garble"])
def test_incomplete_folder_is_regenerated(tmp_path: pathlib.Path, damage: str) -> None:
    prepare_flights(tmp_path, rows_per_file=200, progress=False)
    original = {name: (tmp_path / name).read_bytes() for name in EXPECTED_NAMES}
    if damage == "delete_file":
        (tmp_path / "1994.csv").unlink()
    elif damage == "truncate_file":
        with (tmp_path / "1994.csv").open("r+b") as file:
            file.truncate(1000)
    elif damage == "delete_manifest":
        (tmp_path / ".tarry-flights.json").unlink()
    else:
        (tmp_path / ".tarry-flights.json").write_text("{not json")
    inode = (tmp_path / "1990.csv").stat().st_ino

    paths = prepare_flights(tmp_path, rows_per_file=200, progress=False)

    assert {path.name: path.read_bytes() for path in paths} == original
    # a damaged file is generated again; without a manifest to trust, all of them are
    rewritten = (tmp_path / "1990.csv").stat().st_ino != inode
    assert rewritten == (damage in ("delete_manifest", "garble"))
    assert (tmp_path / ".tarry-flights.json").is_file()


def test_interrupted_run_never_looks_complete_and_resumes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_flights(tmp_path, rows_per_file=200, seed=0, progress=False)
    generate = flights._generate_year
    generated: list[int] = []

    def interrupted(year: int, rows: int, seed: int) -> dict[str, flights._Column]:
        if year == 1995:
            raise KeyboardInterrupt
        generated.append(year)
        return generate(year, rows, seed)

    monkeypatch.setattr(flights, "_generate_year", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_flights(tmp_path, rows_per_file=200, seed=1, progress=False)
    # The manifest lists the five files of the new parameters that were finished: neither
    # parameter set is taken as complete.
    listed = json.loads((tmp_path / ".tarry-flights.json").read_text())
    assert (listed["seed"], sorted(listed["files"])) == (1, EXPECTED_NAMES[:5])
    assert not [path for path in tmp_path.iterdir() if path.suffix == ".tmp"]

    def counted(year: int, rows: int, seed: int) -> dict[str, flights._Column]:
        generated.append(year)
        return generate(year, rows, seed)

    monkeypatch.setattr(flights, "_generate_year", counted)
    generated.clear()
    resumed = prepare_flights(tmp_path, rows_per_file=200, seed=1, progress=False)
    assert generated == list(range(1995, 2000))  # where the interrupted run stopped
    clean = prepare_flights(tmp_path / "clean", rows_per_file=200, seed=1, progress=False)
    for a, b in zip(resumed, clean, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_interrupted_generation_resumes_with_a_bar_counting_the_finished_files(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate = flights._generate_year

    def interrupted(year: int, rows: int, seed: int) -> dict[str, flights._Column]:
        if year == 1993:
            raise KeyboardInterrupt
        return generate(year, rows, seed)

    monkeypatch.setattr(flights, "_generate_year", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_flights(tmp_path, rows_per_file=50, progress=False)
    monkeypatch.setattr(flights, "_generate_year", generate)
    capsys.readouterr()
    prepare_flights(tmp_path, rows_per_file=50, progress=True)
    err = capsys.readouterr().err
    assert "3/10" in err
    assert "10/10" in err


def test_failed_write_leaves_no_temporary_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        prepare_flights(tmp_path, rows_per_file=50, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_only_while_generating(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_flights(tmp_path / "quiet", rows_per_file=50, progress=False)
    assert capsys.readouterr().err == ""
    prepare_flights(tmp_path / "loud", rows_per_file=50, progress=True)
    err = capsys.readouterr().err
    assert "10/10" in err
    assert "file" in err
    prepare_flights(tmp_path / "loud", rows_per_file=50, progress=True)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("rows", "seed"), [(0, 0), (-5, 0), (True, 0), (10, -1)])
def test_invalid_arguments(tmp_path: pathlib.Path, rows: int, seed: int) -> None:
    with pytest.raises(ValueError, match=r"rows_per_file|seed"):
        prepare_flights(tmp_path, rows_per_file=rows, seed=seed, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_import_does_not_import_pandas_or_tqdm() -> None:
    code = (
        "import sys, tarry, tarry._tutorial.flights; "
        "assert 'pandas' not in sys.modules, 'pandas'; assert 'tqdm' not in sys.modules, 'tqdm'"
    )
    src = str(pathlib.Path(flights.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------------


def test_encoding_matches_pandas_to_csv(small: list[pathlib.Path]) -> None:
    columns = flights._generate_year(1990, ROWS, 0)
    data: dict[str, object] = {}
    for name, column in columns.items():
        missing = np.zeros(len(column.values), dtype=bool)
        if column.missing is not None:
            missing = column.missing
        if column.vocab is not None:
            values = np.array(column.vocab, dtype=object)[column.values]
            values[missing] = None
            data[name] = values
        else:
            data[name] = pd.arrays.IntegerArray(column.values, missing)
    expected = pd.DataFrame(data).to_csv(index=False).encode()
    assert small[0].read_bytes() == expected


def test_integers_are_written_without_decimal_point(
    small: list[pathlib.Path], small_df: pd.DataFrame
) -> None:
    for path in small:
        assert b"." not in path.read_bytes()
    for name in ["Year", "Month", "DayofMonth", "DayOfWeek", "CRSDepTime", "CRSArrTime"]:
        assert small_df[name].dtype == np.int64, name
    for name in ["FlightNum", "Distance", "Cancelled", "Diverted"]:
        assert small_df[name].dtype == np.int64, name
    nullable = pd.read_csv(small[-1], dtype={"DepTime": "Int64", "ArrDelay": "Int64"})
    assert nullable.DepTime.notna().sum() > 0.9 * ROWS


def test_origin_destination_and_distance(small_df: pd.DataFrame) -> None:
    assert set(small_df.Origin) == {"EWR", "JFK", "LGA"}
    shares = small_df.Origin.value_counts(normalize=True)
    assert shares.min() > 0.15
    assert 30 <= small_df.Dest.nunique() <= 45
    assert not set(small_df.Dest) & {"EWR", "JFK", "LGA"}
    assert small_df.Dest.str.fullmatch(r"[A-Z]{3}").all()
    assert (small_df.groupby(["Origin", "Dest"]).Distance.nunique() == 1).all()
    ord_distance = small_df[small_df.Dest == "ORD"].groupby("Origin").Distance.first()
    assert ord_distance.between(700, 760).all()
    assert small_df.Distance.between(150, 2700).all()


def test_carriers(small_df: pd.DataFrame) -> None:
    known = {"AA", "CO", "DL", "EA", "HP", "NW", "PA (1)", "PI", "TW", "UA", "US", "WN"}
    assert set(small_df.UniqueCarrier) <= known
    assert small_df.UniqueCarrier.nunique() >= 8
    assert small_df.FlightNum.between(1, 9999).all()


def test_sorted_by_date_then_scheduled_departure(small: list[pathlib.Path]) -> None:
    for path in small:
        df = pd.read_csv(path)
        key = df.Month * 1_000_000 + df.DayofMonth * 10_000 + df.CRSDepTime
        assert key.is_monotonic_increasing
    df = pd.read_csv(small[0])
    dates = pd.to_datetime(pd.DataFrame({"year": df.Year, "month": df.Month, "day": df.DayofMonth}))
    assert ((dates.dt.day_of_week + 1) == df.DayOfWeek).all()


def test_times_are_hhmm_and_departure_is_schedule_plus_delay(small_df: pd.DataFrame) -> None:
    for name in ["DepTime", "CRSDepTime", "ArrTime", "CRSArrTime"]:
        times = small_df[name].dropna()
        assert times.between(0, 2400).all(), name
        assert (times % 100 < 60).all(), name
    assert small_df.CRSDepTime.max() > 1700
    departed = small_df.dropna(subset=["DepTime"])
    actual = hhmm_to_minutes(departed.DepTime)
    expected = hhmm_to_minutes(departed.CRSDepTime) + departed.DepDelay
    assert ((actual - expected) % 1440 == 0).all()


def test_tailnum_mostly_missing(small_df: pd.DataFrame) -> None:
    missing = small_df.TailNum.isna().mean()
    assert 0.95 < missing < 1.0
    assert small_df.TailNum.dropna().str.fullmatch(r"N\d{3}[A-Z]{2}").all()


def test_crs_elapsed_time_missing_in_first_rows_of_early_files(small: list[pathlib.Path]) -> None:
    first = pd.read_csv(small[0])
    assert first.CRSElapsedTime.dtype == np.float64
    gap = int(first.CRSElapsedTime.notna().to_numpy().argmax())
    assert 0.02 * ROWS <= gap <= 0.05 * ROWS
    assert first.CRSElapsedTime.iloc[gap:].notna().all()
    assert first.TailNum.iloc[:gap].isna().all()
    # Reading in chunks infers different dtypes, which trips up dask.dataframe.read_csv.
    chunks = pd.read_csv(small[0], chunksize=gap)
    dtypes = [chunk.CRSElapsedTime.dtype for chunk in chunks]
    assert dtypes[0] == np.float64
    assert dtypes[1] == np.int64
    assert pd.read_csv(small[2]).CRSElapsedTime.iloc[0:3].isna().all()
    last = pd.read_csv(small[-1])
    assert last.CRSElapsedTime.notna().all()
    assert last.CRSElapsedTime.dtype == np.int64


def test_cancelled_and_diverted_flights(small_df: pd.DataFrame) -> None:
    cancelled = small_df[small_df.Cancelled == 1]
    diverted = small_df[small_df.Diverted == 1]
    flown = small_df[(small_df.Cancelled == 0) & (small_df.Diverted == 0)]
    assert 0.005 < small_df.Cancelled.mean() < 0.04
    assert 0 < small_df.Diverted.mean() < 0.01
    assert set(small_df.Cancelled) == {0, 1}
    assert not ((small_df.Cancelled == 1) & (small_df.Diverted == 1)).any()
    assert cancelled.DepDelay.isna().all()
    assert cancelled[NO_DEPARTURE].isna().all().all()
    assert diverted[NO_ARRIVAL].isna().all().all()
    assert diverted[["DepTime", "DepDelay", "TaxiOut"]].notna().all().all()
    assert flown[NO_DEPARTURE].notna().all().all()
    winter = small_df[small_df.Month.isin([12, 1, 2])].Cancelled.mean()
    autumn = small_df[small_df.Month.isin([8, 9, 10])].Cancelled.mean()
    assert winter > autumn


def test_elapsed_times_add_up(small_df: pd.DataFrame) -> None:
    flown = small_df.dropna(subset=["ActualElapsedTime", "CRSElapsedTime"])
    total = flown.TaxiOut + flown.AirTime + flown.TaxiIn
    assert (total == flown.ActualElapsedTime).all()
    assert (flown.ArrDelay == flown.DepDelay + flown.ActualElapsedTime - flown.CRSElapsedTime).all()
    speed = flown.Distance / flown.AirTime  # miles per minute
    assert speed.between(3, 12).all()
    assert small_df.ArrDelay.corr(small_df.DepDelay) > 0.8


def test_delay_distribution_and_patterns(small_df: pd.DataFrame) -> None:
    delay = small_df.DepDelay.dropna()
    assert delay.median() <= 2  # mostly (nearly) on time ...
    assert delay.mean() > delay.median() + 3  # ... with a long tail of late departures
    assert (delay < 0).mean() > 0.3
    assert delay.max() > 180
    assert 0.05 < (delay > 15).mean() < 0.35
    hour = small_df.CRSDepTime // 100
    assert small_df.DepDelay[hour >= 18].mean() > small_df.DepDelay[hour < 10].mean() + 2
    month = small_df.Month
    assert (
        small_df.DepDelay[month.isin([12, 1, 7])].mean()
        > small_df.DepDelay[month.isin([9, 10])].mean() + 2
    )


def test_tutorial_computation(small_df: pd.DataFrame) -> None:
    means = small_df.groupby("Origin").DepDelay.mean()
    assert list(means.index) == ["EWR", "JFK", "LGA"]
    assert all(math.isfinite(value) for value in means)
    assert means.max() - means.min() > 1.0
    assert means.idxmax() == "EWR"


@pytest.mark.slow
def test_full_data_set(tmp_path: pathlib.Path) -> None:
    start = time.process_time()
    paths = prepare_flights(tmp_path, progress=False)
    cpu = time.process_time() - start  # this process's CPU time: other load does not count
    counts = [path.read_bytes().count(b"\n") - 1 for path in paths]
    assert abs(sum(counts) - 2_600_000) < 260_000
    assert len(set(counts)) > 1  # the years differ a little
    assert all(200_000 < count < 320_000 for count in counts)
    assert cpu < 60  # vectorised: a loop per row would take many minutes
    means = (
        pd.concat(pd.read_csv(path, usecols=["Origin", "DepDelay"]) for path in paths)
        .groupby("Origin")
        .DepDelay.mean()
    )
    assert means.notna().all()
    assert means.max() - means.min() > 1.0
