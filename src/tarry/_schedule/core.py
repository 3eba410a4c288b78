"""The executor-agnostic core of every scheduler: the state of one run.

A :class:`Run` knows which tasks are ready, which wait for what, and which
results are still needed. It does no locking and starts nothing: a backend
(:mod:`~tarry._schedule.sync`, :mod:`~tarry._schedule.threads`, ...) drives
it with :meth:`Run.pop` and :meth:`Run.finish`, and serialises those calls
itself if it uses several threads.

Order decides memory: a result lives until its last reader has run (targets
stay for the caller). So a run finishes a branch before opening the next,
and loads data (roots: tasks that read no computed result) just before it
is used. Planning *ranks* the tasks in linear time: a depth-first walk from
the targets numbers them as it finishes them, inputs in argument order. If
a task lists an input with clearly more work beneath after a lighter one
(``use(make(i), acc)``), or targets share inputs, a second walk ranks again:
the input with most work beneath first (counted per path, as ``dask.order``
does), targets with an input planned earliest first. A fold then loads each
chunk just before it is merged, whatever its argument order. The run
follows the ranks, but frees memory as early as it can:

* roots wait at the bottom of the ready stack, lowest rank on top;
* a task made ready that frees an input (its last reader, or one of the
  last two, both ready) goes on top and runs next;
* one that frees nothing (a branch of a split holds the input and adds a
  result) waits in ``later`` for its rank, so branches do not all run at
  once; when an input is down to one reader waiting there, it goes on top.

With several workers, a worker that finds only roots while another runs the
task some finished result waits for would load data that then waits too:
once a backend calls :meth:`Run.hold_back`, :meth:`Run.pop` holds roots back
while such a *parked* result exists and some task runs (the policy, shared
with the processes driver's units, is :class:`~tarry._schedule.holdback.HoldBack`).

The contract with backends: a backend changes the run only through its
methods. It may read ``tasks``, ``targets``, ``values``, ``refs``,
``dependents`` and ``remaining``, never write them. ``values`` holds what the
backend handed to :meth:`Run.finish`: the result itself, or the backend's
handle to it (processes keep results that only other tasks read pickled in
the parent); the targets' entries are always the results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from tarry._graph import Task, call, check_same
from tarry._schedule.budget import CpuBudget
from tarry._schedule.errors import annotate
from tarry._schedule.holdback import HoldBack
from tarry._schedule.timing import Stopwatch, TaskEvent, Timing
from tarry._schedule.tracebacks import without_own_frames

if TYPE_CHECKING:
    from tarry._cache.tally import CacheTally

__all__ = ["Run"]


#: sizes stop here: a lattice (a stencil over many steps) has exponentially many paths
_CAP = 1 << 60

#: how many levels of unfinished inputs the hold-back policy looks through to
#: see whether a reader waits only for tasks under way (a fold needs two: the
#: previous step, and the chunk it waits for)
_LOOK_DOWN = 2


class Run:
    """Bookkeeping for computing ``targets`` once.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> inc = Task("inc", lambda x: x + 1, (one,), None, (one,), "inc")
    >>> run = Run([inc])
    >>> task = run.pop()
    >>> task.key, run.pop()
    ('inc', None)
    >>> run.finish(task, 2)
    >>> run.remaining, run.values
    (0, {'inc': 2})
    """

    __slots__ = (
        "attempts", "bottom", "cache", "cpus", "dependents", "events", "failed", "fuse", "hold",
        "later", "rank", "readers", "ready", "refs", "remaining", "retries", "targets", "tasks",
        "values", "waiting",
    )  # fmt: skip

    def __init__(
        self, targets: Iterable[Task], *, fuse: bool = True, timed: bool = False, retries: int = 0
    ) -> None:
        self.targets: list[Task] = list(targets)
        #: outputs computed and still needed, by key
        self.values: dict[str, Any] = {}
        #: per key, how many of its dependencies have not finished yet; 0 for
        #: a task that is ready but waits its turn in ``later``
        self.waiting: dict[str, int] = {}
        #: per key, the tasks that take it as input, lowest rank first
        self.dependents: dict[str, list[Task]] = {}
        #: per key, how many unfinished tasks (or the caller) still need it
        self.refs: dict[str, int] = {}
        #: every task of the run, by key, dependencies first (in rank order
        #: unless ``rank`` was built while planning)
        self.tasks: dict[str, Task] = {}
        #: ready tasks: the roots at the bottom, lowest rank on top, then the
        #: tasks made ready since, which :meth:`pop` sorts out from the top
        self.ready: list[Task] = []
        #: how many tasks at the bottom of ``ready`` are roots
        self.bottom = 0
        #: ready tasks that free no input, as (rank, task): they run in rank order
        self.later: list[tuple[int, Task]] = []
        #: per key, its rank: its place in the planned order (built on first use)
        self.rank: dict[str, int] | None = None
        #: per key, the tasks in ``later`` that read it (until one reader is left)
        self.readers: dict[str, list[Task]] = {}
        #: tasks not finished yet
        self.remaining = 0
        #: per-task timings; None (the default) means nobody asked, and
        #: backends then skip timing altogether
        self.events: list[TaskEvent] | None = [] if timed else None
        #: key of the task whose error ended the run, if any
        self.failed: str | None = None
        #: further attempts a failed task gets, unless its options say otherwise
        #: (``compute(retries=...)``)
        self.retries = retries
        #: per key of a task that failed and was tried again, how many times it ran
        self.attempts: dict[str, int] = {}
        #: whether a backend may run several tasks as one unit of work
        #: (``compute(optimize_graph=...)``)
        self.fuse = fuse
        #: the hold-back policy, once a backend runs several tasks at once
        #: (:meth:`hold_back`); None until then
        self.hold: HoldBack[Task] | None = None
        #: the CPUs running tasks hold, once a local backend gives its pool's
        #: size (:meth:`limit_cpus`) and some task asks for CPUs; else None
        self.cpus: CpuBudget | None = None
        #: what the cache did before the run (hits loaded, misses to store),
        #: when a cache is on (:func:`tarry._compute.run_graph` sets it); None otherwise
        self.cache: CacheTally | None = None
        self._plan()

    def _plan(self) -> None:
        values, waiting, dependents, refs = self.values, self.waiting, self.dependents, self.refs
        tasks = self.tasks
        initial: list[Task] = []
        heavier_later = False  # some task lists a bigger input after a smaller one
        shared = False  # some computed task has several readers
        # As walk(): depth first, iterative, one call per key. ``work`` counts tasks
        # planned plus inputs found planned already; a frame is (task, next input,
        # work before the input last entered, the work the one before added). The
        # walk starts from ``top``, a stand-in that reads every target.
        work = 0
        top = Task("", None, (), None, tuple(self.targets), "")
        stack = [(top, 0, 0, 0)]
        pop, push, get = stack.pop, stack.append, tasks.get
        same: set[int] = set()  # ids of tasks found to be the same call as the one seen
        while stack:
            task, i, mark, last = pop()
            deps = task.deps
            n = len(deps)
            if i and n > 1 and task is not top:  # back from deps[i - 1]
                got = work - mark
                if last and got > last + (last >> 3):  # clearly more: worth a rerank
                    heavier_later = True
                last = got
            while i < n:
                dep = deps[i]
                first = get(dep.key)
                if first is None:
                    if dep.func is not None:
                        break
                    tasks[dep.key] = dep  # a literal: in memory from the start
                    refs[dep.key] = 0
                    values[dep.key] = dep.args[0]
                else:
                    work += 1
                    if first.func is not None:
                        shared = True
                    if first is not dep and id(dep) not in same:
                        check_same(first, dep)
                        same.add(id(dep))
                i += 1
            if i < n:
                push((task, i + 1, work, last))
                push((deps[i], 0, 0, 0))
                continue
            if task is top:
                break
            key = task.key
            tasks[key] = task
            refs[key] = 0
            work += 1
            unfinished = 0
            for dep in deps:
                dkey = dep.key
                refs[dkey] += 1
                if dkey in values:
                    continue
                unfinished += 1
                if dkey in dependents:
                    dependents[dkey].append(task)
                else:
                    dependents[dkey] = [task]
            if unfinished:
                waiting[key] = unfinished
            else:
                initial.append(task)
        for target in self.targets:
            refs[target.key] += 1
        self.remaining = len(tasks) - len(values)
        initial.reverse()
        self.ready = initial
        self.bottom = len(initial)
        if heavier_later or shared:
            self._rerank(heavier_later, shared)

    def _rerank(self, mixed: bool, shared: bool) -> None:
        """Rank the tasks again if that changes anything (see the module doc):
        ``mixed`` if a task lists an input with clearly more work after a lighter
        one, ``shared`` if a computed task has several readers."""
        targets = self.targets
        if shared and len(targets) > 1:  # targets with an input planned earliest first
            earliest: dict[str, int] = {}
            for i, (key, task) in enumerate(self.tasks.items()):
                for dep in task.deps:
                    i = min(i, earliest[dep.key])
                earliest[key] = i
            ordered = sorted(targets, key=lambda t: earliest[t.key])
            if any(a is not b for a, b in zip(ordered, targets, strict=True)):
                targets, mixed = ordered, True
        if not mixed:
            return
        size: dict[str, int] = {}  # tasks beneath, counted per path (capped)
        for key, task in self.tasks.items():
            total = 1 if task.func is not None else 0
            for dep in task.deps:
                total += size[dep.key]
            size[key] = total if total < _CAP else _CAP
        rank: dict[str, int] = {}
        roots: list[Task] = []
        waiting = self.waiting
        top = Task("", None, (), None, tuple(targets), "")  # as in _plan
        stack: list[tuple[Task, tuple[Task, ...] | list[Task] | None, int]] = [(top, top.deps, 0)]
        pop, push = stack.pop, stack.append
        while stack:
            task, deps, i = pop()
            if deps is None:  # first visit: the input with most work beneath first
                deps = task.deps
                if len(deps) == 2:
                    if size[deps[1].key] > size[deps[0].key]:
                        deps = deps[::-1]
                elif len(deps) > 2:  # stable: equal inputs keep their order
                    deps = sorted(deps, key=lambda d: size[d.key], reverse=True)
            n = len(deps)
            while i < n:
                dep = deps[i]
                if dep.key not in rank:
                    if dep.deps:
                        break
                    rank[dep.key] = len(rank)  # no inputs: ranked on the spot
                    if dep.func is not None:
                        roots.append(dep)
                i += 1
            if i < n:
                push((task, deps, i + 1))
                push((deps[i], None, 0))
            elif task is not top:
                rank[task.key] = len(rank)
                if task.key not in waiting:
                    roots.append(task)
        self.rank = rank
        roots.reverse()
        self.ready = roots
        for readers in self.dependents.values():
            if len(readers) > 1:
                readers.sort(key=lambda t: rank[t.key])

    def pending(self) -> int:
        """How many tasks are ready to hand out (roots may be held back)."""
        return len(self.ready) + len(self.later)

    def pop(self) -> Task | None:
        """The next task to run, or None when nothing is ready (or may start) now."""
        if self.cpus is not None:
            return self._within_cpus(self.cpus)
        ready, bottom = self.ready, self.bottom
        if self.hold is None:
            if len(ready) > bottom:  # made ready lately, and frees memory
                return ready.pop()
            if bottom and not self.later:
                self.bottom = bottom - 1
                return ready.pop()
        return self._next_in_turn()

    def _next_in_turn(self) -> Task | None:
        """What :meth:`pop` returns, in general: the top of ``ready`` above the roots,
        else the lowest ranked of ``later`` and the roots, if it may start."""
        ready, later, waiting = self.ready, self.later, self.waiting
        bottom = min(self.bottom, len(ready))
        hold = self.hold
        held = hold is not None and hold.holding()  # see the module doc
        while later and later[0][1].key not in waiting:  # promoted, or run in a unit
            heappop(later)
        if len(ready) > bottom:
            task = ready.pop()
        elif later and (held or not bottom or later[0][0] < self._rank(ready[-1])):
            task = heappop(later)[1]
            del waiting[task.key]
        elif bottom and not held:
            self.bottom = bottom - 1
            task = ready.pop()
        else:
            return None
        if hold is not None:
            hold.started(task)
        return task

    def _within_cpus(self, cpus: CpuBudget) -> Task | None:
        """What :meth:`pop` returns while tasks hold CPUs: the next task, once its CPUs are free."""
        task = cpus.waiting or self._next_in_turn()
        return task if task is not None and cpus.take(task) else None

    def limit_cpus(self, workers: int) -> None:
        """The backend runs tasks on ``workers`` workers: tasks that ask for CPUs
        (``resources={"CPU": n}``) hold n of them while they run.

        See :mod:`~tarry._schedule.budget`.

        Examples
        --------
        >>> from tarry._graph import TaskOptions
        >>> wide = TaskOptions(resources={"CPU": 2})
        >>> run = Run([Task(k, abs, (-1,), None, (), "abs", options=wide) for k in "ab"])
        >>> run.limit_cpus(2)
        >>> first = run.pop()
        >>> run.pop() is None  # the other waits for the two CPUs
        True
        >>> run.finish(first, 1)
        >>> run.pop().key != first.key
        True
        """
        self.cpus = CpuBudget.of(self.tasks.values(), workers)

    def _rank(self, task: Task) -> int:
        """``task``'s rank (ranks are built on first use)."""
        rank = self.rank
        if rank is None:
            rank = self.rank = {key: i for i, key in enumerate(self.tasks)}
        return rank[task.key]

    def finish(self, task: Task, value: Any) -> None:
        """Record ``task``'s output, release inputs no one needs, wake dependents."""
        key = task.key
        if self.cpus is not None:
            self.cpus.release(task)
        values, refs, ready, waiting = self.values, self.refs, self.ready, self.waiting
        self.remaining -= 1
        if refs[key]:
            values[key] = value
        for dep in task.deps:
            dkey = dep.key
            left = refs[dkey] - 1
            refs[dkey] = left
            if not left:
                del values[dkey]
            elif left == 1 and dkey in self.readers:
                # one reader left: if it waits its turn, it runs now and frees dkey
                for reader in self.readers.pop(dkey):
                    if waiting.get(reader.key) == 0:
                        del waiting[reader.key]
                        ready.append(reader)
                        break
        if self.later:  # a unit of several tasks may have run one that waited its turn
            waiting.pop(key, None)
        followers = self.dependents.pop(key, None)
        if followers is None:
            pass
        elif len(followers) == 1:  # the common case, spelt out: it is the fastest
            follower = followers[0]
            fkey = follower.key
            left = waiting[fkey] - 1
            if left:
                waiting[fkey] = left
            elif refs[key] == 1 or self._frees(follower):
                del waiting[fkey]
                ready.append(follower)
            else:  # frees nothing: waits its turn
                self._defer(follower)
        else:  # the last two readers of key free it, once both are ready
            few = refs[key] == 2 == waiting[followers[0].key] + waiting[followers[1].key]
            for follower in reversed(followers):  # the lowest ranked ends on top
                fkey = follower.key
                left = waiting[fkey] - 1
                if left:
                    waiting[fkey] = left
                elif few or self._frees(follower):
                    del waiting[fkey]
                    ready.append(follower)
                else:
                    self._defer(follower)
        hold = self.hold
        if hold is not None:
            hold.stopped(task)
            if followers is not None and key in values:
                hold.park(key, followers, values)

    def _frees(self, task: Task) -> bool:
        """Whether running ``task`` releases one of its inputs."""
        refs = self.refs
        return any(refs[dep.key] == 1 for dep in task.deps)

    def _defer(self, task: Task) -> None:
        """Queue a ready task that frees nothing: it waits for its rank."""
        heappush(self.later, (self._rank(task), task))
        self.waiting[task.key] = 0
        refs, readers = self.refs, self.readers
        for dep in task.deps:
            if refs[dep.key] > 1:  # another reader may free it later: see finish()
                readers.setdefault(dep.key, []).append(task)

    def runner(self) -> Callable[[Task, dict[str, Any]], Any]:
        """The function a local backend runs each task with: plain, or timed."""
        return call if self.events is None else self._timed

    def _timed(self, task: Task, values: dict[str, Any]) -> Any:
        watch = Stopwatch()
        try:
            return call(task, values)
        finally:
            self.record(task, watch.stop())

    def record(self, task: Task, timing: Timing) -> None:
        """Keep the timing of one finished (or failed) task, if timings are wanted."""
        if self.events is not None:
            self.events.append(TaskEvent(task.key, task.name, *timing))

    def results(self) -> dict[str, Any]:
        """The targets' outputs, by key, once ``remaining`` is 0."""
        values = self.values
        return {t.key: values[t.key] for t in self.targets}

    # -- what backends tell the run, besides pop and finish ---------------------

    def fail(self, task: Task, exc: BaseException) -> BaseException:
        """``task`` raised ``exc``, which ends the run: note it, and return it ready to raise.

        The one place failures are booked, for every backend. Never raises,
        whatever the exception refuses (see :func:`~tarry._schedule.errors.annotate`).
        """
        if self.failed is None:
            self.failed = task.key
        without_own_frames(exc)  # they hold the run, and with it every value
        return annotate(exc, task)

    def retry(self, task: Task, exc: BaseException, *, again: bool = True) -> bool:
        """Whether ``task``, which raised ``exc``, runs again; if so it is ready again.

        A task gets its options' ``retries`` (else the run's) further
        attempts, for the exceptions its options' ``retry_on`` names (any
        ``Exception`` by default). Backends that retry on their own (Ray,
        Dask) are given the same numbers and never call this. ``again=False``:
        the backend sends the task again itself (processes re-run its unit),
        :meth:`pop` does not hand it out.

        Examples
        --------
        >>> flaky = Task("flaky", abs, (-1,), None, (), "abs")
        >>> run = Run([flaky], retries=1)
        >>> task = run.pop()
        >>> run.retry(task, OSError()), run.pop() is task, run.retry(task, OSError())
        (True, True, False)
        >>> run.attempts
        {'flaky': 2}
        """
        options = task.options
        allowed = self.retries if options is None or options.retries is None else options.retries
        if not allowed or (options is not None and not isinstance(exc, options.retry_on)):
            return False
        if not isinstance(exc, Exception):  # Ctrl-C, SystemExit: never retried
            return False
        ran = self.attempts.get(task.key, 1)
        if ran > allowed:
            return False
        self.attempts[task.key] = ran + 1
        if again:
            if self.cpus is not None:
                self.cpus.release(task)
            if self.hold is not None:
                self.hold.stopped(task)
            self.ready.append(task)  # above the roots: it runs next
        return True

    def count_attempts(self, task: Task, attempts: int) -> None:
        """``task`` ran ``attempts`` times where the backend retried it itself (Dask)."""
        self.attempts[task.key] = attempts

    def want_timings(self) -> None:
        """From now on, backends time every task (an observer asked)."""
        if self.events is None:
            self.events = []

    def hold_back(self, running: Task | None) -> None:
        """Several tasks run at once from now on: hold roots back (see the module doc).

        ``running`` is a task already handed out before this call, if any.
        """
        if self.hold is None:
            tasks = self.tasks
            self.hold = HoldBack(_input_keys, tasks.__getitem__, _LOOK_DOWN)
            if running is not None:
                self.hold.started(running)

    def finish_together(self, done: list[tuple[Task, Any]]) -> None:
        """Finish tasks that ran as one unit elsewhere; none of them is handed out again."""
        ready = self.ready
        keys = {task.key for task, _ in done}
        for task, value in done:
            before = len(ready)
            self.finish(task, value)
            if len(ready) > before:
                ready[before:] = [t for t in ready[before:] if t.key not in keys]

    def hand_out_all(self) -> list[Task]:
        """For backends that submit the whole graph at once: every task to compute.

        Dependencies come first. From here on, nothing is ready through
        :meth:`pop`; the backend reports each task with :meth:`count_done`
        and the targets' values with :meth:`keep`.
        """
        self.ready.clear()
        self.later.clear()
        self.bottom = 0
        return [task for task in self.tasks.values() if task.func is not None]

    def count_done(self, task: Task) -> None:
        """``task`` (handed out by :meth:`hand_out_all`) finished; its value stays elsewhere."""
        self.remaining -= 1
        waiting = self.waiting
        for follower in self.dependents.pop(task.key, ()):
            key = follower.key
            left = waiting.get(key, 1) - 1
            if left > 0:
                waiting[key] = left
            else:
                waiting.pop(key, None)

    def keep(self, results: dict[str, Any]) -> None:
        """The targets' values, computed elsewhere (with :meth:`hand_out_all`)."""
        self.values.update(results)


def _input_keys(task: Task) -> list[str]:
    return [dep.key for dep in task.deps]
