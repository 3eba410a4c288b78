"""Caching across runs, end to end: loads, invalidation, resuming, corruption, explain."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import pytest

import tarry
from tarry import delayed
from tarry._cache.store import CacheFormatError, CacheWarning

SCHEDULERS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
    pytest.param("processes", id="processes", marks=pytest.mark.processes),
]

SOURCE = '''
import os

LOG = os.path.join(os.path.dirname(__file__), "calls.log")
STOP = os.path.join(os.path.dirname(__file__), "stop")


def note(name):
    with open(LOG, "a") as f:
        f.write(name + "\\n")


def normalise(x):
    return x * 2


def load(n):
    note("load")
    return list(range(n))


def clean(xs):
    """Clean the data."""
    note("clean")
    return [normalise(x) for x in xs]  # doubled


def count(xs):
    note("count")
    return len(xs)


def total(xs, n):
    note("total")
    if os.path.exists(STOP):
        raise RuntimeError("stopped on purpose")
    return sum(xs) + n
'''


class Pipeline:
    """A module of the user's in a folder of its own: edited, reloaded, its calls counted."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.path = folder / f"{name}.py"
        self.path.write_text(textwrap.dedent(SOURCE))
        self.log = folder / "calls.log"
        self.module: ModuleType = importlib.import_module(name)
        # worker processes cannot import it: send its functions by value
        cloudpickle.register_pickle_by_value(self.module)

    def edit(self, old: str, new: str) -> None:
        text = self.path.read_text()
        assert old in text
        self.path.write_text(text.replace(old, new))
        self.module = importlib.reload(self.module)

    def graph(self, n: int = 4, impure: str = "") -> Any:
        """``total(clean(load(n)), count(load(n)))``; the task named by ``impure`` is not pure."""
        m = self.module

        def lazy(func: Any) -> Any:
            return delayed(func, pure=func.__name__ != impure)

        data = lazy(m.load)(n)
        return lazy(m.total)(lazy(m.clean)(data), lazy(m.count)(data))

    def calls(self) -> list[str]:
        """The functions run since the last call, in order."""
        found = self.log.read_text().split() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return found


@pytest.fixture
def pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edits within a second are read
    monkeypatch.setattr(sys, "path", [str(tmp_path / "code"), *sys.path])
    (tmp_path / "code").mkdir()
    name = "cachepipe_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    pipeline = Pipeline(tmp_path / "code", name)
    yield pipeline
    cloudpickle.unregister_pickle_by_value(pipeline.module)
    sys.modules.pop(name, None)


@pytest.fixture
def where(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_second_run_loads_everything_and_runs_nothing(
    pipe: Pipeline, where: str, scheduler: str
) -> None:
    assert pipe.graph().compute(scheduler=scheduler, cache=where) == 16
    assert sorted(pipe.calls()) == ["clean", "count", "load", "total"]
    assert pipe.graph().compute(scheduler=scheduler, cache=where) == 16
    assert pipe.calls() == []


EDITS = [
    pytest.param(
        [("return [normalise(x) for x in xs]", "return [normalise(x) + 1 for x in xs]")],
        20,
        ["clean", "total"],
        id="body",
    ),
    pytest.param([("return x * 2", "return x * 3")], 22, ["clean", "total"], id="callee"),
    pytest.param(
        [
            ('"""Clean the data."""', '"""Clean the data: double each item."""'),
            ("# doubled", "# times two,\n    # as agreed"),
        ],
        16,
        [],
        id="docstring-and-comment",
    ),
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize(("edits", "value", "rerun"), EDITS)
def test_an_edit_reruns_the_function_and_its_readers_only(
    pipe: Pipeline,
    where: str,
    scheduler: str,
    edits: list[tuple[str, str]],
    value: int,
    rerun: list[str],
) -> None:
    pipe.graph().compute(scheduler=scheduler, cache=where)
    pipe.calls()
    for old, new in edits:
        pipe.edit(old, new)
    assert pipe.graph().compute(scheduler=scheduler, cache=where) == value
    assert pipe.calls() == rerun


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_an_interrupted_run_resumes_from_what_it_finished(
    pipe: Pipeline, where: str, scheduler: str
) -> None:
    stop = pipe.folder / "stop"
    stop.touch()
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        pipe.graph().compute(scheduler=scheduler, cache=where)
    assert sorted(pipe.calls()) == ["clean", "count", "load", "total"]
    stop.unlink()
    assert pipe.graph().compute(scheduler=scheduler, cache=where) == 16
    assert pipe.calls() == ["total"]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_corrupt_entry_warns_and_is_recomputed(
    pipe: Pipeline, where: str, scheduler: str
) -> None:
    pipe.graph().compute(scheduler=scheduler, cache=where)
    pipe.calls()
    entries = list(Path(where, "entries").rglob("*"))
    for path in entries:
        if path.is_file():
            path.write_bytes(path.read_bytes()[:20])
    with pytest.warns(CacheWarning, match="cannot be read"):
        assert pipe.graph().compute(scheduler=scheduler, cache=where) == 16
    assert sorted(pipe.calls()) == ["clean", "count", "load", "total"]
    assert pipe.graph().compute(scheduler=scheduler, cache=where) == 16  # rewritten
    assert pipe.calls() == []


def test_a_hit_skips_the_inputs_nothing_else_needs(pipe: Pipeline, where: str) -> None:
    m = pipe.module
    counted = delayed(m.count, pure=True)(delayed(m.load, pure=True)(3))
    assert counted.compute(scheduler="sync", cache=where) == 3
    pipe.calls()
    both = delayed(m.total, pure=True)(delayed(m.load, pure=True)(3), counted)
    assert both.compute(scheduler="sync", cache=where) == 6
    assert pipe.calls() == ["total"]  # count loaded; load loaded for total, never run


def test_impure_and_opted_out_tasks_always_run(pipe: Pipeline, where: str) -> None:
    for _ in range(2):
        assert pipe.graph(impure="count").compute(scheduler="sync", cache=where) == 16
    assert pipe.calls() == ["load", "clean", "count", "total", "count", "total"]
    never = delayed(pipe.module.load, pure=True).options(cache=False)
    for _ in range(2):
        never(2).compute(scheduler="sync", cache=where)
    assert pipe.calls() == ["load", "load"]
    opted_in = delayed(pipe.module.load).options(cache=True)
    for _ in range(2):
        opted_in(2).compute(scheduler="sync", cache=where)
    assert pipe.calls() == ["load"]


def test_a_pure_task_opted_out_runs_every_time_and_its_readers_load(
    pipe: Pipeline, where: str
) -> None:
    load = delayed(pipe.module.load, pure=True).options(cache=False)  # big, quick to redo
    clean = delayed(pipe.module.clean, pure=True)
    loaded = load(2)
    graph = clean(loaded)
    graph.compute(scheduler="sync", cache=where)
    assert pipe.calls() == ["load", "clean"]
    graph.compute(scheduler="sync", cache=where)
    assert pipe.calls() == []  # clean loads, so load is not needed
    plan = str(tarry.explain(loaded, cache=where).cache)
    assert "not cacheable: cache=False (it runs every time" in plan
    loaded.compute(scheduler="sync", cache=where)
    assert pipe.calls() == ["load"]  # never stored
    assert len(list(Path(where).glob("entries/*/*"))) == 1  # clean's result alone


def test_every_way_of_switching_it_on_and_off(pipe: Pipeline, where: str) -> None:
    graph = pipe.graph()
    with tarry.cache(where):
        graph.compute(scheduler="sync")
        assert pipe.calls() != []
        graph.compute(scheduler="sync")
        assert pipe.calls() == []
        graph.compute(scheduler="sync", cache=False)
        assert len(pipe.calls()) == 4
    graph.compute(scheduler="sync")  # off again after the block
    assert len(pipe.calls()) == 4
    with tarry.config.set(cache=where):
        tarry.compute(graph, scheduler="sync")
    assert pipe.calls() == []


def test_a_file_url_store(pipe: Pipeline, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/url-cache"
    assert pipe.graph().compute(scheduler="threads", cache=url) == 16
    pipe.calls()
    assert pipe.graph().compute(scheduler="threads", cache=url) == 16
    assert pipe.calls() == []


def test_a_store_of_unknown_format_fails_before_any_task_runs(
    pipe: Pipeline, tmp_path: Path
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "FORMAT").write_text("tarry-cache 99\n")
    with pytest.raises(CacheFormatError, match="tarry-cache 99"):
        pipe.graph().compute(scheduler="sync", cache=str(tmp_path / "old"))
    assert pipe.calls() == []


def reasons(x: Any, where: str) -> dict[str, tuple[str, str]]:
    """Per function name, what tarry.explain says a compute would do, and why."""
    found = tarry.explain(x, cache=where).cache
    assert found is not None
    return {t.name: (t.action, t.reason) for t in found.tasks}


def test_explain_says_why_each_task_would_load_or_run(pipe: Pipeline, where: str) -> None:
    assert set(reasons(pipe.graph(), where).values()) == {("run", "new")}
    assert not Path(where).exists()  # a dry run creates nothing
    pipe.graph().compute(scheduler="sync", cache=where)
    assert reasons(pipe.graph(), where) == {
        "total": ("load", "stored under its key"),
        "clean": ("skip", "not needed: what reads it loads"),
        "count": ("skip", "not needed: what reads it loads"),
        "load": ("skip", "not needed: what reads it loads"),
    }
    pipe.edit("return [normalise(x) for x in xs]", "return [normalise(x) + 1 for x in xs]")
    graph = pipe.graph()
    (clean_key,) = _keys(graph, "clean")
    assert reasons(graph, where) == {
        "total": ("run", f"input `{clean_key}` will be recomputed"),
        "clean": ("run", "`clean` changed (its code)"),
        "count": ("load", "stored under its key"),
        "load": ("load", "stored under its key"),
    }
    pipe.edit("return x * 2", "return x * 5")
    assert reasons(pipe.graph(), where)["clean"] == (
        "run",
        "`clean` changed (its code, and `normalise`, which it calls)",
    )
    assert reasons(pipe.graph(n=5), where)["load"] == ("run", "new argument value")
    why = reasons(pipe.graph(impure="count"), where)["count"]
    assert why[0] == "run"
    assert why[1].startswith("not cacheable: impure")
    text = str(tarry.explain(pipe.graph(), cache=where))
    assert f"cache at {where}: 2 load, 2 run, 0 skip" in text
    assert "`clean` changed (its code, and `normalise`, which it calls)" in text


def test_explain_lists_a_long_plan_in_part(where: str) -> None:
    double = delayed(lambda x: 2 * x, name="double", pure=True)
    text = str(tarry.explain(delayed(sum, pure=True)([double(i) for i in range(50)]), cache=where))
    assert "cache at" in text
    assert text.count("  run   double-") == 40
    assert text.endswith("... and 11 more (all of them in .tasks)")


def _keys(x: Any, *names: str) -> list[str]:
    from tarry._graph import walk

    return [t.key for t in walk([x._task]) if t.name in names]


def test_a_cached_tasks_traceback_shows_no_cache_frame(pipe: Pipeline, where: str) -> None:
    (pipe.folder / "stop").touch()
    with pytest.raises(RuntimeError) as info:
        pipe.graph().compute(scheduler="sync", cache=where)
    files = [frame.filename for frame in traceback.extract_tb(info.value.__traceback__)]
    assert files[-1] == str(pipe.path)
    assert not any(f"tarry{os.sep}_cache{os.sep}" in name for name in files)


@pytest.mark.dask
def test_a_file_url_store_on_dask(pipe: Pipeline, tmp_path: Path, dask_client: Any) -> None:
    url = f"file://{tmp_path}/dask-cache"
    # dask pickles functions by reference: its workers import the module
    folder = str(pipe.folder)
    dask_client.run(lambda: sys.path.insert(0, folder))
    try:
        with tarry.config.set(dask_client=dask_client):
            assert pipe.graph().compute(scheduler="dask", cache=url) == 16
            assert sorted(pipe.calls()) == ["clean", "count", "load", "total"]
            assert pipe.graph().compute(scheduler="dask", cache=url) == 16
        assert pipe.calls() == []
    finally:
        dask_client.run(lambda: sys.path.remove(folder))
