"""DOT text (``tarry._tools.visualize.dot``): golden files, options, ids, same text everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from visualize_helpers import (
    X,
    canonical,
    inc,
    labels_in,
    tree_sum,
    tutorial_results,
    tutorial_z,
)

from tarry import Delayed, delayed, to_dot
from tarry._tools.text import format_chain
from tarry._tools.visualize.collapse import Node
from tarry._tools.visualize.color import Paint
from tarry._tools.visualize.dot import (
    DIGEST_BYTES,
    PLAIN_KEY_MAX,
    STEPS_WRITTEN_OUT,
    dot_id,
    dot_text,
    emit,
    node_text,
)

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, dot: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TARRY_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(dot, encoding="utf-8")
    assert dot == path.read_text(encoding="utf-8")


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


# -- pieces on their own ------------------------------------------------------------------


def test_plain_keys_are_ids_as_they_are_and_others_are_hashed_apart() -> None:
    assert dot_id("f", "inc-1") == '"f:inc-1"'
    assert dot_id("r", "x[0], y") == '"r:x[0], y"'
    assert dot_id("r", "x" * PLAIN_KEY_MAX) == f'"r:{"x" * PLAIN_KEY_MAX}"'
    odd = [dot_id("r", key) for key in ('a"b', "a\\b", "a\nb", "x" * (PLAIN_KEY_MAX + 1), "é")]
    assert all(i.startswith('"r#') and len(i) == len('"r#') + 2 * DIGEST_BYTES + 1 for i in odd)
    assert len(set(odd)) == len(odd)
    assert dot_id("f", 'a"b') != dot_id("r", 'a"b')


def test_labels_are_quoted_with_escapes() -> None:
    assert dot_text("inc") == '"inc"'
    assert dot_text('a "b"') == '"a \\"b\\""'
    assert dot_text("a\\b\nc") == '"a\\\\b\\nc"'


def test_node_text_counts_groups_and_long_chains() -> None:
    def node(steps: list[str], count: int = 1, shown: list[str] | None = None) -> Node:
        return Node("k", steps, shown, False, ["k"] * count, [], count)

    assert node_text(node(["inc"])) == "inc"
    assert node_text(node(["inc"], 10_000)) == f"inc {X}10,000"
    assert node_text(node(["[]"], 2, ["[0]"])) == f"[0] {X}2"
    assert node_text(node(["inc", "abs"], 3)) == f"inc → abs\n{X}3"
    assert node_text(node(["+"] * 10)) == "+ → + → … → +\n10 steps"
    mixed = ["a", "b", "b", "c", "d", "e", "e"]
    assert node_text(node(mixed)) == f"a → b {X}2 → … → e {X}2\n7 steps"


def test_labels_count_the_steps_of_exactly_the_chains_format_chain_shortens() -> None:
    longest = [f"f{i}" for i in range(STEPS_WRITTEN_OUT)]
    assert format_chain(longest) == " → ".join(longest)
    assert format_chain([*longest, "g"]) != " → ".join([*longest, "g"])
    assert node_text(Node("k", longest, None, False, ["k"], [])) == " → ".join(longest)
    longer = Node("k", [*longest, "g"], None, False, ["k"], [])
    assert node_text(longer).endswith(f"\n{STEPS_WRITTEN_OUT + 1} steps")


def test_emit_draws_values_as_boxes_groups_doubled_and_colours_with_a_legend() -> None:
    value = Node("v", ["1"], ["1"], True, ["v"], [], target=True)
    group = Node("g", ["inc"], ["inc"], False, ["g", "h"], [0], count=2)
    painted = Paint(fill={1: "red"}, font={1: "white"}, extra={1: "2 failed"}, legend="<B>x</B>")
    lines = emit([value, group], "BT", painted).splitlines()
    assert lines[4:] == [
        '  "r:v" [label="1", shape=box, penwidth=2];',
        f'  "f:g" [label="inc {X}2\\n2 failed", shape=ellipse, peripheries=2, '
        'style=filled, fillcolor="red", fontcolor="white"];',
        '  "r:g" [label="", shape=box, width=0.3, height=0.2, peripheries=2];',
        '  "r:v" -> "f:g";',
        '  "f:g" -> "r:g";',
        "  legend [shape=plaintext, margin=0, label=<<B>x</B>>];",
        "}",
    ]
