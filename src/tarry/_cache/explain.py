"""A cached run, told before it happens: per task, load or run, and why.

:func:`plan` makes the decisions a compute would (:func:`.lookup.decide`),
without loading or running anything, and words a reason for each task:

* *load*: an entry is stored under its key;
* *run*, with the first reason that applies: it is not cacheable (and
  why); it is new (its function never stored a result); an input will be
  recomputed (its key changes, so this one does); a function of the
  user's whose code went into its key changed since its last result was
  stored (the store keeps, per function, the code digest of the last key
  it stored); a new argument value (its code and inputs are the same); new
  (a library's function, whose inputs load);
* *skip*: nothing needs it, since the tasks reading it load.

A store that does not exist yet is not created: every task is new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tarry._cache.keys import CacheKeys, Keyed, NotCacheable
from tarry._cache.lookup import Decision, decide
from tarry._cache.store import Store
from tarry._graph import Task
from tarry._tools.text import pretty_as_text

__all__ = ["CachePlan", "TaskPlan", "plan"]

#: tasks listed by ``str(plan)`` at most
_SHOWN = 40
#: a function name's code digest in the last key stored (None: never stored)
_Lookup = Callable[[str], str | None]


@dataclass(frozen=True)
class TaskPlan:
    """One task of a cached run: what happens to it, and why."""

    key: str
    name: str
    #: "load", "run" or "skip"
    action: str
    reason: str


@dataclass(frozen=True)
class CachePlan:
    """What a compute with a cache would do; ``str()`` lists it."""

    location: str
    #: per task (values and persisted results are not tasks), inputs first
    tasks: list[TaskPlan]

    def count(self, action: str) -> int:
        """How many tasks would ``action`` ("load", "run", "skip")."""
        return sum(1 for t in self.tasks if t.action == action)

    def __str__(self) -> str:
        counts = ", ".join(f"{self.count(a)} {a}" for a in ("load", "run", "skip"))
        lines = [f"cache at {self.location}: {counts}"]
        # the tasks that load or run, not those skipped; a long list is cut
        shown = [t for t in self.tasks if t.action != "skip"]
        width = max((len(t.key) for t in shown[:_SHOWN]), default=0)
        lines += [f"  {t.action:<5} {t.key:<{width}}  {t.reason}" for t in shown[:_SHOWN]]
        if len(shown) > _SHOWN:
            lines.append(f"  ... and {len(shown) - _SHOWN} more (all of them in .tasks)")
        return "\n".join(lines)

    _repr_pretty_ = pretty_as_text


def plan(targets: list[Task], store: Store) -> CachePlan:
    """Per task of the graph of ``targets``, what a compute with ``store`` would do.

    Examples
    --------
    >>> import tempfile
    >>> from tarry import delayed
    >>> double = delayed(lambda x: 2 * x, name="double", pure=True)
    >>> store = Store(tempfile.mkdtemp())
    >>> x = double(double(1))
    >>> for task in plan([x._task], store).tasks:
    ...     print(task.action, task.reason)
    run new
    run new
    >>> _ = x.compute(cache=store)
    >>> [t.action for t in plan([double(x)._task], store).tasks]
    ['skip', 'load', 'run']
    """
    decided = decide(targets, store, CacheKeys(), load=False)
    digests: dict[str, str | None] = {}

    def stored(name: str) -> str | None:
        if name not in digests:
            digests[name] = store.function_digest(name)
        return digests[name]

    tasks = []
    reasons: dict[str, str] = {}
    for key, decision in decided.items():  # inputs first
        task = decision.task
        if task.func is None:
            continue
        reasons[key] = reason = _reason(decision, decided, reasons, stored)
        tasks.append(TaskPlan(key, task.name, decision.action, reason))
    return CachePlan(store.location, tasks)


def _reason(
    decision: Decision, decided: dict[str, Decision], reasons: dict[str, str], stored: _Lookup
) -> str:
    task, action, keyed = decision.task, decision.action, decision.keyed
    if action == "load":
        return "stored under its key"
    if action == "skip":
        return "not needed: what reads it loads"
    if isinstance(keyed, NotCacheable):
        return f"not cacheable: {keyed.reason}"
    if not keyed.stored:
        return "not cacheable: cache=False (it runs every time; its key still keys its readers)"
    own = getattr(task.func, "__module__", None), getattr(task.func, "__qualname__", None)
    own_name = f"{own[0]}:{own[1]}"
    if own_name in keyed.functions and stored(own_name) is None:
        return "new"  # its function never stored a result here
    rerun = [d.key for d in task.deps if d.func is not None and _reruns(decided[d.key])]
    if rerun and all(reasons[k] == "new" for k in rerun):
        return "new"  # what it reads was never stored: neither was it
    rerun = [k for k in rerun if reasons[k] != "new"]
    if rerun:
        more = f" (and {len(rerun) - 1} more)" if len(rerun) > 1 else ""
        return f"input `{rerun[0]}` will be recomputed{more}"
    return _changed(task, keyed, own_name, stored)


def _reruns(decision: Decision) -> bool:
    """Whether an input runs again in place of a stored result (one never stored always runs)."""
    keyed = decision.keyed
    return decision.action == "run" and not (isinstance(keyed, Keyed) and not keyed.stored)


def _changed(task: Task, keyed: Keyed, own_name: str, stored: _Lookup) -> str:
    """Why a cacheable task whose inputs all load (or are values) has no entry."""
    changed = [
        name
        for name, digest in keyed.functions.items()
        if (before := stored(name)) is not None and before != digest
    ]
    if changed:
        parts = ["its code"] if own_name in changed else []
        parts += [f"`{_short(n)}`, which it calls" for n in changed if n != own_name]
        return f"`{task.name}` changed ({', and '.join(parts)})"
    return "new argument value" if own_name in keyed.functions else "new"


def _short(name: str) -> str:
    return name.partition(":")[2]
