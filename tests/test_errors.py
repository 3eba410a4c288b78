"""A task's exception reaches the caller as itself, even one that refuses a note."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from tarry import compute, delayed

LOCAL = [
    pytest.param("sync"),
    pytest.param("threads"),
    pytest.param("processes", marks=pytest.mark.processes),
]


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    code: int


class RefusesEverythingError(Exception):
    def add_note(self, note: str) -> None:
        raise RuntimeError("no notes here")

    def __setattr__(self, name: str, value: object) -> None:
        raise RuntimeError("no attributes here")


def raise_frozen(code: int) -> int:
    raise FrozenError(code)


def raise_refusing(code: int) -> int:
    raise RefusesEverythingError(f"refused {code}")


@pytest.mark.parametrize("scheduler", LOCAL)
def test_a_frozen_dataclass_exception_reaches_the_caller_as_itself(scheduler: str) -> None:
    with pytest.raises(FrozenError) as info:
        compute([delayed(raise_frozen)(i) for i in range(3)], scheduler=scheduler)
    assert info.value.code in range(3)
    assert any("raise_frozen" in note for note in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("scheduler", LOCAL)
def test_an_exception_that_refuses_notes_and_attributes_reaches_the_caller(
    scheduler: str,
) -> None:
    with pytest.raises(RefusesEverythingError, match="refused"):
        compute([delayed(raise_refusing)(i) for i in range(3)], scheduler=scheduler)


def test_threads_return_a_frozen_exception_instead_of_hanging() -> None:
    # Before: the exception killed a helper thread and compute never returned.
    script = textwrap.dedent(
        """
        import dataclasses, time
        from tarry import compute, delayed

        @dataclasses.dataclass(frozen=True)
        class Frozen(Exception):
            code: int

        def work(i):
            time.sleep(0.01 * (i % 3))
            if i % 4 == 3:
                raise Frozen(i)
            return i

        for _ in range(20):
            try:
                compute([delayed(work)(i) for i in range(16)], scheduler="threads", num_workers=4)
            except Frozen:
                pass
            else:
                raise SystemExit("no error")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
