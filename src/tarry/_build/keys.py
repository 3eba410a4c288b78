"""Task keys: cheap unique keys for impure calls, content hashes for pure ones.

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
from collections.abc import Callable
from typing import Any

from tarry._graph import Pack, Quote, Task

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
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        _feed(digest, part)
    return digest.hexdigest()


_SCALARS = (type(None), bool, int, float, complex, str, bytes, range, slice, type(Ellipsis))


def _feed(digest: Any, obj: Any) -> None:
    update: Callable[[bytes], None] = digest.update
    kind = type(obj)
    if kind in _SCALARS:
        update(f"{kind.__name__}:{obj!r};".encode())
    elif kind is Task:
        update(f"task:{obj.key};".encode())
    elif kind is Pack:
        update(f"pack:{obj.type_name}[".encode())
        for item in obj.items:
            _feed(digest, item)
        update(b"]")
    elif kind is Quote:
        update(b"quote:")
        _feed(digest, obj.value)
    elif kind in (list, tuple):
        update(f"{kind.__name__}[".encode())
        for item in obj:
            _feed(digest, item)
        update(b"]")
    elif kind in (set, frozenset):
        update(f"{kind.__name__}{{".encode())
        for token in sorted(tokenize(item) for item in obj):
            update(token.encode())
        update(b"}")
    elif kind is dict:
        update(b"dict{")
        for token in sorted(tokenize(k, v) for k, v in obj.items()):
            update(token.encode())
        update(b"}")
    elif kind is types.MethodType:
        update(b"method:")
        _feed(digest, obj.__self__)
        _feed(digest, obj.__func__)
    elif kind is types.FunctionType:
        _feed_function(digest, obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        update(f"dataclass:{kind.__module__}.{kind.__qualname__}(".encode())
        for field in dataclasses.fields(obj):
            update(field.name.encode())
            _feed(digest, getattr(obj, field.name))
        update(b")")
    else:
        update(_describe_other(obj))


def _feed_function(digest: Any, func: Any) -> None:
    code = func.__code__
    digest.update(f"func:{func.__module__}.{func.__qualname__}:".encode())
    digest.update(code.co_code)
    _feed(digest, code.co_consts)
    if func.__closure__:
        for cell in func.__closure__:
            try:
                _feed(digest, cell.cell_contents)
            except ValueError:  # an empty cell: the variable is not bound yet
                digest.update(b"empty-cell")


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
