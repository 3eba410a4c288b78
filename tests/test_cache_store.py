"""The cache's store: atomic, checksummed entries; its format; concurrent writers."""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tarry._cache.store import (
    FORMAT,
    LIST_FROM,
    CacheFormatError,
    CacheWarning,
    Loaded,
    Store,
    check_location,
)
from tarry._extras import MissingExtraError

KEY = "ab" + "0" * 38


def entry_file(root: Path, key: str = KEY) -> Path:
    return root / "entries" / key[:2] / key


def test_a_saved_value_loads_back(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    assert (tmp_path / "FORMAT").read_text().strip() == FORMAT
    assert store.load(KEY) is None
    store.save(KEY, {"a": [1, 2]}, "f", {"mod:f": "c0de"})
    assert store.has(KEY)
    assert _value(Store(str(tmp_path))) == {"a": [1, 2]}
    assert Store(str(tmp_path)).function_digest("mod:f") == "c0de"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:10], id="cut-in-header"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="flipped-bit"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_a_corrupt_entry_warns_with_key_and_file_and_reads_as_missing(
    tmp_path: Path, damage: Any
) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, list(range(1000)), "f", {})
    path = entry_file(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(CacheWarning) as caught:
        assert store.load(KEY) is None
    message = str(caught[0].message)
    assert KEY in message
    assert str(path) in message


def test_a_result_that_cannot_be_pickled_warns_and_is_not_stored(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    with pytest.warns(CacheWarning, match="the result of f was not cached"):
        store.save(KEY, threading.Lock(), "f", {})
    assert not store.has(KEY)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_store_of_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "FORMAT").write_text("tarry-cache 99\n")
    with pytest.raises(CacheFormatError, match="has format 'tarry-cache 99', which this tarry"):
        Store(str(tmp_path))


def test_a_directory_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CacheFormatError, match="not empty and holds no tarry cache"):
        Store(str(tmp_path))


def test_a_file_in_the_way_is_reported(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(OSError, match=r"cannot use .*taken as a cache"):
        Store(str(tmp_path / "taken"))


def test_a_relative_location_is_kept_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("relative")
    monkeypatch.chdir("/")
    store.save(KEY, 1, "f", {})
    assert _value(pickle.loads(pickle.dumps(store))) == 1
    assert entry_file(tmp_path / "relative").exists()


def test_a_dry_run_creates_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "new"), create=False)
    assert not store.has(KEY)
    assert store.load(KEY) is None
    assert not (tmp_path / "new").exists()


def test_a_store_pickles_as_its_location(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, 7, "f", {})
    again = pickle.loads(pickle.dumps(store))
    assert again.location == store.location
    assert _value(again) == 7


def test_two_processes_writing_one_key_at_once_both_succeed(tmp_path: Path) -> None:
    Store(str(tmp_path))
    script = textwrap.dedent(
        f"""
        import sys
        from tarry._cache.store import Store
        store = Store({str(tmp_path)!r})
        value = bytes(range(256)) * 4096  # 1 MiB: writes take long enough to overlap
        print("ready", flush=True)
        sys.stdin.readline()  # both start writing together
        for _ in range(30):
            store.save({KEY!r}, value, "f", {{}})
            loaded = store.load({KEY!r})
            assert loaded is not None and loaded.value == value, "a reader saw a partial entry"
        print("done", flush=True)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outcomes = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, (out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    assert _value(Store(str(tmp_path))) == bytes(range(256)) * 4096
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_file_url_works_through_fsspec(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/remote")
    store.save(KEY, [3], "f", {"m:f": "d"})
    assert entry_file(tmp_path / "remote").exists()
    assert _value(Store(f"file://{tmp_path}/remote")) == [3]
    assert store.function_digest("m:f") == "d"


def hide_module(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    """Make ``hidden`` look not installed to tarry's extras checks."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == hidden else real(name, *args),
    )


def test_a_url_without_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_module(monkeypatch, "fsspec")
    with pytest.raises(MissingExtraError, match=r"pip install 'tarry\[cache\]'"):
        check_location("s3://bucket/cache")
    assert check_location(str(Path("/tmp/plain"))) == "/tmp/plain"  # a directory needs nothing


def test_import_tarry_imports_neither_fsspec_nor_cloudpickle_nor_package_metadata() -> None:
    heavy = ("fsspec", "cloudpickle", "importlib.metadata")
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, tarry; print([m for m in {heavy!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "[]"


def _value(store: Store) -> object:
    """The value stored under KEY (the test fails if there is none)."""
    loaded = store.load(KEY)
    assert loaded is not None
    return loaded.value


def test_an_entry_header_holds_what_ls_shows(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.save(KEY, "x" * 100, "clean", {}, seconds=2.5)
    data = entry_file(tmp_path).read_bytes()
    assert data.startswith(b"TARRYC\x00\x02")
    meta = json.loads(data[12 : 12 + int.from_bytes(data[8:12], "little")])
    assert meta["label"] == "clean"
    assert meta["seconds"] == 2.5
    assert abs(meta["created"] - time.time()) < 3600
    assert store.load(KEY) == Loaded("x" * 100, 2.5, len(data))


def test_a_store_of_the_previous_format_is_refused_with_the_command_that_clears_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "FORMAT").write_text("tarry-cache 1\n")
    with pytest.raises(CacheFormatError, match="made by an older tarry") as caught:
        Store(str(tmp_path))
    assert f"`tarry cache clear {tmp_path}`" in str(caught.value)


def _noted_inc(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x}\n")
    return x + 1


def test_a_run_of_many_keys_finds_its_entries_by_listing_their_folders(tmp_path: Path) -> None:
    import tarry

    log = str(tmp_path / "calls.log")
    where = str(tmp_path / "cache")
    lazy = tarry.delayed(_noted_inc, pure=True)
    incs = [lazy(i, log) for i in range(LIST_FROM + 44)]
    tarry.compute(*incs, scheduler="sync", cache=where)
    store = Store(where)
    keys = {p.name for p in Path(where).glob("entries/*/*")}
    assert store.existing(sorted(keys)) == keys  # listed, not tried one by one
    gone = sorted(keys)[7]
    (Path(where) / "entries" / gone[:2] / gone).unlink()
    Path(log).unlink()
    tarry.compute(*incs, scheduler="sync", cache=where)
    assert len(Path(log).read_text().split()) == 1  # the one whose entry went, alone
