"""Shared fixtures: the schedulers every behavioural test runs on."""

from __future__ import annotations

import pytest

#: Every scheduler the cross-scheduler tests run on. Backends that need an
#: optional extra or start processes/clusters carry a mark, so a user without
#: that extra can deselect them (``-m "not ray"``).
SCHEDULER_PARAMS = [
    pytest.param("sync", id="sync"),
    pytest.param("threads", id="threads"),
]


@pytest.fixture(params=SCHEDULER_PARAMS)
def scheduler(request: pytest.FixtureRequest) -> str:
    """Name of a scheduler; tests using it run once per scheduler."""
    name: str = request.param
    return name
