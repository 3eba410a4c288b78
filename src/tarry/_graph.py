"""The task graph: tarry's one and only graph representation.

A :class:`Task` is one node: a key, a function and its arguments. A
dependency appears inside ``args``/``kwargs`` as the dependency's ``Task``
object itself (or inside a :class:`Pack` when it sits in a container), so a
graph is simply the set of tasks reachable from some targets. The same objects
are built by :mod:`tarry._build`, run by :mod:`tarry._schedule` and drawn by
:mod:`tarry._tools`; nothing is converted between representations.

Building a task is O(number of its arguments): no task ever copies its
ancestors, so chains and huge fan-ins build in linear time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from tarry._tokens import tokenize

__all__ = [
    "KeyClashError", "Lazy", "LazyResultError", "Pack", "Quote", "Task", "TaskGraph",
    "TaskOptions", "call", "check_same", "fingerprint", "resolve", "same_call", "walk",
]  # fmt: skip


class Lazy:
    """Base of lazy proxies (:class:`tarry.Delayed`): anything standing for a task.

    Argument traversal recognises a lazy value by this base class alone, so
    the graph layer does not depend on the proxy that builds it.
    """

    __slots__ = ("_task",)

    _task: Task

    def __tarry_token__(self) -> Task:
        # a lazy value stands for its task's output, which the key names
        return self._task


class Pack:
    """A container argument that holds task outputs somewhere inside.

    ``build`` receives the resolved ``items`` (in order) and rebuilds the
    container, so ``[x, {"a": y}]`` reaches the function as a plain list.

    Examples
    --------
    >>> p = Pack(tuple, [1, 2])
    >>> resolve(p, {})
    (1, 2)
    """

    __slots__ = ("build", "items", "type_name")

    def __init__(
        self, build: Callable[[list[Any]], Any], items: list[Any], type_name: str = ""
    ) -> None:
        self.build = build
        self.items = items
        self.type_name = type_name

    def __tarry_token__(self) -> tuple[str, Any, list[Any]]:
        # the rebuild says which container: two namedtuple classes may share a name
        return (self.type_name, self.build, self.items)

    def __repr__(self) -> str:
        return f"Pack({self.type_name or self.build!r}, {self.items!r})"


class Quote:
    """A user value that must reach the function untouched.

    Used for values that would otherwise be mistaken for graph structure (a
    :class:`Task` passed as plain data), so a stored value is never run.

    Examples
    --------
    >>> t = Task.literal("five", 5)
    >>> resolve(Quote(t), {}) is t
    True
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __tarry_token__(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"Quote({self.value!r})"


class TaskOptions(NamedTuple):
    """What a task asks of the scheduler, besides its call (``f.options(...)``).

    Which scheduler honours what is said in :func:`tarry.annotate`.

    Examples
    --------
    >>> TaskOptions(retries=2, retry_on=(OSError,)).retries
    2
    >>> TaskOptions().retry_on
    (<class 'Exception'>,)
    """

    #: further attempts after a failure; None: the compute's ``retries``
    retries: int | None = None
    #: the exceptions that are retried (others fail the run at once)
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: resources one run of the task holds, e.g. ``{"CPU": 2, "GPU": 1}``
    resources: Mapping[str, float] | None = None
    #: the workers (addresses or host names) the task may run on (Dask only)
    workers: tuple[str, ...] | None = None
    #: before tasks of lower priority, when both could start (Dask only)
    priority: float | None = None
    #: keep the result across runs (:func:`tarry.cache`); None: if the task is pure
    cache: bool | None = None
    #: how a cached result is stored (:data:`tarry._cache.formats.FORMATS`); None: "auto"
    cache_format: str | None = None


class Task:
    """One node of the graph: ``func(*args, **kwargs)`` stored under ``key``.

    Parameters
    ----------
    key
        Unique name of the task's output, ``"<funcname>-<token>"``.
    func
        The callable, or ``None`` for a literal whose value is ``args[0]``
        (a wrapped value, or a result kept by :func:`tarry.persist`).
    args, kwargs
        Arguments; dependencies appear as ``Task`` objects, possibly inside
        :class:`Pack` containers.
    deps
        The distinct tasks this one needs, in first-use order.
    name
        Short human label: the function's name, an operator symbol, ...
    pure
        True when the result is determined by the function and the
        arguments, so it may be cached across runs: ``delayed(f, pure=True)``
        (whose key is derived from the call's content), tarry's own
        containers of lazy values.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> two = Task("inc-1", lambda x: x + 1, (one,), None, (one,), "inc")
    >>> two
    Task('inc-1', inc, deps=['one'])
    >>> sorted(TaskGraph([two]))
    ['inc-1', 'one']
    """

    __slots__ = ("args", "deep", "deps", "func", "key", "kwargs", "name", "options", "pure")

    def __init__(
        self,
        key: str,
        func: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        deps: tuple[Task, ...],
        name: str,
        deep: bool = False,
        options: TaskOptions | None = None,
        pure: bool = False,
    ) -> None:
        self.key = key
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.deps = deps
        self.name = name
        # True when some argument is a Pack/Quote or there are kwargs: the
        # runner then takes the general (slower) path to resolve arguments.
        self.deep = deep
        #: retries and resources asked for with ``.options(...)``; None: defaults
        self.options = options
        self.pure = pure

    def __reduce__(self) -> tuple[Any, ...]:
        # pickling a slotted object otherwise goes through copyreg in Python;
        # the options are the scheduler's business, not the worker's
        return (
            Task,
            (self.key, self.func, self.args, self.kwargs, self.deps, self.name, self.deep),
        )

    def __tarry_token__(self) -> str:
        # a task stands for its output, which its key names
        return self.key

    @classmethod
    def literal(cls, key: str, value: Any, name: str | None = None, pure: bool = False) -> Task:
        """A task whose output is ``value`` itself; it is never called.

        ``pure``: ``key`` was derived from ``value``'s content.
        """
        return cls(key, None, (value,), None, (), name or type(value).__name__, pure=pure)

    @classmethod
    def kept(cls, key: str, value: Any, name: str, made_by: str) -> Task:
        """A result kept by :func:`tarry.persist`, standing for the call ``made_by``.

        ``made_by`` is the :func:`fingerprint` of the task that computed it.
        """
        return cls(key, None, (value, made_by), None, (), name)

    @property
    def is_literal(self) -> bool:
        """True when the task holds a value rather than a call."""
        return self.func is None

    def __repr__(self) -> str:
        if self.func is None:
            return f"Task({self.key!r}, value={self.args[0]!r})"
        return f"Task({self.key!r}, {self.name}, deps={[d.key for d in self.deps]!r})"


def resolve(obj: Any, values: Mapping[str, Any]) -> Any:
    """Replace tasks inside one argument by their computed values.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> resolve(Pack(list, [one, 2]), {"one": 1})
    [1, 2]
    """
    kind = type(obj)
    if kind is Task:
        return values[obj.key]
    if kind is Pack:
        return obj.build([resolve(item, values) for item in obj.items])
    if kind is Quote:
        return obj.value
    return obj


def call(task: Task, values: Mapping[str, Any]) -> Any:
    """Run one task, taking its dependencies' outputs from ``values``.

    A function that returns a lazy value instead of a value (it called a
    delayed function inside) fails its task with :class:`LazyResultError`:
    its reader would silently get ``Delayed('inc-...')``.
    """
    func = task.func
    if func is None:
        return task.args[0]
    if not task.deep:
        result = func(*[values[a.key] if type(a) is Task else a for a in task.args])
    else:
        args = [resolve(a, values) for a in task.args]
        kwargs = {k: resolve(v, values) for k, v in task.kwargs.items()} if task.kwargs else {}
        result = func(*args, **kwargs)
    if isinstance(result, Lazy):
        raise LazyResultError(task, result)
    return result


class LazyResultError(TypeError):
    """A task's function returned a lazy value (a ``Delayed``) instead of a value.

    dask's anti-pattern "calling delayed within delayed functions": the
    lazy value is a graph that nothing would run. The message says what to
    do instead.

    Examples
    --------
    >>> inner = Task.literal("inner-1", 1)
    >>> class Proxy(Lazy):
    ...     pass
    >>> proxy = Proxy()
    >>> proxy._task = inner
    >>> call(Task("outer-1", lambda: proxy, (), None, (), "outer"), {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tarry._graph.LazyResultError: task outer-1 (outer) returned a lazy value (inner-1) instead ...
    """

    def __init__(self, task: Task, result: Lazy) -> None:
        super().__init__(
            f"task {task.key} ({task.name}) returned a lazy value ({result._task.key}) instead "
            f"of a value: its function calls a delayed function, whose task nothing will run. "
            f"Call the plain function inside it (a @delayed function's .__wrapped__), or build "
            f"the whole graph outside tasks and compute it once"
        )


def walk(targets: Iterable[Task]) -> Iterator[Task]:
    """Every task reachable from ``targets``, each once, dependencies first.

    Iterative, so a chain of a million tasks needs no recursion. Two tasks
    under one key are one task only if they are the same call (see
    :func:`same_call`); otherwise walking raises :class:`KeyClashError`
    rather than silently computing one of them for both.

    Examples
    --------
    >>> a = Task.literal("a", 1)
    >>> b = Task("b", abs, (a,), None, (a,), "abs")
    >>> [t.key for t in walk([b, a])]
    ['a', 'b']
    >>> [t.key for t in walk([b, Task.literal("a", 2)])]
    Traceback (most recent call last):
    ...
    tarry._graph.KeyClashError: two different tasks have the key 'a': ...
    """
    seen: dict[str, Task] = {}
    checked: set[int] = set()  # ids of tasks found to be the same call as the one seen
    stack: list[tuple[Task, int]] = [(t, 0) for t in reversed(list(targets))]
    while stack:
        task, i = stack.pop()
        if i == 0:
            first = seen.get(task.key)
            if first is not None:
                if first is not task and id(task) not in checked:
                    check_same(first, task)
                    checked.add(id(task))
                continue
        deps = task.deps
        while i < len(deps):
            dep = deps[i]
            first = seen.get(dep.key)
            if first is None:
                break
            if first is not dep and id(dep) not in checked:
                check_same(first, dep)
                checked.add(id(dep))
            i += 1
        if i < len(deps):
            stack.append((task, i + 1))
            stack.append((deps[i], 0))
            continue
        if task.key not in seen:
            seen[task.key] = task
            yield task


class KeyClashError(ValueError):
    """Two different tasks were given one key; computing them would return one result for both."""


def fingerprint(task: Task) -> str:
    """A token of what ``task`` computes: its call, or its value.

    A result kept by :func:`tarry.persist` carries the fingerprint of the call
    that made it, so that it stands in for that call and for no other.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> fingerprint(one) == fingerprint(Task.literal("other", 1))
    True
    >>> fingerprint(Task.kept("k", 2, "inc", fingerprint(one))) == fingerprint(one)
    True
    """
    if task.func is None:
        if len(task.args) > 1:
            kept_from: str = task.args[1]
            return kept_from
        return tokenize("value", task.args[0])
    return tokenize("call", task.func, task.args, task.kwargs)


def same_call(a: Task, b: Task) -> bool:
    """True when tasks ``a`` and ``b`` compute the same thing (so one key may name both).

    Never calls the arguments' ``__eq__``: equal objects are compared through
    their tokens, after a check for identity, which is free.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> def make(func):
    ...     return Task("x", func, (one,), None, (one,), func.__name__)
    >>> same_call(make(abs), make(abs)), same_call(make(abs), make(str))
    (True, False)
    """
    if (
        a.func is b.func
        and a.func is not None
        and len(a.args) == len(b.args)
        and all(x is y for x, y in zip(a.args, b.args, strict=True))
        and (a.kwargs is b.kwargs or (not a.kwargs and not b.kwargs))
    ):
        return True
    return fingerprint(a) == fingerprint(b)


def check_same(first: Task, other: Task) -> None:
    """Raise :class:`KeyClashError` unless ``first`` and ``other`` (one key) are the same call."""
    if not same_call(first, other):
        raise KeyClashError(
            f"two different tasks have the key {first.key!r}: the first {_what(first)}, "
            f"the second {_what(other)}. "
            "Give each its own key (dask_key_name=, .options(key=...), delayed(value, name=...)), "
            "or leave keys out and tarry makes unique ones."
        )


def _what(task: Task) -> str:
    if task.func is None:
        if len(task.args) > 1:
            return f"holds a computed result of {task.name}"
        return f"holds a value of type {type(task.args[0]).__name__}"
    func = task.func
    where = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", task.name)
    return f"calls {where + '.' if where else ''}{qualname}"


class TaskGraph(Mapping[str, Task]):
    """A read-only mapping ``key -> Task`` of everything some targets need.

    Examples
    --------
    >>> a = Task.literal("a", 1)
    >>> g = TaskGraph([Task("b", abs, (a,), None, (a,), "abs")])
    >>> len(g), list(g)
    (2, ['a', 'b'])
    >>> g["a"]
    Task('a', value=1)
    """

    __slots__ = ("_tasks",)

    def __init__(self, targets: Iterable[Task]) -> None:
        self._tasks = {t.key: t for t in walk(targets)}

    def __getitem__(self, key: str) -> Task:
        return self._tasks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<TaskGraph with {len(self)} tasks>"
