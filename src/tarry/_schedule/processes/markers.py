"""Death markers: which task each worker is running, read only after a worker dies.

Each worker keeps a small file named after its pid in one folder per parent
process and writes the key of its current task into it (a few bytes per
task, no syscall beyond a ``pwrite``). When the pool breaks, the parent reads
the files of the workers that are gone and names their tasks in a
:class:`~tarry._schedule.errors.WorkerDiedError`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import tempfile
import threading

__all__ = ["dead_workers_tasks", "marker_dir"]


_marker_dir: str | None = None
_lock = threading.Lock()


def marker_dir() -> str:
    """The directory where workers note their current task (made on first use)."""
    global _marker_dir
    with _lock:
        if _marker_dir is None:
            shm = "/dev/shm"
            base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            _marker_dir = tempfile.mkdtemp(prefix="tarry-workers-", dir=base)
            atexit.register(shutil.rmtree, _marker_dir, True)
        return _marker_dir


def dead_workers_tasks(directory: str) -> list[str]:
    """Keys noted by worker processes that are dead now (their notes are removed)."""
    keys: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return keys
    for name in names:
        if not name.isdigit() or not _is_dead(int(name)):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
        except OSError:
            continue
        if len(data) >= 4:
            (size,) = struct.unpack_from("<I", data)
            if size:
                keys.append(data[4 : 4 + size].decode("utf-8", "replace"))
    return keys


def _is_dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state in (b"Z", b"X")  # a zombie is dead, just not reaped yet
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False
