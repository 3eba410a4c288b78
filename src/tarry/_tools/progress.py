"""Progress bars: tasks done/total, elapsed time and time left, on every scheduler.

A small monitor thread per run polls ``run.remaining`` (which every backend
keeps up to date in the calling process), so the tasks themselves pay
nothing and the bar looks the same whatever ran them. The bar (tqdm, so it
renders in terminals and notebooks) is created only once the run has lasted
``min_time``: quick runs print nothing.

In Jupyter the bar is tqdm's widget when ipywidgets is installed, and
tqdm's text bar otherwise (tqdm would warn "IProgress not found" and then
draw that text bar itself).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import IO, TYPE_CHECKING, Any, cast

from tarry import _extras
from tarry._schedule.core import Run
from tarry._tools.observe import Observer

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["ProgressBar", "progress"]

#: seconds a run must last before its bar appears
DEFAULT_MIN_TIME = 1.0


def progress(
    min_time: float | None = None, *, interval: float = 0.1, file: IO[str] | None = None
) -> ProgressBar:
    """Show a progress bar for every compute inside a ``with`` block.

    Parameters
    ----------
    min_time
        Seconds a compute must run before its bar appears (default 1 s), so
        quick computes print nothing.
    interval
        Seconds between two updates of the bar.
    file
        Where to write the bar (default: standard error, or a widget in a
        notebook).

    Returns
    -------
    ProgressBar
        A context manager; one bar per compute while it is active. While a
        bar is showing, computes started meanwhile (for instance nested in a
        task) get none.

    Raises
    ------
    tarry._extras.MissingExtraError
        When tqdm is missing (a required dependency: only after
        ``pip install --no-deps``), before anything runs.

    Examples
    --------
    >>> import io, time, tarry
    >>> out = io.StringIO()
    >>> with tarry.progress(min_time=0.05, file=out):
    ...     tarry.delayed(time.sleep)(0.3).compute()
    >>> "1/1" in out.getvalue()
    True
    """
    return ProgressBar(DEFAULT_MIN_TIME if min_time is None else min_time, interval, file)


class ProgressBar(Observer):
    """The observer behind :func:`progress` and ``compute(progress=True)``."""

    def __init__(
        self,
        min_time: float | None = None,
        interval: float = 0.1,
        file: IO[str] | None = None,
    ) -> None:
        # here, not in the monitor thread: a missing tqdm must stop the
        # compute before it runs, not print a thread's traceback after it
        _extras.PROGRESS.check()
        self.min_time = DEFAULT_MIN_TIME if min_time is None else min_time
        self.interval = interval
        self.file = file
        self._lock = threading.Lock()
        self._watch: _Watch | None = None

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        with self._lock:
            if self._watch is not None:
                return
            watch = self._watch = _Watch(run, self.min_time, self.interval, self.file)
            watch.label = scheduler  # where the tasks run: the bar's first word
        watch.thread.start()

    def finished(self, run: Run, error: BaseException | None) -> None:
        with self._lock:
            watch = self._watch
            if watch is None or watch.run is not run:
                return
            self._watch = None
        watch.stop(error)


class _Watch:
    """The monitor thread of one run and the bar it may open."""

    def __init__(self, run: Run, min_time: float, interval: float, file: IO[str] | None) -> None:
        self.run = run
        self.total = run.remaining
        self.min_time = min_time
        self.interval = interval
        self.file = file
        # tqdm counts elapsed time from its own creation; the bar opens late,
        # so it is told when the run really began.
        self.began = time.time()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="tarry-progress", daemon=True)
        self.label: str | None = None

    def stop(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()
        # join in slices: a Ctrl-C during the wait must not leave the thread behind
        while self.thread.is_alive():
            try:
                self.thread.join(0.5)
            except KeyboardInterrupt:
                self.done.set()
                self.thread.join()
                raise

    def _loop(self) -> None:
        if self.done.wait(self.min_time):
            return
        bar = self._open()
        try:
            while not self.done.wait(self.interval):
                self._update(bar)
            self._update(bar)
            if self.error is not None:
                bar.set_postfix_str(f"stopped by {type(self.error).__name__}", refresh=False)
        finally:
            bar.close()

    def _open(self) -> tqdm[Any]:
        base: type[tqdm[Any]]
        if self.file is None and importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.auto import tqdm as auto  # the widget in Jupyter, text elsewhere

            base = auto
        else:
            from tqdm import tqdm as plain

            base = plain
        # tqdm's own monitor thread would outlive the run; ours updates the bar
        bar_class = cast("type[tqdm[Any]]", type("Bar", (base,), {"monitor_interval": 0}))
        # delay: no empty "0/N" line before the first update below
        bar: tqdm[Any] = bar_class(
            total=self.total, unit="task", file=self.file, dynamic_ncols=True, delay=self.min_time,
            desc=self.label,
        )  # fmt: skip
        bar.start_t = bar.last_print_t = self.began
        self._update(bar)
        if bar.last_print_t == self.began:
            # nothing done yet: show the bar anyway, and make tqdm's close()
            # print its final state (it skips bars it believes never shown)
            bar.refresh()
            bar.last_print_t = time.time()
        return bar

    def _update(self, bar: tqdm[Any]) -> None:
        done = self.total - self.run.remaining
        if done > bar.n:
            bar.update(done - bar.n)
