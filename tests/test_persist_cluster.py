"""``persist`` on Ray and Dask: results stay in the cluster, and later computes use them there.

Runs on the session's LocalCluster and local Ray cluster (``tests/conftest.py``).
"""

from __future__ import annotations

import gc
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_helpers import add, describe, fail_first, inc, make_worker_only, nap, wait_for

import tarry
from tarry import compute, delayed, persist

PARENT = os.getpid()

CLUSTERS = [
    pytest.param("dask", marks=pytest.mark.dask),
    pytest.param("ray", marks=pytest.mark.ray),
]


def _up(request: pytest.FixtureRequest, name: str) -> Iterator[str]:
    """Yield ``name``, with its cluster up (and tarry's dask client set) if it names one."""
    if name == "ray":
        request.getfixturevalue("ray_cluster")
    if name != "dask":
        yield name
        return
    with tarry.config.set(dask_client=request.getfixturevalue("dask_client")):
        yield name


@pytest.fixture(params=CLUSTERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of a cluster scheduler, its cluster up."""
    yield from _up(request, request.param)


@pytest.fixture(
    params=[
        "sync",
        "threads",
        pytest.param("processes", marks=pytest.mark.processes),
        pytest.param("the other cluster", marks=[pytest.mark.ray, pytest.mark.dask]),
    ]
)
def elsewhere(request: pytest.FixtureRequest, cluster: str) -> Iterator[str]:
    """A scheduler that is not ``cluster``: a local one, or the other engine."""
    name: str = request.param
    if name == "the other cluster":
        name = "ray" if cluster == "dask" else "dask"
    yield from _up(request, name)


def wait_for_file(path: str) -> str:
    """Wait (60 s at most) for ``path`` to exist, then return it."""
    assert wait_for(lambda: os.path.exists(path), 60)
    return path


def div(a: int, b: int) -> float:
    return a / b


def test_persist_returns_before_the_work_is_done(cluster: str, tmp_path: Path) -> None:
    go = str(tmp_path / "go")
    (kept,) = persist(delayed(wait_for_file)(go), scheduler=cluster)
    Path(go).touch()  # only now can the persisted task end: persist did not wait for it
    assert compute(delayed(len)(kept), scheduler=cluster) == (len(go),)


def test_a_later_compute_on_the_cluster_uses_the_value_where_it_is(cluster: str) -> None:
    # the value cannot be unpickled in this process: it must never come here
    (kept,) = persist(delayed(make_worker_only)(PARENT), scheduler=cluster)
    got = compute([delayed(describe)(kept, i) for i in range(3)], scheduler=cluster)
    assert [g.split("+")[1] for g in got[0]] == ["0", "1", "2"]


def test_a_compute_elsewhere_fetches_the_values_and_they_stay_held(
    cluster: str, elsewhere: str
) -> None:
    kept, other = persist(delayed(inc)(1), delayed(list)(range(3)), scheduler=cluster)
    readers = [kept + i for i in range(3)]
    assert compute(readers, delayed(len)(other), scheduler=elsewhere) == ([2, 3, 4], 3)
    # the persisted values stay held in the cluster, not fetched for good
    assert compute(kept, other, scheduler=cluster) == (2, [0, 1, 2])


@pytest.mark.dask
def test_a_dask_compute_elsewhere_fetches_in_one_gather(
    dask_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tarry.config.set(dask_client=dask_client):
        kept = persist(*[delayed(inc)(i) for i in range(4)], scheduler="dask")
    gathers: list[int] = []
    gather = dask_client.gather

    def counting(futures: list[Any]) -> Any:
        gathers.append(len(futures))
        return gather(futures)

    monkeypatch.setattr(dask_client, "gather", counting)
    total = delayed(sum)([k * 2 for k in kept] + [k + 1 for k in kept])
    assert total.compute(scheduler="threads") == 2 * 10 + 14
    assert gathers == [4]


def test_computing_a_persisted_value_itself_fetches_it(cluster: str) -> None:
    kept: tarry.Delayed[list[int]] = delayed(list)(range(3)).persist(scheduler=cluster)
    assert kept.compute(scheduler=cluster) == [0, 1, 2]
    assert compute({"kept": kept}, scheduler=cluster) == ({"kept": [0, 1, 2]},)
    (again,) = persist(kept, scheduler=cluster)  # still held, as it was
    assert again.compute(scheduler=cluster) == [0, 1, 2]


def held_in_dask(client: Any, key: str) -> bool:
    return key in client.who_has()


@pytest.mark.dask
def test_dropping_the_persisted_value_releases_the_dask_data(dask_client: Any) -> None:
    with tarry.config.set(dask_client=dask_client):
        (kept,) = persist(delayed(list)(range(10)), scheduler="dask")
        key = kept.key
        assert wait_for(lambda: held_in_dask(dask_client, key), 60)  # computed, and kept there
        assert compute(delayed(len)(kept), scheduler="dask") == (10,)
    assert held_in_dask(dask_client, key)
    del kept
    gc.collect()
    assert wait_for(lambda: not held_in_dask(dask_client, key), 60), dask_client.who_has()


@pytest.mark.ray
def test_dropping_the_persisted_value_releases_the_ray_object(ray_cluster: Any) -> None:
    core = ray_cluster._private.worker.global_worker.core_worker

    def counted() -> set[str]:  # the objects this process counts references to, by hex id
        return {bytes(ref).decode() for ref in core.get_all_reference_counts()}

    (kept,) = persist(delayed(list)(range(10)), scheduler="ray")
    assert compute(delayed(len)(kept), scheduler="ray") == (10,)
    object_id = kept._task.args[0].handle.hex()
    assert object_id in counted()
    del kept
    gc.collect()
    assert wait_for(lambda: object_id not in counted(), 60)


def test_a_failed_persisted_task_raises_in_the_compute_that_needs_it(
    cluster: str, elsewhere: str
) -> None:
    bad = delayed(div)(1, 0)
    with pytest.raises(ZeroDivisionError) as direct:
        compute(bad + 1, scheduler=cluster)
    (kept,) = persist(bad, scheduler=cluster)  # returns: the error waits in the cluster
    for where in (cluster, elsewhere):
        with pytest.raises(ZeroDivisionError) as later:
            compute(kept + 1, scheduler=where)
        assert str(later.value) == str(direct.value)
        assert (
            later.value.__notes__
            == direct.value.__notes__
            == [f"tarry: raised by task {bad.key!r} (div)"]
        )
        assert "return a / b" in "".join(traceback.format_exception(later.value))


def test_the_failed_task_is_named_when_it_is_not_in_the_later_graph(cluster: str) -> None:
    bad = delayed(div)(1, 0)
    (kept,) = persist(delayed(inc)(bad), scheduler=cluster)
    for where in (cluster, "sync"):
        with pytest.raises(ZeroDivisionError) as later:
            compute(kept + 1, scheduler=where)
        assert later.value.__notes__ == [f"tarry: raised by task {bad.key!r} (div)"]


def test_with_a_timeout_persist_waits_for_the_cluster_and_raises_in_time(
    cluster: str, tmp_path: Path
) -> None:
    with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
        persist(delayed(wait_for_file)(str(tmp_path / "never")), scheduler=cluster, timeout=0.5)
    with pytest.raises(ZeroDivisionError):
        persist(delayed(div)(1, 0), scheduler=cluster, timeout=120)
    kept = delayed(nap)(0.2).persist(scheduler=cluster, timeout=120)
    assert compute(kept, scheduler=cluster) == (0.2,)


def test_retries_apply_to_the_persisted_tasks(cluster: str, tmp_path: Path) -> None:
    flaky = delayed(fail_first)(str(tmp_path), 2, ConnectionError)
    (kept,) = persist(flaky, scheduler=cluster, retries=2)
    assert compute(delayed(add)(kept, 10), scheduler=cluster) == (13,)


def test_dask_computes_a_value_persisted_on_a_cluster(cluster: str) -> None:
    dask = pytest.importorskip("dask")
    kept: tarry.Delayed[list[int]] = delayed(list)(range(3)).persist(scheduler=cluster)
    assert dask.compute(delayed(len)(kept), scheduler="sync") == (3,)
    bad = delayed(div)(1, 0).persist(scheduler=cluster)
    with pytest.raises(ZeroDivisionError):
        dask.compute(bad + 1, scheduler="sync")
