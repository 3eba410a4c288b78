"""dask's own ``dask/tests/test_delayed.py``, run against tarry.

The runner copies the installed dask's test file into a temporary directory
and rewrites only the import lines in :data:`REWRITES`, so that ``dask``'s
lazy API (``dask.delayed``, ``dask.compute``, ``dask.persist``, ``Delayed``,
``dask.config.set(scheduler=..., delayed_pure=...)``) comes from tarry through
``tests/dask_shim.py``; everything else (``dask.threaded``, ``dask.annotate``,
``dask.array``, ``HighLevelGraph``, ``to_task_dask``...) stays dask's. No
assertion is changed. pytest then runs the copy in a subprocess, without this
repository's options, and reports each test's outcome through ``--junitxml``;
a test that hangs fails after :data:`TEST_TIMEOUT`, and a run that hangs
fails this test after :data:`TIMEOUT`.

:data:`EXPECTED_FAILURES` lists the tests that fail on tarry, each with one
line saying why: dask's internal graph representation, a deliberate and
documented difference, or a tarry bug ("tarry bug: ..."). The test passes
when every other test passes (or is skipped by dask for a missing optional
package, or is an xfail that dask itself marks) and every listed test still
fails, so the list can only shrink.

``python tests/test_dask_conformance.py`` prints the outcome of each test as
a Markdown table.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

SHIM = Path(__file__).with_name("dask_shim.py")
TIMEOUT = 240  # seconds for the whole run; under the suite's own 300 s per test
TEST_TIMEOUT = 60  # seconds per dask test: a hang fails that test, not the run

#: Whole import lines of dask's test file and their replacements: nothing else changes.
REWRITES: dict[str, str] = {
    "import dask": "import dask_shim as dask",
    "from dask import compute": "from dask_shim import compute",
    "from dask.delayed import Delayed, delayed, to_task_dask": (
        "from dask_shim import Delayed, delayed, to_task_dask"
    ),
}

DATACLASS = (
    "deliberate difference: tarry resolves Delayed fields of any dataclass (README: "
    "'anywhere inside ... dataclasses'), dask refuses this one"
)

#: Test id -> why it fails on tarry. A test that starts to pass must leave the list.
EXPECTED_FAILURES: dict[str, str] = {
    "test_to_task_dask": "dask internal: to_task_dask builds dask tasks from dask's Delayed",
    "test_delayed_with_dataclass_with_custom_init": DATACLASS,
    "test_delayed_with_dataclass_with_set_init_false_field": DATACLASS,
    "test_delayed_visualise_warn": (
        "deliberate difference: the typo warning names tarry's Delayed, not dask.delayed"
    ),
    "test_delayed_picklable": (
        "dask internal: compares graphs task object by task object after pickling, and "
        "DelayedLeaf/DelayedAttr private attributes (_nout, _pure, _obj, _attr)"
    ),
    "test_delayed_compute_forward_kwargs": (
        "deliberate difference documented in README: unknown compute() keywords raise"
    ),
    "test_dask_layers": (
        "dask internal: its layer checks pass, then it builds Delayed(key, HighLevelGraph), "
        "where tarry's Delayed is made from a tarry task"
    ),
    "test_annotations_survive_optimization": (
        "dask internal: HighLevelGraph annotations, collections_to_expr().optimize()"
    ),
}


@dataclass(frozen=True)
class Outcome:
    """One dask test's result (passed, failed, skipped or xfailed), its message and text."""

    outcome: str
    message: str = ""
    text: str = ""


def dask_test_file() -> Path:
    """The installed dask's ``tests/test_delayed.py``."""
    spec = importlib.util.find_spec("dask")
    assert spec is not None, "dask is not installed"
    assert spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "tests" / "test_delayed.py"


def rewrite(source: str) -> str:
    """``source`` with each line in :data:`REWRITES` replaced; each must occur once."""
    lines = source.splitlines(keepends=True)
    for old, new in REWRITES.items():
        where = [i for i, line in enumerate(lines) if line.rstrip("\n") == old]
        assert len(where) == 1, f"dask's test file no longer has one line {old!r}: update REWRITES"
        lines[where[0]] = new + "\n"
    return "".join(lines)


def run_dask_tests(workdir: Path) -> dict[str, Outcome]:
    """Run the rewritten dask tests in ``workdir``; the outcome of each test, by id."""
    shutil.copy(SHIM, workdir / SHIM.name)
    test_file = workdir / "test_delayed.py"
    test_file.write_text(rewrite(dask_test_file().read_text()))
    # An empty ini file makes workdir the rootdir: none of this repository's options apply.
    (workdir / "pytest.ini").write_text("[pytest]\n")
    report = workdir / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    command = [
        *(sys.executable, "-m", "pytest", test_file.name, "-q", "-o", "addopts="),
        *("-p", "no:cacheprovider", "-p", "no:randomly"),
        *(f"--timeout={TEST_TIMEOUT}", f"--junitxml={report}"),
    ]
    try:
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as hang:
        out = hang.stdout.decode() if isinstance(hang.stdout, bytes) else hang.stdout or ""
        pytest.fail(f"dask's test_delayed.py on tarry hung for {TIMEOUT} s; its output:\n{out}")
    if not report.exists():
        pytest.fail(f"pytest wrote no report:\n{done.stdout}\n{done.stderr}")
    return parse_junit(report)


def parse_junit(report: Path) -> dict[str, Outcome]:
    """Each test case of a JUnit XML report, by test id."""
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = Outcome("passed")
        for child in case:
            message = child.get("message", "").strip()
            if child.tag in ("failure", "error"):
                outcome = Outcome("failed", message, (child.text or message).strip())
            elif child.tag == "skipped":
                kind = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                outcome = Outcome(kind, message, message)
        outcomes[case.get("name", "?")] = outcome
    return outcomes


def allowed_skip(outcome: Outcome) -> bool:
    """Whether dask itself skips (a missing optional package) or xfails this test."""
    return outcome.outcome == "xfailed" or (
        outcome.outcome == "skipped" and outcome.message.startswith("could not import")
    )


def problems(outcomes: dict[str, Outcome]) -> list[str]:
    """What breaks the rule: unlisted tests that did not pass, listed ones that did."""
    found: list[str] = []
    for test_id, outcome in outcomes.items():
        if test_id in EXPECTED_FAILURES or outcome.outcome == "passed" or allowed_skip(outcome):
            continue
        found.append(f"{test_id} {outcome.outcome} (not an expected failure):\n{outcome.text}")
    for test_id, reason in EXPECTED_FAILURES.items():
        listed = outcomes.get(test_id)
        if listed is None:
            found.append(f"{test_id} did not run: remove it from EXPECTED_FAILURES")
        elif listed.outcome != "failed":
            found.append(
                f"{test_id} {listed.outcome} now: remove it from EXPECTED_FAILURES ({reason})"
            )
    return found


def summary(outcomes: dict[str, Outcome]) -> str:
    """One line: how many of dask's tests pass on tarry."""
    passed = sum(o.outcome == "passed" for o in outcomes.values())
    expected = sum(o.outcome == "failed" and t in EXPECTED_FAILURES for t, o in outcomes.items())
    return (
        f"dask test_delayed.py on tarry: {passed} passed, "
        f"{expected} expected failures of {len(outcomes)}"
    )


@pytest.mark.slow
def test_dask_test_delayed_on_tarry(tmp_path: Path) -> None:
    """dask's test_delayed.py passes on tarry, but for the expected failures."""
    outcomes = run_dask_tests(tmp_path)
    print(summary(outcomes))
    found = problems(outcomes)
    assert not found, summary(outcomes) + "\n\n" + "\n\n".join(found)


def main() -> None:
    """Print each test's outcome on tarry as a Markdown table."""
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        outcomes = run_dask_tests(Path(workdir))
    print("| dask test | on tarry | why | message |")
    print("|---|---|---|---|")
    for test_id, outcome in outcomes.items():
        why = EXPECTED_FAILURES.get(test_id, "")
        message = outcome.message.splitlines()[0] if outcome.message else ""
        print(f"| `{test_id}` | {outcome.outcome} | {why} | {message.replace('|', '/')} |")
    print()
    print(summary(outcomes))
    for problem in problems(outcomes):
        print("\n" + problem, file=sys.stderr)


if __name__ == "__main__":
    main()
