"""Peak live results: tarry beside dask, on the same graphs (issue 11, item 8).

Every task returns a fresh object that counts itself while it is alive; a
row prints the most alive at once (counted as each output is made, so the
inputs of the task that makes it still count) when the graph runs on the
sync scheduler and on threads with two workers, built once with
``tarry.delayed`` and once with ``dask.delayed``. Threads figures are the
highest of a few runs: they depend on timing.

The last two columns are static, the figure dask's own tests assert:
``dask.order.diagnostics`` run over tarry's sync order and over dask's
``dask.order.order``: the most results held when a task starts (outputs of
targets not counted).

Shapes: a fold in both argument orders and from a computed start, a tree
reduction, a fan-in, a map-reduce whose blocks all read a few shared inputs,
a 2D stencil, and the graphs of dask's ``dask/tests/test_order.py`` whose
memory pressure dask asserts or whose asserted order keeps memory low.

Run: ``python benchmarks/bench_order.py`` (``--quick``: one threads run per row).
"""

from __future__ import annotations

import argparse
import importlib
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import tarry
from tarry._graph import Task
from tarry._schedule.core import Run

#: a graph: per key, the keys of its inputs in argument order
Graph = dict[str, tuple[str, ...]]


class Count:
    """Task outputs alive during one compute, and the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0


class Live:
    """A task output that counts itself, while alive, in the count of its compute.

    Each keeps its own count: an output of an earlier compute that a worker
    thread lets go late does not disturb the next one.
    """

    current: ClassVar[Count] = Count()

    def __init__(self) -> None:
        count = self.count = Live.current
        with count.lock:
            count.now += 1
            count.peak = max(count.peak, count.now)

    def __del__(self) -> None:
        with self.count.lock:
            self.count.now -= 1


def work(*inputs: Any) -> Live:
    return Live()


def slow_work(*inputs: Any) -> Live:
    time.sleep(0.002)  # long enough for tarry's second thread to join in
    return Live()


# -- shapes ------------------------------------------------------------------------


def fold(n: int, acc_first: bool = False, computed_start: bool = False) -> Graph:
    """``acc = use(make(i), acc)`` n times (``use(acc, make(i))`` with ``acc_first``)."""
    graph: Graph = {}
    acc = ""
    if computed_start:
        graph["start"] = ()
        acc = "start"
    for i in range(n):
        graph[f"make{i}"] = ()
        inputs = (f"make{i}", acc) if acc else (f"make{i}",)
        graph[f"use{i}"] = inputs[::-1] if acc_first else inputs
        acc = f"use{i}"
    return graph


def tree(n: int) -> Graph:
    """n loads combined pairwise."""
    graph: Graph = {f"load{i}": () for i in range(n)}
    level = list(graph)
    while len(level) > 1:
        paired = [f"add{len(graph) + j}" for j in range(len(level) // 2)]
        for name, a, b in zip(paired, level[::2], level[1::2], strict=False):
            graph[name] = (a, b)
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return graph


def fan_in(n: int) -> Graph:
    """n loads summed by one task."""
    graph: Graph = {f"load{i}": () for i in range(n)}
    graph["sum"] = tuple(graph)
    return graph


def map_reduce_shared(rows: int = 7, shared: int = 5) -> Graph:
    """dask's test_reduce_with_many_common_dependents: blocks that all read a few
    shared inputs, a sum per block, an aggregate per row (peak asserted <= rows + shared)."""
    graph: Graph = {f"k{s}": () for s in range(shared)}
    for i in range(rows):
        for j in range(rows):
            graph[f"x{i},{j}"] = tuple(f"k{s}" for s in range(shared))
            graph[f"sum{i},{j}"] = (f"x{i},{j}",)
        graph[f"agg{i}"] = tuple(f"sum{i},{j}" for j in range(rows))
    return graph


def stencil_2d(side: int = 4, steps: int = 3) -> Graph:
    """An array of side x side blocks; each step a block reads its 5-point neighbourhood."""
    graph: Graph = {f"b0,{i},{j}": () for i in range(side) for j in range(side)}
    for t in range(1, steps + 1):
        for i in range(side):
            for j in range(side):
                near = [(i, j), (i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
                graph[f"b{t},{i},{j}"] = tuple(
                    f"b{t - 1},{a},{b}" for a, b in near if 0 <= a < side and 0 <= b < side
                )
    graph["total"] = tuple(f"b{steps},{i},{j}" for i in range(side) for j in range(side))
    return graph


def _dask_style(edges: dict[Any, tuple[Any, ...]]) -> Graph:
    """A graph written with dask's keys (tuples, strings) as one with string keys."""
    return {str(k): tuple(str(d) for d in deps) for k, deps in edges.items()}


def run_smaller_sections() -> Graph:
    """test_run_smaller_sections (dask asserts a peak of 3)."""
    return _dask_style(
        {"a": (), "c": (), "e": (), "cc": (), "b": ("a", "c"), "d": ("c", "e"),
         "bb": ("cc",), "aa": ("d", "bb"), "dd": ("cc",)}
    )  # fmt: skip


def use_structure_not_keys() -> Graph:
    """test_use_structure_not_keys (dask asserts 3)."""
    reads = {5: (2,), 7: (0, 2), 9: (7, 0, 2), 1: (4, 7, 0), 2: (9, 4, 7), 4: (6, 9, 4),
             3: (5, 6, 9), 8: (1, 5, 6), 6: (8, 1, 5), 0: (3, 8, 1)}  # fmt: skip
    graph: Graph = {f"a{i}": () for i in range(10)}
    graph.update({f"b{i}": tuple(f"a{j}" for j in reads[i]) for i in reads})
    return graph


def equal_dependents(extra_step: bool = False) -> Graph:
    """test_order_with_equal_dependents (dask asserts <= 10), and its variant with a
    task added after one of each pair of targets."""
    graph: Graph = {}
    abc = "abcd"
    for x in abc:
        graph.update({f"{x}0": (), f"{x}1": (f"{x}0",), f"{x}2,0": (f"{x}0",),
                      f"{x}2,1": (f"{x}1",)})  # fmt: skip
        for i, y in enumerate(abc):
            graph[f"{x}3,{i}"] = (f"{x}2,0", f"{y}2,1")
            graph[f"{x}4,{i}"] = (f"{x}3,{i}",)
            for k in (0, 1):
                graph[f"{x}5,{i},{k}"] = (f"{x}4,{i}",)
                graph[f"{x}6,{i},{k}"] = (f"{x}5,{i},{k}",)
    if extra_step:
        for x in abc:
            for i in range(len(abc)):
                graph[f"{x}7,{i},0"] = (f"{x}6,{i},0",)
    return graph


def eager_to_free_parent() -> Graph:
    """test_eager_to_compute_dependent_to_free_parent (dask asserts <= 8)."""
    reads = {
        0: (6, 8), 1: (28, 26), 2: (24, 21), 3: (22, 25), 4: (29, 20), 5: (23, 27), 6: (4, 2),
        7: (0, 1), 8: (5, 3), 9: (43,), 10: (36,), 11: (33,), 12: (47,), 13: (44,), 14: (42,),
        15: (37,), 16: (48,), 17: (49,), 18: (35,), 19: (46,), 20: (55,), 21: (53,), 22: (60,),
        23: (54,), 24: (59,), 25: (56,), 26: (61,), 27: (52,), 28: (57,), 29: (58,), 30: (19,),
        31: (7,), 32: (30, 31), 33: (58,), 34: (11, 9), 35: (60,), 36: (52,), 37: (61,),
        38: (14, 10), 39: (38, 40), 40: (18, 17), 41: (34, 50), 42: (54,), 43: (55,), 44: (53,),
        45: (16, 15), 46: (51, 45), 47: (59,), 48: (57,), 49: (56,), 50: (12, 13), 51: (41, 39),
        52: (62,), 53: (68,), 54: (70,), 55: (67,), 56: (71,), 57: (64,), 58: (65,), 59: (63,),
        60: (69,), 61: (66,),
    }  # fmt: skip
    graph: Graph = {f"a{i:02}": () for i in range(62, 72)}
    graph.update({f"a{k:02}": tuple(f"a{d:02}" for d in ds) for k, ds in reads.items()})
    return graph


def xarray_like_reduction() -> Graph:
    """test_xarray_like_reduction (dask asserts <= 9)."""
    graph: Graph = {}
    for ix in range(3):
        graph.update({
            f"a0,{ix}": (), f"a1,{ix}": (), f"b0,{ix}": (f"a0,{ix}",),
            f"b1,{ix}": (f"a0,{ix}", f"a1,{ix}"), f"b2,{ix}": (f"a1,{ix}",),
            f"c0,{ix}": (f"b0,{ix}",), f"c1,{ix}": (f"b1,{ix}",), f"c2,{ix}": (f"b2,{ix}",),
        })  # fmt: skip
    for ix in range(3):
        graph[f"d{ix}"] = (f"c{ix},0", f"c{ix},1", f"c{ix},2")
    return graph


def gh_3055_explicit() -> Graph:
    """test_gh_3055_explicit (dask asserts <= 5)."""
    return _dask_style({
        "root": (), "a0": ("root",), "a1": (), "a2": (), "a3": (), "a4": (), "b00": ("a0",),
        "b01": ("a0",), "c01": ("a0",), "b10": ("a1",), "b12": ("a1",),
        "c00": ("a2", "a1"), "d00": ("c01", "c00"), "d01": ("c01", "c00"), "f11": ("d01",),
        "c10": ("b10", "b12"), "c02": ("b00", "b01"), "e0": ("c10", "c02"), "g1": ("e0", "a3"),
        "g2": ("g1", "a4", "d00"),
    })  # fmt: skip


def xarray_map_reduce_with_slicing() -> Graph:
    """test_xarray_map_reduce_with_slicing (dask asserts <= 5)."""
    graph: Graph = {"data": (), "array0": (), "array1": ()}
    for g in range(2):
        for c in range(2):
            for k in range(2):
                graph[f"open{k},{g},{c}"] = ("data",)
                graph[f"getitem{k},{g},{c}"] = (f"open{k},{g},{c}",)
                graph[f"chunk{g},{c},{k}"] = (f"array{k}", f"getitem{k},{g},{c}")
            graph[f"agg{g},{c}"] = (f"chunk{g},{c},0", f"chunk{g},{c},1")
            graph[f"transpose{g},{c}"] = (f"agg{g},{c}",)
    graph["chunk1,1,1"] = graph["chunk1,1,1"][::-1]  # as in dask's test
    graph["agg1,0"] = graph["agg1,0"][::-1]
    return graph


def stackstac() -> Graph:
    """test_stackstac (dask asserts <= 9)."""
    graph: Graph = {"table-data": (), "table": ("table-data",)}
    for r in ("8,1", "9,1", "9,0", "10,0"):
        graph[f"raster{r}"] = ("table",)
        graph[f"sub{r}"] = (f"raster{r}",)
        graph[f"concat{r}"] = (f"sub{r}",)
    for s, r in (("299", "8,1"), ("321", "9,1"), ("341", "10,0"), ("319", "9,0")):
        graph[f"cget{s}"] = (f"raster{r}",)
        graph[f"split{s}"] = (f"cget{s}",)
    for s, r in (("300", "8,1"), ("322", "9,1"), ("342", "10,0"), ("320", "9,0")):
        graph[f"split{s}"] = (f"concat{r}",)
    singles = {"3,0,0": "8,1", "2,0,0": "9,1", "1,0,0": "9,0", "0,0,0": "10,0"}
    pairs = {"2,0,1": ("321", "322"), "3,0,1": ("299", "300"), "0,0,1": ("341", "342"),
             "1,0,1": ("319", "320")}  # fmt: skip
    for v, r in singles.items():
        graph[f"vget{v}"] = (f"concat{r}",)
    for v, (s1, s2) in pairs.items():
        graph[f"vget{v}"] = (f"split{s1}", f"split{s2}")
    for v in (*singles, *pairs):
        graph[f"slice{v}"] = (f"vget{v}",)
    for col in ("0", "1"):
        graph[f"merge{col}"] = tuple(f"slice{i},0,{col}" for i in range(4))
        graph[f"transpose{col}"] = (f"merge{col}",)
    return graph


def doublediff() -> Graph:
    """test_doublediff (dask asserts <= 11); dask's key aliases are tasks here."""
    graph: Graph = {k: () for k in ("a3,0,1", "a3,1,1", "a3,1,0", "a2,2,2", "a4,0,1",
                                    "a4,1,0", "a4,0,0", "a5,0,0")}  # fmt: skip
    b1 = {"0,0": "0,0", "0,1": "0,0", "0,2": "0,1", "1,0": "0,0", "1,1": "0,0", "1,2": "0,1",
          "2,0": "1,0", "2,1": "1,0"}  # fmt: skip
    b0 = {"0,1": "0,1", "0,2": "0,1", "1,0": "1,0", "1,1": "1,1", "1,2": "1,1", "2,0": "1,0",
          "2,1": "1,1", "2,2": "1,1"}  # fmt: skip
    graph.update({f"b1,{k}": (f"a4,{a}",) for k, a in b1.items()})
    graph.update({f"b0,{k}": (f"a3,{a}",) for k, a in b0.items()})
    graph.update({f"c0,{k}": (f"b1,{k}",) for k in b1})
    graph.update({f"c1,{k}": (f"b0,{k}",) for k in b0})
    graph["c1,0,0"] = ("a5,0,0",)
    cells = [f"{i},{j}" for i in range(3) for j in range(3)]
    for k in cells:
        graph[f"d{k}"] = (f"c1,{k}", f"c0,{k}" if k != "2,2" else "a2,2,2")
        graph[f"e{k}"] = (f"d{k}",)
    graph["END"] = tuple(f"e{k}" for k in cells)
    return graph


def dont_run_all_dependents_too_early(depth: int = 10) -> Graph:
    """test_dont_run_all_dependents_too_early: dask asserts an order that runs each
    d right after its inputs (peak 5), not all b and c first."""
    graph: Graph = {"a0": (), "b0": (), "c0": (), "d0": ("a0", "b0", "c0")}
    for i in range(1, depth):
        graph.update({f"b{i}": ("b0",), f"c{i}": ("c0",), f"d{i}": (f"d{i - 1}", f"b{i}", f"c{i}")})
    return graph


def local_parents_of_reduction() -> Graph:
    """test_local_parents_of_reduction: a stack-like shape; dask asserts it is
    done column by column (a3 a2 a1, b3 b2 b1, c3 c2 c1)."""
    return {"a3": (), "a2": ("a3",), "a1": ("a2",), "b3": (), "b2": ("b3", "a2"), "b1": ("b2",),
            "c3": (), "c2": ("c3", "b2"), "c1": ("c2",)}  # fmt: skip


def map_overlap() -> Graph:
    """test_map_overlap: a 1D stencil; dask asserts one end is finished first."""
    return {"e1": (), "d1": ("e1",), "c1": ("d1",), "b1": ("c1", "c2"), "d2": (),
            "c2": ("d1", "d2", "d3"), "e3": (), "d3": ("e3",), "c3": ("d3",),
            "b3": ("c2", "c3", "c4"), "d4": (), "c4": ("d3", "d4", "d5"), "e5": (),
            "d5": ("e5",), "c5": ("d5",), "b5": ("c4", "c5")}  # fmt: skip


def nearest_neighbor() -> Graph:
    """test_nearest_neighbor: groups that all overlap; finish a local group first."""
    reads = {1: (1,), 2: (1,), 3: (1, 2), 4: (2,), 5: (2, 3), 6: (3,), 7: (3, 4), 8: (4,),
             9: (4,)}  # fmt: skip
    graph: Graph = {f"b{i}": () for i in range(1, 5)}
    graph.update({f"a{k}": tuple(f"b{i}" for i in ds) for k, ds in reads.items()})
    return graph


def rechunk_merge_cohorts() -> Graph:
    """test_xarray_rechunk_map_reduce_cohorts (dask asserts <= 7)."""
    opened = {"o1": (), "o2": (), "o14": (), "o15": (), "o2,1": (), "o1,1": (), "o14,1": (),
              "o15,1": (), "g106": (), "g0": (), "g9329": (), "g9488": (), "g20989": (),
              "g21095": ()}  # fmt: skip
    graph: Graph = dict(opened)
    for name in ("1", "2", "14", "15", "2,1", "1,1", "14,1", "15,1"):
        graph[f"get{name}"] = (f"o{name}",)
    splits = {
        "9487": "get2,1", "9489": "get14,1", "106": "g106", "4664": "get1", "16431": "get15,1",
        "16324": "get14", "107": "get1,1", "4665": "get2", "4770": "get1,1", "0": "g0",
        "9328": "get2", "9488": "g9488", "16325": "get15", "16430": "get14,1", "20988": "get15",
        "9329": "g9329", "4771": "get2,1", "1": "get1", "20989": "g20989", "9330": "get14",
        "21094": "get15,1", "21095": "g21095",
    }  # fmt: skip
    graph.update({f"split{k}": (v,) for k, v in splits.items()})
    shuffles = {
        "000": ("0", "1"), "010": ("106", "107"), "100": ("4665", "4664"),
        "110": ("4770", "4771"), "200": ("9328", "9329", "9330"), "210": ("9487", "9488", "9489"),
        "300": ("16324", "16325"), "310": ("16430", "16431"), "400": ("20989", "20988"),
        "410": ("21094", "21095"),
    }  # fmt: skip
    graph.update({f"shuffle{k}": tuple(f"split{s}" for s in v) for k, v in shuffles.items()})
    graph.update({f"rsplit{k}": (f"shuffle{v}",) for k, v in {
        "12": "300", "5": "200", "11": "310", "1": "100", "14": "310", "4": "100", "7": "210",
        "10": "210", "6": "110", "3": "110", "9": "300", "8": "200"}.items()})  # fmt: skip
    merges = {
        "300": ("shuffle400", "rsplit12"), "000": ("rsplit1", "shuffle000"),
        "310": ("rsplit14", "shuffle410"), "210": ("rsplit10", "rsplit11"),
        "010": ("rsplit3", "shuffle010"), "100": ("rsplit4", "rsplit5"),
        "110": ("rsplit7", "rsplit6"), "200": ("rsplit8", "rsplit9"),
    }  # fmt: skip
    graph.update({f"merge{k}": v for k, v in merges.items()})
    chunks = {
        "2,001": "merge200", "2,000": "merge000", "001": "merge300", "000": "merge100",
        "101": "merge310", "100": "merge110", "2,100": "merge010", "2,101": "merge210",
    }  # fmt: skip
    graph.update({f"chunk{k}": (v,) for k, v in chunks.items()})
    graph.update({f"cohort{k}": (f"chunk{k}",) for k in chunks})
    concats = {"000": ("2,000", "2,001"), "100": ("000", "001"), "110": ("100", "101"),
               "010": ("2,101", "2,100")}  # fmt: skip
    graph.update({f"concat{k}": tuple(f"cohort{c}" for c in v) for k, v in concats.items()})
    graph.update({f"transpose{k}": (f"concat{k}",) for k in ("000", "010", "100", "110")})
    return graph


#: dask test_order shapes: name -> (graph, the peak dask's test allows or its order reaches)
DASK_SHAPES: dict[str, Callable[[], Graph]] = {
    "run_smaller_sections": run_smaller_sections,
    "use_structure_not_keys": use_structure_not_keys,
    "equal_dependents": equal_dependents,
    "equal_dependents+1": lambda: equal_dependents(extra_step=True),
    "eager_to_free_parent": eager_to_free_parent,
    "xarray_like_reduction": xarray_like_reduction,
    "gh_3055_explicit": gh_3055_explicit,
    "map_reduce_with_slicing": xarray_map_reduce_with_slicing,
    "stackstac": stackstac,
    "doublediff": doublediff,
    "many_common_dependents": map_reduce_shared,
    "dont_run_all_too_early": dont_run_all_dependents_too_early,
    "local_parents_of_reduction": local_parents_of_reduction,
    "map_overlap": map_overlap,
    "nearest_neighbor": nearest_neighbor,
    "rechunk_merge_cohorts": rechunk_merge_cohorts,
}

SHAPES: dict[str, Callable[[], Graph]] = {
    "fold use(make, acc)": lambda: fold(50),
    "fold use(acc, make)": lambda: fold(50, acc_first=True),
    "fold from a computed start": lambda: fold(50, computed_start=True),
    "tree reduction": lambda: tree(64),
    "fan-in sum": lambda: fan_in(64),
    "2D stencil": stencil_2d,
    **DASK_SHAPES,
}


# -- running and measuring ----------------------------------------------------------


def targets_of(graph: Graph) -> list[str]:
    """The keys no task reads, in the graph's order."""
    read = {d for inputs in graph.values() for d in inputs}
    return [k for k in graph if k not in read]


def topological(graph: Graph) -> list[str]:
    """Keys, inputs first (iterative)."""
    done: dict[str, None] = {}
    for key in graph:
        stack = [key]
        while stack:
            top = stack[-1]
            if top in done:
                stack.pop()
                continue
            missing = [d for d in graph[top] if d not in done]
            if missing:
                stack.extend(missing)
            else:
                done[top] = None
                stack.pop()
    return list(done)


def build(delayed: Any, graph: Graph, func: Callable[..., Live]) -> list[Any]:
    """The graph's targets as lazy values of one library."""
    made: dict[str, Any] = {}
    lazy = delayed(func)
    for key in topological(graph):
        made[key] = lazy(*[made[d] for d in graph[key]])
    return [made[k] for k in targets_of(graph)]


def peak_live(lib: str, graph: Graph, scheduler: str) -> int:
    """The most task outputs alive at once while ``lib`` computes ``graph``."""
    module: Any = importlib.import_module(lib)
    threaded = scheduler == "threads"
    targets = build(module.delayed, graph, slow_work if threaded else work)
    options = {"num_workers": 2} if threaded else {}
    count = Live.current = Count()
    module.compute(*targets, scheduler=scheduler, **options)
    return count.peak


def tarry_order(graph: Graph) -> list[str]:
    """The order tarry's sync scheduler runs ``graph`` in."""
    tasks: dict[str, Task] = {}
    for key in topological(graph):
        deps = tuple(tasks[d] for d in graph[key])
        tasks[key] = Task(key, work, deps, None, deps, "work")
    run = Run([tasks[k] for k in targets_of(graph)])
    order = []
    while (task := run.pop()) is not None:
        order.append(task.key)
        run.finish(task, None)
    return order


def pressure(graph: Graph, order: list[str]) -> int:
    """dask.order.diagnostics' peak: results held when a task starts, targets not counted."""
    readers: dict[str, int] = dict.fromkeys(graph, 0)
    for inputs in graph.values():
        for d in inputs:
            readers[d] += 1
    held = peak = 0
    for key in order:
        peak = max(peak, held)
        freed = 0
        for d in graph[key]:
            readers[d] -= 1
            freed += not readers[d]
        held += (1 if readers[key] else 0) - freed
    return peak


def dask_order(graph: Graph) -> list[str]:
    """The order ``dask.order.order`` gives ``graph``."""
    order_module: Any = importlib.import_module("dask.order")
    dsk = {k: (work, *inputs) for k, inputs in graph.items()}
    ranks = order_module.order(dsk)
    return sorted(graph, key=ranks.__getitem__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one threads run per row")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    dask: Any = importlib.import_module("dask")
    print(f"tarry {tarry.__version__}, dask {dask.__version__}; threads: 2 workers, the highest")
    print(f"of {repeats} run(s); static: dask.order.diagnostics' peak for each order\n")
    print("| shape | tasks | sync tarry | dask | threads tarry | dask | static tarry | dask |")
    print("|" + "---|" * 8)
    worse = []
    for name, make in SHAPES.items():
        graph = make()
        cells = [name, str(len(graph))]
        for scheduler in ("sync", "threads"):
            for lib in ("tarry", "dask"):
                runs = 1 if scheduler == "sync" else repeats
                cells.append(str(max(peak_live(lib, graph, scheduler) for _ in range(runs))))
        mine, theirs = pressure(graph, tarry_order(graph)), pressure(graph, dask_order(graph))
        cells += [str(mine), str(theirs)]
        if mine > theirs or int(cells[2]) > int(cells[3]):
            worse.append(name)
        print("| " + " | ".join(cells) + " |")
    print(f"\nsync or static above dask: {', '.join(worse) or 'none'}")


if __name__ == "__main__":
    main()
