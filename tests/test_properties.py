"""Property tests: every scheduler agrees with a plain sequential evaluation.

Random DAGs of random functions, operators and containers are built twice:
once eagerly with plain Python values, once lazily with tarry. Each
scheduler's result must equal the eager one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarry import compute, delayed


def _clip(x: int) -> int:
    return max(-(10**6), min(10**6, x))


FUNCTIONS: list[tuple[str, Callable[..., Any]]] = [
    ("add", lambda a, b: _clip(a + b)),
    ("sub", lambda a, b: _clip(a - b)),
    ("mul", lambda a, b: _clip(a * b)),
    ("max", max),
    ("neg", lambda a: -a),
    ("list-sum", lambda items: _clip(sum(items))),
    ("dict-pick", lambda d: d["a"] - d["b"]),
    ("tuple-first", lambda t: t[0]),
]
OPERATORS: list[Callable[..., Any]] = [operator.add, operator.sub, operator.mul, operator.neg]

# One step of a random program: (kind, which function, which earlier nodes)
steps = st.lists(
    st.tuples(
        st.sampled_from(["call", "operator", "constant"]),
        st.integers(0, 100),
        st.lists(st.integers(0, 10**6), min_size=3, max_size=3),
    ),
    min_size=1,
    max_size=40,
)


def build(program: list[tuple[str, int, list[int]]], lazy: bool) -> list[Any]:
    """Evaluate the program eagerly (lazy=False) or build it lazily."""
    nodes: list[Any] = [delayed(1) if lazy else 1]
    for kind, choice, picks in program:
        args = [nodes[p % len(nodes)] for p in picks]
        if kind == "constant":
            nodes.append(delayed(choice) if lazy else choice)
        elif kind == "operator":
            op = OPERATORS[choice % len(OPERATORS)]
            arity = 1 if op is operator.neg else 2
            value = op(*args[:arity])
            clip = delayed(_clip) if lazy else _clip
            nodes.append(clip(value))
        else:
            name, func = FUNCTIONS[choice % len(FUNCTIONS)]
            if name in ("add", "sub", "mul", "max"):
                call_args: list[Any] = args[:2]
            elif name == "neg":
                call_args = args[:1]
            elif name == "list-sum":
                call_args = [args]
            elif name == "dict-pick":
                call_args = [{"a": args[0], "b": args[1]}]
            else:
                call_args = [(args[0], args[1])]
            f = delayed(func, pure=choice % 2 == 0) if lazy else func
            nodes.append(f(*call_args))
    return nodes


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(program=steps, workers=st.integers(1, 4))
def test_every_scheduler_matches_sequential_python(
    scheduler: str, program: list[tuple[str, int, list[int]]], workers: int
) -> None:
    expected = build(program, lazy=False)
    lazy = build(program, lazy=True)
    # all nodes at once (shared work), and the last node alone
    assert compute(lazy, scheduler=scheduler, num_workers=workers) == (expected,)
    assert lazy[-1].compute(scheduler=scheduler, num_workers=workers) == expected[-1]
