"""Cache keys: what invalidates a cached result, and what does not."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tarry import delayed
from tarry._cache import keys as keys_module
from tarry._cache.keys import CacheKeys, Keyed, NotCacheable
from tarry._graph import Task
from tarry._tokens import _Describer

SOURCE = '''
import json


def normalise(x):
    return x * 2


def clean(xs):
    """Clean the data."""
    # double every item
    return [normalise(x) for x in xs]


def dump(xs):
    return json.dumps(xs)


class Scaler:
    def __init__(self, k):
        self.k = k

    def scale(self, x):
        return x * self.k


def use_scaler(scaler, x):
    return scaler.scale(x)
'''


class Module:
    """A module of the user's, written to a folder, that a test edits and reloads."""

    def __init__(self, folder: Path, name: str, source: str) -> None:
        self.path = folder / f"{name}.py"
        self.path.write_text(textwrap.dedent(source))
        sys.path.insert(0, str(folder))
        self.module: ModuleType = importlib.import_module(name)

    def edit(self, old: str, new: str) -> ModuleType:
        text = self.path.read_text()
        assert old in text
        self.path.write_text(text.replace(old, new))
        self.module = importlib.reload(self.module)
        return self.module


@pytest.fixture
def user_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Module]:
    # no .pyc: an edit within the same second must still be read
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"cachekeys_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    module = Module(tmp_path, name, SOURCE)
    yield module
    sys.modules.pop(name, None)


def key_of(func: Callable[..., Any], *args: Any) -> str:
    found = CacheKeys().of(delayed(func, pure=True)(*args)._task)
    assert isinstance(found, Keyed), found
    return found.key


def test_same_call_same_key_in_a_new_run(user_module: Module) -> None:
    clean = user_module.module.clean
    assert key_of(clean, [1, 2]) == key_of(clean, [1, 2]) != key_of(clean, [1, 3])


def test_docstring_and_comment_edits_keep_the_key(user_module: Module) -> None:
    before = key_of(user_module.module.clean, [1, 2])
    edited = user_module.edit('"""Clean the data."""', '"""Clean the data, twice as well."""')
    assert key_of(edited.clean, [1, 2]) == before
    edited = user_module.edit("# double every item", "# times two\n    # (more lines)")
    assert key_of(edited.clean, [1, 2]) == before
    edited = user_module.edit('    """Clean the data, twice as well."""\n', "")
    assert key_of(edited.clean, [1, 2]) == before


def test_a_body_edit_changes_the_key(user_module: Module) -> None:
    before = key_of(user_module.module.clean, [1, 2])
    edited = user_module.edit(
        "return [normalise(x) for x in xs]", "return [normalise(x) for x in xs][::-1]"
    )
    assert key_of(edited.clean, [1, 2]) != before


def test_a_callee_edit_changes_the_callers_key(user_module: Module) -> None:
    before = key_of(user_module.module.clean, [1, 2])
    edited = user_module.edit("return x * 2", "return x * 3")
    assert key_of(edited.clean, [1, 2]) != before


def test_a_callee_edit_in_an_imported_module_changes_the_callers_key(
    user_module: Module, tmp_path: Path
) -> None:
    helper = user_module.module.__name__
    caller = Module(
        tmp_path,
        f"{helper}_caller",
        f"import {helper}\n\n\ndef twice(xs):\n    return {helper}.clean(xs) * 2\n",
    )
    try:
        before = key_of(caller.module.twice, [1, 2])
        user_module.edit("return x * 2", "return x * 3")  # the callee's callee
        assert key_of(caller.module.twice, [1, 2]) != before
    finally:
        sys.modules.pop(caller.module.__name__, None)


def test_a_method_edit_of_a_users_class_changes_the_key(user_module: Module) -> None:
    module = user_module.module
    before = key_of(module.use_scaler, module.Scaler(2), 1)
    edited = user_module.edit("return x * self.k", "return x * self.k + 1")
    assert key_of(edited.use_scaler, edited.Scaler(2), 1) != before


def test_keys_record_the_users_functions_they_cover(user_module: Module) -> None:
    found = CacheKeys().of(delayed(user_module.module.clean, pure=True)([1])._task)
    assert isinstance(found, Keyed)
    name = user_module.module.__name__
    assert set(found.functions) == {f"{name}:clean", f"{name}:normalise"}


def test_a_package_upgrade_changes_the_key(
    user_module: Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = user_module.module.dump  # calls json.dumps: the standard library's
    before = key_of(dump, [1])
    real = keys_module.package_version
    monkeypatch.setattr(
        keys_module,
        "package_version",
        lambda module: "python 99.0" if module.startswith("json") else real(module),
    )
    assert key_of(dump, [1]) != before


def test_defaults_and_closures_count() -> None:
    def make(k: int) -> Callable[[int], int]:
        def scaled(x: int, offset: int = 0) -> int:
            return x * k + offset

        return scaled

    assert key_of(make(2), 1) != key_of(make(3), 1)
    assert key_of(make(2), 1) == key_of(make(2), 1)


def test_lambdas_differ_by_their_constants() -> None:
    assert key_of(lambda: "x") != key_of(lambda: "y")


def test_inputs_count_by_their_cache_keys() -> None:
    double = delayed(lambda x: 2 * x, pure=True)
    keys = CacheKeys()
    one, other = keys.of(double(double(1))._task), keys.of(double(double(2))._task)
    assert isinstance(one, Keyed)
    assert isinstance(other, Keyed)
    assert one.key != other.key


def test_impure_and_opted_out_tasks_are_not_cacheable() -> None:
    keys = CacheKeys()
    impure = keys.of(delayed(abs)(-1)._task)
    assert isinstance(impure, NotCacheable)
    assert impure.reason.startswith("impure")
    impure_out = keys.of(delayed(abs).options(cache=False)(-1)._task)
    assert impure_out == NotCacheable("cache=False")
    pure_out = keys.of(delayed(abs, pure=True).options(cache=False)(-1)._task)
    assert isinstance(pure_out, Keyed)  # keyed for its readers...
    assert not pure_out.stored  # ...and never stored
    opted_in = keys.of(delayed(abs).options(cache=True)(-1)._task)
    assert isinstance(opted_in, Keyed)


def test_readers_of_an_uncacheable_input_are_not_cacheable() -> None:
    impure = delayed(abs)(-1)
    found = CacheKeys().of(delayed(abs, pure=True)(impure)._task)
    assert isinstance(found, NotCacheable)
    assert f"input `{impure.key}` is not cacheable" in found.reason


@pytest.mark.parametrize(
    ("argument", "says"),
    [(threading.Lock(), "type lock can be neither pickled nor described"), (object(), "object()")],
)
def test_an_argument_that_cannot_be_described_is_not_cacheable(argument: Any, says: str) -> None:
    found = CacheKeys().of(delayed(id, pure=True)(argument)._task)
    assert isinstance(found, NotCacheable)
    assert says in found.reason


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the NumPy arrays described from now on, in order."""
    seen: list[int] = []
    real = _Describer.numpy

    def counting(self: _Describer, obj: Any, np_module: Any) -> None:
        seen.append(id(obj))
        real(self, obj, np_module)

    monkeypatch.setattr(_Describer, "numpy", counting)
    return seen


def test_a_large_literal_is_hashed_once_per_run(hashed: list[int]) -> None:
    big = np.arange(100_000)
    total = delayed(np.sum, pure=True)
    tasks = [total(big, axis=0)._task, total(big)._task, delayed(len, pure=True)(big)._task]
    hashed.clear()  # building pure tasks hashed it for their task keys
    keys = CacheKeys()
    found = [keys.of(t) for t in tasks]
    assert len({f.key for f in found if isinstance(f, Keyed)}) == 3
    assert hashed == [id(big)]
    CacheKeys().of(tasks[0])  # a new run hashes it again
    assert hashed == [id(big), id(big)]


def test_a_pure_value_is_not_hashed_again(hashed: list[int]) -> None:
    big, other = np.arange(100_000), np.arange(1, 100_001)
    tasks = [delayed(np.sum, pure=True)(delayed(a, pure=True))._task for a in (big, other)]
    hashed.clear()  # building them hashed the arrays for their task keys
    found = [CacheKeys().of(t) for t in tasks]
    assert hashed == []  # their task keys are their content's tokens already
    assert isinstance(found[0], Keyed)
    assert isinstance(found[1], Keyed)
    assert found[0].key != found[1].key


def test_a_container_of_lazy_values_is_keyed_by_its_inputs() -> None:
    double = delayed(lambda x: 2 * x, pure=True)
    pair = delayed([double(1), {"b": double(2)}])  # not pure itself: a container
    found = CacheKeys().of(delayed(len, pure=True)(pair)._task)
    assert isinstance(found, Keyed)
    other = delayed([double(1), {"b": double(3)}])
    assert CacheKeys().of(delayed(len, pure=True)(other)._task) != found


def test_a_literal_task_is_keyed_by_its_value() -> None:
    keys = CacheKeys()
    one = keys.of(Task.literal("a", [1, 2]))
    assert one == keys.of(Task.literal("b", [1, 2])) != keys.of(Task.literal("c", [1, 3]))


def test_a_function_is_described_once_per_run(
    user_module: Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    described: list[str] = []
    real = _Describer.state

    def counting(self: _Describer, func: Any) -> None:
        described.append(func.__name__)
        real(self, func)

    monkeypatch.setattr(_Describer, "state", counting)
    clean = delayed(user_module.module.clean, pure=True)
    tasks = [clean([i])._task for i in range(50)]
    described.clear()  # building pure tasks described it for their task keys
    keys = CacheKeys()
    assert len({str(keys.of(t)) for t in tasks}) == 50
    assert sorted(described) == ["clean", "normalise"]  # not 50 times each
    CacheKeys().of(tasks[0])  # a new run describes it again
    assert len(described) == 4


def test_a_key_is_the_same_whichever_task_a_run_keys_first(tmp_path: Path) -> None:
    """A function is described once per run (``plain``: its later calls take a short
    cut), unless it is in a cycle (``ping`` calls ``pong`` calls ``ping``): the
    same keys in any order, and whether a task is the first of its function or not."""
    cycle = Module(
        tmp_path,
        "cachekeys_cycle",
        "def ping(n):\n    return n and pong(n - 1)\n\n\n"
        "def pong(n):\n    return n and ping(n - 1)\n\n\n"
        "def both(n):\n    return ping(n) + pong(n)\n\n\n"
        "def plain(n):\n    return n + 1\n",
    )
    try:
        m = cycle.module
        lazy = {name: delayed(getattr(m, name), pure=True) for name in ("ping", "pong", "both")}
        lazy["plain"] = delayed(m.plain, pure=True)
        tasks = [f(n)._task for f in lazy.values() for n in (1, 2, "2")]
        tasks.append(lazy["both"](lazy["ping"](3))._task)  # an input, by its key
        tasks.append(lazy["plain"](lazy["ping"](3))._task)

        def keyed(order: list[Task]) -> dict[str, str]:
            keys = CacheKeys()
            found = {t.key: keys.of(t) for t in order}
            return {k: v.key for k, v in found.items() if isinstance(v, Keyed)}

        first = keyed(tasks)
        assert len(set(first.values())) == len(tasks)
        assert keyed(tasks[::-1]) == first
        assert keyed(tasks[1::2] + tasks[::2]) == first
        alone = {t.key: keyed([t])[t.key] for t in tasks}  # each one first in its run
        assert alone == first
    finally:
        sys.modules.pop("cachekeys_cycle", None)


UPGRADE_SCRIPT = """
import json, sys
import tinypkg, usercode
from tarry import delayed
from tarry._cache.keys import CacheKeys

keys = CacheKeys()
tasks = {
    "uses": delayed(usercode.uses, pure=True)(1),
    "library": delayed(tinypkg.scale, pure=True)(1),
    "unrelated": delayed(usercode.unrelated, pure=True)(1),
}
print(json.dumps({name: keys.of(x._task).key for name, x in tasks.items()}))
"""


def test_upgrading_an_installed_package_changes_the_keys_of_what_uses_it(tmp_path: Path) -> None:
    """A real distribution (a ``.dist-info`` in a virtualenv's site-packages), upgraded
    without a change to its code: what calls into it gets new keys, the rest keeps them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(
        subprocess.run([python, "-c", purelib], capture_output=True, text=True).stdout.strip()
    )
    (site / "tinypkg").mkdir(parents=True)
    (site / "tinypkg" / "__init__.py").write_text("def scale(x):\n    return x * 2\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "usercode.py").write_text(
        "import tinypkg\n\n\ndef uses(x):\n    return tinypkg.scale(x) + 1\n\n\n"
        "def unrelated(x):\n    return x + 1\n"
    )
    src = Path(keys_module.__file__).parents[2]  # this tarry, not an installed one
    env = {"PYTHONPATH": os.pathsep.join([str(src), str(tmp_path / "code")])}

    def keys_with(version: str) -> dict[str, str]:
        for old in site.glob("tinypkg-*.dist-info"):
            shutil.rmtree(old)
        info = site / f"tinypkg-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n"
        )
        run = subprocess.run(
            [python, "-c", UPGRADE_SCRIPT], capture_output=True, text=True, env=env, timeout=120
        )
        assert run.returncode == 0, run.stderr
        found: dict[str, str] = json.loads(run.stdout)
        return found

    before = keys_with("1.0")
    assert keys_with("1.0") == before  # another process, the same keys
    after = keys_with("1.1")
    assert after["uses"] != before["uses"]
    assert after["library"] != before["library"]
    assert after["unrelated"] == before["unrelated"]
