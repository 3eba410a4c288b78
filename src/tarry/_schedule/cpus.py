"""How many CPUs this process may really use (affinity and cgroup quota).

On Linux, the affinity mask (``taskset``, a container's cpuset) and a
cgroup CPU quota (``docker run --cpus``) both limit it; elsewhere, and in
portable mode (see :mod:`tarry._platform`), the count of logical CPUs.
"""

from __future__ import annotations

import math
import os
from functools import cache

from tarry import _platform

__all__ = ["usable_cpus"]


@cache
def usable_cpus() -> int:
    """CPUs this process can use: affinity mask, capped by a cgroup CPU quota.

    Examples
    --------
    >>> usable_cpus() >= 1
    True
    """
    count = _platform.affinity() or os.cpu_count() or 1
    quota = _cgroup_quota() if _platform.cgroups() else None
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_quota() -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max`` or v1 CFS quota), if limited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota_us = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period_us = int(f.read())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
