"""Before a run: which tasks load from the cache, which run and store their result.

:func:`decide` walks the graph from the targets down: a needed task whose
key has an entry *loads*, and its inputs are needed no longer (unless
another task needs them); a needed task without one *runs*, and its inputs
are needed. Tasks that nothing needs any more are *skipped*.

:func:`cached_targets` turns that into the graph a backend runs: a loaded
task becomes a literal holding the value (never shipped to a worker), a
cacheable task that runs gets :class:`WriteThrough` as its function, which
stores the result where the task ran (in the worker, on ``"processes"``)
the moment it returns, before the run goes on. A run that fails or is
interrupted has stored every result finished before; the next run loads
them. Task keys are unchanged, so the caller finds the targets' values as
without a cache. What the cache did (hits and their load times, misses,
tasks not cacheable) comes back beside them, as a
:class:`~tarry._cache.tally.CacheTally` for the run to carry.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from tarry._cache.keys import CacheKeys, Keyed, NotCacheable
from tarry._cache.store import Store
from tarry._cache.tally import CacheTally, Hit
from tarry._graph import Lazy, Pack, Task, TaskOptions, walk

__all__ = ["Decision", "WriteThrough", "cached_targets", "decide"]


class Decision(NamedTuple):
    """What happens to one task of a cached run."""

    task: Task
    #: "load", "run", "skip" (nothing needs it), or "value" (a literal: nothing to do)
    action: str
    #: its cache key, or why it has none
    keyed: Keyed | NotCacheable
    #: the loaded value, when ``action`` is "load" and values were loaded
    value: Any = None
    #: when it loaded, and what that saved (with ``value``)
    hit: Hit | None = None


def decide(targets: list[Task], store: Store, keys: CacheKeys, load: bool) -> dict[str, Decision]:
    """Per task key (inputs first), what a run with ``store`` does.

    ``load=False`` (a dry run) only tests whether entries exist; a corrupt
    one then still counts as a hit. A load is timed here, in the caller,
    where it happens.
    """
    tasks = list(walk(targets))
    found = keys.all(tasks)
    existing = store.existing([k.key for k in found.values() if isinstance(k, Keyed) and k.stored])
    needed = {t.key for t in targets}
    decided: dict[str, Decision] = {}
    for task in reversed(tasks):  # readers before their inputs
        keyed = found[task.key]
        if task.key not in needed:
            decided[task.key] = Decision(task, "skip", keyed)
            continue
        if task.func is None:
            decided[task.key] = Decision(task, "value", keyed)
            continue
        if (
            isinstance(keyed, Keyed)
            and keyed.stored
            and (existing is None or keyed.key in existing)
        ):
            if load:
                start, cpu = time.perf_counter(), time.thread_time()
                loaded = store.load(keyed.key)
                if loaded is not None:
                    end = time.perf_counter()
                    hit = Hit(task.key, task.name, start, end, time.thread_time() - cpu,
                              loaded.seconds, loaded.nbytes)  # fmt: skip
                    decided[task.key] = Decision(task, "load", keyed, loaded.value, hit)
                    continue
            elif store.has(keyed.key):
                decided[task.key] = Decision(task, "load", keyed)
                continue
        decided[task.key] = Decision(task, "run", keyed)
        needed.update(dep.key for dep in task.deps)
    return {t.key: decided[t.key] for t in tasks}


def cached_targets(targets: list[Task], store: Store) -> tuple[list[Task], CacheTally]:
    """``targets`` rebuilt to run with ``store`` (hits loaded, misses storing their
    result), and what the cache does in that run."""
    built: dict[str, Task] = {}
    hits: list[Hit] = []
    misses: list[str] = []
    uncacheable: list[str] = []
    skipped = 0
    decided = decide(targets, store, CacheKeys(), True)
    for key, (task, action, keyed, value, hit) in decided.items():
        if action == "skip":
            skipped += 1
            continue
        if hit is not None:  # loaded
            hits.append(hit)
            built[key] = Task.literal(key, value, task.name)
            continue
        if task.func is not None:
            stored = isinstance(keyed, Keyed) and keyed.stored
            (misses if stored else uncacheable).append(key)
        func = task.func
        if func is not None and isinstance(keyed, Keyed):  # stored, or timed for its readers
            inputs = _input_costs(task, decided)
            func = WriteThrough(func, store, keyed, task.name, task.options, inputs)
        args = tuple(_rebuilt(a, built) for a in task.args)
        kwargs = {k: _rebuilt(v, built) for k, v in task.kwargs.items()} if task.kwargs else None
        deps = tuple(built[d.key] for d in task.deps)
        if func is task.func and all(a is b for a, b in zip(deps, task.deps, strict=True)):
            built[key] = task  # nothing changed beneath it: the user's own task
        else:
            built[key] = Task(
                key, func, args, kwargs, deps, task.name, task.deep, task.options, task.pure
            )
    tally = CacheTally(
        store.location, tuple(hits), frozenset(misses), frozenset(uncacheable), skipped
    )
    return [built[t.key] for t in targets], tally


def _input_costs(task: Task, decided: dict[str, Decision]) -> tuple[tuple[str, float], ...]:
    """Per keyed input of ``task``: its cache key, and what making it cost if known
    already (a hit's stored cost), else -1: it runs in this run."""
    costs = []
    for dep in task.deps:
        found = decided[dep.key]
        if isinstance(found.keyed, Keyed) and found.task.func is not None:
            costs.append((found.keyed.key, -1.0 if found.hit is None else found.hit.saved))
    return tuple(costs)


#: per cache key of a result this process made, the seconds making it took,
#: its inputs' making included: what a later load of it saves. A reader
#: adds its inputs' figures to its own; an input made in another process
#: (another worker of ``"processes"``, Ray or Dask) is not known here and
#: counts 0, so the figure is a lower bound there.
_MADE: OrderedDict[str, float] = OrderedDict()
#: forgotten oldest first beyond this many results (about 10 MB of keys)
_MADE_LIMIT: Final = 100_000


def _rebuilt(arg: Any, built: dict[str, Task]) -> Any:
    """An argument with its tasks replaced by their rebuilt selves."""
    kind = type(arg)
    if kind is Task:
        return built[arg.key]
    if kind is Pack:
        return Pack(arg.build, [_rebuilt(item, built) for item in arg.items], arg.type_name)
    return arg


class WriteThrough:
    """A task's function that stores each result under the task's cache key.

    A task keyed but never stored (``cache=False`` on a pure task) only
    notes what making its result took, for its readers' entries.

    Runs where the task runs; a result that cannot be stored warns and is
    returned all the same (:meth:`~tarry._cache.store.Store.save`). Made in
    the caller, it tells the caller's store that the run may write to it,
    so that :meth:`~tarry._cache.store.Store.tidy` looks at it afterwards.
    The task's ``cache_format`` option says how the result is stored.

    The entry keeps how long making the result took: the task's own time
    plus its ``inputs``' (their cache keys, and their cost when known before
    the run, else -1: looked up in what this process made, :data:`_MADE`),
    so that a later hit can say what it saved.

    Examples
    --------
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> first = WriteThrough(abs, store, Keyed("k1", {}), "abs")
    >>> second = WriteThrough(abs, store, Keyed("k2", {}), "abs", inputs=(("k1", -1.0),))
    >>> second(first(-4))
    4
    >>> store.load("k2").seconds >= store.load("k1").seconds  # k1's time counted in k2's
    True
    """

    __slots__ = ("fmt", "func", "inputs", "keyed", "label", "store")

    def __init__(
        self,
        func: Callable[..., Any],
        store: Store,
        keyed: Keyed,
        label: str,
        options: TaskOptions | None = None,
        inputs: tuple[tuple[str, float], ...] = (),
    ) -> None:
        self.func = func
        self.store = store
        self.keyed = keyed
        self.label = label
        self.fmt = (options.cache_format if options is not None else None) or "auto"
        self.inputs = inputs
        if keyed.stored:
            store.grows = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = self.func(*args, **kwargs)
        seconds = time.perf_counter() - start
        if not isinstance(result, Lazy):  # the run fails it: nothing worth keeping
            for key, cost in self.inputs:
                seconds += _MADE.get(key, 0.0) if cost < 0 else cost
            keyed = self.keyed
            if len(_MADE) >= _MADE_LIMIT:
                # O(1): a dict's first item, once many are deleted, takes a scan to find
                _MADE.popitem(last=False)
            _MADE[keyed.key] = seconds
            if keyed.stored:
                self.store.save(keyed.key, result, self.label, keyed.functions, seconds, self.fmt)
        return result

    def __reduce__(self) -> tuple[Any, ...]:
        options = TaskOptions(cache_format=self.fmt)
        args = (self.func, self.store, self.keyed, self.label, options, self.inputs)
        return (WriteThrough, args)

    def __repr__(self) -> str:
        return f"<cached {self.func!r}>"
