"""The ``"dask"`` backend on the session's LocalCluster, and tarry values in ``dask.compute``."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from remote_helpers import (
    NeedsTwoError,
    add,
    describe,
    inc,
    make_worker_only,
    pid,
    raise_needs_two,
    size,
)

import tarry
from tarry import compute, delayed
from tarry._schedule import dask as tarry_dask

pytestmark = pytest.mark.dask
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def client(dask_client: Any) -> Iterator[Any]:
    """The session's client, as tarry's configured dask client in every test here."""
    with tarry.config.set(dask_client=dask_client):
        yield dask_client


def test_runs_on_the_cluster_workers() -> None:
    pids = [delayed(pid)(i) for i in range(6)]
    tree = [delayed(inc)(i) for i in range(16)]
    while len(tree) > 1:
        tree = [delayed(add)(tree[i], tree[i + 1]) for i in range(0, len(tree), 2)]
    text = delayed(str.join)(",", [delayed(str)(1), "(x, 'key')"])  # strings dask must not parse
    got_pids, got_tree, got_text = compute(pids, tree[0], text, scheduler="dask")
    assert PARENT not in got_pids
    assert got_tree == sum(range(1, 17))
    assert got_text == "1,(x, 'key')"


def test_uses_the_default_client_when_none_is_configured(client: Any) -> None:
    with tarry.config.set(dask_client=None), client.as_current():
        assert compute(delayed(inc)(1), scheduler="dask") == (2,)


def test_without_a_client_the_error_says_how_to_get_one() -> None:
    if distributed.client._get_global_client() is not None:
        pytest.skip("another test left a default dask client")
    with tarry.config.set(dask_client=None), pytest.raises(RuntimeError, match=r"Client\(\)"):
        compute(delayed(inc)(1), scheduler="dask")


def test_intermediate_results_move_between_workers_only() -> None:
    made = delayed(make_worker_only)(PARENT)
    readers = [delayed(describe)(made, i) for i in range(3)]
    (got,) = compute(readers, scheduler="dask")
    # "str": unpickled in another worker; "WorkerOnly": read where it was made
    assert [g.split("+")[1] for g in got] == ["0", "1", "2"]
    assert {g.split("+")[0] for g in got} <= {"str", "WorkerOnly"}


def test_large_shared_argument_is_one_graph_node() -> None:
    big = bytes(300_000)
    tasks = [delayed(size)(big, i) for i in range(5)]
    payload = [t._task for t in tasks]
    graph = tarry_dask.to_dask(payload, shared={id(big): big})
    nodes = [key for key in graph if key.startswith("object-")]
    assert len(nodes) == 1
    assert all(graph[t.key][3] == nodes[0] for t in payload)
    assert compute(tasks, scheduler="dask") == ([300_000 + i for i in range(5)],)


def test_worker_exception_keeps_type_message_traceback_and_key() -> None:
    bad = delayed(raise_needs_two)(delayed(inc)(1))
    with pytest.raises(NeedsTwoError) as info:
        compute(delayed(inc)(bad), scheduler="dask")
    assert str(info.value) == "2 and 3"
    text = "".join(traceback.format_exception(info.value))
    assert "raise NeedsTwoError(x, x + 1)" in text
    assert f"tarry: raised by task {bad.key!r} (raise_needs_two)" in info.value.__notes__
