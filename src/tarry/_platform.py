"""What this operating system offers tarry: every OS-specific probe asks here.

tarry runs on Linux, macOS and Windows. A few of its measurements have a
Linux-only way that is better than the portable one (the CPU affinity mask,
cgroup CPU quotas, ``/dev/shm``, the state of each thread and the children
of each process in ``/proc``, one monotonic clock for every process);
each asks this module whether it may take it, so the other systems get the
portable way on purpose, never by accident.

The environment variable ``TARRY_PORTABLE=1``, read once when this module
is imported, makes tarry behave on Linux as it does elsewhere: no affinity
mask, no cgroups, no ``/dev/shm``, no ``/proc`` (CPU demand from CPU time,
children from psutil), a clock offset per worker process, markers written
without ``pwrite``, and large values read rather than mapped (Windows
cannot remove a mapped file). Worker processes need nothing of it: loky
starts each as a fresh interpreter on every system (``fork`` then ``exec``
on POSIX), as Windows' ``spawn`` does. The test suite runs its scheduler
tests a second time in that mode (``./dev test``), which is how the
non-Linux paths are tested on a Linux machine. ``TARRY_PORTABLE=0`` or
unset: each probe answers for the real system.

Examples
--------
>>> isinstance(PORTABLE, bool)
True
>>> shm_dir() in (None, "/dev/shm")
True
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "PORTABLE",
    "affinity",
    "cgroups",
    "has_pwrite",
    "maps_removable_files",
    "proc_children",
    "reparents_orphans",
    "shared_perf_counter",
    "shm_dir",
    "thread_states",
]

_VARIABLE = "TARRY_PORTABLE"


def _read_switch(value: str | None) -> bool:
    """``TARRY_PORTABLE``'s value as a switch; a value it does not know raises.

    >>> _read_switch(None), _read_switch("1"), _read_switch("0"), _read_switch("")
    (False, True, False, False)
    >>> _read_switch("yes")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: TARRY_PORTABLE='yes' is not understood: set it to 1 (behave as on macOS ...
    """
    if value is None or value.strip() in ("", "0"):
        return False
    if value.strip() == "1":
        return True
    raise ValueError(
        f"{_VARIABLE}={value!r} is not understood: set it to 1 (behave as on macOS and "
        "Windows) or 0 (use what this system offers), or unset it"
    )


#: True when tarry must ignore what only Linux offers (``TARRY_PORTABLE=1``)
PORTABLE = _read_switch(os.environ.get(_VARIABLE))
_LINUX = sys.platform.startswith("linux") and not PORTABLE


def affinity() -> int | None:
    """CPUs in this process's affinity mask; None where the system has no such mask.

    >>> count = affinity()
    >>> count is None or count >= 1
    True
    """
    if PORTABLE or not hasattr(os, "sched_getaffinity"):
        return None
    return len(os.sched_getaffinity(0))


def thread_states() -> bool:
    """Whether the run state of each thread of this process can be read (``/proc``, Linux)."""
    return _LINUX and os.path.isdir("/proc/self/task")


def proc_children() -> bool:
    """Whether Linux lists each process's children in ``/proc/PID/task/TID/children``."""
    return _LINUX and os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def cgroups() -> bool:
    """Whether CPU quotas may be read from cgroup files (Linux only)."""
    return _LINUX


def shm_dir() -> str | None:
    """A writable folder in shared memory (``/dev/shm``) if the system has one, else None.

    Elsewhere the temp folder serves (on macOS a per-user folder under
    ``$TMPDIR``; on Windows ``%TEMP%``), which the page cache keeps in
    memory while the files are young.
    """
    shm = "/dev/shm"
    if PORTABLE or not (os.path.isdir(shm) and os.access(shm, os.W_OK)):
        return None
    return shm


def maps_removable_files() -> bool:
    """Whether a file mapped into memory can be removed meanwhile (not on Windows)."""
    return os.name != "nt" and not PORTABLE


def reparents_orphans() -> bool:
    """Whether a process whose parent dies gets a new parent at once (POSIX, not Windows)."""
    return os.name == "posix" and not PORTABLE


def has_pwrite() -> bool:
    """Whether ``os.pwrite`` (write at an offset in one call) exists (not on Windows)."""
    return hasattr(os, "pwrite") and not PORTABLE


def shared_perf_counter() -> bool:
    """Whether :func:`time.perf_counter` is one clock for every process of this machine.

    On Linux it is ``CLOCK_MONOTONIC``, the same for every process. Python
    promises no such thing elsewhere, so there worker processes measure
    their offset to the parent's clock when they start.
    """
    return _LINUX
