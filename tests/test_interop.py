"""tarry and dask together (issue 15): tarry values in dask, dask collections in tarry,
and the settings and spellings a dask user keeps."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from collections.abc import Iterator
from operator import add
from typing import Any

import pytest

import tarry
from tarry import compute, delayed, persist
from tarry._compute import resolve_options
from tarry._interop import dask_settings

dask = pytest.importorskip("dask")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")  # dask.dataframe needs it
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
dd = pytest.importorskip("dask.dataframe")


def double(x: Any) -> Any:
    return x * 2


def total(x: Any) -> Any:
    return x.sum()


def frame(start: int) -> Any:
    return pd.DataFrame({"a": [start, start + 1]})


def divide(a: float, b: float) -> float:
    return a / b


def noted(notes: list[str], note: str, value: Any) -> Any:
    notes.append(note)
    return value


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    dask_settings._warned.clear()  # each test sees its own once-only warnings
    yield
    dask_settings._warned.clear()


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as made,
    ):
        yield made


# -- 1. tarry values inside dask ---------------------------------------------


def printed(code: str) -> list[str]:
    """The words a fresh interpreter prints running ``code``."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_tarry_imports_no_dask() -> None:
    code = "import sys, tarry; print(sum(m.split('.')[0] == 'dask' for m in sys.modules))"
    assert printed(code) == ["0"]


def test_without_dask_x_dask_is_tarrys_graph() -> None:
    code = (
        "import sys; sys.modules['dask'] = None; import tarry; "
        "x = tarry.delayed(abs)(-1); print(type(x.dask).__name__, x.key in x.dask)"
    )
    assert printed(code) == ["TaskGraph", "True"]


def test_without_dask_a_dask_protocol_object_is_a_plain_value() -> None:
    code = (
        "import sys; sys.modules['dask'] = None; import tarry\n"
        "class Graph:\n    def __dask_graph__(self): return {'k': 1}\n"
        "print(type(tarry.compute(Graph(), scheduler='sync')[0]).__name__)"
    )
    assert printed(code) == ["Graph"]


def test_looking_for_dask_settings_imports_nothing() -> None:
    code = (
        "import sys, dask, tarry; tarry.delayed(abs)(-1).compute(); "
        "print('distributed' in sys.modules, 'dask.diagnostics' in sys.modules)"
    )
    assert printed(code) == ["False", "False"]


def test_a_tarry_value_is_a_dask_collection() -> None:
    x = delayed(sum)([1, 2])
    assert dask.is_dask_collection(x)
    assert dask.compute(x, dask.delayed(abs)(-3), scheduler="sync") == (3, 3)
    assert dask.compute(x + 1) == (4,)  # dask's default scheduler, the same as dask.delayed's


def test_dask_persist_keeps_the_value_and_its_key() -> None:
    calls: list[str] = []
    x = delayed(noted)(calls, "ran", 5)
    (kept,) = dask.persist(x, scheduler="sync")
    assert calls == ["ran"]  # by persist
    assert isinstance(kept, tarry.Delayed)
    assert kept.key == x.key
    assert (kept + 1).compute(scheduler="sync") == 6
    assert calls == ["ran"]
    mixed = dask.persist(delayed(double)(2), dask.delayed(double)(3), scheduler="sync")
    assert tarry.compute(*mixed, scheduler="sync") == (4, 6)


def test_a_tarry_value_inside_a_dask_value() -> None:
    x = delayed(double)(4)
    assert dask.delayed(add)(x, 1).compute(scheduler="sync") == 9


def test_x_dask_is_daskss_graph_with_a_layer_per_key() -> None:
    x = delayed(double)(delayed(abs)(-2))
    assert x.key in dict(x.dask)
    graph: Any = x.dask
    assert set(graph.layers) == set(x.graph)
    assert x.__dask_layers__() == (x.key,)


def test_from_delayed_makes_dask_array_bag_and_dataframe() -> None:
    arr = da.from_delayed(delayed(np.ones)(3), shape=(3,), dtype=float)
    assert arr.sum().compute(scheduler="sync") == 3.0
    bag = db.from_delayed([delayed(list)([1, 2]), delayed(list)([3])])
    assert bag.compute(scheduler="sync") == [1, 2, 3]
    df = dd.from_delayed([delayed(frame)(0), delayed(frame)(10)], meta={"a": "int64"})
    assert df.a.sum().compute(scheduler="sync") == 22


def test_bind_keeps_the_dependency() -> None:
    from dask.graph_manipulation import bind

    order: list[str] = []
    parent = delayed(noted)(order, "parent", 6)
    child = delayed(noted)(order, "child", 12)
    bound = bind(child, parent)
    assert bound.compute(scheduler="sync") == 12
    assert order == ["parent", "child"]


@pytest.mark.dask
def test_client_compute_and_persist(client: Any) -> None:
    x = delayed(double)(delayed(sum)([1, 2]))
    assert client.compute(x).result() == 6
    (kept,) = client.persist([x])
    assert kept.compute(scheduler="threads") == 6
    assert client.compute(dask.delayed(add)(x, 1)).result() == 7


def test_dasks_own_schedulers_retry_a_tarry_task_for_the_exceptions_its_options_name() -> None:
    tries = iter([ConnectionError("first"), ConnectionError("second"), 7, KeyError("k"), 8])

    def flaky() -> Any:
        got = next(tries)
        if isinstance(got, Exception):
            raise got
        return got

    retried = delayed(flaky).options(retries=2, retry_on=ConnectionError)
    assert dask.compute(retried(), scheduler="sync") == (7,)
    with pytest.raises(KeyError):  # not a ConnectionError: not retried
        dask.compute(retried(), scheduler="sync")


def annotations_seen() -> Any:
    """The annotations distributed ran this task with."""
    from distributed import get_worker

    worker = get_worker()
    return worker.state.tasks[worker.get_current_task()].annotations


@pytest.mark.dask
def test_a_tarry_tasks_placement_reaches_distributed_as_annotations(client: Any) -> None:
    (address,) = client.scheduler_info()["workers"]
    with tarry.annotate(workers=address, priority=4):
        placed = delayed(annotations_seen)()
    seen = client.compute(placed).result()
    assert seen["workers"] == [address]
    assert seen["priority"] == 4


@pytest.mark.dask
@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_a_client_persisted_value_is_fetched_once_for_a_local_scheduler(
    client: Any, scheduler: str
) -> None:
    (kept,) = client.persist([delayed(double)(21)])
    assert compute(kept, delayed(add)(kept, 1), scheduler=scheduler) == (42, 43)


@pytest.mark.dask
def test_a_client_persisted_failure_raises_in_the_compute_that_needs_it(client: Any) -> None:
    (failed,) = client.persist([delayed(divide, name="divide")(1, 0)])
    with pytest.raises(ZeroDivisionError) as raised:
        compute(delayed(abs)(failed), scheduler="processes")
    assert "(divide)" in str(raised.value.__notes__)


# -- 3. dask collections inside tarry ------------------------------------------


def test_dask_collections_arrive_as_values(scheduler: str) -> None:
    arr = da.arange(20, chunks=5) + 1
    df = dd.from_pandas(pd.DataFrame({"a": range(10)}), npartitions=3)
    (whole,) = compute(arr, scheduler=scheduler)
    assert isinstance(whole, np.ndarray)
    assert whole.sum() == 210
    assert delayed(total)(arr).compute(scheduler=scheduler) == 210
    assert delayed(total)(df).compute(scheduler=scheduler)["a"] == 45
    parts = [delayed(total)(p) for p in arr.to_delayed().ravel()]
    assert compute(parts, scheduler=scheduler) == ([15, 40, 65, 90],)
    assert compute(dask.delayed(abs)(-1), scheduler=scheduler) == (1,)


class NoGraph:
    """Like an xarray object holding numpy data: dask's protocol, but no dask graph."""

    def __dask_graph__(self) -> None:
        return None


def test_an_object_without_a_dask_graph_is_a_plain_value() -> None:
    plain = NoGraph()
    assert delayed(lambda x: x)(plain).compute(scheduler="sync") is plain
    assert compute(plain, scheduler="sync") == (plain,)


def test_delayed_of_a_dask_value_is_its_value() -> None:
    assert delayed(dask.delayed(abs)(-4)).compute(scheduler="sync") == 4
    assert delayed(dask.delayed(abs)(-4), traverse=False).compute(scheduler="sync") == 4
    assert delayed(da.arange(4, chunks=2)).compute(scheduler="sync").tolist() == [0, 1, 2, 3]


def test_dask_tasks_become_tarry_tasks_under_their_keys() -> None:
    arr = da.ones(10, chunks=5)
    value = delayed(total)(arr)
    assert {str(k) for k in arr.dask} <= set(value.graph)
    assert set(arr.dask) <= set(value.dask)


def test_a_chunk_two_collections_share_is_computed_once() -> None:
    calls: list[int] = []

    def source() -> Any:
        calls.append(1)
        return np.arange(4)

    base = da.core.from_func(source, shape=(4,), dtype=int)
    assert delayed(sum)([base + 1, base + 2]).compute(scheduler="threads").tolist() == [3, 5, 7, 9]
    assert calls == [1]


def test_pure_keys_of_a_dask_collection_are_stable() -> None:
    arr = da.arange(6, chunks=3)
    assert delayed(len, pure=True)(arr).key == delayed(len, pure=True)(arr).key


# -- 4. dask's spellings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("dask_name", "tarry_name"),
    [("synchronous", "sync"), ("single-threaded", "sync"), ("threading", "threads"),
     pytest.param("multiprocessing", "processes", marks=pytest.mark.processes)],
)  # fmt: skip
def test_dask_scheduler_names(dask_name: str, tarry_name: str) -> None:
    assert resolve_options(dask_name, None).name == tarry_name
    assert delayed(abs)(-1).compute(scheduler=dask_name) == 1
    with tarry.config.set(scheduler=dask_name):
        assert tarry.config.get("scheduler") == tarry_name


def test_compute_traverse_false_leaves_containers_alone() -> None:
    x = delayed(abs)(-1)
    held = [x]
    assert compute(x, held, scheduler="sync", traverse=False) == (1, held)
    assert compute(x, held, scheduler="sync") == (1, [1])


def test_persist_traverse_false_leaves_containers_alone() -> None:
    x = delayed(abs)(-1)
    held = [x]
    kept, same = persist(x, held, scheduler="sync", traverse=False)
    assert same is held
    assert held[0] is x
    assert kept.compute(scheduler="sync") == 1
    (inside,) = persist(held, scheduler="sync")
    assert inside[0] is not x
    assert compute(inside[0], scheduler="sync") == (1,)


def test_delayed_pure_setting() -> None:
    with tarry.config.set(delayed_pure=True):
        assert tarry.config.get("delayed_pure") is True
        assert delayed(add)(1, 2).key == delayed(add)(1, 2).key
    assert delayed(add)(1, 2).key != delayed(add)(1, 2).key


def test_visualize_color_order() -> None:
    x = delayed(sum)([delayed(abs)(-i) for i in range(3)])
    dot = x.visualize(color="order", format="dot", filename=None).data
    assert "order 1" in dot
    assert "order 4" in dot


def test_optimize_returns_values_ready_to_compute() -> None:
    x = delayed(abs)(-1)
    assert tarry.optimize(x, [x], traverse=False) == (x, [x])
    with pytest.raises(TypeError, match="traverse"):
        tarry.optimize(x, traverse="no")  # type: ignore[arg-type]


def test_lambda_keys_are_named_as_in_dask() -> None:
    assert delayed(lambda: 1)().key.startswith("lambda-")


# -- 5. settings a dask user leaves in place ---------------------------------------


def test_dask_config_scheduler_is_honoured() -> None:
    with dask.config.set(scheduler="synchronous"), tarry.profile() as profile:
        delayed(abs)(-1).compute()
    assert [r.scheduler for r in profile.records] == ["sync"]
    with dask.config.set(scheduler="synchronous"), tarry.config.set(scheduler="threads"):
        assert resolve_options(None, None).name == "threads"  # tarry's own setting wins


def test_an_unknown_dask_scheduler_setting_warns_once() -> None:
    with dask.config.set(scheduler=lambda dsk, keys, **kw: None):
        with pytest.warns(UserWarning, match="tarry ignores dask.config's scheduler"):
            assert resolve_options(None, None).name == "threads"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            resolve_options(None, None)


@pytest.mark.dask
def test_a_default_client_runs_the_compute_and_says_so() -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as default,
    ):
        bar = io.StringIO()
        with (
            pytest.warns(UserWarning, match="distributed.Client"),
            tarry.profile() as profile,
            tarry.progress(min_time=0, file=bar),
        ):
            assert delayed(double)(4).compute() == 8
        assert [r.scheduler for r in profile.records] == ["dask"]
        assert bar.getvalue().splitlines()[-1].lstrip("\r").startswith("dask: 100%")
        assert resolve_options(None, None).settings.dask_client is default
        assert resolve_options("threads", None).name == "threads"  # an explicit choice wins
        nested = default.submit(lambda: resolve_options(None, None).name).result()
        assert nested == "threads"  # in a task on a worker: local, not back to the cluster
    assert resolve_options(None, None).name == "threads"


def test_a_dask_progress_bar_turns_on_tarrys() -> None:
    diagnostics: Any = pytest.importorskip("dask.diagnostics")

    with diagnostics.ProgressBar():
        assert resolve_options(None, None).progress
        assert not resolve_options(None, None, progress=False).progress
    assert not resolve_options(None, None).progress
    with diagnostics.Profiler(), pytest.warns(UserWarning, match="tarry.profile"):
        resolve_options(None, None)
