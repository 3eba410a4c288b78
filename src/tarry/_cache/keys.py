"""Cache keys: what a task's result depends on, as one hex digest per task.

A task's key covers everything its result may depend on:

* its function's code, without docstrings, comments or line numbers (the
  bytecode: a comment or a moved function changes nothing, an edit to the
  body does), its defaults, closure and attributes;
* the code of the functions it reads from the user's own modules, followed
  through their globals, so an edit to a callee invalidates its callers;
* for functions and classes of installed packages, tarry and the standard
  library: their name and the package's version (an upgrade invalidates);
* its literal arguments' content (:mod:`tarry._tokens`); a pure value
  (``delayed(x, pure=True)``) by its task key, which is that already;
* its inputs' cache keys: a Merkle chain, so an input computed anew makes
  its readers new too, and an input's value is never hashed.

A task that cannot be keyed is *not cacheable*, with a reason: an impure
task (unless ``.options(cache=True)``), ``cache=False`` on an impure one,
an argument that cannot be described (no pickle, a bare ``object()``), or
an input that is not cacheable itself. A pure task with ``cache=False``
keeps its key (``Keyed.stored`` False): it runs every time and is never
stored, and its readers are cached as usual.

Lifetime: one :class:`CacheKeys` per compute (or explain). It keeps each
NumPy array it hashed, and each function it described (with the user's
functions it reaches), by identity until it is dropped: an array passed to
many tasks is hashed once per run, and a function called by 100,000 tasks
or by many callers is walked once.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import sys
import types
from collections.abc import Iterable
from typing import Any, NamedTuple

from tarry._graph import Task
from tarry._tokens import _CLASS_SKIP as _TOKENS_CLASS_SKIP
from tarry._tokens import _SCALARS, _code, _Describer, _importable, _in_library

__all__ = ["KEY_VERSION", "CacheKeys", "Keyed", "NotCacheable", "code_digest"]

#: part of every key: a change in how keys are derived must not reuse old entries
KEY_VERSION = "tarry-cache-key-2"
#: how a call's description starts (:meth:`CacheKeys._plain_call` writes it itself)
_CALL = f"str:{KEY_VERSION!r}\x1fstr:'call'"

# Python 3.14 marks a docstring with a flag; before, a function's first
# constant is its docstring, or None when it has none.
_CO_HAS_DOCSTRING = 0x4000000
_CO_OPTIMIZED = 0x1
# class attributes counted by name only: documentation and position, not
# behaviour, and those tarry's tokens leave out (they cannot be pickled)
_CLASS_SKIP = _TOKENS_CLASS_SKIP | {"__doc__", "__firstlineno__", "__static_attributes__"}


class Keyed(NamedTuple):
    """A task's cache key, and the code digests of the user's functions it covers."""

    key: str
    #: per function of the user's (``module:qualname``), the digest of its
    #: code that went into the key
    functions: dict[str, str]
    #: False for a pure task opted out with ``cache=False``: it runs every
    #: time and its result is never stored, but its key still keys its readers
    stored: bool = True


class NotCacheable(NamedTuple):
    """Why a task has no cache key."""

    reason: str


class _UnkeyableError(Exception):
    """Raised while describing a task: something in it cannot be described."""


@functools.lru_cache(maxsize=4096)
def code_digest(code: types.CodeType) -> str:
    """A digest of what ``code`` does: its bytecode without docstrings or line numbers.

    Examples
    --------
    >>> def one(x):
    ...     '''Documented.'''
    ...     return x + 1  # a comment
    >>> def two(x):
    ...     return x + 1
    >>> def three(x):
    ...     return x + 2
    >>> code_digest(one.__code__) == code_digest(two.__code__) != code_digest(three.__code__)
    True
    """
    return _code(_without_docstrings(code))[0]


def _without_docstrings(code: types.CodeType) -> types.CodeType:
    """``code`` and the code inside it with each docstring replaced by None."""
    consts = list(code.co_consts)
    if sys.version_info >= (3, 14):
        # flagged; adding or removing one still changes the code, editing one does not
        documented = bool(code.co_flags & _CO_HAS_DOCSTRING)
    else:  # a function's first constant is its docstring, or None
        documented = bool(
            code.co_flags & _CO_OPTIMIZED
            and not code.co_name.startswith("<")  # lambdas, comprehensions: no docstring
            and consts
            and isinstance(consts[0], str)
        )
    if documented:
        consts[0] = None
    consts = [_without_docstrings(c) if isinstance(c, types.CodeType) else c for c in consts]
    return code.replace(co_consts=tuple(consts))


@functools.cache
def _distributions() -> dict[str, list[str]]:
    import importlib.metadata

    # scans every installed distribution once per process (tens of milliseconds)
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def package_version(module: str) -> str:
    """Which release ``module`` comes from: the Python version for the standard library.

    Examples
    --------
    >>> package_version("json") == f"python {platform.python_version()}"
    True
    >>> package_version("tarry._graph").startswith("tarry ")
    True
    """
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        return f"python {platform.python_version()}"
    import importlib.metadata  # here: it imports much, and only keys need it

    try:  # most packages are named as they import (numpy, pandas): no scan needed
        return f"{top} {importlib.metadata.version(top)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    names = sorted(_distributions().get(top, ()))
    if not names:  # not installed: run from a source tree, say
        return f"{top} {getattr(sys.modules.get(top), '__version__', '?')}"
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


class _CacheDescriber(_Describer):
    """:mod:`tarry._tokens`' describer, made strict and code-aware for cache keys.

    Functions count by code without docstrings, installed code by package
    version, inputs by their cache keys; anything that would get a random
    token raises :class:`_UnkeyableError` instead.
    """

    __slots__ = ("functions", "keys")

    def __init__(self, keys: CacheKeys) -> None:
        super().__init__()
        self.keys = keys
        self.functions: dict[str, str] = {}

    def add(self, obj: Any) -> None:
        kind = type(obj)
        if kind is types.FunctionType:
            self.function(obj)
        elif kind is type:
            self.type_(obj)
        elif kind is Task:
            self.out.append(f"input:{self.keys.input_key(obj)}")
        else:
            super().add(obj)

    def function(self, func: types.FunctionType) -> None:
        if self.again(func):
            return
        keys = self.keys
        found = keys.described.get(id(func))
        if found is None:
            if id(func) in keys.describing:  # a cycle of functions: described in place
                keys.cycles += 1
                self.inline(func)
                return
            found = keys.describe(func)
        self.out.append(found[0])
        self.functions.update(found[1])

    def inline(self, func: types.FunctionType) -> None:
        """``func`` described here: its code, state and the globals it reads."""
        module = func.__module__
        name = f"{module}:{func.__qualname__}"
        library = isinstance(module, str) and _in_library(module)
        if library:
            self.out.append(f"libfunc:{name}@{package_version(module)}(")
        else:
            digest = code_digest(func.__code__)
            self.functions[name] = digest
            self.out.append(f"func:{name}:{digest}(")
        self.state(func)
        if not library:  # the callees: globals the code reads
            self.read(func.__globals__, _code(func.__code__)[1])
        self.out.append(")")

    def read(self, namespace: dict[str, Any], names: tuple[str, ...]) -> None:
        """The values of ``names`` in ``namespace``: what a function may read there."""
        for name in names:
            if name in namespace:
                self.out.append(name)
                value = namespace[name]
                if isinstance(value, types.ModuleType):
                    self.module(value, names)
                else:
                    self.add(value)

    def module(self, module: types.ModuleType, names: tuple[str, ...]) -> None:
        """A module a function reads: an installed one by version, one of the
        user's by the attributes the function may read from it (``helpers.clean``)."""
        name = module.__name__
        if _in_library(name):
            self.out.append(f"module:{name}@{package_version(name)}")
            return
        self.out.append(f"module:{name}(")
        if id(module) not in self.active:  # a module reached again through itself
            self.active[id(module)] = len(self.active)
            self.read(vars(module), names)
            del self.active[id(module)]
        self.out.append(")")

    def type_(self, cls: type) -> None:
        module = cls.__module__
        if _importable(cls) and _in_library(module):
            self.out.append(f"type:{module}.{cls.__qualname__}@{package_version(module)}")
        else:  # the user's class counts by its contents: an edited method invalidates
            self.contents(cls, _CLASS_SKIP)

    def special(self, obj: Any) -> bool:
        if isinstance(obj, types.ModuleType):
            self.module(obj, ())
            return True
        if type(obj) is object:
            raise _UnkeyableError(
                "an argument is a bare object(), which only its identity describes"
            )
        return super().special(obj)

    def pickled(self, obj: Any) -> str:
        text = super().pickled(obj)
        if text.startswith("random:"):
            raise _UnkeyableError(
                f"an argument of type {type(obj).__qualname__} can be neither pickled nor described"
            )
        return text

    def numpy(self, obj: Any, np: Any) -> None:
        memo = self.keys.arrays
        if isinstance(obj, np.ndarray):
            known = memo.get(id(obj))
            if known is not None:
                self.out.append(known[0])
                return
        super().numpy(obj, np)
        entry = self.known.get(id(obj))
        if entry is not None and not entry[0].startswith("seen:"):
            memo[id(obj)] = entry


class CacheKeys:
    """The cache keys of one run's tasks, derived once each, inputs first.

    Examples
    --------
    >>> from tarry import delayed
    >>> add = delayed(lambda a, b: a + b, pure=True)
    >>> keys = CacheKeys()
    >>> first = keys.of(add(1, 2)._task)
    >>> first.key == CacheKeys().of(add(1, 2)._task).key != keys.of(add(1, 3)._task).key
    True
    >>> keys.of(delayed(abs)(-1)._task).reason
    'impure: build it with delayed(f, pure=True), or opt in with f.options(cache=True)'
    """

    __slots__ = ("arrays", "cycles", "described", "describing", "found")

    def __init__(self) -> None:
        #: per task key, its cache key or why it has none
        self.found: dict[str, Keyed | NotCacheable] = {}
        #: NumPy arrays hashed in this run, by identity (kept alive with their text)
        self.arrays: dict[int, tuple[str, object]] = {}
        #: functions described in this run, by identity: their text, the
        #: user's functions they cover, and themselves (kept alive)
        self.described: dict[int, tuple[str, dict[str, str], object]] = {}
        #: the functions being described, and how often one was met again inside itself
        self.describing: set[int] = set()
        self.cycles = 0

    def describe(self, func: types.FunctionType) -> tuple[str, dict[str, str], object]:
        """``func``'s description on its own, kept for the run unless it is part of a cycle.

        A run describes each function once, not once per task that calls it
        or per caller: 100,000 tasks of one function, or callers sharing
        helpers, walk its code and globals once. A function that reaches a
        function still being described (``f`` calls ``g`` calls ``f``) is
        described in place wherever it is met, as before, and not kept: its
        text depends on where the walk entered the cycle, and a key must not
        depend on the order a run keys its tasks in.
        """
        describer = _CacheDescriber(self)
        cycles = self.cycles
        self.describing.add(id(func))
        describer.again(func)  # numbered first: a recursive function refers back to itself
        try:
            describer.inline(func)
        finally:
            self.describing.discard(id(func))
        found = ("\x1f".join(describer.out), describer.functions, func)
        if self.cycles == cycles:
            self.described[id(func)] = found
        return found

    def all(self, tasks: Iterable[Task]) -> dict[str, Keyed | NotCacheable]:
        """Key ``tasks`` (given inputs first, as :func:`tarry._graph.walk` yields them)."""
        for task in tasks:
            self.of(task)
        return self.found

    def of(self, task: Task) -> Keyed | NotCacheable:
        """``task``'s cache key, or why it has none; its inputs are keyed first if need be."""
        found = self.found.get(task.key)
        if found is not None:
            return found
        pending = [task]
        while pending:  # inputs first, without recursion: chains may be long
            top = pending[-1]
            missing = [d for d in top.deps if d.key not in self.found]
            if missing:
                pending.extend(missing)
                continue
            pending.pop()
            if top.key not in self.found:
                self.found[top.key] = self._derive(top)
        return self.found[task.key]

    def input_key(self, task: Task) -> str:
        """An input's cache key, for its readers' keys."""
        found = self.of(task)
        if isinstance(found, NotCacheable):
            raise _UnkeyableError(f"its input `{task.key}` is not cacheable ({found.reason})")
        return found.key

    def _derive(self, task: Task) -> Keyed | NotCacheable:
        func = task.func
        if func is None and task.pure:  # its key is its content's token: not hashed again
            parts: tuple[Any, ...] = ("value-key", task.key)
        elif func is None:  # a value: keyed by its content
            parts = ("value", task.args[0])
        else:
            wanted = None if task.options is None else task.options.cache
            if wanted is False and not task.pure:
                return NotCacheable("cache=False")
            if wanted is None and not task.pure:
                return NotCacheable(
                    "impure: build it with delayed(f, pure=True), "
                    "or opt in with f.options(cache=True)"
                )
            parts = ("call", func, task.args, task.kwargs)
        try:
            described = self._plain_call(parts) if parts[0] == "call" else None
            if described is None:
                describer = _CacheDescriber(self)
                describer.add(KEY_VERSION)
                for part in parts:
                    describer.add(part)
                described = describer.out, describer.functions
        except _UnkeyableError as exc:
            return NotCacheable(str(exc))
        except RecursionError:
            return NotCacheable("an argument is nested too deeply to describe")
        text = "\x1f".join(described[0]).encode(errors="surrogatepass")
        digest = hashlib.blake2b(text, digest_size=20).hexdigest()
        stored = task.options is None or task.options.cache is not False
        return Keyed(digest, described[1], stored)

    def _plain_call(self, parts: tuple[Any, ...]) -> tuple[list[str], dict[str, str]] | None:
        """A call of a function described already, on scalars and inputs: the most
        common task (``inc(i)`` 100,000 times), written without a describer.

        The text is the one the describer writes, so the key is the same
        either way; None when the call is of another kind.
        """
        _, func, args, kwargs = parts
        found = self.described.get(id(func)) if kwargs is None else None
        if found is None:
            return None
        out = [_CALL, found[0], "tuple["]
        for item in args:
            kind = type(item)
            prefix = _SCALARS.get(id(kind))
            if prefix is not None:
                out.append(prefix + repr(item))
            elif kind is Task:
                out.append(f"input:{self.input_key(item)}")
            else:
                return None
        out += ("]", "NoneType:None")
        return out, found[1]
