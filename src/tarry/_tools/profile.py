"""Profiles: what every task of every compute in a block did, and the machine's load.

``with tarry.profile() as prof:`` records, for each compute inside the block
and on every scheduler, one :class:`~tarry._schedule.core.TaskEvent` per task
(timed inside the worker: start, end, thread CPU time) plus the graph's
dependency structure by key, and samples CPU and memory while a compute runs.
Afterwards :meth:`Profile.report` explains the run in plain words,
:meth:`Profile.to_dataframe` gives the raw table and :meth:`Profile.timeline`
draws it. pandas and matplotlib are imported only by the methods that need
them.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tarry import _extras
from tarry._schedule.core import Run
from tarry._schedule.timing import TaskEvent
from tarry._tools.observe import Observer
from tarry._tools.records import (
    FunctionTimes,
    RunRecord,
    events_by_start,
    mean_times,
    origin,
    record_of,
)
from tarry._tools.report import Report, analyse
from tarry._tools.resources import ResourceSample, Sampler
from tarry._tools.timeline import Timeline, is_html

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Profile", "latest_times", "profile"]

#: a row of :meth:`Profile.to_dataframe`
_Row = tuple[object, ...]


def profile(interval: float = 0.05) -> Profile:
    """Record what each task does in every compute inside a ``with`` block.

    Parameters
    ----------
    interval
        Seconds between two readings of CPU and memory use while a compute
        runs.

    Returns
    -------
    Profile
        A context manager; read it after (or during) the block.

    Examples
    --------
    >>> import time, tarry
    >>> @tarry.delayed
    ... def inc(x):
    ...     time.sleep(0.05)
    ...     return x + 1
    >>> with tarry.profile() as prof:
    ...     tarry.compute(inc(1) + inc(2), scheduler="threads", num_workers=2)
    (5,)
    >>> report = prof.report()
    >>> report.tasks, report.critical_path_names, report.span < report.work
    (3, ['inc', 'add'], True)
    >>> sorted(prof.to_dataframe().name)
    ['add', 'inc', 'inc']
    """
    return Profile(interval)


# The last profile block's mean time per function, plus a weak reference to
# the profile: the overhead is worked out from it only if explain() asks and
# the profile is still alive, so leaving a block costs one pass over its
# events and keeps nothing big alive.
_latest: tuple[dict[str, float], weakref.ref[Profile]] | None = None


def latest_times() -> FunctionTimes | None:
    """Per-function times of the last profile block that recorded a compute.

    The overhead per task is known only while that profile is still
    referenced somewhere (for instance by ``with tarry.profile() as prof``).
    """
    if _latest is None:
        return None
    means, ref = _latest
    prof = ref()
    return FunctionTimes(means, prof.report().overhead_per_task if prof is not None else None)


class Profile(Observer):
    """Everything recorded by one :func:`profile` block; see there."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        #: computes seen, in the order they finished
        self.records: list[RunRecord] = []
        #: CPU and memory readings while computes ran
        self.samples: list[ResourceSample] = []
        self._lock = threading.Lock()
        self._open: dict[int, tuple[str, int, float]] = {}
        self._sampler = Sampler(self.samples, interval)
        self._sampling = 0

    # -- observer -------------------------------------------------------------
    def started(self, run: Run, scheduler: str, workers: int) -> None:
        run.want_timings()
        with self._lock:
            self._sampling += 1
            if self._sampling == 1:
                self._sampler.start()
            self._open[id(run)] = (scheduler, workers, time.perf_counter())

    def finished(self, run: Run, error: BaseException | None) -> None:
        end = time.perf_counter()
        with self._lock:
            opened = self._open.pop(id(run), None)
            if opened is None:
                return
            self._sampling -= 1
            if self._sampling == 0:
                self._sampler.stop()
        scheduler, workers, start = opened
        record = record_of(run, scheduler, workers, start, end, error)
        with self._lock:
            self.records.append(record)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        with self._lock:
            if self._sampling:
                # a compute in another thread outlives the block: stop watching it
                self._sampling = 0
                self._sampler.stop()
        global _latest
        if self.records:
            _latest = (mean_times(self.records), weakref.ref(self))

    # -- results --------------------------------------------------------------
    @property
    def events(self) -> list[TaskEvent]:
        """Every task event of every compute, by start time."""
        return events_by_start(self.records)

    @property
    def origin(self) -> float:
        """perf_counter reading when the first compute started (time 0 of tables and charts)."""
        return origin(self.records)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per task: run, key, name, worker, start, end, duration, cpu (seconds), attempts.

        ``start`` and ``end`` count from the start of the first compute;
        ``run`` numbers the computes from 0 in the order they started;
        ``cpu`` is the CPU time of the thread that ran the task; ``attempts``
        how many times it ran (more than 1 when ``retries=`` ran it again;
        the times are those of its last attempt).

        When a compute used a cache (:func:`tarry.cache`), two more columns:
        ``cache`` is ``"hit"`` for a task loaded from it, ``"miss"`` for one
        that ran and stored its result, missing for one not cacheable; ``saved``
        is, for a hit, how long its task ran when it was stored. A hit's row
        times its load, in the caller (``worker`` is ``"cache"``, before the
        scheduler started), with ``attempts`` 0: it did not run.

        Raises
        ------
        tarry._extras.MissingExtraError
            Without pandas: ``pip install 'tarry[diagnostics]'``.
        """
        _extras.DATAFRAME.check()
        import pandas as pd

        zero = self.origin
        records = sorted(self.records, key=lambda r: r.start)
        rows: list[_Row] = [
            (i, r.scheduler, e.key, e.name, e.worker, e.start - zero, e.end - zero,
             e.end - e.start, e.cpu, r.attempts.get(e.key, 1))
            for i, r in enumerate(records)
            for e in r.events
        ]  # fmt: skip
        columns = [
            "run", "scheduler", "key", "name", "worker", "start", "end", "duration", "cpu",
            "attempts",
        ]  # fmt: skip
        if any(r.cache is not None for r in records):
            rows, columns = _with_cache(records, rows, zero), [*columns, "cache", "saved"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["start", "key"], ignore_index=True)

    def report(self) -> Report:
        """The analysis in numbers and plain words: see :class:`tarry._tools.report.Report`."""
        records, samples = self._snapshot()
        return analyse(records, samples)

    def _snapshot(self) -> tuple[list[RunRecord], list[ResourceSample]]:
        """Copies of the records and samples: computes in other threads may add to them."""
        with self._lock:
            return list(self.records), list(self.samples)

    def timeline(self, filename: str | Path | None = None) -> Timeline:
        """Draw a Gantt chart: one row per worker, bars coloured by function, CPU and memory below.

        Parameters
        ----------
        filename
            Also save it there: ``.png``, ``.svg`` or ``.pdf`` (matplotlib), or
            ``.html`` (a self-contained interactive page: hover a bar to read
            the task's key, times and CPU use).

        Returns
        -------
        Timeline
            Shows inline in Jupyter; ``.figure`` is the matplotlib Figure.

        Raises
        ------
        tarry._extras.MissingExtraError
            Without matplotlib, unless ``filename`` ends in ``.html``:
            ``pip install 'tarry[diagnostics]'``.

        Notes
        -----
        When most tasks are narrower than a pixel, a bar per task would paint
        a row as always busy; each row then shows, per sliver of time, the
        share of it spent in tasks as the bar's height.
        """
        if filename is None or not is_html(filename):
            _extras.TIMELINE.check()  # before any work, and before Jupyter asks for the PNG
        records, samples = self._snapshot()
        chart = Timeline(records, samples, analyse(records, samples))
        if filename is not None:
            chart.save(filename)
        return chart

    def __repr__(self) -> str:
        tasks = sum(len(r.events) for r in self.records)
        return f"<Profile: {len(self.records)} compute(s), {tasks} tasks>"


def _with_cache(records: list[RunRecord], rows: list[_Row], zero: float) -> list[_Row]:
    """``rows`` (one per event of ``records``, in order) with their ``cache`` and ``saved``,
    and a row per hit."""
    nan = float("nan")
    added: list[_Row] = []
    events = iter(rows)
    for i, r in enumerate(records):
        misses = r.cache.misses if r.cache is not None else frozenset()
        for _ in r.events:
            row = next(events)
            added.append((*row, "miss" if row[2] in misses else None, nan))
        if r.cache is not None:
            added += [
                (i, r.scheduler, h.key, h.name, "cache", h.start - zero, h.end - zero,
                 h.end - h.start, h.cpu, 0, "hit", h.saved)
                for h in r.cache.hits
            ]  # fmt: skip
    return added
