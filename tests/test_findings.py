"""Findings: one wording for what a report (after a run) and an explanation (before) both say."""

from __future__ import annotations

import time

import tarry

SLEEP = 0.05


def step(x: int) -> int:
    time.sleep(SLEEP)
    return x + 1


def chain(length: int) -> tarry.Delayed[int]:
    value = tarry.delayed(step)(0)
    for _ in range(length - 1):
        value = tarry.delayed(step)(value)
    return value


def test_a_chain_is_worded_alike_before_and_after_it_runs() -> None:
    graph = chain(3)
    before = tarry.explain(graph, profile=tarry.profile()).findings[0]
    with tarry.profile() as prof:
        graph.compute(scheduler="threads", num_workers=2)
    after = next(f for f in prof.report().findings if "one chain" in f)
    same = "the 3 tasks form one chain (step → step → step): each needs the one before"
    assert before.startswith(same)
    assert after.startswith(same)
    assert after.endswith("is the best any scheduler can do")  # measured: its span


def test_nothing_to_run_is_worded_alike() -> None:
    (kept,) = tarry.persist(tarry.delayed(step)(1), scheduler="sync")
    before = tarry.explain(kept, profile=tarry.profile()).findings
    with tarry.profile() as prof:
        kept.compute()
    assert (
        before
        == prof.report().findings
        == ["there is nothing to run: no lazy value, or only persisted ones"]
    )


def test_one_task_at_a_time_is_worded_alike() -> None:
    graph = tarry.delayed(sum)([tarry.delayed(step)(i) for i in range(3)])
    before = tarry.explain(graph, scheduler="sync", profile=tarry.profile()).findings
    with tarry.profile() as prof:
        graph.compute(scheduler="sync")
    after = prof.report().findings
    said = "the sync scheduler runs one task at a time"
    assert any(said in f for f in before), before
    assert any(said in f for f in after), after
