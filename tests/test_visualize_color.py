"""Colouring by the last run (``tarry._tools.visualize.color``): status, duration, legends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from visualize_helpers import X, add, boom, gray, inc, needs_dot, tutorial_z

from tarry import Delayed, cache, delayed, to_dot, visualize
from tarry._tools.last_run import forget, last_run, record_timings
from tarry._tools.visualize.collapse import Node
from tarry._tools.visualize.color import (
    CACHE_FILL,
    COLORS,
    HEAT,
    STATUS_FILL,
    paint_duration,
    paint_status,
)


@pytest.fixture(autouse=True)
def _fresh_last_run() -> Iterator[None]:
    forget()
    yield
    forget()


def attribute_of(dot: str, label: str, name: str) -> str | None:
    """The DOT attribute ``name`` of the node labelled ``label`` (first line), or None."""
    for line in dot.splitlines():
        if f'[label="{label}"' in line or f'[label="{label}\\n' in line:
            found = re.search(name + r'="([^"]+)"', line)
            return found.group(1) if found else None
    raise AssertionError(f"no node labelled {label!r}")


def fill_of(dot: str, label: str) -> str | None:
    return attribute_of(dot, label, "fillcolor")


def tooltip_of(dot: str, label: str) -> str:
    tip = attribute_of(dot, label, "tooltip")
    assert tip is not None, f"no tooltip on {label!r}"
    return tip


def test_status_colours_done_failed_and_not_run() -> None:
    ok = delayed(inc, name="ok")(1)
    bad = delayed(boom)(ok)
    after = delayed(add, name="after")(bad, 1)
    other = delayed(inc, name="other")(5)
    total = delayed(sum, name="total")([after, other])
    with pytest.raises(ValueError, match="boom"):
        total.compute(scheduler="sync")
    dot = to_dot(total, color="status")
    assert fill_of(dot, "ok") == STATUS_FILL["done"]
    assert fill_of(dot, "boom") == STATUS_FILL["failed"]
    assert fill_of(dot, "after") == STATUS_FILL["not run"]
    assert fill_of(dot, "total") == STATUS_FILL["not run"]
    assert "failed (1)" in dot
    assert "last run" in dot
    assert "legend" in dot


def test_status_after_success_and_for_tasks_outside_the_run() -> None:
    z = tutorial_z()
    z.compute()
    extended = delayed(abs, name="later")(z)
    dot = to_dot(extended, color="status")
    assert fill_of(dot, "add") == STATUS_FILL["done"]
    assert fill_of(dot, "later") is None
    assert "done (3)" in dot
    assert "not in the last run (1)" in dot


def test_status_before_any_compute_says_so() -> None:
    dot = to_dot(tutorial_z(), color="status")
    assert "nothing computed yet" in dot
    assert "fillcolor" not in dot.split("legend")[0]


def test_status_of_a_collapsed_group_counts_its_members() -> None:
    parts = [delayed(inc)(i) for i in range(400)]
    bad = delayed(boom)(parts[0])
    total = delayed(sum)([*parts, bad])
    with pytest.raises(ValueError, match="boom"):
        total.compute(scheduler="sync")
    dot = to_dot(total, color="status")
    # sync runs the first inc, then boom (ready at once), which fails
    assert fill_of(dot, f"inc {X}400") == STATUS_FILL["partly done"]
    assert "1 of 400 done" in dot
    assert fill_of(dot, "boom") == STATUS_FILL["failed"]


def test_duration_colours_slow_tasks_dark_and_prints_times() -> None:
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    # quick does not call sleep at all: sleep(0) gives up the CPU, and on a
    # loaded machine getting it back can take long enough to look slow
    quick = delayed(float, name="quick")(0.0)
    slow = delayed(nap, name="slow")(0.05)
    total = delayed(add, name="both")(quick, slow)
    with record_timings():
        total.compute(scheduler="sync")
    dot = to_dot(total, color="duration")
    assert fill_of(dot, "slow") == HEAT[-1]
    assert fill_of(dot, "quick") in HEAT[:3]
    slow_line = next(line for line in dot.splitlines() if 'label="slow' in line)
    assert re.search(r"slow\\n(5\d|6\d)\.\d ms", slow_line)
    assert "run time" in dot


def test_duration_without_timings_says_how_to_record_them() -> None:
    z = tutorial_z()
    z.compute()
    with pytest.raises(ValueError, match=r"tarry\.profile\(\)"):
        to_dot(z, color="duration")


@needs_dot
def test_coloured_png_has_colour() -> None:
    z = tutorial_z()
    z.compute()
    plain, coloured = (visualize(z, filename=None, color=c).data for c in (None, "status"))
    assert isinstance(plain, bytes)
    assert isinstance(coloured, bytes)
    plain, coloured = gray(plain), gray(coloured)
    # filled nodes and the legend add ink that the plain picture lacks
    assert (coloured < 0.95).mean() > (plain < 0.95).mean()


# -- pieces on their own ------------------------------------------------------------------------


def call(key: str, *keys: str) -> Node:
    return Node(key, ["f"], ["f"], False, [key, *keys], [], 1 + len(keys))


def test_status_legend_lists_what_is_there_with_counts() -> None:
    value = Node("v", ["1"], ["1"], True, ["v"], [])
    nodes = [value, call("a", "b"), call("c"), call("d")]
    statuses = {"v": "done", "a": "failed", "b": "done", "c": "not in run", "d": "not run"}
    painted = paint_status(nodes, statuses, ran=True)  # type: ignore[arg-type]
    assert painted.fill == {1: STATUS_FILL["failed"], 3: STATUS_FILL["not run"]}
    assert painted.extra == {1: "1 failed"}
    legend = painted.legend or ""
    rows = re.findall(r'<TD ALIGN="LEFT">([^<]*)</TD>', legend)
    assert rows == ["done (1)", "failed (1)", "not run (1)", "not in the last run (1)"]
    assert "<B>last run</B>" in legend


def test_durations_of_a_group_are_summed_and_equal_times_sit_mid_scale() -> None:
    painted = paint_duration([call("a", "b"), call("c")], {"a": 0.25, "b": 0.25, "c": 0.5})
    assert painted.fill == {0: HEAT[3], 1: HEAT[3]}
    assert painted.extra == {0: "total 500 ms", 1: "500 ms"}
    assert painted.font == {}
    assert re.findall(r'<TD ALIGN="LEFT">([^<]*)</TD>', painted.legend or "") == ["500 ms"]


def test_the_slowest_are_dark_with_white_text_and_untimed_nodes_stay_plain() -> None:
    nodes = [call("a"), call("b"), call("c")]
    painted = paint_duration(nodes, {"a": 1e-6, "b": 1.0})
    assert painted.fill == {0: HEAT[0], 1: HEAT[-1]}
    assert painted.font == {1: "white"}
    assert len(re.findall("<TR>", painted.legend or "")) == 1 + len(HEAT)
    assert paint_duration(nodes, {}).fill == {}


# -- visualize(color="cache") -------------------------------------------------------------------


def double(x: int) -> int:
    return 2 * x


def plus_one(x: int) -> int:
    return x + 1


def cached_pipeline(n: int) -> Delayed[int]:
    """n cacheable doubles summed (cacheable too), read by a task that is not cacheable."""
    total = delayed(sum, name="total", pure=True)([delayed(double, pure=True)(i) for i in range(n)])
    return delayed(plus_one, name="impure")(total)


def test_cache_is_a_colouring() -> None:
    assert "cache" in COLORS
    with pytest.raises(ValueError, match="'cache'"):
        to_dot(cached_pipeline(1), color="cached")


def test_cache_colours_loads_runs_and_skips_and_runs_nothing(tmp_path: Path) -> None:
    result = cached_pipeline(2)
    before = to_dot(result, color="cache", cache=tmp_path)
    assert fill_of(before, "double") == CACHE_FILL["new"]
    assert fill_of(before, "total") == CACHE_FILL["new"]
    assert fill_of(before, "impure") == CACHE_FILL["not cacheable"]
    assert tooltip_of(before, "impure").startswith("run: not cacheable: impure")
    assert tooltip_of(before, "double") == "run: new"
    assert last_run() is None  # a dry run: nothing computed
    assert not any(tmp_path.iterdir())  # ... and the store not even made

    result.compute(scheduler="sync", cache=tmp_path)
    with cache(tmp_path):  # the setting, as well as cache=
        after = to_dot(result, color="cache")
    assert fill_of(after, "total") == CACHE_FILL["load"]
    assert tooltip_of(after, "total") == "load: stored under its key"
    assert fill_of(after, "double") == CACHE_FILL["skip"]
    assert fill_of(after, "impure") == CACHE_FILL["not cacheable"]
    assert "load: a hit (1)" in after
    assert "skip: not needed (2)" in after
    assert "run: not cacheable (1)" in after


def edited_step(body: str) -> Callable[[int], int]:
    """A function ``step`` of the user's module ``cacheview_user``, as it reads after an edit."""
    namespace: dict[str, Any] = {"__name__": "cacheview_user"}
    exec(f"def step(x):\n    return {body}\n", namespace)
    step: Callable[[int], int] = namespace["step"]
    return step


def test_an_edit_colours_the_invalidated_tasks_apart_from_new_ones(tmp_path: Path) -> None:
    def graph(step: Callable[[int], int]) -> Delayed[int]:
        kept = delayed(double, pure=True)(1)
        stepped = delayed(step, name="step", pure=True)(2)
        new = delayed(plus_one, pure=True)(3)
        total: Delayed[int] = delayed(sum, name="total", pure=True)([kept, stepped, new])
        return total

    delayed(sum, name="total", pure=True)(
        [delayed(double, pure=True)(1), delayed(edited_step("x + 1"), pure=True)(2)]
    ).compute(scheduler="sync", cache=tmp_path)
    dot = to_dot(graph(edited_step("x + 2")), color="cache", cache=tmp_path)
    assert fill_of(dot, "double") == CACHE_FILL["load"]
    assert fill_of(dot, "step") == CACHE_FILL["invalidated"]
    assert tooltip_of(dot, "step") == "run: `step` changed (its code)"
    assert fill_of(dot, "plus_one") == CACHE_FILL["new"]
    assert fill_of(dot, "total") == CACHE_FILL["invalidated"]  # an input was invalidated
    assert tooltip_of(dot, "total").startswith("run: input `")
    # the same graph's new parts alone are new, not invalidated
    fresh = to_dot(graph(edited_step("x + 2")), color="cache", cache=tmp_path / "empty")
    assert fill_of(fresh, "total") == fill_of(fresh, "step") == CACHE_FILL["new"]


def test_cache_colouring_needs_a_cache_and_cache_needs_it() -> None:
    with pytest.raises(ValueError, match=r"color='cache' needs a cache: pass cache="):
        to_dot(cached_pipeline(1), color="cache")
    with pytest.raises(ValueError, match=r"cache= tells color='cache'"):
        to_dot(cached_pipeline(1), color="status", cache="somewhere")


def test_a_group_of_mixed_tasks_counts_them(tmp_path: Path) -> None:
    doubled = [delayed(double, pure=True)(i) for i in range(400)]
    delayed(sum, pure=True)(doubled[:100]).compute(scheduler="sync", cache=tmp_path)
    whole = delayed(sum, pure=True)(doubled)
    # the first 100 naps load (the new sum needs them), the 300 others are new
    dot = to_dot(whole, color="cache", cache=tmp_path)
    line = next(line for line in dot.splitlines() if "double" in line)
    assert "300 new, 100 load" in line
    assert fill_of(dot, "double ×400") == CACHE_FILL["new"]  # the runs colour a group
    assert "300 × run: new" in tooltip_of(dot, "double ×400")
    assert len(re.findall("tooltip=", dot)) == 2  # the group, and the sum


@needs_dot
def test_cache_colouring_draws(tmp_path: Path) -> None:
    result = cached_pipeline(2)
    result.compute(scheduler="sync", cache=tmp_path)
    picture = visualize(result, filename=None, format="svg", color="cache", cache=tmp_path)
    svg = picture.data if isinstance(picture.data, str) else picture.data.decode()
    assert "stored under its key" in svg  # the tooltip reached the picture
