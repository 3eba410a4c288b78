"""Noticing a lost Ray cluster, without a cluster: addresses where nothing listens."""

from __future__ import annotations

from typing import Any

import pytest

from tarry._schedule import ray_connect
from tarry._schedule.ray_connect import ClusterLostError, Lifeline, check_reachable

#: nothing listens on port 1 of this machine (a privileged port no test opens)
NOBODY = "127.0.0.1:1"


class NoContext:
    """A ``ray`` module whose runtime context says nothing (as over ``ray://``)."""

    def get_runtime_context(self) -> Any:
        raise RuntimeError("not connected")


def test_connecting_where_nothing_listens_fails_at_once_naming_the_address() -> None:
    for address in (NOBODY, f"ray://{NOBODY}"):
        with pytest.raises(ConnectionError) as info:
            check_reachable(address)
        assert str(info.value).startswith(f"no Ray cluster answers at {address}: ")
    check_reachable("auto")  # names no head: left to Ray


@pytest.mark.parametrize(
    ("ours", "then"),
    [
        (True, "tarry disconnected from it: the next Ray compute connects again"),
        (False, "Ray ends this process once its head has been gone for 60 s"),
    ],
)
def test_a_head_refusing_connections_long_enough_is_a_lost_cluster(
    monkeypatch: pytest.MonkeyPatch, ours: bool, then: str
) -> None:
    monkeypatch.setattr(ray_connect, "LOST_AFTER", 0.0)
    monkeypatch.setattr(ray_connect, "_LOOK_EVERY", 0.0)
    lifeline = Lifeline(NoContext(), NOBODY, ours)
    lifeline.check()  # the first refusal: not lost yet
    with pytest.raises(ClusterLostError) as info:
        lifeline.check()
    assert isinstance(info.value, ConnectionError)
    assert str(info.value).startswith(
        f"lost the Ray cluster at {NOBODY} (its head has refused connections for 0 s): "
    )
    assert then in str(info.value)


def test_a_head_that_answers_again_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_connect, "LOST_AFTER", 0.0)
    monkeypatch.setattr(ray_connect, "_LOOK_EVERY", 0.0)
    answers = iter([False, True, False])
    monkeypatch.setattr(ray_connect, "_answers", lambda head: next(answers))
    lifeline = Lifeline(NoContext(), NOBODY, True)
    for _ in range(3):
        lifeline.check()  # refused, answered (the count starts again), refused
