"""How results are stored: pickle 5 with mapped buffers, Parquet for pandas, cache_format=."""

from __future__ import annotations

import json
import mmap
from pathlib import Path
from typing import Any

import pytest
from test_cache_store import hide_module

import tarry
from tarry import _platform, delayed
from tarry._cache import files
from tarry._cache.formats import FORMATS, INBAND_BELOW, encode
from tarry._cache.store import CacheWarning, Store
from tarry._extras import MissingExtraError

np = pytest.importorskip("numpy")

KEY = "cd" + "1" * 38
#: whether local entries are mapped here (not with TARRY_PORTABLE=1, nor on Windows)
MAPS = _platform.maps_removable_files()
SCHEDULERS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
    pytest.param("processes", id="processes", marks=pytest.mark.processes),
]


def entry(root: Path, key: str = KEY) -> Path:
    return root / "entries" / key[:2] / key


def header(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    meta: dict[str, Any] = json.loads(data[12 : 12 + int.from_bytes(data[8:12], "little")])
    return meta


def mapped(array: Any) -> bool:
    """Whether ``array``'s memory is a mapping of a file."""
    base = array
    while getattr(base, "base", None) is not None:
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def loaded(store: Store, key: str = KEY) -> Any:
    found = store.load(key)
    assert found is not None
    return found.value


def test_a_large_array_loads_mapped_writable_and_its_changes_stay_in_memory(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path))
    array = np.arange(1_000_000, dtype=np.float64)
    store.save(KEY, {"a": array, "n": 3}, "f", {})
    assert header(entry(tmp_path))["buffers"] == [array.nbytes]
    before = entry(tmp_path).read_bytes()
    back = loaded(store)
    assert mapped(back["a"]) == MAPS
    if MAPS:  # a file maps at a page boundary; memory from malloc is aligned less
        assert back["a"].ctypes.data % 64 == 0
    assert back["a"].flags.writeable
    assert back["n"] == 3
    back["a"][:10] = -1.0
    assert entry(tmp_path).read_bytes() == before
    again = loaded(store)["a"]
    np.testing.assert_array_equal(again, array)


def test_beyond_max_mapped_live_mappings_entries_are_read_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_MAPPED", len(files._mapped) + 2)
    store = Store(str(tmp_path))
    store.save(KEY, np.ones(100_000), "f", {})
    kept = [loaded(store) for _ in range(3)]
    assert [mapped(a) for a in kept] == [MAPS, MAPS, False]
    del kept
    assert mapped(loaded(store)) == MAPS  # the mappings went with their arrays


def test_a_small_array_stays_in_the_stream_where_the_checksum_covers_it(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    small = np.arange(INBAND_BELOW // 8 - 1, dtype=np.float64)  # just under the threshold
    store.save(KEY, small, "f", {})
    assert header(entry(tmp_path))["buffers"] == []
    path = entry(tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # inside the array's bytes
    path.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="checksum does not match"):
        assert store.load(KEY) is None


def test_an_entry_cut_short_in_its_buffers_reads_as_missing(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, np.ones(100_000), "f", {})
    path = entry(tmp_path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.warns(CacheWarning, match="cut short"):
        assert store.load(KEY) is None


def test_where_mapped_files_cannot_be_removed_entries_are_read_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_platform, "maps_removable_files", lambda: False)
    store = Store(str(tmp_path))
    store.save(KEY, np.ones(100_000), "f", {})
    back = loaded(store)
    assert not mapped(back)
    assert back.flags.writeable
    back[0] = 5.0
    assert loaded(store)[0] == 1.0


def test_a_remote_store_reads_bytes_into_writable_arrays(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    store = Store(f"file://{tmp_path}")
    store.save(KEY, np.ones(100_000), "f", {})
    back = loaded(store)
    assert not mapped(back)
    assert back.flags.writeable
    np.testing.assert_array_equal(back, np.ones(100_000))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_an_array_computed_on_a_scheduler_loads_mapped_on_threads(
    tmp_path: Path, scheduler: str
) -> None:
    ones = delayed(np.ones, pure=True)
    where = str(tmp_path / "cache")
    with tarry.cache(where):
        (first,) = tarry.compute(ones(200_000), scheduler=scheduler)
        (second,) = tarry.compute(ones(200_000), scheduler="threads")
    assert mapped(second) == MAPS
    assert second.flags.writeable
    second[:] = 7.0
    with tarry.cache(where):
        (third,) = tarry.compute(ones(200_000), scheduler="threads")
    np.testing.assert_array_equal(third, first)
    assert mapped(third) == MAPS


# -- pandas --------------------------------------------------------------------------------


pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

EXACT = {
    "numbers": lambda: pd.DataFrame(
        {
            "i": np.arange(4),
            "i32": np.arange(4, dtype="int32"),
            "f": [1.5, np.nan, 3.0, 4.0],
            "b": [True, False, True, True],
            "u8": np.ones(4, dtype="uint8"),
        }
    ),
    "strings": lambda: pd.DataFrame(
        {"s": ["a", "b", "c"], "t": pd.array(["x", None, "z"], dtype="string")}
    ),
    "times": lambda: pd.DataFrame(
        {
            "t": pd.date_range("2020", periods=3),
            "tz": pd.date_range("2020", periods=3, tz="UTC"),
            "d": pd.to_timedelta([1, 2, 3], unit="s"),
        }
    ),
    "nullable": lambda: pd.DataFrame(
        {"n": pd.array([1, None], dtype="Int64"), "b": pd.array([True, None], dtype="boolean")}
    ),
    "categories": lambda: pd.DataFrame(
        {"c": pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True)}
    ),
    "named index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(["p", "q"], name="k")),
    "range index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 9, 2, name="r")),
    "multi index": lambda: pd.DataFrame(
        {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"])
    ),
    "named columns": lambda: pd.DataFrame({"a": [1]}).rename_axis(columns="cols"),
    "series": lambda: pd.Series([1.0, 2.0], name="s", index=pd.Index([3, 4], name="k")),
    "unnamed series": lambda: pd.Series(["a", "b"]),
}
PICKLED = {
    "object column of Python objects": lambda: pd.DataFrame({"o": [{"a": 1}, [2]]}),
    "mixed column": lambda: pd.DataFrame({"m": [1, "x"]}),
    "float column names": lambda: pd.DataFrame({1.5: [1], 2.5: [2]}),
    "duplicate columns": lambda: pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "complex numbers": lambda: pd.DataFrame({"c": [1j, 2j]}),
    "an index with a freq": lambda: pd.DataFrame(
        {"a": [1, 2]}, index=pd.date_range("2020", periods=2, freq="D")
    ),
    "integer categories": lambda: pd.DataFrame({"c": pd.Categorical([1, 2, 1])}),
    "attrs": lambda: pd.DataFrame({"a": [1]}).pipe(lambda df: df.attrs.update(x=1) or df),
    "a series named by a number": lambda: pd.Series([1], name=3),
}


#: pandas 2 keeps strings in object columns, which Parquet gives back as they were;
#: pandas 3 would read them back as its str dtype
OBJECT_STRINGS = int(pd.__version__.split(".")[0]) < 3
(EXACT if OBJECT_STRINGS else PICKLED)["object column of strings"] = lambda: pd.DataFrame(
    {"o": pd.Series(["a"], dtype=object)}
)


def exactly(back: Any, value: Any) -> None:
    """``back`` is ``value``: values, dtypes, index, names, the index's type."""
    assert type(back) is type(value)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True, check_index_type=True)
        assert back.name == value.name
    else:
        pd.testing.assert_frame_equal(back, value, check_exact=True, check_index_type=True,
                                      check_column_type=True)  # fmt: skip
        assert back.columns.names == value.columns.names
    assert type(back.index) is type(value.index)
    assert back.index.names == value.index.names
    assert getattr(back.index, "freq", None) == getattr(value.index, "freq", None)
    assert back.attrs == value.attrs


@pytest.mark.parametrize(
    ("make", "parquet"),
    [pytest.param(make, True, id=f"parquet: {name}") for name, make in EXACT.items()]
    + [pytest.param(make, False, id=f"pickle: {name}") for name, make in PICKLED.items()],
)
def test_cache_format_parquet_is_used_where_it_holds_pandas_objects_exactly(
    tmp_path: Path, make: Any, parquet: bool
) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, make(), "f", {}, fmt="parquet")
    assert header(entry(tmp_path))["kind"].startswith("parquet") == parquet
    exactly(loaded(store), make())


@pytest.mark.parametrize("make", [*EXACT.values(), *PICKLED.values()])
def test_pandas_objects_are_pickled_by_default_and_come_back_exactly(
    tmp_path: Path, make: Any
) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, make(), "f", {})
    assert header(entry(tmp_path))["kind"] == "pickle"
    exactly(loaded(store), make())


def test_a_large_frames_columns_load_mapped_by_default(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(100_000), "b": np.linspace(0, 1, 100_000)})
    store = Store(str(tmp_path))
    store.save(KEY, frame, "f", {})
    assert header(entry(tmp_path))["buffers"]  # the columns are kept out of the stream
    back = loaded(store)
    exactly(back, frame)
    back.loc[0, "a"] = -1  # writable, and private to this copy
    assert loaded(store).loc[0, "a"] == 0


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_cache_format_chooses_per_function(tmp_path: Path, scheduler: str) -> None:
    frame = delayed(pd.DataFrame, pure=True)
    where = tmp_path / "cache"
    with tarry.cache(where):
        tarry.compute(
            frame({"a": [1, 2]}),
            frame.options(cache_format="pickle")({"b": [1, 2]}),
            frame.options(cache_format="parquet")({"c": [1, 2]}),
            scheduler=scheduler,
        )
    store = Store(str(where))
    kinds = {
        tuple(loaded(store, path.name).columns): header(path)["kind"]
        for path in (where / "entries").glob("*/*")
    }
    assert kinds == {("a",): "pickle", ("b",): "pickle", ("c",): "parquet"}


def test_an_unknown_cache_format_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown cache_format 'csv'; choose one of: auto, pickle"):
        delayed(len).options(cache_format="csv")
    assert set(FORMATS) == {"auto", "pickle", "parquet"}


def test_cache_format_parquet_without_pyarrow_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide_module(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtraError, match=r"pip install 'tarry\[cache\]'"):
        delayed(len).options(cache_format="parquet")


def test_pickle_format_keeps_buffers_out_of_the_stream() -> None:
    encoded = encode({"a": np.zeros(INBAND_BELOW), "b": b"x" * 10}, "pickle")
    assert encoded.kind == "pickle"
    assert [b.nbytes for b in encoded.buffers] == [INBAND_BELOW * 8]
    assert len(encoded.stream) < 1000
