"""Functions the process-pool fault scenarios run in worker processes (and a few they use).

Importable by every worker: the scenarios put ``tests/faults`` on the path,
and loky's workers inherit it. Waits on files, never on the clock: a
scenario opens a gate by creating a file, and a task says it began by
creating one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tarry import compute, delayed

#: how long a task waits for its gate; far longer than any scenario's timeout,
#: so a gate that never opens shows as a hang, not as a result
GATE_SECONDS = 600.0


def big(i: int) -> bytearray:
    """3 MB: more than ``transfer.FILE_BYTES``, so it travels as a file."""
    return bytearray([i % 256]) * (3 << 20)


def first_byte(data: bytearray, _: Any = None) -> int:
    return data[0]


def wait_for_gate(gate: str, started: str | None = None, value: int = 1) -> int:
    """Note ``started`` (a file), then wait until the file ``gate`` exists; return ``value``."""
    if started is not None:
        Path(started).touch()
    deadline = time.monotonic() + GATE_SECONDS
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def compute_on_processes(x: int) -> tuple[Any, ...]:
    """A nested compute that asks for processes (run in a pool worker of another kind)."""
    return compute(delayed(abs)(-x), scheduler="processes")


def big_written_slowly(started: str) -> bytearray:
    """A large result whose file is written half, then never finished.

    Patches, in this worker only, how :mod:`tarry._schedule.transfer` writes
    files: the first part goes out, ``started`` is created, then the write
    waits for ever, as a write into a slow disk would.
    """
    from tarry._schedule import transfer

    def stuck(path: str, parts: list[memoryview]) -> None:
        with open(path, "wb") as f:
            f.write(parts[-1][: len(parts[-1]) // 2])
            f.flush()
            Path(started).touch()
            time.sleep(GATE_SECONDS)

    transfer._write = stuck
    return bytearray(8 << 20)


def value_files(folder: str) -> list[str]:
    """The files of values (spilled results, whole or partial) in the pool's folder."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.endswith(".value"))
