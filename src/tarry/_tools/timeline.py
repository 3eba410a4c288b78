"""Gantt charts of a profile: one row per worker, CPU and memory on the same time axis.

Two renderers share the layout decisions (rows, colours, time origin):
matplotlib for PNG/SVG/PDF and inline display in Jupyter, and a hand-written
SVG inside a self-contained HTML page, where hovering a bar shows the task.
The HTML page needs neither matplotlib nor a network connection.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tarry import _extras
from tarry._schedule.timing import TaskEvent
from tarry._tools.records import RunRecord, events_by_start, origin
from tarry._tools.report import Report
from tarry._tools.resources import ResourceSample
from tarry._tools.text import format_seconds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Timeline", "is_html"]

# matplotlib's tab10, so the PNG and the HTML page use the same colours
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f",
)  # fmt: skip
OTHER = "#c7c7c7"


@dataclass(frozen=True)
class _Layout:
    """What both renderers draw, with times relative to the profile's origin."""

    #: task events with start and end relative to the profile's origin
    events: list[TaskEvent]
    rows: dict[str, int]
    labels: list[str]
    colours: dict[str, str]
    legend: list[tuple[str, str]]
    #: start and end of each compute
    computes: list[tuple[float, float]]
    samples: list[tuple[float, float, float]]
    start: float
    end: float
    title: str

    def row(self, event: TaskEvent) -> int:
        return self.rows[event.worker]


def _natural(worker: str) -> tuple[Any, ...]:
    """Sort key: the caller's thread first, then "worker-2" before "worker-10"."""
    pid, _, thread = worker.partition(":")
    parts = re.split(r"(\d+)", thread)
    return (int(pid) if pid.isdigit() else 0, thread != "MainThread",
            *[(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts])  # fmt: skip


def _layout(
    records: Sequence[RunRecord], samples: Sequence[ResourceSample], report: Report
) -> _Layout:
    zero = origin(records)
    events = [replace(e, start=e.start - zero, end=e.end - zero) for e in events_by_start(records)]
    rows = {w: i for i, w in enumerate(sorted({e.worker for e in events}, key=_natural))}
    pids = {w.partition(":")[0] for w in rows}
    labels = []
    for worker in rows:
        pid, _, thread = worker.partition(":")
        labels.append(thread if len(pids) == 1 else f"{thread} (pid {pid})")
    totals: dict[str, float] = {}
    for e in events:
        totals[e.name] = totals.get(e.name, 0.0) + e.end - e.start
    ranked = sorted(totals, key=lambda n: -totals[n])
    shown = ranked if len(ranked) <= len(PALETTE) else ranked[: len(PALETTE) - 1]
    colours = {name: PALETTE[i] for i, name in enumerate(shown)}
    legend = [(name, colours[name]) for name in shown]
    if len(ranked) > len(shown):
        legend.append((f"{len(ranked) - len(shown)} other functions", OTHER))
    spans = sorted((r.start - zero, r.end - zero) for r in records)
    readings = [(s.time - zero, s.cpu_percent, s.memory) for s in samples]
    end = max([b for _, b in spans] + [e.end for e in events], default=1.0)
    title = (
        f"{report.tasks} tasks on {report.scheduler} ({report.workers} workers): wall "
        f"{format_seconds(report.wall)}, work {format_seconds(report.work)}, span "
        f"{format_seconds(report.span)}"
    )
    return _Layout(
        events=events,
        rows=rows,
        labels=labels,
        colours=colours,
        legend=legend,
        computes=spans,
        samples=readings,
        start=0.0,
        end=end if end > 0 else 1.0,
        title=title,
    )


class Timeline:
    """Computes drawn as a Gantt chart; displays inline in Jupyter.

    From a profile's records, readings and report: see :meth:`.Profile.timeline`.

    Examples
    --------
    >>> import tarry
    >>> with tarry.profile() as prof:
    ...     _ = tarry.compute(tarry.delayed(sum)([1, 2]))
    >>> chart = prof.timeline()
    >>> chart._repr_png_()[:4]
    b'\\x89PNG'
    """

    def __init__(
        self, records: Sequence[RunRecord], samples: Sequence[ResourceSample], report: Report
    ) -> None:
        self.report = report
        self._layout = _layout(records, samples, report)
        self._figure: Figure | None = None

    @property
    def figure(self) -> Figure:
        """The matplotlib Figure (drawn on first use)."""
        if self._figure is None:
            _extras.TIMELINE.check()
            self._figure = _draw(self._layout)
        return self._figure

    def save(self, filename: str | Path) -> None:
        """Write the chart: ``.html`` as an interactive page, else as matplotlib saves it."""
        path = Path(filename)
        if is_html(path):
            path.write_text(_html(self._layout, str(self.report)), encoding="utf-8")
        else:
            self.figure.savefig(path, dpi=120)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    def __repr__(self) -> str:
        layout = self._layout
        return f"<Timeline: {len(layout.events)} tasks on {len(layout.rows)} workers>"


def is_html(filename: str | Path) -> bool:
    """Whether :meth:`Timeline.save` writes ``filename`` as an HTML page (no matplotlib).

    Examples
    --------
    >>> is_html("run.HTML"), is_html("run.png")
    (True, False)
    """
    return Path(filename).suffix.lower() in (".html", ".htm")


# -- matplotlib ------------------------------------------------------------------


def _draw(layout: _Layout) -> Figure:
    # Figure and the Agg canvas directly, not pyplot: no display or GUI
    # backend is needed, and nothing is shown twice in Jupyter.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n_rows = max(len(layout.rows), 1)
    task_height = max(1.2, 0.4 * min(n_rows, 30))
    fig = Figure(figsize=(11, 2.8 + task_height), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 1, height_ratios=[task_height, 0.9, 0.7])
    tasks = fig.add_subplot(grid[0])
    cpu_axis = fig.add_subplot(grid[1], sharex=tasks)
    memory_axis = fig.add_subplot(grid[2], sharex=tasks)

    widths = sorted(e.end - e.start for e in layout.events)
    pixel = (layout.end - layout.start) / 900
    if not widths or widths[len(widths) // 2] > 3 * pixel:
        groups: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for e in layout.events:
            colour = layout.colours.get(e.name, OTHER)
            groups.setdefault((layout.row(e), colour), []).append((e.start, e.end - e.start))
        for (row, colour), bars in groups.items():
            # white edges tell back-to-back tasks apart
            tasks.broken_barh(bars, (row - 0.38, 0.76), facecolors=colour, edgecolors="white",
                              linewidth=0.6)  # fmt: skip
        tasks.set_ylabel("worker")
    else:
        # Most tasks are narrower than a pixel: a bar per task would paint
        # the whole row as if it were always busy. Per sliver of time, the
        # bar's height shows the share of it spent in tasks instead.
        _draw_busy(tasks, layout)
        tasks.set_ylabel("worker\n(height: time in tasks)")
    tasks.set_yticks(range(n_rows), layout.labels)
    tasks.set_ylim(n_rows - 0.5, -0.5)
    tasks.tick_params(labelbottom=False)
    tasks.grid(axis="x", alpha=0.3)
    if len(layout.computes) > 1:
        for i, (a, b) in enumerate(layout.computes):
            if i % 2:
                tasks.axvspan(a, b, color="#000000", alpha=0.05, linewidth=0)
            tasks.text(a, -0.5, f" compute {i + 1}", va="bottom", fontsize=7, color="#555555")
    handles = [Patch(facecolor=c, label=n) for n, c in layout.legend]
    tasks.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False,
                 ncols=min(len(handles), 5), fontsize=8, handlelength=1.2)  # fmt: skip
    fig.suptitle(layout.title, fontsize=10)

    times = [t for t, _, _ in layout.samples]
    cpu = [c for _, c, _ in layout.samples]
    memory = [m / 2**20 for _, _, m in layout.samples]
    # a reading is the average since the previous one: a step over that interval
    cpu_axis.plot(times, cpu, color="#d62728", linewidth=1.2, drawstyle="steps-pre")
    cpu_axis.set_ylim(0, max([c for c in cpu if not math.isnan(c)] + [100.0]) * 1.15)
    cpu_axis.set_ylabel("CPU %\n(100 = 1 core)", fontsize=8)
    memory_axis.plot(times, memory, color="#1f77b4", linewidth=1.2)
    known = [m for m in memory if not math.isnan(m)]
    if known:
        # from zero, so the line's height is the memory in use, not its noise
        memory_axis.set_ylim(0, max(known) * 1.25)
    memory_axis.set_ylabel("memory\n(MB)", fontsize=8)
    memory_axis.set_xlabel("seconds since the first compute started")
    for axis in (cpu_axis, memory_axis):
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=8)
    cpu_axis.tick_params(labelbottom=False)
    pad = (layout.end - layout.start) * 0.01
    tasks.set_xlim(layout.start - pad, layout.end + pad)
    return fig


def busy_shares(layout: _Layout, bins: int) -> dict[tuple[int, str], list[float]]:
    """Per (row, colour): the share of each of ``bins`` equal slivers of time spent in tasks."""
    width = (layout.end - layout.start) / bins
    shares: dict[tuple[int, str], list[float]] = {}
    for e in layout.events:
        colour = layout.colours.get(e.name, OTHER)
        share = shares.setdefault((layout.row(e), colour), [0.0] * bins)
        first = min(max(int((e.start - layout.start) / width), 0), bins - 1)
        last = min(max(int((e.end - layout.start) / width), 0), bins - 1)
        if first == last:
            share[first] += (e.end - e.start) / width
            continue
        share[first] += (layout.start + (first + 1) * width - e.start) / width
        for i in range(first + 1, last):
            share[i] += 1.0
        share[last] += (e.end - layout.start - last * width) / width
    return shares


def _draw_busy(axis: Any, layout: _Layout, bins: int = 600) -> None:
    width = (layout.end - layout.start) / bins
    lefts = [layout.start + i * width for i in range(bins)]
    # stacked from the bottom of each row band (rows grow downwards)
    for row in range(len(layout.rows)):
        # a full band would mean "always in a task": show where that is
        axis.axhspan(row - 0.38, row + 0.38, color="#f2f2f2", linewidth=0)
    filled: dict[int, list[float]] = {}
    for (row, colour), share in sorted(busy_shares(layout, bins).items()):
        below = filled.setdefault(row, [0.0] * bins)
        heights = [0.76 * min(s, 1.0 - b) for s, b in zip(share, below, strict=True)]
        bottoms = [row + 0.38 - 0.76 * b - h for b, h in zip(below, heights, strict=True)]
        axis.bar(lefts, heights, width=width, bottom=bottoms, align="edge", color=colour,
                 linewidth=0)  # fmt: skip
        filled[row] = [b + h / 0.76 for b, h in zip(below, heights, strict=True)]


# -- HTML ------------------------------------------------------------------------

_LABEL_W, _PLOT_W, _ROW_H, _TOP = 190, 900, 22, 34
_BAND_H, _BAND_GAP = 60, 12
_USAGE_H = 2 * _BAND_H + _BAND_GAP


def _ticks(end: float, count: int = 8) -> list[float]:
    """Round tick positions from 0 to ``end``."""
    raw = end / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(end / step) + 1)]


def _merge(
    events: Sequence[TaskEvent], per_pixel: float
) -> list[tuple[list[TaskEvent], float, float]]:
    """Back-to-back sub-pixel tasks become one bar of at most three pixels.

    Keeps a page of 100,000 tiny tasks small and fast, and changes nothing
    for tasks wide enough to hover on their own.
    """
    merged: list[tuple[list[TaskEvent], float, float]] = []
    for e in sorted(events, key=lambda e: e.start):
        if merged and e.end - e.start < per_pixel:
            group, start, end = merged[-1]
            if (group[0].end - group[0].start < per_pixel and e.end - start < 3 * per_pixel
                    and e.start - end < per_pixel):  # fmt: skip
                group.append(e)
                merged[-1] = (group, start, max(end, e.end))
                continue
        merged.append(([e], e.start, e.end))
    return merged


def _polylines(
    samples: Sequence[tuple[float, float]],
    x: Callable[[float], float],
    top: float,
    high: float,
    step: bool,
) -> list[str]:
    """SVG polyline points for a band at ``top`` showing 0 to ``high``, one per stretch without NaN.

    With ``step``, a reading is the average since the previous one (a CPU
    rate), so it is drawn as a step over that interval. A NaN (the first CPU
    reading of a compute) breaks the line: the time between computes is not
    drawn.
    """

    def y(value: float) -> float:
        return top + _BAND_H * (1 - value / high)

    lines: list[str] = []
    points: list[str] = []
    previous: float | None = None
    for t, v in samples:
        if math.isnan(v):
            if len(points) > 1:
                lines.append(" ".join(points))
            points, previous = [], t
            continue
        if step and previous is not None:
            points.append(f"{x(previous):.1f},{y(v):.1f}")
        points.append(f"{x(t):.1f},{y(v):.1f}")
        previous = t
    if len(points) > 1:
        lines.append(" ".join(points))
    return lines


def _html(layout: _Layout, report: str) -> str:
    n_rows = max(len(layout.rows), 1)
    span = layout.end - layout.start or 1.0
    scale = _PLOT_W / span

    def x(t: float) -> float:
        return _LABEL_W + (t - layout.start) * scale

    usage_top = _TOP + n_rows * _ROW_H + 30
    height = usage_top + _USAGE_H + 40
    width = _LABEL_W + _PLOT_W + 60
    parts: list[str] = []
    add = parts.append
    for i, label in enumerate(layout.labels):
        y = _TOP + i * _ROW_H
        if i % 2:
            add(
                f'<rect x="{_LABEL_W}" y="{y}" width="{_PLOT_W}" height="{_ROW_H}" fill="#f6f6f6"/>'
            )
        add(f'<text x="{_LABEL_W - 6}" y="{y + _ROW_H * 0.68:.1f}" text-anchor="end" '
            f'class="label">{html.escape(label)}</text>')  # fmt: skip
    for t in _ticks(span):
        add(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{_TOP}" y2="{usage_top + _USAGE_H}" '
            f'class="grid"/><text x="{x(t):.1f}" y="{usage_top + _USAGE_H + 14}" '
            f'text-anchor="middle" class="tick">{t:g}</text>')  # fmt: skip
    if len(layout.computes) > 1:
        for i, (a, _) in enumerate(layout.computes):
            add(f'<line x1="{x(a):.1f}" x2="{x(a):.1f}" y1="{_TOP - 12}" '
                f'y2="{_TOP + n_rows * _ROW_H}" class="run"/><text x="{x(a) + 3:.1f}" '
                f'y="{_TOP - 4}" class="tick">compute {i + 1}</text>')  # fmt: skip
    by_row: dict[int, list[TaskEvent]] = {}
    for e in layout.events:
        by_row.setdefault(layout.row(e), []).append(e)
    for row, events in by_row.items():
        y = _TOP + row * _ROW_H + 3
        for group, start, end in _merge(events, 1 / scale):
            first = group[0]
            bar_h = _ROW_H - 6.0
            if len(group) == 1:
                colour = layout.colours.get(first.name, OTHER)
                tip = (f"{first.key}\n{first.name} on {layout.labels[row]}\nstart "
                       f"{start:.6f} s, took {format_seconds(end - start)}, CPU "
                       f"{format_seconds(first.cpu)}")  # fmt: skip
            else:
                by_name: dict[str, float] = {}
                for e in group:
                    by_name[e.name] = by_name.get(e.name, 0.0) + e.end - e.start
                took = sum(by_name.values())
                busy = min(took / (end - start), 1.0) if end > start else 1.0
                # like the PNG: the bar's height is the share of time in tasks
                bar_h = max(bar_h * busy, 1.0)
                colour = layout.colours.get(max(by_name, key=by_name.__getitem__), OTHER)
                names = ", ".join(f"{n} {sum(e.name == n for e in group)}" for n in by_name)
                tip = (f"{len(group)} tasks on {layout.labels[row]} ({names})\n"
                       f"{start:.6f} s to {end:.6f} s, {format_seconds(took)} in tasks "
                       f"({busy:.0%} of the time)")  # fmt: skip
            wide = (end - start) * scale
            kind = "task wide" if wide > 3 else "task"
            add(f'<rect x="{x(start):.2f}" y="{y + _ROW_H - 6 - bar_h:.1f}" '
                f'width="{max(wide, 0.6):.2f}" height="{bar_h:.1f}" fill="{colour}" '
                f'class="{kind}"><title>{html.escape(tip)}</title></rect>')  # fmt: skip
    bands = (
        ("CPU %", "#d62728", [(t, c) for t, c, _ in layout.samples], 100.0, True),
        ("memory", "#1f77b4", [(t, m / 2**20) for t, _, m in layout.samples], 0.0, False),
    )
    for i, (label, colour, values, least, step) in enumerate(bands):
        top = usage_top + i * (_BAND_H + _BAND_GAP)
        add(f'<rect x="{_LABEL_W}" y="{top}" width="{_PLOT_W}" height="{_BAND_H}" '
            f'class="frame"/><text x="{_LABEL_W - 6}" y="{top + _BAND_H / 2 + 4}" '
            f'text-anchor="end" class="label" fill="{colour}">{label}</text>')  # fmt: skip
        # from zero, so a line's height is the use itself, not its noise
        high = max([v for _, v in values if not math.isnan(v)] + [least]) * 1.15 or 1.0
        for points in _polylines(values, x, top, high, step):
            add(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        unit = "%" if step else " MB"
        right = _LABEL_W + _PLOT_W + 4
        add(f'<text x="{right}" y="{top + 10}" class="tick">{high:.0f}{unit}</text>'
            f'<text x="{right}" y="{top + _BAND_H}" class="tick">0</text>')  # fmt: skip
    legend = "".join(
        f'<span><i style="background:{c}"></i>{html.escape(n)}</span>' for n, c in layout.legend
    )
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')  # fmt: skip
    return _PAGE.format(
        title=html.escape(layout.title), legend=legend, svg=svg, report=html.escape(report)
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tarry timeline</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.1em; }}
.legend span {{ margin-right: 1.2em; white-space: nowrap; }}
.legend i {{ display: inline-block; width: .9em; height: .9em; margin-right: .3em;
  vertical-align: -.1em; }}
svg text {{ font: 11px system-ui, sans-serif; }}
svg .tick {{ fill: #555; }}
svg .grid {{ stroke: #ddd; }}
svg .frame {{ fill: none; stroke: #bbb; }}
svg .run {{ stroke: #888; stroke-dasharray: 3 3; }}
svg .wide {{ stroke: #fff; stroke-width: .6; }}
svg .task:hover {{ stroke: #000; stroke-width: 1.5; }}
pre {{ background: #f6f6f6; padding: 1em; white-space: pre-wrap; }}
</style></head><body>
<h1>{title}</h1>
<p class="legend">{legend}</p>
<p>One row per worker; hover a bar to see its task. Time in seconds since the first
compute started. Below: CPU use (100% = one core) and memory of this process and its
worker processes.</p>
{svg}
<pre>{report}</pre>
</body></html>
"""
