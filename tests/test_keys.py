"""Keys: unique impure keys, deterministic pure keys (across processes too)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from typing import Any

import pytest

from tarry import delayed, tokenize
from tarry._keys import new_key


def test_impure_keys_are_unique_even_across_threads() -> None:
    keys: list[str] = []

    def make() -> None:
        keys.extend(new_key("f") for _ in range(2000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 8000
    assert all(k.startswith("f-") for k in keys)


def test_impure_keys_differ_in_a_forked_child() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, new_key("f").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_key = os.read(read, 200).decode()
    assert child_key != new_key("f")
    assert child_key.split("-")[1][:10] != new_key("f").split("-")[1][:10]


def double(x: int) -> int:
    return 2 * x


@dataclasses.dataclass
class Config:
    name: str
    size: int


CODE = """
import sys
sys.path.insert(0, {tests!r})
from tarry import delayed
from test_keys import double, Config
print(delayed(double, pure=True)(21).key)
print((delayed(7, name='seven') + 1).key)
print(delayed(double, pure=True)(Config('a', 1)).key)
"""


def test_pure_keys_are_the_same_in_another_process() -> None:
    import pathlib

    tests = str(pathlib.Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(tests=tests)], capture_output=True, text=True, check=True
    ).stdout.split()
    here = [
        delayed(double, pure=True)(21).key,
        (delayed(7, name="seven") + 1).key,
        delayed(double, pure=True)(Config("a", 1)).key,
    ]
    assert out == here


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        ("1", 1),
        ([1, 2], (1, 2)),
        ({"a": 1}, {"a": 2}),
        (Config("a", 1), Config("a", 2)),
        (double, lambda x: 2 * x),
    ],
)
def test_different_content_gives_different_tokens(a: Any, b: Any) -> None:
    assert tokenize(a) != tokenize(b)


def test_equal_content_gives_equal_tokens() -> None:
    assert tokenize({"b": 2, "a": [1, {3}]}) == tokenize({"a": [1, {3}], "b": 2})
    assert tokenize(Config("x", 1)) == tokenize(Config("x", 1))
    assert tokenize(double) == tokenize(double)


def test_numpy_and_pandas_content() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    assert tokenize(np.arange(5)) == tokenize(np.arange(5))
    assert tokenize(np.arange(5)) != tokenize(np.arange(6))
    frame = pd.DataFrame({"a": [1, 2]})
    assert tokenize(frame) == tokenize(frame.copy())
    assert tokenize(frame) != tokenize(pd.DataFrame({"a": [1, 3]}))


def test_undescribable_objects_never_collide() -> None:
    lock = threading.Lock()
    assert tokenize(lock) != tokenize(lock)


def test_bound_methods_count_their_instance() -> None:
    class Box:
        def __init__(self, v: int) -> None:
            self.v = v

        def get(self) -> int:
            return self.v

    assert tokenize(Box(1).get) != tokenize(Box(2).get)
