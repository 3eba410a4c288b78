"""The Run core: order (branches first, memory-aware ranks), memory release, bookkeeping."""

from __future__ import annotations

import gc
import importlib.util
import threading
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarry import compute, delayed
from tarry._graph import Task, TaskOptions
from tarry._schedule import Settings
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


def test_hold_back_keeps_a_fold_one_load_ahead() -> None:
    l0, l1, l2, l3 = _loads(4)
    m1 = Task("m1", _merge, (l0, l1), None, (l0, l1), "merge")
    m2 = Task("m2", _merge, (m1, l2), None, (m1, l2), "merge")
    m3 = Task("m3", _merge, (m2, l3), None, (m2, l3), "merge")
    run = Run([m3])
    run.hold_back(None)
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


def test_hold_back_never_holds_the_loads_of_a_gather() -> None:
    loads = _loads(4)
    gather = Task("gather", lambda *xs: sum(xs), tuple(loads), None, tuple(loads), "sum")
    run = Run([gather])
    run.hold_back(None)
    first = run.pop()
    assert first is not None
    assert run.pop() is not None
    run.finish(first, 0)  # the gather also waits for loads not started: not parked
    assert run.pop() is not None
    assert run.pop() is not None


def test_without_hold_back_every_ready_task_is_handed_out() -> None:
    l0, l1, l2 = _loads(3)
    m1 = Task("m1", _merge, (l0, l1), None, (l0, l1), "merge")
    m2 = Task("m2", _merge, (m1, l2), None, (m1, l2), "merge")
    run = Run([m2])
    assert run.pop() is l0
    assert run.pop() is l1
    run.finish(l0, 0)
    assert run.pop() is l2


# -- memory-aware order ---------------------------------------------------------------


class Counted:
    """A result that counts how many of its kind are alive, and the most at once."""

    lock = threading.Lock()
    alive = 0
    peak = 0

    def __init__(self) -> None:
        with Counted.lock:
            Counted.alive += 1
            Counted.peak = max(Counted.peak, Counted.alive)

    def __del__(self) -> None:
        with Counted.lock:
            Counted.alive -= 1

    @classmethod
    def reset(cls) -> None:
        gc.collect()
        with cls.lock:
            cls.peak = cls.alive


def make(i: int) -> Counted:
    return Counted()


def use(a: Any, b: Any) -> int:
    return 0


def start() -> int:
    return 0


def fold(n: int, acc_first: bool, computed_start: bool) -> Any:
    """``acc = use(make(i), acc)`` (or ``use(acc, make(i))``), from 0 or from ``start()``."""
    acc = delayed(start)() if computed_start else delayed(0)
    for i in range(n):
        chunk = delayed(make)(i)
        acc = delayed(use)(acc, chunk) if acc_first else delayed(use)(chunk, acc)
    return acc


FOLDS = [
    pytest.param(acc_first, computed, id=f"{'use(acc, make)' if acc_first else 'use(make, acc)'}"
                 f"-{'computed start' if computed else 'literal start'}")
    for acc_first in (False, True)
    for computed in (False, True)
]  # fmt: skip


@pytest.mark.parametrize(("acc_first", "computed_start"), FOLDS)
def test_a_fold_on_sync_keeps_at_most_two_chunks_alive(
    acc_first: bool, computed_start: bool
) -> None:
    Counted.reset()
    fold(50, acc_first, computed_start).compute(scheduler="sync")
    assert Counted.peak <= 2, Counted.peak  # not all 50: each chunk is made just before its use


def test_the_heavier_input_is_computed_first_whatever_the_argument_order() -> None:
    order: list[str] = []

    def step(name: str, *_: Any) -> str:
        order.append(name)
        return name

    light = delayed(step)("light")
    heavy = delayed(step)("heavy2", delayed(step)("heavy1", delayed(step)("heavy0")))
    delayed(step)("end", light, heavy).compute(scheduler="sync")
    assert order == ["heavy0", "heavy1", "heavy2", "light", "end"]


def test_a_long_fold_plans_and_runs_without_recursion() -> None:
    acc = delayed(0)
    for _ in range(20_000):  # far beyond the recursion limit; both walks are iterative
        acc = delayed(use)(delayed(start)(), acc)
    assert acc.compute(scheduler="sync") == 0


def test_a_split_whose_branches_wait_for_other_inputs_runs_them_in_turn() -> None:
    # dask's test_dont_run_all_dependents_too_early: when b0 is done, b1..b9
    # are ready, but each only feeds a d that also waits for a c; running them
    # all at once would hold nine results
    graph: dict[str, tuple[str, ...]] = {"a0": (), "b0": (), "c0": (), "d0": ("a0", "b0", "c0")}
    for i in range(1, 10):
        graph.update({f"b{i}": ("b0",), f"c{i}": ("c0",), f"d{i}": (f"d{i - 1}", f"b{i}", f"c{i}")})
    order = sync_order(graph)
    for i in range(2, 10):  # each b waits until the d two steps before it is done
        assert order.index(f"b{i}") > order.index(f"d{i - 2}")
    assert BENCH.pressure(graph, order) == 5  # a d, its three inputs, the next b


# The graphs of dask's tests/test_order.py whose memory dask asserts are
# written out once, in the benchmark that prints them beside dask.
def _bench_order() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_order.py"
    spec = importlib.util.spec_from_file_location("bench_order", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench_order()

#: the peak each of dask's tests asserts (or, where it asserts an order, the
#: peak of that order): results held when a task starts, targets not counted
DASK_ASSERTS = {
    "run_smaller_sections": 3, "use_structure_not_keys": 3, "equal_dependents": 10,
    "equal_dependents+1": 10, "eager_to_free_parent": 8, "xarray_like_reduction": 9,
    "gh_3055_explicit": 5, "map_reduce_with_slicing": 5, "stackstac": 9, "doublediff": 11,
    "many_common_dependents": 12, "dont_run_all_too_early": 5, "local_parents_of_reduction": 2,
    "map_overlap": 4, "nearest_neighbor": 2, "rechunk_merge_cohorts": 7,
}  # fmt: skip


def sync_order(graph: dict[str, tuple[str, ...]]) -> list[str]:
    order: list[str] = BENCH.tarry_order(graph)
    return order


@pytest.mark.parametrize("name", sorted(DASK_ASSERTS))
def test_sync_holds_no_more_results_than_dask_on_its_test_order_graphs(name: str) -> None:
    graph = BENCH.DASK_SHAPES[name]()
    peak = BENCH.pressure(graph, sync_order(graph))
    assert peak <= DASK_ASSERTS[name]
    try:
        dask_order = BENCH.dask_order(graph)
    except ImportError:
        return
    assert peak <= BENCH.pressure(graph, dask_order)


@pytest.mark.parametrize(
    ("name", "graph"),
    [("fold", BENCH.fold(30)), ("fold, acc first", BENCH.fold(30, acc_first=True)),
     ("tree", BENCH.tree(33)), ("stencil", BENCH.stencil_2d())],
)  # fmt: skip
def test_sync_holds_no_more_results_than_dask_on_folds_trees_and_stencils(
    name: str, graph: dict[str, tuple[str, ...]]
) -> None:
    pytest.importorskip("dask")
    dask_peak = BENCH.pressure(graph, BENCH.dask_order(graph))
    assert BENCH.pressure(graph, sync_order(graph)) <= dask_peak


# -- every order is a valid one ----------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[Task], list[Task]]:
    """Random DAGs of tasks summing their inputs; literals among them; some targets."""
    tasks: list[Task] = []
    for i in range(draw(st.integers(1, 25))):
        if tasks and draw(st.integers(0, 5)) == 0:
            tasks.append(Task.literal(f"lit{i}", i))
            continue
        picks = draw(st.lists(st.integers(0, len(tasks) - 1), max_size=4)) if tasks else []
        deps = tuple(dict.fromkeys(tasks[p] for p in picks))
        tasks.append(Task(f"t{i}", _add(i), deps, None, deps, "add"))
    targets = draw(st.lists(st.sampled_from(tasks), min_size=1, max_size=4))
    return tasks, targets


def _add(i: int) -> Any:
    return lambda *xs: i + sum(xs)


def _evaluate(task: Task, memo: dict[str, int]) -> int:
    if task.key not in memo:
        if task.func is None:
            memo[task.key] = task.args[0]
        else:
            memo[task.key] = task.func(*[_evaluate(d, memo) for d in task.deps])
    return memo[task.key]


@settings(max_examples=300, deadline=None)
@given(dags(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_every_order_is_topological_and_computes_what_sequential_evaluation_does(
    dag: tuple[list[Task], list[Task]], workers: int, rng: Any
) -> None:
    """Run with up to ``workers`` tasks at once, finishing them in a random order."""
    _, targets = dag
    run = Run(targets)
    if workers > 1:
        run.hold_back(None)
    done: set[str] = {k for k, t in run.tasks.items() if t.func is None}
    running: list[tuple[Task, int]] = []
    while run.remaining:
        while len(running) < workers and (task := run.pop()) is not None:
            assert all(d.key in done for d in task.deps), "started before its inputs"
            assert task.key not in done, "started twice"
            running.append((task, _call(task, run.values)))
        assert running, "nothing runs, nothing may start, tasks remain"
        task, value = running.pop(rng.randrange(len(running)))
        done.add(task.key)
        run.finish(task, value)
    assert run.pop() is None
    memo: dict[str, int] = {}
    assert run.results() == {t.key: _evaluate(t, memo) for t in targets}
    assert set(run.values) == {t.key for t in targets}  # everything else released


def _call(task: Task, values: dict[str, Any]) -> int:
    result: int = task.func(*[values[d.key] for d in task.deps])  # type: ignore[misc]
    return result


@settings(max_examples=50, deadline=None)
@given(dags())
def test_sync_and_threads_compute_what_sequential_evaluation_does(
    dag: tuple[list[Task], list[Task]],
) -> None:
    from tarry._schedule.sync import run_sync
    from tarry._schedule.threads import run_threads

    _, targets = dag
    memo: dict[str, int] = {}
    expected = {t.key: _evaluate(t, memo) for t in targets}
    for backend in (run_sync, lambda run: run_threads(run, Settings(num_workers=2))):
        run = Run(targets)
        assert backend(run) is None
        assert run.results() == expected


# -- the contract backends drive Run through --------------------------------------------


def _chain() -> tuple[Task, Task, Task]:
    one = Task("one", lambda: 1, (), None, (), "one")
    two = Task("two", lambda x: x + 1, (one,), None, (one,), "two")
    three = Task("three", lambda x: x + 1, (two,), None, (two,), "three")
    return one, two, three


def test_fail_books_the_first_failure_once_and_returns_the_error_with_a_note() -> None:
    one, two, _ = _chain()
    run = Run([two])
    first = run.fail(one, ValueError("first"))
    run.fail(two, ValueError("second"))
    assert run.failed == "one"
    assert isinstance(first, ValueError)
    assert "tarry: raised by task 'one' (one)" in first.__notes__


def test_options_are_given_at_construction() -> None:
    _, two, _ = _chain()
    assert Run([two]).events is None
    assert Run([two]).fuse
    run = Run([two], fuse=False, timed=True)
    assert run.events == []
    assert not run.fuse
    quiet = Run([two])
    quiet.want_timings()
    quiet.want_timings()
    assert quiet.events == []


def test_whole_graph_backends_hand_out_everything_then_count_and_keep() -> None:
    one, two, three = _chain()
    run = Run([three])
    assert [t.key for t in run.hand_out_all()] == ["one", "two", "three"]
    assert run.pop() is None  # nothing is handed out twice
    for task in (one, two, three):
        run.count_done(task)
    run.keep({"three": 3})
    assert run.remaining == 0
    assert not run.waiting
    assert run.results() == {"three": 3}


def test_tasks_finished_together_are_not_handed_out_again() -> None:
    one, two, three = _chain()
    run = Run([three])
    assert run.pop() is one
    run.finish_together([(one, 1), (two, 2)])  # two ran with one, as one unit
    assert run.pop() is three
    run.finish(three, 3)
    assert run.results() == {"three": 3}


def _flaky(options: TaskOptions | None = None) -> Task:
    return Task("flaky", abs, (-1,), None, (), "abs", options=options)


def test_a_failed_task_is_retried_as_often_as_the_run_allows_then_fails() -> None:
    run = Run([_flaky()], retries=2)
    task = run.pop()
    assert task is not None
    assert run.retry(task, OSError())
    assert run.pop() is task
    assert run.retry(task, OSError())
    assert run.pop() is task
    assert not run.retry(task, OSError())
    assert run.attempts == {"flaky": 3}


def test_a_tasks_own_retries_and_retry_on_win_over_the_runs() -> None:
    only_os = TaskOptions(retries=1, retry_on=(OSError,))
    run = Run([_flaky(only_os)], retries=5)
    task = run.pop()
    assert task is not None
    assert not run.retry(task, ValueError())
    assert run.retry(task, ConnectionError())  # an OSError
    assert run.pop() is task
    assert not run.retry(task, OSError())
    never = Run([_flaky(TaskOptions(retries=0))], retries=5)
    assert not never.retry(never.tasks["flaky"], OSError())


def test_interrupts_and_exits_are_never_retried() -> None:
    run = Run([_flaky()], retries=3)
    task = run.pop()
    assert task is not None
    assert not run.retry(task, KeyboardInterrupt())
    assert not run.retry(task, SystemExit(1))
