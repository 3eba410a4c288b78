"""Types that follow the user's code: mypy --strict on a typed user script, revealed types checked.

One script (:data:`SCRIPT`) is checked once, as a user's code would be,
against the installed tarry; each test reads the type mypy revealed on one
line, marked ``# reveal: NAME``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

SCRIPT = """\
import tarry
from tarry import compute, delayed


@delayed
def inc(x: int) -> int:
    return x + 1


@delayed
def name(x: int) -> str:
    return str(x)


class Model:
    @delayed
    def predict(self, x: int) -> float:
        return x / 2

    @delayed
    @staticmethod
    def load(path: str) -> bytes:
        return path.encode()


x = inc(1)
reveal_type(x)  # reveal: call
reveal_type(x.compute())  # reveal: compute-method
reveal_type(compute(x))  # reveal: compute-one
reveal_type(compute(x, name(2)))  # reveal: compute-two
reveal_type(compute(x, name(2), x, x, x, name(3)))  # reveal: compute-six
reveal_type(compute([x, x]))  # reveal: compute-container
reveal_type(Model().predict(2))  # reveal: method
reveal_type(Model.load("a"))  # reveal: staticmethod
with tarry.profile() as prof:
    x.compute()
reveal_type(prof.to_dataframe())  # reveal: dataframe
reveal_type(prof.report().span)  # reveal: report
reveal_type(tarry.visualize(x, filename=None))  # reveal: visualize
"""

PICTURE = (
    "IPython.core.display.Image | IPython.core.display.SVG | tarry._tools.visualize.jupyter.Picture"
)


@pytest.fixture(scope="module")
def revealed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What mypy revealed on each marked line of the script, by mark."""
    folder = tmp_path_factory.mktemp("typed-user")
    (folder / "user.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", "",
         "--cache-dir", str(folder / "cache"), "user.py"],
        cwd=folder, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    marks = {
        number: line.split("# reveal: ")[1]
        for number, line in enumerate(SCRIPT.splitlines(), start=1)
        if "# reveal: " in line
    }
    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r'user\.py:(\d+): note: Revealed type is "(.*)"$', line)
        if match:
            found[marks[int(match[1])]] = match[2]
        elif "error:" in line:
            raise AssertionError(f"mypy --strict found an error in the user script:\n{done.stdout}")
    assert set(found) == set(marks.values()), done.stdout + done.stderr
    return found


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("call", "tarry._build.delayed.Delayed[builtins.int]"),
        ("compute-method", "builtins.int"),
        ("compute-container", "builtins.tuple[Any, ...]"),
        ("dataframe", "pandas.core.frame.DataFrame"),
        ("report", "builtins.float"),
        ("visualize", PICTURE),
    ],
)
def test_revealed_types(revealed: dict[str, str], mark: str, expected: str) -> None:
    assert _plain(revealed[mark]) == _plain(expected)


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("compute-one", "tuple[builtins.int]"),
        ("compute-two", "tuple[builtins.int, builtins.str]"),
        (
            "compute-six",
            "tuple[builtins.int, builtins.str, builtins.int, builtins.int, "
            "builtins.int, builtins.str]",
        ),
    ],
)
def test_compute_follows_its_arguments(revealed: dict[str, str], mark: str, expected: str) -> None:
    assert _plain(revealed[mark]) == _plain(expected)


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("method", "tarry._build.delayed.Delayed[builtins.float]"),
        ("staticmethod", "tarry._build.delayed.Delayed[builtins.bytes]"),
    ],
)
def test_delayed_methods_keep_their_return_type(
    revealed: dict[str, str], mark: str, expected: str
) -> None:
    assert _plain(revealed[mark]) == _plain(expected)


def _plain(text: str) -> str:
    """A revealed type without the ``builtins.`` prefixes mypy versions differ on."""
    return text.replace("builtins.", "")


def test_help_of_delayed_reads_well() -> None:
    import inspect

    import tarry

    for function in (tarry.delayed, tarry.DelayedFunction.options):
        shown = str(inspect.signature(function))  # what help() shows first
        assert "object at 0x" not in shown
        assert "= <not given>" in shown
