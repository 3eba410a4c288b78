"""Profiles and their reports: the numbers that answer the tutorial's questions."""

from __future__ import annotations

import itertools
import math
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

import tarry
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.timing import TaskEvent
from tarry._tools import observe
from tarry._tools import report as report_module
from tarry._tools.profile import Profile
from tarry._tools.records import RunRecord
from tarry._tools.report import COMPUTING, GIL_CORES, analyse, peak_concurrency
from tarry._tools.text import format_seconds

SLEEP = 0.2  # the tutorial's sleep(1), shortened
SHORT = 0.05  # where only the shape of the run matters


def inc(x: int, seconds: float = SLEEP) -> int:
    time.sleep(seconds)
    return x + 1


def add(x: int, y: int, seconds: float = SLEEP) -> int:
    time.sleep(seconds)
    return x + y


def quick_inc(x: int) -> int:
    return x + 1


def burn(seconds: float) -> float:
    """Pure Python that holds the GIL for ``seconds`` of CPU time, however busy the machine."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return seconds


def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


def tutorial(seconds: float = SLEEP) -> tarry.Delayed[int]:
    """The tutorial's first graph: two incs, then their sum."""
    x = tarry.delayed(inc)(1, seconds)
    y = tarry.delayed(inc)(2, seconds)
    return tarry.delayed(add)(x, y, seconds)


def tool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("tarry-sampler", "tarry-progress")]


def took(event: TaskEvent) -> float:
    """Seconds the task ran, as its event recorded them."""
    return event.end - event.start


def overlap(a: TaskEvent, b: TaskEvent) -> bool:
    """The two tasks ran at the same time: their [start, end] intervals overlap."""
    return a.start < b.end and b.start < a.end


def test_tutorial_numbers(scheduler: str) -> None:
    """Work = the three sleeps, span = the slower inc then add, best = the span with two workers.

    The numbers are checked against the task times the events recorded (each
    at least its sleep: a sleep never returns early), not against how long
    sleeping took on this machine.
    """
    with tarry.profile() as prof:
        assert tutorial().compute(scheduler=scheduler, num_workers=2) == 5
    report = prof.report()
    (record,) = prof.records
    times = {e.key: took(e) for e in record.events}
    incs = [e.key for e in record.events if e.name == "inc"]
    (add_key,) = [e.key for e in record.events if e.name == "add"]
    slower_inc = max(incs, key=times.__getitem__)
    assert report.runs == 1
    assert report.tasks == 3
    assert report.scheduler == scheduler
    assert report.workers == (1 if scheduler == "sync" else 2)
    assert min(times.values()) >= SLEEP
    assert report.work == pytest.approx(sum(times.values()))
    # the critical path: the slower of the two incs, then add, and its length is theirs
    assert report.critical_path == [slower_inc, add_key]
    assert report.critical_path_names == ["inc", "add"]
    assert report.span == pytest.approx(times[slower_inc] + times[add_key])
    assert 2 * SLEEP <= report.span < report.work
    assert report.width == 2
    assert report.best_time == pytest.approx(max(report.work / report.workers, report.span))
    assert report.wall >= report.best_time * 0.99
    assert report.median_task == pytest.approx(statistics.median(times.values()))
    assert report.cpu_time < 0.5 * report.work  # sleeping uses no CPU
    assert report.by_function["inc"].count == 2
    assert report.by_function["add"].count == 1
    assert report.overhead_per_task == pytest.approx((report.wall - report.best_time) / 3)
    assert report.speedup == pytest.approx(report.work / report.wall)
    text = str(report)
    assert "critical path: inc → add" in text
    if scheduler in ("sync", "threads"):
        # in-process: nothing to start, nothing to ship (a process pool or a
        # cluster may spend its first compute starting up)
        assert report.efficiency > 0.7
    if report.workers >= 2:
        # half the work is less than the chain: the chain bounds the run
        assert report.best_time == pytest.approx(report.span)
        assert any(
            "2 of the 3 tasks could run at the same time; the critical path inc → add takes"
            in finding
            and "is the best any scheduler can do" in finding
            for finding in report.findings
        ), report.findings
    else:
        assert report.best_time == pytest.approx(report.work)  # one worker: all of it
        assert any("runs one task at a time" in f for f in report.findings), report.findings
        assert any("critical path inc → add" in f for f in report.findings)


def test_one_event_per_task_timed_in_the_worker(scheduler: str) -> None:
    with tarry.profile() as prof:
        tutorial().compute(scheduler=scheduler, num_workers=2)
    frame = prof.to_dataframe()
    assert list(frame.columns) == [
        "run", "scheduler", "key", "name", "worker", "start", "end", "duration", "cpu",
        "attempts",
    ]  # fmt: skip
    assert sorted(frame.name) == ["add", "inc", "inc"]
    assert (frame.start >= 0).all()
    assert (frame.duration >= SLEEP).all()  # the whole sleep is inside the timing
    assert (frame.cpu < frame.duration).all()
    # timed where the task ran: in this process only on sync and threads...
    (record,) = prof.records
    pids = {int(e.worker.split(":")[0]) for e in record.events}
    if scheduler in ("sync", "threads"):
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids
    # ... around the call alone: inside the compute, and one task at a time per worker
    # (a timing that began when a task was queued would overlap its worker's previous task)
    for event in record.events:
        assert record.start <= event.start < event.end <= record.end
    for a, b in itertools.combinations(record.events, 2):
        assert a.worker != b.worker or not overlap(a, b), (a, b)
    first, second = (e for e in record.events if e.name == "inc")
    (last,) = (e for e in record.events if e.name == "add")
    assert last.start >= max(first.end, second.end)  # add waited for both incs
    if scheduler == "sync":
        assert not overlap(first, second)
    elif scheduler != "ray":
        # (Ray, on a busy machine, may start the worker for the second only
        # once the first has ended: side by side is not promised there)
        assert overlap(first, second)
        assert first.worker != second.worker


def test_every_compute_inside_the_block_and_none_after(scheduler: str) -> None:
    with tarry.profile() as prof:
        tarry.compute(tarry.delayed(quick_inc)(1), scheduler=scheduler)
        tarry.delayed(quick_inc)(2).compute(scheduler=scheduler)
    tarry.delayed(quick_inc)(3).compute(scheduler=scheduler)
    assert len(prof.records) == 2
    assert [len(r.events) for r in prof.records] == [1, 1]
    assert prof.report().runs == 2
    assert observe.active == ()
    assert tool_threads() == []


def test_several_computes_add_up() -> None:
    with tarry.profile() as prof:
        tutorial(SHORT).compute(scheduler="threads", num_workers=2)
        tutorial(SHORT).compute(scheduler="threads", num_workers=2)
    report = prof.report()
    records = sorted(prof.records, key=lambda r: r.start)
    assert report.runs == 2
    assert report.tasks == 6
    # each compute's numbers come from its own events; the report adds them up
    for compute, record in zip(report.computes, records, strict=True):
        times = {e.key: took(e) for e in record.events}
        (add_key,) = [e.key for e in record.events if e.name == "add"]
        slower_inc = max((k for k in times if k != add_key), key=times.__getitem__)
        assert compute.work == pytest.approx(sum(times.values()))
        assert compute.critical_path == [slower_inc, add_key]
        assert compute.span == pytest.approx(times[slower_inc] + times[add_key])
    assert report.work == pytest.approx(sum(c.work for c in report.computes))
    assert report.span == pytest.approx(sum(c.span for c in report.computes))
    assert report.work >= 6 * SHORT
    assert report.span >= 4 * SHORT
    assert report.critical_path == [k for c in report.computes for k in c.critical_path]
    assert report.critical_path_names == ["inc", "add", "inc", "add"]
    assert [c.tasks for c in report.computes] == [3, 3]
    assert any(f.startswith("compute 2: ") for f in report.findings)


@pytest.mark.parametrize("slower", ["first", "second"])
def test_the_critical_path_goes_through_the_input_that_took_longest(slower: str) -> None:
    slow = tarry.delayed(inc)(1, 3 * SHORT)
    quick = tarry.delayed(inc)(2, SHORT)
    total = tarry.delayed(add)(*((slow, quick) if slower == "first" else (quick, slow)), SHORT)
    with tarry.profile() as prof:
        total.compute(scheduler="threads", num_workers=2)
    times = {e.key: took(e) for e in prof.events}
    # slow, as measured, unless the machine stalled quick's sleep for longer than slow's
    longest = max([slow.key, quick.key], key=times.__getitem__)
    report = prof.report()
    assert report.critical_path == [longest, total.key]
    assert report.span == pytest.approx(times[longest] + times[total.key])


def nested_compute(x: int) -> int:
    result: int = tarry.delayed(inc)(x, SHORT).compute(scheduler="sync")
    return result


def test_nested_compute_is_recorded_but_not_counted_twice() -> None:
    with tarry.profile() as prof:
        tarry.delayed(nested_compute)(1).compute(scheduler="threads")
    assert len(prof.records) == 2
    (outer,) = [r for r in prof.records if r.scheduler == "threads"]
    (inner,) = [r for r in prof.records if r.scheduler == "sync"]
    (task,) = outer.events
    (nested,) = inner.events
    assert task.start <= inner.start <= inner.end <= task.end  # the inner compute ran in the task
    assert took(nested) >= SHORT
    report = prof.report()
    assert report.runs == 1
    assert report.tasks == 1
    assert report.by_function["inc"].count == 1  # per-function times include it
    assert report.work == pytest.approx(took(task))  # which already holds the nested inc


def test_nested_profiles_both_record() -> None:
    with tarry.profile() as outer:
        with tarry.profile() as inner:
            tarry.delayed(quick_inc)(1).compute()
        tarry.delayed(quick_inc)(2).compute()
    assert [len(r.events) for r in inner.records] == [1]
    assert [len(r.events) for r in outer.records] == [1, 1]


def test_gil_bound_tasks_on_threads() -> None:
    """Pure Python on two threads: both run at once, yet together they use one core at most.

    The finding needs the process to have had about one core while the tasks
    ran (``GIL_CORES``): on a machine so busy that it got less, the report
    cannot tell the GIL from a full machine, so it must stay silent, and the
    test says it was skipped. The classification itself is tested on recorded
    events below, whatever the machine's load.
    """
    if usable_cpus() < 2:
        pytest.skip("needs two CPUs to tell the GIL from a full machine")
    work = [tarry.delayed(burn)(0.1) for _ in range(6)]
    with tarry.profile() as prof:
        tarry.compute(work, scheduler="threads", num_workers=2)
    report = prof.report()
    events = prof.events
    (compute,) = report.computes
    assert all(e.cpu >= 0.1 for e in events)  # each burned its CPU time, however long it took
    assert peak_concurrency([(e.start, e.end) for e in events]) >= 2  # side by side ...
    in_use = compute.cpu_time / compute.busy_time
    assert in_use <= GIL_CORES[1]  # ... yet on one core at most: the GIL
    gil = [f for f in report.findings if "GIL" in f]
    if in_use < GIL_CORES[0]:
        assert gil == [], report.findings
        pytest.skip(
            f"the machine gave the process {in_use:.2f} of a core, too little to tell the GIL "
            "from a full machine: the finding was not exercised on a real run"
        )
    assert len(gil) == 1, report.findings
    assert "threads cannot run them in parallel: use scheduler='processes'" in gil[0]
    assert f"together they used {in_use:.1f} CPU core" in gil[0]


def two_at_a_time(cpu: float) -> RunRecord:
    """Six 0.2 s tasks on two threads, two at a time, each using ``cpu`` seconds of CPU."""
    events = [TaskEvent(f"t{i}", "burn", f"w{i % 2}", i // 2 * 0.2, i // 2 * 0.2 + 0.2, cpu)
              for i in range(6)]  # fmt: skip
    deps: dict[str, tuple[str, ...]] = {e.key: () for e in events}
    return RunRecord("threads", 2, 0.0, 0.6, deps, {k: "burn" for k in deps}, events)


def test_overlapping_tasks_that_use_one_core_between_them_are_blamed_on_the_gil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(report_module, "usable_cpus", lambda: 2)
    findings = analyse([two_at_a_time(cpu=0.1)]).findings  # 0.2 s of CPU per 0.2 s pair
    (gil,) = [f for f in findings if "GIL" in f]
    assert "together they used 1.0 CPU core although 2 could have run at once (2.0 did" in gil
    assert "use scheduler='processes'" in gil
    assert "their CPU time is 600 ms" in gil  # the work counts waiting for the GIL


def test_overlapping_tasks_starved_of_cpu_are_not_blamed_on_the_gil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a busy machine the process may get a third of a core: that is not the GIL."""
    monkeypatch.setattr(report_module, "usable_cpus", lambda: 2)
    findings = analyse([two_at_a_time(cpu=0.03)]).findings
    assert not any("GIL" in f for f in findings), findings


def test_sleeping_tasks_on_threads_are_not_blamed_on_the_gil() -> None:
    with tarry.profile() as prof:
        tarry.compute([tarry.delayed(inc)(i) for i in range(4)], scheduler="threads", num_workers=2)
    findings = prof.report().findings
    assert not any("GIL" in f for f in findings), findings
    assert any("waiting (sleep, I/O, locks)" in f for f in findings), findings


def test_cpu_bound_tasks_on_sync_suggest_processes() -> None:
    """Tasks that compute most of the time they run would gain from processes.

    How much of its time a task spends computing is its CPU time over its
    wall time, which a busy machine lowers: below ``COMPUTING`` the report
    cannot tell computing from waiting, must not suggest processes, and the
    test says it was skipped. The classification itself is tested on
    recorded events below.
    """
    work = [tarry.delayed(burn)(0.05) for _ in range(3)]
    with tarry.profile() as prof:
        tarry.compute(work, scheduler="sync")
    report = prof.report()
    assert all(e.cpu >= 0.05 for e in prof.events)  # each burned its CPU time
    computing = report.cpu_time / report.work
    wanted = [f for f in report.findings if "of their time computing" in f]
    if computing < COMPUTING:
        assert wanted == [], report.findings
        pytest.skip(
            f"the machine gave the tasks {computing:.0%} of their time on a core, too little "
            "to tell computing from waiting: the finding was not exercised on a real run"
        )
    assert len(wanted) == 1, report.findings
    assert f"tasks spent {computing:.0%} of their time computing" in wanted[0]
    assert "scheduler='processes'" in wanted[0]


def one_at_a_time(cpu: float) -> RunRecord:
    """Three independent 0.05 s tasks on sync, each using ``cpu`` seconds of CPU."""
    events = [TaskEvent(f"t{i}", "burn", "w0", i * 0.05, i * 0.05 + 0.05, cpu) for i in range(3)]
    deps: dict[str, tuple[str, ...]] = {e.key: () for e in events}
    return RunRecord("sync", 1, 0.0, 0.15, deps, {k: "burn" for k in deps}, events)


def test_computing_tasks_on_one_worker_suggest_processes_and_waiting_ones_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(report_module, "usable_cpus", lambda: 2)
    computing = analyse([one_at_a_time(cpu=0.045)]).findings
    (wanted,) = [f for f in computing if "of their time computing" in f]
    assert wanted.startswith("tasks spent 90% of their time computing; up to 2 could run")
    assert "scheduler='processes'" in wanted
    waiting = analyse([one_at_a_time(cpu=0.01)]).findings  # 20 %: mostly waiting
    assert not any("scheduler='processes'" in f for f in waiting), waiting


def test_trivial_tasks_ask_for_more_work_per_task(scheduler: str) -> None:
    with tarry.profile() as prof:
        tarry.compute([tarry.delayed(quick_inc)(i) for i in range(500)], scheduler=scheduler)
    report = prof.report()
    assert report.tasks == 500
    assert report.median_task == pytest.approx(statistics.median(map(took, prof.events)))
    assert report.overhead_per_task == pytest.approx(
        (report.wall - report.best_time) / report.tasks
    )
    # the finding compares the two: a call of quick_inc takes about a microsecond,
    # scheduling and timing it costs several (a loaded machine only adds to that)
    (small,) = [f for f in report.findings if "make each task do more work" in f]
    assert (
        f"the median task takes {format_seconds(report.median_task)}, less than the per-task "
        f"overhead of {format_seconds(report.overhead_per_task)}"
    ) in small


def test_tutorial_without_sleep_is_explained() -> None:
    """'What if inc and add didn't sleep? Would it still speed up?'"""
    x = tarry.delayed(quick_inc)(1)
    y = tarry.delayed(quick_inc)(2)
    with tarry.profile() as prof:
        tarry.delayed(lambda a, b: a + b, name="add")(x, y).compute(scheduler="threads")
    report = prof.report()
    (record,) = prof.records
    # each call is timed alone, inside the compute, with tarry's own steps around it
    for event in record.events:
        assert record.start < event.start <= event.end < record.end
    assert report.speedup == pytest.approx(report.work / report.wall)
    assert report.work < report.wall  # so no speedup: the tasks add up to less than the run
    assert any("plain loop would be faster" in f for f in report.findings), report.findings


def test_failed_compute_is_reported(scheduler: str) -> None:
    bad = tarry.delayed(fail)(tarry.delayed(quick_inc)(1))
    with tarry.profile() as prof, pytest.raises(ValueError, match="bad input 2"):
        bad.compute(scheduler=scheduler)
    report = prof.report()
    assert report.failed == bad.key
    assert report.error is not None
    assert "bad input 2" in report.error
    assert "stopped at task" in report.findings[0]
    assert tool_threads() == []
    assert observe.active == ()


def test_empty_profile() -> None:
    with tarry.profile() as prof:
        pass
    report = prof.report()
    assert report.runs == 0
    assert report.tasks == 0
    assert str(report) == "tarry profile: no compute ran inside the profile block"
    assert len(prof.to_dataframe()) == 0


def test_cpu_and_memory_are_sampled_during_a_compute(scheduler: str) -> None:
    with tarry.profile(interval=0.02) as prof:
        time.sleep(0.1)  # idle in the block, before and after the compute: not sampled
        before = time.perf_counter()
        tarry.delayed(burn)(0.3).compute(scheduler=scheduler)
        after = time.perf_counter()
        time.sleep(0.1)
    (record,) = prof.records
    samples = prof.samples
    assert len(samples) >= 3  # at the start, at the end, and in between
    assert all(before <= s.time <= after for s in samples)
    assert samples[0].time <= record.start  # a reading as the run starts ...
    assert samples[-1].time >= record.end  # ... and one as it ends
    assert all(s.memory > 0 for s in samples)
    rates = [s.cpu_percent for s in samples if not math.isnan(s.cpu_percent)]
    assert rates
    assert min(rates) >= 0
    # each reading is the CPU rate since the previous one: summed over time,
    # they give the CPU time used, 0.3 s by the task alone, however busy the machine
    used = sum(
        later.cpu_percent / 100 * (later.time - earlier.time)
        for earlier, later in itertools.pairwise(samples)
        if not math.isnan(later.cpu_percent)
    )
    assert used > 0.25
    assert tool_threads() == []


class Spy(observe.Observer):
    """Records what run_graph tells observers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        self.calls.append(("started", (scheduler, workers, run.remaining)))

    def finished(self, run: Run, error: BaseException | None) -> None:
        self.calls.append(("finished", type(error).__name__ if error else None))


def test_observers_see_every_run_once(scheduler: str) -> None:
    with Spy() as spy:
        tutorial(SHORT).compute(scheduler=scheduler, num_workers=3)
        with pytest.raises(ValueError, match="bad input 1"):
            tarry.delayed(fail)(1).compute(scheduler=scheduler, num_workers=3)
    workers = 1 if scheduler == "sync" else 3
    assert spy.calls == [
        ("started", (scheduler, workers, 3)),
        ("finished", None),
        ("started", (scheduler, workers, 1)),
        ("finished", "ValueError"),
    ]


def test_timeline_png_svg_and_html(tmp_path: Path) -> None:
    with tarry.profile() as prof:
        tutorial(SHORT).compute(scheduler="threads", num_workers=2)
        tarry.compute([tarry.delayed(quick_inc)(i) for i in range(300)], scheduler="threads")
    chart = prof.timeline(tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart._repr_png_()[:4] == b"\x89PNG"
    tasks, cpu, memory = chart.figure.axes
    workers = {e.worker for e in prof.events}
    assert len(tasks.get_yticklabels()) == len(workers)
    legend = tasks.get_legend()
    assert legend is not None
    assert {t.get_text() for t in legend.get_texts()} == {"inc", "add", "quick_inc"}
    assert cpu.get_lines()
    assert memory.get_lines()
    prof.timeline(str(tmp_path / "run.svg"))
    assert "<svg" in (tmp_path / "run.svg").read_text()
    prof.timeline(tmp_path / "run.html")
    page = (tmp_path / "run.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    add_key = next(e.key for e in prof.events if e.name == "add")
    assert f"<title>{add_key}\nadd on " in page  # a tooltip per task
    assert "critical path: inc → add" in page  # the report comes along
    for outside in ("<script", "href=", "src="):  # self-contained: nothing to fetch
        assert outside not in page
    assert_drawn_inside(page)


def assert_drawn_inside(page: str) -> None:
    """Every task bar of the page's SVG lies within the picture."""
    svg = ElementTree.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    width, height = float(svg.attrib["width"]), float(svg.attrib["height"])
    bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if "task" in r.get("class", "")]
    assert bars
    for bar in bars:
        x, y = float(bar.attrib["x"]), float(bar.attrib["y"])
        assert 0 <= x <= x + float(bar.attrib["width"]) <= width + 1
        assert 0 <= y <= y + float(bar.attrib["height"]) <= height


def test_timeline_of_many_tiny_tasks_stays_small(tmp_path: Path) -> None:
    with tarry.profile() as prof:
        tarry.compute([tarry.delayed(quick_inc)(i) for i in range(20_000)], scheduler="threads")
    prof.timeline(tmp_path / "many.html")
    page = (tmp_path / "many.html").read_text()
    assert page.count("<rect") < 5_000  # sub-pixel neighbours are merged
    assert re.search(r"\d+ tasks on \S+ \(quick_inc \d+\)", page)
    assert "of the time)</title>" in page
    assert_drawn_inside(page)


NOTEBOOK_CELLS = [
    """\
import time
import tarry

def inc(x):
    time.sleep(0.2)
    return x + 1

def add(x, y):
    time.sleep(0.2)
    return x + y

z = tarry.delayed(add)(tarry.delayed(inc)(1), tarry.delayed(inc)(2))""",
    """\
with tarry.profile() as prof:
    z.compute(scheduler="threads", num_workers=2)""",
    "prof.report()",
    "prof.timeline()",
    "tarry.explain(z, num_workers=2)",
    """\
with tarry.progress(min_time=0.1):
    tarry.compute([tarry.delayed(inc)(i) for i in range(4)], num_workers=2)""",
]


@pytest.mark.notebook
def test_diagnostics_in_a_notebook() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [cell["outputs"] for cell in notebook.cells]
    assert [o for cell in outputs for o in cell if o["output_type"] == "error"] == []
    (report,) = [o["data"] for o in outputs[2] if o["output_type"] == "execute_result"]
    assert "critical path: inc → add" in report["text/plain"]  # readable, not a dataclass repr
    (chart,) = [o["data"] for o in outputs[3] if o["output_type"] == "execute_result"]
    assert chart["image/png"]  # shown inline, once
    assert [o for o in outputs[3] if o["output_type"] == "display_data"] == []
    (why,) = [o["data"] for o in outputs[4] if o["output_type"] == "execute_result"]
    assert why["text/plain"].startswith("tarry graph: 3 tasks")
    shown = "".join(o.get("text", "") for o in outputs[5] if o["output_type"] == "stream")
    assert "4/4" in shown


def test_a_compute_of_persisted_values_runs_no_task() -> None:
    (kept,) = tarry.persist(tarry.delayed(quick_inc)(1), scheduler="sync")
    with tarry.profile() as prof:
        assert kept.compute() == 2
    report = prof.report()
    assert report.runs == 1
    assert report.tasks == 0
    assert report.findings == ["there is nothing to run: no lazy value, or only persisted ones"]


def test_a_scheduler_without_timings_is_named() -> None:
    record = RunRecord("elsewhere", 2, 0.0, 1.0, {"a": (), "b": ("a",)}, {"a": "f", "b": "g"}, [])
    report = analyse([record])
    assert report.tasks == 0
    assert report.findings == [
        "the elsewhere scheduler reported no task timings, so work, span and the findings "
        "that need them are unknown"
    ]


def test_saturated_cores_are_named_as_the_limit_and_no_more_workers_advised() -> None:
    from tarry._schedule.cpus import usable_cpus
    from tarry._schedule.timing import TaskEvent
    from tarry._tools.records import RunRecord
    from tarry._tools.report import analyse
    from tarry._tools.resources import ResourceSample

    cores = usable_cpus()
    deps: dict[str, tuple[str, ...]] = {f"t{i}": () for i in range(8)}
    events = [TaskEvent(f"t{i}", "read", f"w{i % 2}", i // 2 * 0.5, i // 2 * 0.5 + 0.5, 0.1)
              for i in range(8)]  # fmt: skip
    record = RunRecord("threads", 2, 0.0, 2.0, deps, {k: "read" for k in deps}, events)
    busy = [ResourceSample(t / 10, 100.0 * cores, 1e8) for t in range(1, 20)]
    saturated = analyse([record], busy)
    assert saturated.cores_busy == pytest.approx(cores)
    assert any("cores were the limit" in f for f in saturated.findings)
    assert not any("more workers than CPU cores would help" in f for f in saturated.findings)
    idle = analyse([record], [ResourceSample(t / 10, 5.0, 1e8) for t in range(1, 20)])
    assert not any("cores were the limit" in f for f in idle.findings)
    assert analyse([record]).cores_busy is None


def test_tasks_that_fill_several_cores_alone_are_explained() -> None:
    from tarry._schedule.timing import TaskEvent
    from tarry._tools.records import RunRecord
    from tarry._tools.report import analyse
    from tarry._tools.resources import ResourceSample

    deps: dict[str, tuple[str, ...]] = {f"t{i}": () for i in range(4)}
    # one task at a time, each 0.5 s, while the process used 1.6 cores
    events = [TaskEvent(f"t{i}", "read_csv", "w0", i * 0.5, i * 0.5 + 0.5, 0.4) for i in range(4)]
    record = RunRecord("threads", 2, 0.0, 2.0, deps, {k: "read_csv" for k in deps}, events)
    samples = [ResourceSample(t / 10, 160.0, 1e8) for t in range(1, 20)]
    findings = analyse([record], samples).findings
    assert any("1.6 CPU cores busy on its own" in f for f in findings), findings
    assert not any("make each task do more work" in f for f in findings)


def profiled() -> Profile:
    with tarry.profile() as prof:
        tarry.delayed(abs)(-1).compute(scheduler="sync")
    return prof


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    prof = profiled()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ModuleNotFoundError) as info:
        prof.to_dataframe()
    assert str(info.value) == (
        "Profile.to_dataframe() needs pandas, which is not installed: "
        "pip install 'tarry[diagnostics]'"
    )


def test_timeline_without_matplotlib_fails_up_front_unless_html(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prof = profiled()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for filename in (None, tmp_path / "run.png"):
        # at the call, not when Jupyter first asks the chart for its picture
        with pytest.raises(ModuleNotFoundError, match=r"pip install 'tarry\[diagnostics\]'"):
            prof.timeline(filename)
    prof.timeline(tmp_path / "run.html")  # the HTML page needs no matplotlib
    assert (tmp_path / "run.html").read_text().startswith("<!DOCTYPE html>")
