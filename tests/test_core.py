"""The Run core: order (branches first), memory release, bookkeeping."""

from __future__ import annotations

import gc
import weakref
from typing import Any, ClassVar

from tarry import compute, delayed
from tarry._graph import Task
from tarry._schedule.core import Run


class Chunk:
    """A stand-in for a big intermediate whose lifetime we can watch."""

    alive: ClassVar[weakref.WeakSet[Chunk]] = weakref.WeakSet()
    peak = 0

    def __init__(self, n: int) -> None:
        self.n = n
        Chunk.alive.add(self)
        Chunk.peak = max(Chunk.peak, len(Chunk.alive))


def load(i: int) -> Chunk:
    gc.collect()  # count only what is really referenced
    return Chunk(i)


def combine(a: Chunk, b: Chunk) -> Chunk:
    gc.collect()
    return Chunk(a.n + b.n)


def tree(leaves: list[Any]) -> Any:
    while len(leaves) > 1:
        paired = [delayed(combine)(a, b) for a, b in zip(leaves[::2], leaves[1::2], strict=False)]
        leaves = paired + ([leaves[-1]] if len(leaves) % 2 else [])
    return leaves[0]


def test_memory_follows_the_frontier_not_the_graph(scheduler: str) -> None:
    Chunk.peak = 0
    total = tree([delayed(load)(i) for i in range(64)])
    result = compute(total, scheduler=scheduler, num_workers=2)[0]
    assert result.n == sum(range(64))
    # depth-first: about log2(64) + workers chunks alive, never all 64 leaves
    assert Chunk.peak <= 14, Chunk.peak


def test_sync_order_finishes_a_branch_before_opening_the_next() -> None:
    order: list[str] = []

    def step(name: str, *_: Any) -> str:
        order.append(name)
        return name

    a1 = delayed(step)("a1")
    a2 = delayed(step)("a2", a1)
    b1 = delayed(step)("b1")
    b2 = delayed(step)("b2", b1)
    delayed(step)("end", a2, b2).compute(scheduler="sync")
    assert order == ["a1", "a2", "b1", "b2", "end"]


def test_run_releases_inputs_and_keeps_targets() -> None:
    one = Task.literal("one", 1)
    two = Task("two", lambda x: x + 1, (one,), None, (one,), "inc")
    three = Task("three", lambda x: x + 1, (two,), None, (two,), "inc")
    run = Run([three, two])
    assert run.remaining == 2
    task = run.pop()
    assert task is two
    run.finish(two, 2)
    task = run.pop()
    assert task is three
    run.finish(three, 3)
    assert run.remaining == 0
    assert run.results() == {"three": 3, "two": 2}
    assert "one" not in run.values  # released once its only dependent ran


def test_duplicate_dependencies_and_shared_keys() -> None:
    x = delayed(lambda: 3)()
    assert compute(delayed(lambda a, b: a * b)(x, x), scheduler="sync") == (9,)
    y = x + 1
    assert compute([y, x + 1, y], scheduler="sync") == ([4, 4, 4],)


def _merge(a: int, b: int) -> int:
    return a + b


def _loads(n: int) -> list[Task]:
    return [Task(f"load{i}", int, (i,), None, (), "load") for i in range(n)]


def test_hold_roots_keeps_a_fold_one_load_ahead() -> None:
    l0, l1, l2, l3 = _loads(4)
    m1 = Task("m1", _merge, (l0, l1), None, (l0, l1), "merge")
    m2 = Task("m2", _merge, (m1, l2), None, (m1, l2), "merge")
    m3 = Task("m3", _merge, (m2, l3), None, (m2, l3), "merge")
    run = Run([m3])
    run.hold_roots = True
    assert (run.pop(), run.pop()) == (l0, l1)  # two workers load side by side
    run.finish(l0, 0)  # waits for l1, which is running: parked
    assert run.pop() is None  # loading l2 now would only make it wait too
    run.finish(l1, 1)
    assert run.pop() is m1
    assert run.pop() is l2  # one load ahead of the merge, no more
    run.finish(l2, 2)  # waits for m1, running
    assert run.pop() is None
    run.finish(m1, 1)
    assert run.pop() is m2
    assert run.pop() is l3
    run.finish(l3, 3)
    run.finish(m2, 3)
    assert run.pop() is m3
    run.finish(m3, 6)
    assert run.results() == {"m3": 6}


def test_hold_roots_never_holds_the_loads_of_a_gather() -> None:
    loads = _loads(4)
    gather = Task("gather", lambda *xs: sum(xs), tuple(loads), None, tuple(loads), "sum")
    run = Run([gather])
    run.hold_roots = True
    first = run.pop()
    assert first is not None
    assert run.pop() is not None
    run.finish(first, 0)  # the gather also waits for loads not started: not parked
    assert run.pop() is not None
    assert run.pop() is not None


def test_without_hold_roots_every_ready_task_is_handed_out() -> None:
    l0, l1, l2 = _loads(3)
    m1 = Task("m1", _merge, (l0, l1), None, (l0, l1), "merge")
    m2 = Task("m2", _merge, (m1, l2), None, (m1, l2), "merge")
    run = Run([m2])
    assert run.pop() is l0
    assert run.pop() is l1
    run.finish(l0, 0)
    assert run.pop() is l2
