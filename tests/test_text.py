"""tarry._tools.text: durations and chains read the same in every diagnostic."""

from __future__ import annotations

import pytest

from tarry._tools.text import counted, describe_error, format_chain, format_seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (75.0, "75.0 s"),
        (2.0, "2.00 s"),
        (0.5, "500 ms"),
        (0.0612, "61.2 ms"),
        (0.001, "1.00 ms"),
        (0.000_012_34, "12.3 µs"),
        (1e-6, "1.00 µs"),
        (3e-7, "300 ns"),
        (0.0, "0 ns"),
    ],
)
def test_three_significant_digits_and_a_unit(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("steps", "text"),
    [
        (["inc"], "inc"),
        (["inc", "add"], "inc → add"),
        (["inc"] * 3, "inc → inc → inc"),  # short chains are written out
        (["+"] * 10_000, "+ → + → … → +"),  # its length is said beside it
        (["inc"] * 3 + ["abs"] * 3, "inc ×3 → abs ×3"),
        (["inc"] * 50_000 + ["add"] * 25_000, "inc ×50,000 → add ×25,000"),
        (["a", "b", "c", "d", "e", "f"], "a → b → … → f"),
    ],
)
def test_chains_of_function_names(steps: list[str], text: str) -> None:
    assert format_chain(steps) == text


def test_counted_nouns() -> None:
    shown = [counted(n, "worker") for n in (1, 2, 1000)]
    assert shown == ["1 worker", "2 workers", "1,000 workers"]


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_errors_are_described_briefly_and_never_raise() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(UnprintableError()) == "UnprintableError: <message unavailable>"
    long = describe_error(ValueError("x" * 10_000))
    assert len(long) == 300
    assert long.endswith("…")
