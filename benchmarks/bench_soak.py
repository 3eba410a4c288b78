"""Soak: thousands of computes per local scheduler, with faults injected at random.

Run ``python benchmarks/bench_soak.py`` (``./dev bench`` runs it with the
other benchmarks). ``--computes N`` sets the computes per scheduler,
``--quick`` makes a smoke run of 100, ``--seed S`` replays a run: the seed is
printed, and the same seed draws the same cases in the same order (only the
timing of signals against the work differs).

Each local scheduler soaks in a fresh interpreter of its own: ``"sync"``,
``"threads"``, ``"processes"``, and ``"executor"``, a
``ThreadPoolExecutor`` passed as ``scheduler=``. A watchdog per case
(:mod:`faulthandler`: every thread's stack, then exit) and a time limit on
the interpreter turn a hang into a report instead of a stuck benchmark.
Cases are drawn at random, one after another:

* ``ok``: a small random graph (leaves summed pairwise); its value is checked;
* ``error``: the same with one task raising the user's own exception, which
  must arrive with its own type and message;
* ``retries``: a flaky task failing 1 to 3 times, with ``retries=`` on the
  compute or ``.options(retries=, retry_on=)``: enough retries give the
  value, too few (or a ``retry_on`` that does not match) the last error;
  the attempt count is part of the value and of the message, so it is checked;
* ``timeout``: ``timeout=`` on a graph with a long task: ``TimeoutError``;
* ``Ctrl-C``: SIGINT sent to the process from a timer thread while a compute
  runs in the main thread: ``KeyboardInterrupt``, then a compute that must work;
* ``concurrent callers``: 2 to 4 callers, the main thread and 1 to 3 others,
  computing at once, each a case drawn from the ones above (Ctrl-C only in
  the main thread); its own faults count under their own kinds;
* ``killed worker`` (processes only): a task SIGKILLs its worker process:
  ``WorkerDiedError``, then a compute that must work;
* ``fork`` (processes only): ``os.fork()`` after a compute; the child
  computes a small graph on processes and exits 0 if it got the right value.

How to read the table (one row per scheduler):

* *computes*: ``compute()`` calls made and checked (a forked child's too);
* *faults injected*: by kind (``ok`` cases are not faults);
* *expected errors*: the errors the faults must raise, by type, as seen;
* *unexpected*: every other outcome: a wrong value, a wrong error type or
  message, a hang (a watchdog fired), a leak. Must be 0. A flaky task that
  ran more often than its retries allow, because another caller's killed
  worker broke the shared process pool and tarry ran the lost work again (as
  designed), is expected, and counted in a note under the table;
* *RSS MB*, *threads*, *fds*, *children*, */dev/shm*: start → end, the start
  after a warm-up compute, each after stopping the thread and process pools
  and ``gc.collect()``. The end must not be above the start (RSS: by at most
  :data:`RSS_SLACK_MB`), else it is a leak. */dev/shm* counts the
  ``/dev/shm/tarry-*`` folders (with their files) of the soaking process and
  of the children it forked; *children* counts live descendants; after the
  interpreter exits, any process it started that is still alive is a leak too;
* *time*: of the soak itself, without the interpreter's start and the snapshots.

A line sums up; the exit status is 1 if anything was unexpected, else 0.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from tarry import Delayed, compute, delayed
from tarry._schedule.errors import WorkerDiedError
from tarry._schedule.processes.pool import shutdown_pool
from tarry._schedule.threads import shutdown_default_pool

#: the schedulers soaked; "executor" is a ThreadPoolExecutor passed as ``scheduler=``
SCHEDULERS = ("sync", "threads", "processes", "executor")
#: threads of that executor: more than the 2 to 4 concurrent callers, so they can all run
EXECUTOR_THREADS = 4
#: computes per scheduler by default: on a shared 2-core machine at a load of
#: 1 to 3, 3000 took 104 to 125 s in all, most of it on "processes", whose
#: faults restart the pool (about 1 s each); at a load of 6 "processes" ran 2
#: to 3 times slower. This many: about 2 minutes, up to 4 on a busy machine
DEFAULT_COMPUTES = 3500
#: computes per scheduler of ``--quick``
QUICK_COMPUTES = 100

#: how often each case is drawn, per 1000; the faults that restart the process
#: pool (timeout, Ctrl-C, killed worker, fork) are rarer, as they cost 1 to
#: 1.5 s each on "processes" (measured), where a compute of a small graph takes 2 ms
WEIGHTS = {
    "ok": 840,
    "error": 50,
    "retries": 40,
    "timeout": 10,
    "Ctrl-C": 10,
    "concurrent callers": 30,
    "killed worker": 10,
    "fork": 10,
}
#: the cases that need worker processes
PROCESSES_ONLY = frozenset({"killed worker", "fork"})
#: what a concurrent caller may do (Ctrl-C, the main thread only, is added for it)
CALLER_CASES = ("ok", "ok", "error", "retries", "timeout", "killed worker")

#: leaves of a random graph: 1 to this many, summed pairwise (up to 15 tasks)
MAX_LEAVES = 8
#: a flaky task fails 1 to this many times before it succeeds
MAX_FAILURES = 3
#: ``timeout=`` of the timeout cases, in seconds
TIMEOUT = 0.05
#: seconds the long task of a timeout case runs at most, unless its gate opens:
#: longer than the timeout, so the deadline passes while it runs; short, as
#: the "sync" scheduler waits for it (it looks at the clock between tasks)
TIMEOUT_TASK = 4 * TIMEOUT
#: SIGINT comes after 0 to this many seconds: from while tarry sets the run up
#: to while it waits (a held compute on "processes" is set up in ~2 ms)
MAX_SIGINT_DELAY = 0.1
#: seconds a held task waits for its gate (opened once its case ended) at most:
#: a compute that Ctrl-C did not stop then ends with a value, reported as
#: unexpected, instead of hanging the soak (SIGINT comes within 0.1 s)
HOLD_SECONDS = 10.0
#: seconds between two looks of a held task at its gate
GATE_POLL = 0.005

#: seconds one case may take before the watchdog dumps every stack and ends
#: the soak: a killed worker, the slowest case, takes ~2 s on a busy machine
CASE_WATCHDOG = 120.0
#: seconds a forked child may take to compute and exit before it counts as hung
FORK_WAIT = 60.0
#: seconds the soak of one scheduler may take, besides HANG_PER_COMPUTE per
#: compute, before its interpreter is killed as hung: 5 to 15x what
#: "processes", the slowest, took (20 to 60 ms a compute, faults included)
HANG_BASE = 120.0
HANG_PER_COMPUTE = 0.3
#: seconds the end snapshot waits for threads, fds and processes to come back
#: to the start's levels (stopped pools join their threads; the kernel reaps)
SETTLE = 10.0
#: seconds between two looks while settling
SETTLE_LOOK = 0.1
#: seconds processes the soak started get to exit after it ended, before they
#: count as leaked (loky's workers look for their parent's death now and then)
EXIT_GRACE = 30.0
#: growth of the resident memory that counts as a leak, in MB: it grew by 0
#: to 2 MB over 3000 computes (allocator and caches); what is kept per compute
#: would grow it by far more, unless it is tiny (then no soak this short sees it)
RSS_SLACK_MB = 64.0

#: how the soaking interpreter tags its lines on standard output
CASE_MARK = "@@soak-case@@ "
REPORT_MARK = "@@soak-report@@ "
#: the unexpected outcomes a report keeps in full
SAMPLES = 10
#: characters shown of a line the soaking interpreter wrote on standard error
STDERR_WIDTH = 300


# -- the tasks: module-level, so worker processes get them by value (cloudpickle) ---


class SoakError(Exception):
    """The user's own exception: it must reach the caller with its type and message."""


class FlakyError(ConnectionError):
    """What a flaky task raises while it fails."""


class HangError(Exception):
    """A forked child did not end in time."""


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def fail(message: str) -> int:
    raise SoakError(message)


def die() -> int:
    """Kill the worker process running this task, as the kernel's OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def hold(gate: str, seconds: float) -> int:
    """Wait until the file ``gate`` exists, or ``seconds`` passed; return 1."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(GATE_POLL)
    return 1


def flaky(counter: str, failures: int) -> int:
    """Fail the first ``failures`` attempts; return the number of the attempt that succeeded.

    Attempts are counted in the file ``counter``, so they add up across worker processes.
    """
    with open(counter, "ab") as f:
        f.write(b".")
        attempt = f.tell()
    if attempt <= failures:
        raise FlakyError(flaky_message(counter, attempt))
    return attempt


def flaky_message(counter: str, attempt: int) -> str:
    return f"attempt {attempt} of {Path(counter).name} failed"


# -- graphs and what they must give -----------------------------------------------------


@dataclass(frozen=True)
class Want:
    """What a compute must give: ``value``, or an error of type ``error``.

    With ``message``, the error must be of exactly that type, with exactly that text.
    """

    value: object = None
    error: type[BaseException] | None = None
    message: str | None = None


def pairwise_sum(level: list[Delayed[int]]) -> Delayed[int]:
    """The sum of ``level``, added pairwise (a balanced tree)."""
    lazy_add = delayed(add)
    while len(level) > 1:
        paired = [lazy_add(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def leaves(rng: random.Random) -> list[int]:
    return [rng.randrange(1000) for _ in range(rng.randint(1, MAX_LEAVES))]


def with_leaf(rng: random.Random, leaf: Delayed[int]) -> tuple[Delayed[int], int]:
    """A random graph with ``leaf`` among its leaves, and the sum of the other leaves."""
    values = leaves(rng)
    level = [delayed(inc)(v) for v in values]
    level.insert(rng.randint(0, len(level)), leaf)
    return pairwise_sum(level), sum(values) + len(values)


def flaky_want(counter: str, failures: int, rest: int, attempt: int) -> Want:
    """What a graph of :func:`flaky` and leaves worth ``rest`` gives if it last ran ``attempt``."""
    if attempt > failures:
        return Want(rest + attempt)
    return Want(error=FlakyError, message=flaky_message(counter, attempt))


def outcome_error(want: Want, got: object, exc: BaseException | None) -> str | None:
    """None when a compute gave what ``want`` says, else what went wrong."""
    if want.error is None:
        if exc is not None:
            return f"{type(exc).__name__}: {exc}, expected the value {want.value!r}"
        return None if got == want.value else f"wrong value {got!r}, expected {want.value!r}"
    expected = want.error.__name__ + ("" if want.message is None else f": {want.message}")
    if exc is None:
        return f"no error (value {got!r}), expected {expected}"
    if want.message is None:
        right = isinstance(exc, want.error)
    else:
        right = type(exc) is want.error and str(exc) == want.message
    return None if right else f"{type(exc).__qualname__}: {exc}, expected {expected}"


def unexpected_kind(want: Want, exc: BaseException | None) -> str:
    """How an unexpected outcome is counted: the error's type, or the value's fault."""
    if isinstance(exc, HangError):
        return "hang"
    if exc is not None:
        return type(exc).__name__
    return "wrong value" if want.error is None else "no error"


# -- resources ----------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the soaking process holds: memory, threads, fds, processes, /dev/shm entries."""

    rss_mb: float
    #: threads of the process (the system's count, so threads of C code too)
    threads: int
    #: the names of its Python threads, to tell which ones were left
    thread_names: list[str]
    #: what its open file descriptors refer to
    fds: list[str]
    #: its live descendant processes: pid, parent and command line
    children: list[str]
    #: its /dev/shm/tarry-* entries, see :func:`shm_entries`
    shm: list[str]

    def counts(self) -> tuple[int, int, int, int]:
        return self.threads, len(self.fds), len(self.children), len(self.shm)

    def leaks(self, end: Snapshot) -> list[str]:
        """What ``end`` holds beyond this start."""
        new_fds = sorted(set(end.fds) - set(self.fds))
        found = [
            f"{name} {before} -> {after}: {detail}"
            for name, before, after, detail in [
                ("threads", self.threads, end.threads, ", ".join(end.thread_names)),
                ("fds", len(self.fds), len(end.fds), "new: " + ", ".join(new_fds)),
                ("children", len(self.children), len(end.children), "; ".join(end.children)),
                ("/dev/shm entries", len(self.shm), len(end.shm), new_folders(self.shm, end.shm)),
            ]
            if after > before
        ]
        if end.rss_mb - self.rss_mb > RSS_SLACK_MB:
            found.append(f"RSS {self.rss_mb:.0f} -> {end.rss_mb:.0f} MB")
        return found


def owner(folder: str) -> int | None:
    """The process a ``/dev/shm/tarry-workers-<pid>-*`` folder is named after."""
    pid = folder.removeprefix("tarry-workers-").partition("-")[0]
    return int(pid) if pid.isdigit() else None


def shm_entries(pids: Collection[int]) -> list[str]:
    """The ``/dev/shm/tarry-*`` folders of processes ``pids`` (named after them), with files."""
    found = []
    for folder in Path("/dev/shm").glob("tarry-workers-*-*"):
        if owner(folder.name) in pids:
            found.append(folder.name)
            with suppress(OSError):  # going away meanwhile
                found.extend(f"{folder.name}/{name}" for name in os.listdir(folder))
    return sorted(found)


def new_folders(before: list[str], after: list[str]) -> str:
    """The folders of the entries in ``after`` and not ``before``, with their entry counts."""
    new = Counter(entry.partition("/")[0] for entry in set(after) - set(before))
    forked = sum(owner(folder) != os.getpid() for folder in new)
    examples = ", ".join(f"{folder} ({n} entries)" for folder, n in sorted(new.items())[:3])
    return f"{len(new)} new folders, {forked} of them of forked children; e.g. {examples}"


def open_fds() -> list[str]:
    """What this process's file descriptors refer to (a file, ``pipe:[inode]``, ...)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the one listdir used, closed since
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(found)


def descendants() -> list[str]:
    """This process's live descendants: pid, parent and command line."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):  # gone meanwhile
            if child.status() != psutil.STATUS_ZOMBIE:
                command = " ".join(child.cmdline())[:100]
                found.append(f"{child.pid} (child of {child.ppid()}): {command}")
    return found


def snapshot(pids: Collection[int]) -> Snapshot:
    me = psutil.Process()
    return Snapshot(
        rss_mb=me.memory_info().rss / 2**20,
        threads=me.num_threads(),
        thread_names=sorted(t.name for t in threading.enumerate()),
        fds=open_fds(),
        children=descendants(),
        shm=shm_entries(pids),
    )


def settled_snapshot(pids: Collection[int], start: Snapshot | None = None) -> Snapshot:
    """A snapshot with the pools stopped, once settled (or after SETTLE s).

    Settled: with ``start``, no longer above it; without, steady (two looks
    agree): a thread that was told to stop is gone a moment after its join.
    """
    shutdown_default_pool()
    shutdown_pool()
    deadline = time.monotonic() + SETTLE
    gc.collect()
    now = snapshot(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_LOOK)
        gc.collect()
        before, now = now, snapshot(pids)
        settled = before.counts() == now.counts() if start is None else not start.leaks(now)
        if settled:
            break
    return now


# -- the soak of one scheduler ----------------------------------------------------------


@dataclass
class Report:
    """What the soak of one scheduler saw."""

    scheduler: str
    computes: int = 0
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    #: computes that gave the outcome of a task that ran again (see Step.reruns)
    reruns: int = 0
    #: the first SAMPLES unexpected outcomes, described
    samples: list[str] = field(default_factory=list)
    start: Snapshot | None = None
    end: Snapshot | None = None
    leaks: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        # not asdict(self): it rebuilds a Counter from its items, as if they were keys
        counters = {
            name: dict(getattr(self, name)) for name in ("faults", "expected", "unexpected")
        }
        return json.dumps({**asdict(self), **counters})

    @classmethod
    def from_json(cls, text: str) -> Report:
        data: dict[str, Any] = json.loads(text)
        for name in ("faults", "expected", "unexpected"):
            data[name] = Counter(data[name])
        for name in ("start", "end"):
            data[name] = Snapshot(**data[name]) if data[name] else None
        return cls(**data)


@dataclass
class Step:
    """One compute of a case, and what it must give."""

    #: what it computes, for the report of an unexpected outcome
    what: str
    work: Callable[[], object]
    want: Want
    #: what it may give instead when a task ran again, unasked: on "processes",
    #: a worker killed by another caller's task breaks the shared pool, and the
    #: work lost with it runs again (tarry's design, see its ``processes.pool``);
    #: a task whose outcome was lost had already run, which a flaky task notices
    reruns: tuple[Want, ...] = ()


class Soak:
    """Draws cases for one scheduler and checks every compute they make."""

    def __init__(self, report: Report, scheduler: str | Executor, seed: int, scratch: str) -> None:
        self.report = report
        self.scheduler = scheduler
        self.rng = random.Random(f"{seed}-{report.scheduler}")
        self.scratch = scratch
        #: this process and the children it forked: whose /dev/shm folders count
        self.pids = {os.getpid()}
        self._lock = threading.Lock()
        self._names = 0
        self._gates: list[str] = []
        #: the case running, for the report of an unexpected outcome
        self.case = ""

    def compute(self, obj: Delayed[int], **options: Any) -> object:
        return compute(obj, scheduler=self.scheduler, **options)[0]

    def path(self, prefix: str) -> str:
        """A fresh file name in the scratch folder."""
        self._names += 1
        return os.path.join(self.scratch, f"{prefix}-{self._names}")

    def gate(self) -> str:
        """A gate for held tasks, opened once the case ends."""
        self._gates.append(self.path("gate"))
        return self._gates[-1]

    def fault(self, kind: str) -> None:
        self.report.faults[kind] += 1

    def run_case(self, number: int) -> None:
        """Draw one case and run it, under the watchdog."""
        kinds = self.usable(WEIGHTS)
        kind = self.rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
        self.case = f"case {number} ({kind})"
        print(CASE_MARK + self.case, flush=True)
        faulthandler.dump_traceback_later(CASE_WATCHDOG, exit=True)
        try:
            if kind == "concurrent callers":
                self.fault(kind)
                self.run_concurrently()
            else:
                self.run_steps(self.plan(kind))
        finally:
            faulthandler.cancel_dump_traceback_later()
            for gate in self._gates:
                Path(gate).touch()
            self._gates.clear()

    def run_steps(self, steps: list[Step]) -> None:
        for step in steps:
            self.check(step)

    def run_concurrently(self) -> None:
        """2 to 4 callers at once: the main thread (which may be interrupted) and 1 to 3 others."""
        callers = self.usable(CALLER_CASES)
        kinds = [self.rng.choice(callers) for _ in range(self.rng.randint(1, 3))]
        main = self.rng.choice([*callers, "Ctrl-C"])
        self.case = self.case.removesuffix(")") + f": {main} | {', '.join(kinds)})"
        breakers = [main, *kinds].count("killed worker")
        others = [self.plan(kind, breakers) for kind in kinds]
        mine = self.plan(main, breakers)
        threads = [threading.Thread(target=self.run_steps, args=(steps,)) for steps in others]
        for thread in threads:
            thread.start()
        self.run_steps(mine)
        for thread in threads:
            thread.join()

    def usable(self, kinds: Iterable[str]) -> list[str]:
        """The cases among ``kinds`` this scheduler can run."""
        return [k for k in kinds if self.report.scheduler == "processes" or k not in PROCESSES_ONLY]

    def check(self, step: Step) -> None:
        """Run one compute; tally its outcome as a value, an expected error or an unexpected one."""
        got: object = None
        exc: BaseException | None = None
        try:
            got = step.work()
        except BaseException as error:  # Ctrl-C too: it is one of the outcomes checked
            exc = error
        wrong = outcome_error(step.want, got, exc)
        rerun = wrong is not None and any(outcome_error(w, got, exc) is None for w in step.reruns)
        with self._lock:
            self.report.computes += 1
            self.report.reruns += rerun
            if wrong is None or rerun:
                if exc is not None:
                    self.report.expected[type(exc).__name__] += 1
                return
            self.report.unexpected[unexpected_kind(step.want, exc)] += 1
            if len(self.report.samples) < SAMPLES:
                self.report.samples.append(f"{self.case}, {step.what}: {wrong}")
                if exc is not None:
                    traceback.print_exception(exc)

    # -- the cases: each a list of computes, drawn here, in the main thread ----------------

    def plan(self, kind: str, breakers: int = 0) -> list[Step]:
        """The computes of a case ``kind``, beside ``breakers`` callers that kill a worker."""
        if kind != "ok":
            self.fault(kind)
        planners: dict[str, Callable[[], list[Step]]] = {
            "ok": lambda: [self.ok()],
            "error": lambda: [self.error()],
            "retries": lambda: [self.retries(breakers)],
            "timeout": lambda: [self.timeout()],
            "Ctrl-C": lambda: [self.interrupt(), self.ok()],
            "killed worker": lambda: [self.killed_worker(), self.ok()],
            "fork": lambda: [self.ok(), self.fork()],
        }
        return planners[kind]()

    def ok(self) -> Step:
        values = leaves(self.rng)
        obj = pairwise_sum([delayed(inc)(v) for v in values])
        return Step(
            f"{len(values)} leaves", partial(self.compute, obj), Want(sum(values) + len(values))
        )

    def error(self) -> Step:
        message = f"planted failure {self.rng.randrange(10**6)}"
        obj, _ = with_leaf(self.rng, delayed(fail)(message))
        return Step(
            "a failing task", partial(self.compute, obj), Want(error=SoakError, message=message)
        )

    def retries(self, breakers: int) -> Step:
        """A flaky task; retries from the compute or from its options, enough or not.

        Each of ``breakers`` may make it run once more (see :attr:`Step.reruns`).
        """
        counter, failures = self.path("flaky"), self.rng.randint(1, MAX_FAILURES)
        retries = failures if self.rng.random() < 0.75 else failures - 1
        how = self.rng.choice(["compute", "options", "retry_on", "other retry_on"])
        task = delayed(flaky)
        if how == "options":
            task = task.options(retries=retries)
        elif how in ("retry_on", "other retry_on"):
            on = FlakyError if how == "retry_on" else KeyError
            task = task.options(retries=retries, retry_on=on)
        obj, rest = with_leaf(self.rng, task(counter, failures))
        options = {"retries": retries} if how == "compute" else {}
        attempts = 1 if how == "other retry_on" else retries + 1
        wants = [flaky_want(counter, failures, rest, attempts + n) for n in range(breakers + 1)]
        what = f"a task failing {failures} times, retries={retries} by {how}"
        return Step(what, partial(self.compute, obj, **options), wants[0], tuple(wants[1:]))

    def timeout(self) -> Step:
        obj, _ = with_leaf(self.rng, delayed(hold)(self.gate(), TIMEOUT_TASK))
        work = partial(self.compute, obj, timeout=TIMEOUT)
        return Step("a long task, timeout=", work, Want(error=TimeoutError))

    def interrupt(self) -> Step:
        obj, _ = with_leaf(self.rng, delayed(hold)(self.gate(), HOLD_SECONDS))
        delay = self.rng.uniform(0, MAX_SIGINT_DELAY)
        work = partial(interrupted, partial(self.compute, obj), delay)
        return Step(f"SIGINT after {delay:.3f} s", work, Want(error=KeyboardInterrupt))

    def killed_worker(self) -> Step:
        obj, _ = with_leaf(self.rng, delayed(die)())
        return Step(
            "a task killing its worker", partial(self.compute, obj), Want(error=WorkerDiedError)
        )

    def fork(self) -> Step:
        """A compute in a forked child; the step's value is the child's exit status."""
        step = self.ok()
        return Step("a forked child's compute", partial(self.forked, step), Want(0))

    def forked(self, step: Step) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            os._exit(child_status(step))
        self.pids.add(child)
        return wait_for_child(child, FORK_WAIT)


def interrupted(work: Callable[[], object], delay: float) -> object:
    """``work()`` while a timer thread sends SIGINT to this process after ``delay`` seconds."""
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()  # it may fire before start() returns
        return work()
    finally:
        timer.cancel()
        timer.join()


def child_status(step: Step) -> int:
    """In a forked child: 0 if ``step`` gives what it must, else 1 (and why, on stderr)."""
    try:
        got = step.work()
    except BaseException as exc:  # whatever happens, the child must only exit
        traceback.print_exception(exc)
        return 1
    if got != step.want.value:
        print(f"forked child: wrong value {got!r}, expected {step.want.value!r}", file=sys.stderr)
        return 1
    return 0


def wait_for_child(pid: int, seconds: float) -> int:
    """The exit status of child ``pid``; past ``seconds``, it is killed and HangError raised."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise HangError(f"forked child {pid} still ran after {seconds} s")


@contextmanager
def scheduler_of(name: str) -> Iterator[str | Executor]:
    """What ``compute(scheduler=)`` is given for ``name``."""
    if name != "executor":
        yield name
        return
    with ThreadPoolExecutor(EXECUTOR_THREADS) as executor:
        yield executor


def warm_up(name: str) -> None:
    """A first compute: imports, pools and tarry's folders made once, before the start snapshot."""
    with scheduler_of(name) as scheduler:
        compute(pairwise_sum([delayed(inc)(1), delayed(inc)(2)]), scheduler=scheduler)


def soak(name: str, computes: int, seed: int) -> Report:
    """Run random cases on scheduler ``name`` until ``computes`` computes were made."""
    report = Report(name)
    warm_up(name)
    report.start = settled_snapshot({os.getpid()})
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tarry-soak-") as scratch, scheduler_of(name) as s:
        run = Soak(report, s, seed, scratch)
        number = 0
        while report.computes < computes:
            number += 1
            run.run_case(number)
    report.seconds = time.perf_counter() - began
    report.end = settled_snapshot(run.pids, report.start)
    report.leaks = report.start.leaks(report.end)
    return report


# -- the benchmark: one interpreter per scheduler ---------------------------------------


def in_subprocess(name: str, computes: int, seed: int) -> Report:
    """The soak of ``name`` in a fresh interpreter; a hang, a crash or a survivor is reported.

    What the interpreter writes on standard error is shown, long lines cut.
    """
    limit = HANG_BASE + computes * HANG_PER_COMPUTE
    command = [sys.executable, __file__, "--worker", name, "--computes", str(computes)]
    # files, not pipes: a process the soak leaked would hold a pipe open
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [*command, "--seed", str(seed)], stdout=out, stderr=err, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            pass
        finally:  # Ctrl-C too: the soak, in a session of its own, would not see it
            hung = proc.poll() is None
            if hung:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        why = f"still running after {limit:.0f} s, killed" if hung else f"exit {proc.returncode}"
        survivors = survivors_of(proc.pid)
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().splitlines(), err.read().splitlines()
    for line in errors:
        cut = line if len(line) <= STDERR_WIDTH else line[:STDERR_WIDTH] + " ..."
        print(f"    {name} stderr: {cut}")
    report = next(
        (Report.from_json(line.removeprefix(REPORT_MARK)) for line in lines
         if line.startswith(REPORT_MARK)),
        None,
    )  # fmt: skip
    if report is None:
        report = Report(name)
        last = next((line for line in reversed(lines) if line.startswith(CASE_MARK)), "none")
        report.unexpected["hang"] += 1
        report.samples.append(f"hang or crash ({why}) in {last.removeprefix(CASE_MARK)}")
    report.leaks += [f"survived the soak: {s}" for s in survivors]
    return report


def session_processes(session: int) -> list[psutil.Process]:
    """The live processes of session ``session`` (all a soak started: it leads its own)."""
    found = []
    for proc in psutil.process_iter():
        with suppress(psutil.Error, OSError):
            if os.getsid(proc.pid) == session and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def survivors_of(session: int) -> list[str]:
    """What is left of session ``session`` after EXIT_GRACE seconds; killed."""
    deadline = time.monotonic() + EXIT_GRACE
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = []
    for proc in left:
        with suppress(psutil.Error):
            described.append(f"process {proc.pid} ({' '.join(proc.cmdline())[:80]})")
            proc.kill()
    return described


def tally(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.most_common()) or "none"


def change(report: Report, measure: Callable[[Snapshot], float]) -> str:
    """``measure`` of the start snapshot → of the end one."""
    if report.start is None or report.end is None:
        return "?"
    return f"{measure(report.start):.0f} → {measure(report.end):.0f}"


def unexpected_count(report: Report) -> int:
    return sum(report.unexpected.values()) + len(report.leaks)


def print_table(reports: list[Report]) -> None:
    print("| scheduler | computes | faults injected | expected errors | unexpected "
          "| RSS MB | threads | fds | children | /dev/shm | time |")  # fmt: skip
    print("|---|---:|---|---|---|---|---|---|---|---|---:|")
    for r in reports:
        unexpected = Counter(r.unexpected)
        if r.leaks:
            unexpected["leak"] += len(r.leaks)
        print(f"| {r.scheduler} | {r.computes:,} | {tally(r.faults)} | {tally(r.expected)} "
              f"| {unexpected_count(r)}: {tally(unexpected)} | {change(r, lambda s: s.rss_mb)} "
              f"| {change(r, lambda s: s.threads)} | {change(r, lambda s: len(s.fds))} "
              f"| {change(r, lambda s: len(s.children))} | {change(r, lambda s: len(s.shm))} "
              f"| {r.seconds:.0f} s |")  # fmt: skip
    for r in reports:
        for line in r.samples + [f"leak: {leak}" for leak in r.leaks]:
            print(f"- {r.scheduler}: {line}")
        if r.reruns:
            print(f"- {r.scheduler}: {r.reruns} flaky tasks ran more often than their retries "
                  "allow (expected: another caller's killed worker broke the pool, and the "
                  "work lost with it ran again)")  # fmt: skip


def worker_main(name: str, computes: int, seed: int) -> None:
    # A shell starts a background job with SIGINT ignored, and Python keeps it
    # so: the Ctrl-C cases need the handler Python has in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report = soak(name, computes, seed)
    print(REPORT_MARK + report.to_json(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, help=f"per scheduler (default {DEFAULT_COMPUTES})")
    parser.add_argument("--seed", type=int, help="replay a run (default: a random seed)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COMPUTES} computes each")
    parser.add_argument("--worker", choices=SCHEDULERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    computes = args.computes or (QUICK_COMPUTES if args.quick else DEFAULT_COMPUTES)
    seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    if args.worker:
        worker_main(args.worker, computes, seed)
        return
    print(f"soak: {computes:,} computes per scheduler with random faults, seed {seed} "
          f"(replay: --seed {seed})", flush=True)  # fmt: skip
    began = time.perf_counter()
    reports = []
    for name in SCHEDULERS:
        reports.append(in_subprocess(name, computes, seed))
        done = reports[-1]
        print(f"  soaked {name}: {done.computes:,} computes in {done.seconds:.0f} s, "
              f"{unexpected_count(done)} unexpected", flush=True)  # fmt: skip
    print()
    print_table(reports)
    bad = sum(unexpected_count(r) for r in reports)
    print(f"\nsoak {'passed' if not bad else 'FAILED'}: "
          f"{sum(r.computes for r in reports):,} computes, "
          f"{sum(sum(r.faults.values()) for r in reports):,} faults injected, "
          f"{sum(sum(r.unexpected.values()) for r in reports)} unexpected errors "
          f"({sum(r.unexpected['hang'] for r in reports)} hangs), "
          f"{sum(len(r.leaks) for r in reports)} leaks, on {len(reports)} schedulers "
          f"in {time.perf_counter() - began:.0f} s (seed {seed})")  # fmt: skip
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
