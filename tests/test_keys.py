"""Keys: unique impure keys, in threads and forked children; keys users give are checked."""

from __future__ import annotations

import threading

import pytest

from tarry._keys import InvalidKeyError, check_key, new_key


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


@pytest.mark.parametrize("bad", ["", 5, ("x", 0), None, ["a"]])
def test_a_key_that_is_not_a_non_empty_str_is_refused_naming_the_option(bad: object) -> None:
    with pytest.raises(InvalidKeyError, match="dask_key_name"):
        check_key(bad, "dask_key_name")


def test_a_good_key_comes_back_as_it_is() -> None:
    assert check_key("load-1", "key") == "load-1"
