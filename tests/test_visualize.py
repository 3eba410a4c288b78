"""Pictures of task graphs: DOT text, rendering, collapsing, colouring, the HTML repr."""

from __future__ import annotations

import contextlib
import gc
import io
import operator
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import tarry
from tarry import Delayed, delayed, to_dot, visualize
from tarry._graph import Task, walk
from tarry._tools import visualize as viz
from tarry._tools.last_run import LastRun, forget, last_run, record_timings
from tarry._tools.visualize import GraphvizNotFoundError, Picture, html_repr

GOLDEN = Path(__file__).parent / "golden"
HAVE_DOT = shutil.which("dot") is not None
X = "\N{MULTIPLICATION SIGN}"  # counts are drawn as "inc", the sign, "10,000"
F = TypeVar("F", bound=Callable[..., Any])


def needs_dot(test: F) -> F:
    """Mark a test that runs Graphviz's dot program; skipped where it is missing."""
    skip = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
    marked: F = pytest.mark.graphviz(skip(test))
    return marked


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def boom(x: int) -> int:
    raise ValueError("boom")


def tutorial_z() -> Delayed[int]:
    """The tutorial's ``z = add(inc(1), inc(2))``, with fixed keys."""
    x = delayed(inc).options(key="x")(1)
    y = delayed(inc).options(key="y")(2)
    return delayed(add).options(key="z")(x, y)


def tutorial_results() -> list[Delayed[int]]:
    return [delayed(inc).options(key=f"inc-{i}")(i) for i in range(1, 9)]


def tree_sum(n: int) -> Delayed[int]:
    """``n`` inc tasks summed by a pairwise tree of add tasks (2n - 1 tasks)."""
    level = [delayed(inc)(i) for i in range(n)]
    while len(level) > 1:
        level = [
            delayed(add)(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    result: Delayed[int] = level[0]
    return result


def canonical(dot: str) -> str:
    """DOT text with tarry-generated keys renamed ``name-1``, ``name-2``, ... by first use."""
    names: dict[str, str] = {}
    counts: dict[str, int] = {}

    def rename(match: re.Match[str]) -> str:
        key, name = match.group(0), match.group(1)
        if key not in names:
            counts[name] = counts.get(name, 0) + 1
            names[key] = f"{name}-{counts[name]}"
        return names[key]

    return re.sub(r"([A-Za-z_]+)-[0-9a-f]{10,}", rename, dot)


def check_golden(name: str, dot: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TARRY_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(dot, encoding="utf-8")
    assert dot == path.read_text(encoding="utf-8")


def labels_in(dot: str) -> list[str]:
    """Labels of function and value nodes (not of the empty result boxes), in order."""
    return re.findall(r'\[label="((?:[^"\\]|\\.)+)"', dot)


def node_lines(dot: str, shape: str) -> list[str]:
    return [line for line in dot.splitlines() if f"shape={shape}" in line]


def gray(png: bytes) -> NDArray[np.float64]:
    """A PNG decoded to gray levels in [0, 1]."""
    import matplotlib.image as mpimg

    pixels = np.asarray(mpimg.imread(io.BytesIO(png), format="png"), dtype=np.float64)
    return pixels[..., :3].mean(axis=2) if pixels.ndim == 3 else pixels


def rendered_word(text: str) -> NDArray[np.float64]:
    """``text`` drawn by dot in the node font, cropped to its ink."""
    source = (
        'digraph { node [fontname="Helvetica,Arial,sans-serif", fontsize=12, shape=plaintext]; '
        f'a [label="{text}"]; }}'
    )
    word = gray(viz.render(source, "png"))
    rows, cols = np.where(word < 0.5)
    return word[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def png_shows(png: bytes, text: str) -> bool:
    """True when ``text``, as dot draws it, appears pixel for pixel in the picture."""
    from numpy.lib.stride_tricks import sliding_window_view

    picture, word = gray(png), rendered_word(text)
    if word.shape[0] > picture.shape[0] or word.shape[1] > picture.shape[1]:
        return False
    windows = sliding_window_view(picture, word.shape)
    return bool(np.abs(windows - word).mean(axis=(2, 3)).min() < 0.02)


@pytest.fixture(autouse=True)
def _fresh_last_run() -> Iterator[None]:
    forget()
    yield
    forget()


# -- labels -------------------------------------------------------------------------

OPERATOR_CASES: list[tuple[Callable[[Any], Any], str]] = [
    (lambda x: x + 1, "+"),
    (lambda x: 1 + x, "+"),
    (lambda x: x - 1, "-"),
    (lambda x: x * 2, "*"),
    (lambda x: x / 2, "/"),
    (lambda x: x // 2, "//"),
    (lambda x: x % 2, "%"),
    (lambda x: x**2, "**"),
    (lambda x: x @ x, "@"),
    (lambda x: x << 1, "<<"),
    (lambda x: x >> 1, ">>"),
    (lambda x: x & 1, "&"),
    (lambda x: x | 1, "|"),
    (lambda x: x ^ 1, "^"),
    (lambda x: x < 1, "<"),
    (lambda x: x <= 1, "<="),
    (lambda x: x == 1, "=="),
    (lambda x: x != 1, "!="),
    (lambda x: x > 1, ">"),
    (lambda x: x >= 1, ">="),
    (lambda x: -x, "-x"),
    (lambda x: +x, "+x"),
    (lambda x: ~x, "~x"),
    (lambda x: abs(x), "abs"),
    (lambda x: divmod(x, 2), "divmod"),
    (lambda x: x[0], "[0]"),
    (lambda x: x["a"], "['a']"),
    (lambda x: x[::2], "[::2]"),
    (lambda x: x[1:3], "[1:3]"),
    (lambda x: x[delayed(0)], "[]"),
    (lambda x: x.real, ".real"),
    (lambda x: x.count(2), ".count()"),
    (lambda x: delayed(operator.add)(x, 1), "+"),
]


@pytest.mark.parametrize(("build", "label"), OPERATOR_CASES)
def test_operators_attributes_and_methods_are_labelled_like_python(
    build: Callable[[Any], Any], label: str
) -> None:
    x = delayed([1, 2, 3], name="x")
    assert labels_in(to_dot(build(x)))[-1] == label


def test_functions_are_labelled_by_name_and_values_by_value_or_chosen_name() -> None:
    a = delayed(5)
    b = delayed(7, name="seven")
    c = delayed(list(range(100)))
    out = delayed(max)(delayed(inc)(a), b, c)
    assert labels_in(to_dot(out)) == ["5", "inc", "seven", "list", "max"]


def test_labels_and_keys_with_dot_syntax_are_escaped_and_render_intact() -> None:
    nasty = 'a "quoted" \\N back\nslash'
    out = delayed(inc, name=nasty).options(key='k"ey\\')(1)
    dot = to_dot(out)
    assert '"f#' in dot  # a key DOT cannot carry gets a hashed id
    assert "label=" + viz._dot_text(nasty) in dot
    if HAVE_DOT:
        svg = viz.render(dot, "svg").decode()
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
        assert texts == ["a &quot;quoted&quot; \\N back", "slash"]


# -- golden DOT of the tutorial's graphs ----------------------------------------------


def test_golden_tutorial_z() -> None:
    check_golden("tutorial_z.dot", to_dot(tutorial_z()))


def test_golden_tutorial_total_with_delayed_sum() -> None:
    total = delayed(sum).options(key="total")(tutorial_results())
    check_golden("tutorial_total_delayed_sum.dot", to_dot(total))


def test_golden_tutorial_total_with_builtin_sum() -> None:
    # The tutorial's question: sum() of delayed values is a chain of + tasks.
    total = sum(tutorial_results())
    assert isinstance(total, Delayed)
    check_golden("tutorial_total_builtin_sum.dot", canonical(to_dot(total)))


def test_golden_tutorial_inc_plus_inc() -> None:
    expr = delayed(inc).options(key="a")(1) + delayed(inc).options(key="b")(2)
    check_golden("tutorial_inc_plus_inc.dot", canonical(to_dot(expr)))


def test_golden_collapsed_map_and_sum() -> None:
    total = delayed(sum).options(key="total")([delayed(inc)(i) for i in range(10_000)])
    check_golden("collapsed_map_sum.dot", canonical(to_dot(total)))


def test_arrows_go_from_inputs_to_outputs_bottom_to_top_by_default() -> None:
    dot = to_dot(tutorial_z())
    assert "rankdir=BT" in dot
    assert '"r:x" -> "f:z";' in dot
    assert '"f:z" -> "r:z";' in dot
    assert '"f:z" -> "r:x"' not in dot


@pytest.mark.parametrize("rankdir", ["TB", "lr", "RL"])
def test_rankdir_option(rankdir: str) -> None:
    assert f"rankdir={rankdir.upper()}," in to_dot(tutorial_z(), rankdir=rankdir)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"rankdir": "up"}, ValueError),
        ({"collapse": "yes"}, TypeError),
        ({"color": "red"}, ValueError),
        ({"colour": "status"}, TypeError),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        to_dot(tutorial_z(), **options)


def test_nothing_to_draw_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to draw"):
        to_dot(1, [2])


def test_several_objects_and_containers_are_drawn_together() -> None:
    z = tutorial_z()
    other = delayed(abs).options(key="other")(-1)
    dot = to_dot(z, {"also": [other]})
    assert labels_in(dot) == ["inc", "inc", "add", "abs"]
    assert dot.count("penwidth=2") == 2  # both targets are marked


# -- determinism -----------------------------------------------------------------------

_DOT_IN_CHILD = textwrap.dedent(
    """
    import sys
    from tarry import delayed, to_dot

    def inc(x):
        return x + 1

    parts = [delayed(inc, pure=True)(i) for i in range(400)]
    odd = delayed(inc).options(key='a "quoted" key')(-1)  # drawn under a hashed id
    total = delayed(sum, pure=True)(parts) + odd
    sys.stdout.write(to_dot(total) + to_dot(total, collapse=False, optimize_graph=True))
    """
)


def test_same_graph_gives_byte_identical_dot_in_every_process() -> None:
    outputs = []
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _DOT_IN_CHILD], env=env, capture_output=True, check=True
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert f"inc {X}401".encode() in outputs[0]  # odd is one of them
    assert b'"r#' in outputs[0]


def test_dot_is_the_same_on_every_call() -> None:
    total = tree_sum(500)
    assert to_dot(total) == to_dot(total)
    assert to_dot(total, collapse=False) == to_dot(total, collapse=False)


# -- collapsing big graphs -------------------------------------------------------------


def test_graphs_above_the_threshold_are_collapsed_by_default() -> None:
    def graph(n: int) -> Delayed[Any]:
        total: Delayed[Any] = delayed(sum)([delayed(inc)(i) for i in range(n)])
        return total

    at = to_dot(graph(viz.COLLAPSE_ABOVE - 1))  # n inc + 1 sum = threshold tasks
    above = to_dot(graph(viz.COLLAPSE_ABOVE))
    assert len(node_lines(at, "ellipse")) == viz.COLLAPSE_ABOVE
    assert labels_in(above) == [f"inc {X}{viz.COLLAPSE_ABOVE:,}", "sum"]


def test_collapse_false_draws_every_task_and_true_collapses_small_graphs() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(1000)])
    assert len(node_lines(to_dot(total, collapse=False), "ellipse")) == 1001
    assert labels_in(to_dot(tutorial_z(), collapse=True)) == [f"inc {X}2", "add"]


def test_collapsed_tree_reduction_reads_level_by_level() -> None:
    labels = labels_in(to_dot(tree_sum(1024)))
    assert labels == [f"inc {X}1,024"] + [f"add {X}{512 >> i:,}" for i in range(9)] + ["add"]


def test_a_long_chain_is_one_node() -> None:
    value: Delayed[int] = delayed(0, name="zero")
    for _ in range(10_000):
        value = value + 1
    assert labels_in(to_dot(value)) == ["zero", "+ → + → … → +\\n10,000 steps"]


def test_tutorial_chain_of_additions_collapses_into_one_chain() -> None:
    total = sum([delayed(inc)(i) for i in range(400)])
    assert labels_in(to_dot(total)) == [f"inc {X}400", "+ → + → … → +\\n400 steps"]


def test_collapsing_keeps_different_inputs_apart() -> None:
    evens = [delayed(inc)(i) for i in range(200)]
    odds = [delayed(abs)(e) for e in evens[:100]] + [delayed(abs)(i) for i in range(100)]
    dot = to_dot(delayed(sum)([*evens, *odds]), collapse=True)
    assert sorted(labels_in(dot)) == [f"abs {X}100", f"abs {X}100", f"inc {X}200", "sum"]


def test_unstructured_graphs_fall_back_to_one_node_per_function() -> None:
    rng = random.Random(7)
    made: list[Delayed[Any]] = []
    for i in range(2000):
        inputs = rng.sample(made, min(len(made), rng.randint(0, 3)))
        made.append(delayed(max, name="abc"[i % 3])(0, *inputs))
    dot = to_dot(made)
    counts = {
        m.group(1): int(m.group(2).replace(",", ""))
        for m in re.finditer(rf'label="([abc]) {X}([\d,]+)"', dot)
    }
    assert sorted(counts) == ["a", "b", "c"]
    assert sum(counts.values()) == 2000


def test_collapsed_graph_of_100_000_tasks_renders_quickly_and_readably() -> None:
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot program is not installed")
    total = tree_sum(50_000)
    start = time.perf_counter()
    picture = visualize(total)
    seconds = time.perf_counter() - start
    assert seconds < 5.0, f"rendering took {seconds:.1f} s"
    assert picture.data.startswith(b"\x89PNG\r\n\x1a\n")
    dot = to_dot(total)
    assert len(node_lines(dot, "ellipse")) < 40
    assert labels_in(dot)[:3] == [f"inc {X}50,000", f"add {X}25,000", f"add {X}12,500"]


# -- optimize_graph: fused chains ---------------------------------------------------------


def test_optimize_graph_fuses_linear_chains() -> None:
    start = delayed(1, name="one")
    a = delayed(inc)(delayed(inc)(delayed(inc)(start)))
    assert labels_in(to_dot(a, optimize_graph=True)) == ["one", "inc → inc → inc"]
    assert labels_in(to_dot(a)) == ["one", "inc", "inc", "inc"]


def test_optimize_graph_stops_fusing_at_shared_and_requested_outputs() -> None:
    start = delayed(inc).options(key="start")(1)
    shared = delayed(inc).options(key="shared")(start)
    left = delayed(abs)(shared)
    right = delayed(abs)(shared)
    dot = to_dot(left, right, optimize_graph=True)
    # shared feeds two tasks, so start → shared fuse but neither abs joins them
    assert labels_in(dot) == ["inc → inc", "abs", "abs"]
    dot = to_dot(left, start, optimize_graph=True)
    assert labels_in(dot) == ["inc", "inc → abs"]


def test_optimize_graph_compresses_long_mixed_chains() -> None:
    value: Delayed[Any] = delayed(1, name="one")
    for _ in range(3):
        value = delayed(inc)(value)
    for _ in range(3):
        value = delayed(abs)(value)
    assert labels_in(to_dot(value, optimize_graph=True))[1] == f"inc {X}3 → abs {X}3\\n6 steps"


# -- the collapse invariants, on random graphs ---------------------------------------------


@st.composite
def random_graphs(draw: st.DrawFn) -> list[Task]:
    size = draw(st.integers(1, 60))
    tasks: list[Task] = []
    for i in range(size):
        picks = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=3)) if i else []
        deps = tuple(dict.fromkeys(tasks[p] for p in picks))
        name = draw(st.sampled_from(["f", "g", "h"]))
        if not deps and draw(st.booleans()):
            tasks.append(Task.literal(f"v{i}", i))
        else:
            tasks.append(Task(f"t{i}", max, deps, None, deps, name))
    return tasks


@given(random_graphs(), st.booleans(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_every_task_and_dependency_is_drawn_exactly_once(
    tasks: list[Task], fuse: bool, collapse: bool
) -> None:
    targets = {t.key for t in tasks}  # everything requested: nothing is hidden in a chain
    ordered = list(walk(tasks))
    nodes = viz._units(ordered, set() if fuse else targets, fuse)
    if collapse:
        nodes = viz._collapse(nodes)
    where = {key: i for i, node in enumerate(nodes) for key in node.keys}
    assert sorted(where) == sorted(targets)
    assert sum(len(node.keys) for node in nodes) == len(tasks)
    for task in tasks:
        for dep in task.deps:
            a, b = where[dep.key], where[task.key]
            assert a == b or a in nodes[b].deps
    for i, node in enumerate(nodes):
        for d in node.deps:
            assert any(where[dep.key] == d for k in node.keys for dep in _task(tasks, k).deps)
            if not collapse:
                assert d != i
    dot = viz._emit(nodes, "BT", None)
    assert dot == viz._emit(nodes, "BT", None)


def _task(tasks: list[Task], key: str) -> Task:
    return next(t for t in tasks if t.key == key)


# -- rendering -------------------------------------------------------------------------------


@needs_dot
def test_png_is_a_valid_image_showing_the_labels(tmp_path: Path) -> None:
    picture = tutorial_z().visualize(filename=tmp_path / "z.png")
    data = (tmp_path / "z.png").read_bytes()
    assert data == picture.data
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = gray(data)
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100
    assert 0.005 < (pixels < 0.5).mean() < 0.5  # drawn on, but mostly background
    assert png_shows(data, "inc")
    assert png_shows(data, "add")
    assert not png_shows(data, "sum")


@needs_dot
def test_png_of_a_collapsed_graph_shows_counts() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(1000)])
    data = visualize(total).data
    assert png_shows(data, f"inc {X}1,000")
    assert png_shows(data, "sum")


@needs_dot
def test_svg_is_valid_xml_with_the_labels(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    picture = tutorial_z().visualize(filename=str(tmp_path / "z.svg"))
    root = ET.fromstring((tmp_path / "z.svg").read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert sorted(texts) == ["add", "inc", "inc"]
    assert type(picture).__name__ == "SVG"
    assert "<svg" in picture._repr_svg_()


@needs_dot
def test_pdf_format(tmp_path: Path) -> None:
    picture = visualize(tutorial_z(), filename=tmp_path / "z", format="pdf")
    assert (tmp_path / "z.pdf").read_bytes().startswith(b"%PDF")
    assert isinstance(picture, Picture)
    assert picture._repr_pdf_() == picture.data


@needs_dot
def test_png_is_returned_as_an_ipython_image() -> None:
    from IPython.display import Image

    picture = tutorial_z().visualize()
    assert isinstance(picture, Image)
    assert picture.data.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("filename", "fmt", "written", "kind"),
    [
        ("g.svg", None, "g.svg", "svg"),
        ("g.SVG", None, "g.SVG", "svg"),
        ("g", None, "g.png", "png"),
        ("g.png", "svg", "g.png", "svg"),
        ("g", "pdf", "g.pdf", "pdf"),
        ("g.gv", None, "g.gv", "dot"),
    ],
)
def test_the_format_follows_the_suffix_unless_format_says_otherwise(
    filename: str, fmt: str | None, written: str, kind: str
) -> None:
    assert viz._output(filename, fmt) == (kind, written)


def test_unknown_suffix_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf, \.dot"):
        viz._output("g.jpeg", None)
    with pytest.raises(ValueError, match="format must be one of"):
        viz._output(None, "jpeg")


def test_dot_format_needs_no_graphviz_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    picture = tutorial_z().visualize(filename=tmp_path / "z.dot")
    assert (tmp_path / "z.dot").read_text() == to_dot(tutorial_z()) == picture.data
    assert repr(picture).startswith("<tarry Picture: dot")


@pytest.mark.parametrize("python_package", [True, False], ids=["graphviz-package", "subprocess"])
def test_missing_dot_program_explains_how_to_install_it(
    python_package: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    if not python_package:
        monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(GraphvizNotFoundError) as caught:
        tutorial_z().visualize()
    message = str(caught.value)
    assert "sudo apt-get install graphviz" in message
    assert "conda install -c conda-forge graphviz" in message
    assert "brew install graphviz" in message
    assert "tarry.to_dot(" in message
    error = caught.value  # one short message: no chained traceback to read through
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert to_dot(tutorial_z()).startswith("digraph")  # still works


@needs_dot
def test_subprocess_path_renders_the_same_svg_as_the_graphviz_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = to_dot(tutorial_z())
    with_package = viz.render(source, "svg")
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert viz.render(source, "svg") == with_package


@needs_dot
def test_without_ipython_a_picture_object_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    png = tutorial_z().visualize()
    svg = tutorial_z().visualize(format="svg")
    assert isinstance(png, Picture)
    assert isinstance(svg, Picture)
    assert png._repr_png_() is not None
    assert png._repr_png_() == png.data
    assert png._repr_svg_() is None
    assert "<svg" in (svg._repr_svg_() or "")


@needs_dot
@pytest.mark.parametrize("color", [None, "status"])
@pytest.mark.parametrize("collapse", [False, True])
@pytest.mark.parametrize("optimize", [False, True])
def test_every_kind_of_drawing_is_accepted_by_dot(
    color: str | None, collapse: bool, optimize: bool
) -> None:
    x = delayed([1, 2, 3], name="x")
    parts = [x[i] + i for i in range(3)] + [x.count(1), -abs(x[0]), delayed(3 + 4j).real]
    total = delayed(sum)(parts) * delayed(inc)(delayed(inc)(2))
    total.compute(scheduler="sync")
    source = to_dot(total, collapse=collapse, optimize_graph=optimize, color=color)
    svg = viz.render(source, "svg").decode()
    assert "<svg" in svg
    assert "sum" in svg


# -- colouring by the last run ---------------------------------------------------------------


def fill_of(dot: str, label: str) -> str | None:
    for line in dot.splitlines():
        if f'[label="{label}"' in line or f'[label="{label}\\n' in line:
            found = re.search(r'fillcolor="([^"]+)"', line)
            return found.group(1) if found else None
    raise AssertionError(f"no node labelled {label!r}")


def test_status_colours_done_failed_and_not_run() -> None:
    ok = delayed(inc, name="ok")(1)
    bad = delayed(boom)(ok)
    after = delayed(add, name="after")(bad, 1)
    other = delayed(inc, name="other")(5)
    total = delayed(sum, name="total")([after, other])
    with pytest.raises(ValueError, match="boom"):
        total.compute(scheduler="sync")
    dot = to_dot(total, color="status")
    assert fill_of(dot, "ok") == viz._STATUS_FILL["done"]
    assert fill_of(dot, "boom") == viz._STATUS_FILL["failed"]
    assert fill_of(dot, "after") == viz._STATUS_FILL["not run"]
    assert fill_of(dot, "total") == viz._STATUS_FILL["not run"]
    assert "failed (1)" in dot
    assert "last run" in dot
    assert "legend" in dot


def test_status_after_success_and_for_tasks_outside_the_run() -> None:
    z = tutorial_z()
    z.compute()
    extended = delayed(abs, name="later")(z)
    dot = to_dot(extended, color="status")
    assert fill_of(dot, "add") == viz._STATUS_FILL["done"]
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
    assert fill_of(dot, f"inc {X}400") == viz._STATUS_FILL["partly done"]
    assert "1 of 400 done" in dot
    assert fill_of(dot, "boom") == viz._STATUS_FILL["failed"]


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
    assert fill_of(dot, "slow") == viz._HEAT[-1]
    assert fill_of(dot, "quick") in viz._HEAT[:3]
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
    plain = gray(visualize(z).data)
    coloured = gray(visualize(z, color="status").data)
    # filled nodes and the legend add ink that the plain picture lacks
    assert (coloured < 0.95).mean() > (plain < 0.95).mean()


# -- the record of the last run ----------------------------------------------------------------


def test_the_last_run_does_not_keep_the_graph_or_its_values_alive() -> None:
    class Big:
        pass

    data = Big()
    ref = weakref.ref(data)
    result = delayed(lambda d, _: d)(data, delayed(inc)(1))
    result.compute(scheduler="threads")
    del data, result
    gc.collect()
    assert ref() is None
    assert last_run() is not None


def test_the_last_run_does_not_keep_a_failed_graph_alive() -> None:
    class Big:
        pass

    data = Big()
    ref = weakref.ref(data)

    def fail(d: Big) -> None:
        raise KeyError("no")

    with contextlib.suppress(KeyError):
        delayed(fail)(data).compute(scheduler="sync")
    del data
    gc.collect()
    assert ref() is None
    record = last_run()
    assert record is not None
    assert record.error == "KeyError: 'no'"


def test_record_fields_after_a_failure() -> None:
    parts = [delayed(inc).options(key=f"p{i}")(i) for i in range(3)]
    # sync runs ready tasks first to last, and a task made ready right away:
    # p0, then bad, which fails before p1 and p2 start
    bad = delayed(boom).options(key="bad")(parts[0])
    total = delayed(sum).options(key="total")([*parts, bad])
    with pytest.raises(ValueError, match="boom"):
        total.compute(scheduler="sync")
    record = last_run()
    assert isinstance(record, LastRun)
    assert record.targets == ("total",)
    assert record.size == 5
    assert record.failed == "bad"
    assert record.not_run == {"p1", "p2", "total"}
    assert record.events is None
    assert record.durations() is None
    statuses = record.statuses(list(walk([total._task])))
    assert statuses == {
        "p0": "done", "p1": "not run", "p2": "not run", "bad": "failed", "total": "not run",
    }  # fmt: skip


def test_timings_are_the_runs_own_event_list() -> None:
    with record_timings():
        tutorial_z().compute(scheduler="threads", num_workers=2)
    record = last_run()
    assert record is not None
    assert record.events is not None
    durations = record.durations()
    assert durations is not None
    assert sorted(durations) == ["x", "y", "z"]
    assert all(seconds >= 0 for seconds in durations.values())


def test_an_unprintable_error_is_still_described() -> None:
    class OddError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    def fail(x: int) -> int:
        raise OddError()

    with pytest.raises(OddError):
        delayed(fail)(1).compute(scheduler="sync")
    record = last_run()
    assert record is not None
    assert record.error == "OddError: <message unavailable>"

    def fail_long(x: int) -> int:
        raise ValueError("x" * 1000)

    with pytest.raises(ValueError, match="xxx"):
        delayed(fail_long)(1).compute(scheduler="sync")
    record = last_run()
    assert record is not None
    assert record.error is not None
    assert len(record.error) == 300


# -- Jupyter's HTML repr ---------------------------------------------------------------------------


@needs_dot
def test_html_repr_of_a_small_graph_has_key_counts_functions_and_a_picture() -> None:
    text = tutorial_z()._repr_html_()
    assert "<code>z</code>" in text
    assert "3 tasks" in text
    assert "<code>inc</code>&nbsp;&times;2" in text
    assert "<code>add</code>&nbsp;&times;1" in text
    assert "<svg" in text
    assert "<?xml" not in text
    assert "<!DOCTYPE" not in text


def test_html_repr_of_a_larger_graph_has_no_picture() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(viz._INLINE_MAX)])
    text = total._repr_html_()
    assert f"{viz._INLINE_MAX + 1} tasks" in text
    assert "<svg" not in text


def test_html_repr_without_dot_is_text_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    text = tutorial_z()._repr_html_()
    assert "3 tasks" in text
    assert "<svg" not in text


def test_html_repr_escapes_and_counts_values() -> None:
    value = delayed(1, name="<one>")
    text = html_repr(delayed(inc).options(key="<b>k</b>")(value))
    assert "&lt;b&gt;k&lt;/b&gt;" in text
    assert "<b>k" not in text
    assert "2 tasks" in text
    assert "1 value" in text


def test_html_repr_stops_counting_huge_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tarry._tools.visualize._COUNT_LIMIT", 10)
    text = html_repr(delayed(sum)([delayed(inc)(i) for i in range(20)]))
    assert "more than 10 tasks" in text


def test_html_repr_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(obj: Any) -> str:
        raise RuntimeError("broken")

    monkeypatch.setattr("tarry._tools.visualize._html", broken)
    z = tutorial_z()
    assert z._repr_html_() == "<pre>Delayed(&#x27;z&#x27;)</pre>"


def test_public_names() -> None:
    assert tarry.visualize is visualize
    assert tarry.to_dot is to_dot
    assert {"visualize", "to_dot"} <= set(tarry.__all__)


def test_import_tarry_does_not_import_graphviz_or_ipython() -> None:
    code = "import sys, tarry; print(sorted({'graphviz', 'IPython'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert done.stdout.strip() == "[]"
