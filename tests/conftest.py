"""Shared fixtures: the schedulers every behavioural test runs on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import tarry

#: Every scheduler the cross-scheduler tests run on. Backends that need an
#: optional extra or start processes/clusters carry a mark, so a user without
#: that extra can deselect them (``-m "not ray"``).
SCHEDULER_PARAMS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
    pytest.param("processes", id="processes", marks=pytest.mark.processes),
    pytest.param("ray", id="ray", marks=pytest.mark.ray),
    pytest.param("dask", id="dask", marks=pytest.mark.dask),
]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The ``ray`` module, on a local 2-CPU cluster started once per session.

    Ray's workers get the tests directory on their path, as pytest gives it
    to this process: functions defined in test modules are sent by reference.
    """
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        path = os.pathsep.join(
            filter(None, [os.path.dirname(__file__), os.environ.get("PYTHONPATH")])
        )
        ray.init(
            address="local",  # its own, even when `ray start` ran on this machine
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A ``distributed.Client`` on a LocalCluster of two one-thread worker processes.

    Not made the default client, so dask code elsewhere in the session keeps
    its local schedulers; the ``scheduler`` fixture hands it to tarry through
    the config. A task whose worker dies fails at once (no retry elsewhere).
    """
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def _use_scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    if name == "ray":
        request.getfixturevalue("ray_cluster")
    if name == "dask":
        with tarry.config.set(dask_client=request.getfixturevalue("dask_client")):
            yield name
        return
    yield name


@pytest.fixture(params=SCHEDULER_PARAMS)
def scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    """Name of a scheduler; tests using it run once per scheduler."""
    yield from _use_scheduler(request)


@pytest.fixture(params=SCHEDULER_PARAMS[2:])
def remote_scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    """Name of a scheduler that runs tasks in other processes (processes, ray, dask)."""
    yield from _use_scheduler(request)
