"""tarry.annotate and the options it gives the tasks built inside it; placement on Dask."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tarry
from tarry import annotate, compute, delayed
from tarry._graph import TaskOptions


def test_tasks_built_inside_a_block_carry_its_options_and_others_do_not() -> None:
    with annotate(retries=3, resources={"GPU": 1}):
        inside = delayed(abs)(-1)
        operator = inside + 1
    outside = delayed(abs)(-1)
    for lazy in (inside, operator):
        assert lazy._task.options == TaskOptions(retries=3, resources={"GPU": 1})
    assert outside._task.options is None


def test_an_inner_block_wins_over_an_outer_one_for_what_it_sets() -> None:
    with annotate(retries=1, retry_on=OSError), annotate(retries=4):
        task = delayed(abs)(-1)._task
    assert task.options == TaskOptions(retries=4, retry_on=(OSError,))


def test_a_block_ends_with_its_with_statement_even_on_error() -> None:
    with pytest.raises(RuntimeError), annotate(retries=2):
        raise RuntimeError
    assert delayed(abs)(-1)._task.options is None


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"retries": -1}, ValueError, "retries must be a whole number"),
        ({"retries": True}, ValueError, "retries must be a whole number"),
        ({"retry_on": "OSError"}, TypeError, "retry_on must be an exception class"),
        ({"retry_on": ()}, TypeError, "retry_on must be an exception class"),
        ({"resources": {"GPU": -1}}, TypeError, "resources must map resource names"),
        ({"resources": ["GPU"]}, TypeError, "resources must map resource names"),
        ({"workers": 3}, TypeError, "workers must be a worker's address or host name"),
        ({"workers": [""]}, TypeError, "workers must be a worker's address or host name"),
        ({"priority": "high"}, TypeError, "priority must be a number"),
        ({"priority": True}, TypeError, "priority must be a number"),
        ({"cache": "yes"}, TypeError, r"cache=\.\.\.\) must be True or False"),
    ],
)
def test_bad_options_are_refused_when_the_block_opens(
    options: dict[str, object], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says), annotate(**options):  # type: ignore[arg-type]
        pass


def test_a_functions_own_options_win_over_the_blocks_and_add_to_them() -> None:
    flaky = delayed(abs).options(retries=1, retry_on=ConnectionError)
    with annotate(retries=5, resources={"CPU": 2}):
        task = flaky(-1)._task
    assert task.options == TaskOptions(retries=1, retry_on=(ConnectionError,), resources={"CPU": 2})


def _noted(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x}\n")
    return x * 2


def test_a_block_with_cache_true_keeps_impure_results_across_runs(tmp_path: Path) -> None:
    log = str(tmp_path / "calls.log")
    for _ in range(2):
        with annotate(cache=True):
            cached = delayed(_noted)(1, log)  # not pure: cached only because the block says so
        with annotate(cache=False):
            uncached = delayed(_noted, pure=True)(2, log)
        assert compute(cached, uncached, scheduler="sync", cache=str(tmp_path / "c")) == (2, 4)
    assert Path(log).read_text().split() == ["1", "2", "2"]  # 1 ran, then loaded; 2 ran twice


def test_an_attribute_read_inside_a_block_has_its_options_wherever_it_is_used() -> None:
    with annotate(retries=2, cache=False):
        column = delayed(dict)(a=[1, 2]).get  # its getattr task is made below, outside
    total = delayed(len)(column)
    (getter,) = total._task.deps
    assert getter.name == "getattr"
    assert getter.options == TaskOptions(retries=2, cache=False)
    assert total._task.options is None


def test_options_survive_rebinding_and_pickling() -> None:
    import pickle

    flaky = delayed(abs).options(retries=2)
    again = pickle.loads(pickle.dumps(flaky))
    assert again(-1)._task.options == TaskOptions(retries=2)
    assert flaky.options(resources={"GPU": 1})(-1)._task.options == TaskOptions(
        retries=2, resources={"GPU": 1}
    )


def test_placement_options_are_set_by_blocks_and_functions_alike() -> None:
    with annotate(workers="gpu-node-1", priority=1):
        task = delayed(abs).options(workers=["a", "b"])(-1)._task
    assert task.options == TaskOptions(workers=("a", "b"), priority=1)


# -- placement on a dask cluster ----------------------------------------------------------


@pytest.fixture(scope="module")
def placed() -> Iterator[Any]:
    """A client of a cluster of two one-thread workers in this process, "gpu" and "cpu".

    Only "gpu" declares a resource, ``GPU=1``. In-process workers, so that
    tasks can note what they did in this process's memory.
    """
    distributed = pytest.importorskip("distributed")
    worker = {"cls": distributed.Worker, "options": {"nthreads": 1}}
    gpu = {"cls": distributed.Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}}
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0"}}
    with (
        distributed.SpecCluster({"gpu": gpu, "cpu": worker}, scheduler) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        tarry.config.set(dask_client=client),
    ):
        yield client


def worker_name(_: object = None) -> str:
    from distributed import get_worker

    return str(get_worker().name)


@pytest.mark.dask
def test_a_task_that_needs_a_resource_runs_on_a_worker_that_has_it(placed: Any) -> None:
    gpu_task = delayed(worker_name).options(resources={"GPU": 1})
    with annotate(resources={"GPU": 1}):
        in_block = [delayed(worker_name)(i) for i in range(4)]
    got = compute([gpu_task(i) for i in range(4)], in_block, scheduler="dask")
    assert got == (["gpu"] * 4, ["gpu"] * 4)


@pytest.mark.dask
def test_workers_pin_tasks(placed: Any) -> None:
    addresses = {
        info["name"]: address
        for address, info in placed.scheduler_info(n_workers=-1)["workers"].items()
    }
    on_cpu = delayed(worker_name).options(workers=addresses["cpu"])
    with annotate(workers=[addresses["gpu"]]):
        on_gpu = [delayed(worker_name)(i) for i in range(4)]
    assert compute([on_cpu(i) for i in range(4)], on_gpu, scheduler="dask") == (
        ["cpu"] * 4,
        ["gpu"] * 4,
    )


_order: list[int] = []
_gate = threading.Event()


def wait_for_the_gate() -> None:
    assert _gate.wait(60)


def note(i: int, _after: object) -> int:
    _order.append(i)
    return i


@pytest.mark.dask
def test_priority_orders_the_tasks_that_wait_for_one_thread(placed: Any) -> None:
    _order.clear()
    _gate.clear()
    cpu = [
        a
        for a, info in placed.scheduler_info(n_workers=-1)["workers"].items()
        if info["name"] == "cpu"
    ]
    gate = delayed(wait_for_the_gate).options(workers=cpu)()
    notes = [delayed(note).options(workers=cpu, priority=i)(i, gate) for i in range(6)]
    # all notes are ready at once, when the gate opens (they arrived with it, in one graph)
    threading.Timer(0.5, _gate.set).start()
    assert compute(notes, scheduler="dask") == (list(range(6)),)
    assert _order == list(reversed(range(6)))  # higher priority first


@pytest.mark.dask
def test_a_task_needing_resources_no_worker_has_is_warned_of(placed: Any) -> None:
    with (
        pytest.warns(UserWarning, match=r"needs resources \{'CPU': 2\}, and no worker"),
        pytest.raises(TimeoutError),  # dask lets it wait for such a worker
    ):
        delayed(worker_name).options(resources={"CPU": 2, "GPU": 1})().compute(
            scheduler="dask", timeout=1
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the gpu worker has one GPU: no warning
        assert (
            delayed(worker_name).options(resources={"GPU": 1})().compute(scheduler="dask") == "gpu"
        )
