"""tarry: turn function calls and for-loops into a lazy task graph, run it in parallel.

Examples
--------
>>> from tarry import delayed, compute
>>> @delayed
... def inc(x):
...     return x + 1
>>> total = delayed(sum)([inc(i) for i in range(4)])
>>> total.compute()
10
"""

from tarry import config
from tarry._build.annotate import annotate
from tarry._build.delayed import Delayed, persist
from tarry._build.wrap import DelayedFunction, delayed
from tarry._compute import compute, optimize
from tarry._tokens import tokenize
from tarry._tools.explain import explain
from tarry._tools.profile import profile
from tarry._tools.progress import progress
from tarry._tools.visualize import to_dot, visualize

__all__ = [
    "Delayed",
    "DelayedFunction",
    "annotate",
    "compute",
    "config",
    "delayed",
    "explain",
    "optimize",
    "persist",
    "profile",
    "progress",
    "to_dot",
    "tokenize",
    "visualize",
]
__version__ = "0.1.0"
