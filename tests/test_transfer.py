"""Values between processes: bytes when small, a shared-memory file when large."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from tarry._schedule import transfer
from tarry._schedule.transfer import FILE_BYTES, Spilled, discard, from_blob, own, to_blob


def test_small_values_travel_as_bytes(tmp_path: Path) -> None:
    blob = to_blob({"a": [1, 2]}, str(tmp_path))
    assert type(blob) is bytes
    assert from_blob(blob) == {"a": [1, 2]}
    assert os.listdir(tmp_path) == []


def test_without_a_folder_large_values_travel_as_bytes() -> None:
    blob = to_blob(bytearray(2 * FILE_BYTES), None)
    assert type(blob) is bytes
    assert len(from_blob(blob)) == 2 * FILE_BYTES


@pytest.mark.parametrize("make", [bytearray, bytes])
def test_large_values_travel_as_one_file(tmp_path: Path, make: type) -> None:
    value = make(b"xy" * FILE_BYTES)
    blob = to_blob(value, str(tmp_path))
    assert type(blob) is Spilled
    assert os.listdir(tmp_path) == [os.path.basename(blob.path)]
    back = from_blob(blob)
    assert type(back) is make
    assert back == value


def test_arrays_read_from_a_file_are_equal_aligned_and_writable(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    arrays = [np.arange(FILE_BYTES // 4, dtype="int64"), np.ones((3, 1000, 100))]
    back = from_blob(to_blob(arrays, str(tmp_path)))
    for a, b in zip(arrays, back, strict=True):
        assert (a == b).all()
        assert a.dtype == b.dtype
        assert b.ctypes.data % 64 == 0
        b[0] = -1  # copy-on-write: the file is not changed
    again = from_blob(to_blob(arrays, str(tmp_path)))
    assert (again[0] == arrays[0]).all()


def test_non_contiguous_arrays_and_lambdas(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    strided = np.arange(FILE_BYTES // 2, dtype="int64")[::2]
    value = (strided, lambda x: x + 1)
    back = from_blob(to_blob(value, str(tmp_path)))
    assert (back[0] == strided).all()
    assert back[1](1) == 2


def test_owned_file_goes_when_dropped_and_discard_removes_now(tmp_path: Path) -> None:
    blob = to_blob(bytearray(2 * FILE_BYTES), str(tmp_path))
    own(blob)
    del blob
    gc.collect()
    assert os.listdir(tmp_path) == []
    other = to_blob(bytearray(2 * FILE_BYTES), str(tmp_path))
    discard(other)
    assert os.listdir(tmp_path) == []
    discard(b"small")  # bytes have no file: nothing to do


def test_no_space_left_falls_back_to_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: str, parts: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transfer, "_write", full)
    blob = to_blob(bytearray(2 * FILE_BYTES), str(tmp_path))
    assert type(blob) is bytes
    assert len(from_blob(blob)) == 2 * FILE_BYTES
    assert os.listdir(tmp_path) == []


def test_tagged_files_start_with_the_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_tag", "")
    transfer.tag_files("w7-")
    blob = to_blob(bytearray(2 * FILE_BYTES), str(tmp_path))
    assert type(blob) is Spilled
    assert os.path.basename(blob.path).startswith(f"w7-{os.getpid()}-")
    discard(blob)


def test_a_forked_child_leaves_its_parents_files_alone(tmp_path: Path) -> None:
    blob = to_blob(bytearray(2 * FILE_BYTES), str(tmp_path))
    own(blob)
    child = os.fork()
    if child == 0:  # the child drops the object it inherited (its exit would too)
        del blob
        gc.collect()
        os._exit(0)
    os.waitpid(child, 0)
    assert len(os.listdir(tmp_path)) == 1
    del blob
    gc.collect()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("maps", [True, False], ids=["mapped", "read (Windows)"])
def test_files_are_mapped_only_where_a_mapped_file_can_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, maps: bool
) -> None:
    """Windows cannot remove a mapped file: there a reader reads it, and lets go of it at once."""
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs /proc/self/maps to see what is mapped")
    np = pytest.importorskip("numpy")
    monkeypatch.setattr(transfer, "_MAP", maps)
    array = np.arange(FILE_BYTES // 4, dtype="int64")
    blob = to_blob(array, str(tmp_path))
    assert type(blob) is Spilled
    back = from_blob(blob)
    assert (back == array).all()
    assert back.ctypes.data % 64 == 0
    assert (blob.path in Path("/proc/self/maps").read_text()) is maps
    back[0] = -1  # writable, and the file is not changed
    assert (from_blob(blob) == array).all()
