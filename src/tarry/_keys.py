"""Task keys: cheap unique keys for impure calls, content hashes for pure ones.

This module is the bottom of the package: it imports nothing of tarry's, so
the graph (:mod:`tarry._graph`) can use :func:`tokenize` to tell whether two
tasks under one key are the same call. Graph types describe themselves to it
through a ``__tarry_token__()`` method returning plain data.

An impure key (the default) must only be unique, so it is a per-process
random prefix plus a counter: no hashing of arguments, which may be large.
A pure key must be the same in every process for the same function and
argument content, so it hashes a normalised description of both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import pickle
import sys
import types
import uuid
from typing import Any

__all__ = ["new_key", "tokenize"]


def _fresh_prefix() -> str:
    return uuid.uuid4().hex[:10]


_prefix = _fresh_prefix()
_counter = itertools.count()


def _reseed_after_fork() -> None:
    # A forked child inherits prefix and counter; without a new prefix it
    # would hand out the parent's next keys again.
    global _prefix, _counter
    _prefix = _fresh_prefix()
    _counter = itertools.count()


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_key(name: str) -> str:
    """A key no other call in any process has: ``"<name>-<token>"``.

    Examples
    --------
    >>> a, b = new_key("inc"), new_key("inc")
    >>> a.startswith("inc-") and a != b
    True
    """
    return f"{name}-{_prefix}{next(_counter):x}"


def tokenize(*parts: Any) -> str:
    """A deterministic hex token for the content of ``parts``.

    Equal content gives equal tokens in every process; functions count by
    module, qualified name and code. Objects that cannot be described are
    given a random token, so they never collide with anything.

    Examples
    --------
    >>> tokenize(1, "a", [2.5, None]) == tokenize(1, "a", [2.5, None])
    True
    >>> tokenize(1) == tokenize(1.0)
    False
    """
    out: list[str] = []
    for part in parts:
        _describe(part, out)
    return hashlib.blake2b("\x1f".join(out).encode(), digest_size=16).hexdigest()


_SCALARS = frozenset(
    {type(None), bool, int, float, complex, str, bytes, range, slice, type(Ellipsis)}
)
_BUILTINS = frozenset({types.BuiltinFunctionType, types.BuiltinMethodType})


def _describe(obj: Any, out: list[str]) -> None:
    """Append strings that describe ``obj``'s content to ``out``."""
    kind = type(obj)
    if kind in _SCALARS:
        out.append(f"{kind.__name__}:{obj!r}")
    elif kind is list or kind is tuple:
        out.append(f"{kind.__name__}[")
        for item in obj:
            _describe(item, out)
        out.append("]")
    elif kind is set or kind is frozenset:
        out.append(f"{kind.__name__}{{")
        out.extend(sorted(tokenize(item) for item in obj))
        out.append("}")
    elif kind is dict:
        out.append("dict{")
        out.extend(sorted(tokenize(k, v) for k, v in obj.items()))
        out.append("}")
    elif kind in _BUILTINS:
        out.append(f"builtin:{obj.__module__}.{obj.__qualname__}")
    elif kind is types.MethodType:
        out.append("method:")
        _describe(obj.__self__, out)
        _describe(obj.__func__, out)
    elif kind is types.FunctionType:
        if obj.__closure__:
            out.append(_describe_code(obj))
            for cell in obj.__closure__:
                try:
                    _describe(cell.cell_contents, out)
                except ValueError:  # an empty cell: the variable is not bound yet
                    out.append("empty-cell")
        else:
            out.append(_describe_code(obj))
    elif hasattr(kind, "__tarry_token__"):
        # the graph's own types (Task, Pack, Quote) say what they stand for
        out.append(f"{kind.__name__}:")
        _describe(obj.__tarry_token__(), out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out.append(f"dataclass:{kind.__module__}.{kind.__qualname__}(")
        for field in dataclasses.fields(obj):
            out.append(field.name)
            _describe(getattr(obj, field.name), out)
        out.append(")")
    else:
        out.append(_describe_other(obj).hex())


def _describe_code(func: types.FunctionType) -> str:
    body = hashlib.blake2b(_code_bytes(func.__code__), digest_size=16)
    return f"func:{func.__module__}.{func.__qualname__}:{body.hexdigest()}"


def _code_bytes(code: types.CodeType) -> bytes:
    # Nested code objects (lambdas, comprehensions) repr with their memory
    # address, so they are described by their own bytecode instead.
    parts = [code.co_code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            parts.append(_code_bytes(const))
        else:
            parts.append(repr(const).encode())
    return b"\x1f".join(parts)


def _describe_other(obj: Any) -> bytes:
    """Bytes standing for an object of no built-in kind."""
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}:".encode()
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray) and obj.dtype != object:
        data = numpy.ascontiguousarray(obj).tobytes()
        return name + f"{obj.dtype}{obj.shape}".encode() + hashlib.blake2b(data).digest()
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(obj, pandas.DataFrame | pandas.Series | pandas.Index):
        try:
            hashed = pandas.util.hash_pandas_object(obj, index=True).to_numpy().tobytes()
            extra = repr(list(getattr(obj, "columns", []))) + repr(getattr(obj, "name", None))
            return name + extra.encode() + hashlib.blake2b(hashed).digest()
        except TypeError:  # unhashable cells (lists, dicts): fall through to pickle
            pass
    if callable(obj) and hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
        # builtins and C functions: identified by where they live
        return f"callable:{obj.__module__}.{obj.__qualname__};".encode()
    try:
        return name + hashlib.blake2b(pickle.dumps(obj, protocol=5)).digest()
    except Exception:
        # Not describable: a random token is honest (never equal to another).
        return name + uuid.uuid4().bytes
