"""Task keys: cheap unique keys for impure calls; checking the keys users give.

An impure key (the default) must only be unique, so it is a per-process
random prefix plus a counter: no hashing of arguments, which may be large.
A pure key must be the same in every process for the same function and
argument content, so it hashes their description (:mod:`tarry._tokens`).
This module and that one are the bottom of the package: they import nothing
of tarry's.
"""

from __future__ import annotations

import itertools
import os
import reprlib
import uuid

__all__ = ["InvalidKeyError", "check_key", "new_key"]


def _fresh_prefix() -> str:
    """Ten random hex digits: this process's impure keys start with them."""
    return uuid.uuid4().hex[:10]


_prefix = _fresh_prefix()
_counter = itertools.count()


def _reseed_after_fork() -> None:
    """Give a forked child its own prefix, or it would hand out the parent's next keys."""
    global _prefix, _counter
    _prefix = _fresh_prefix()
    _counter = itertools.count()


if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_reseed_after_fork)


class InvalidKeyError(TypeError, ValueError):
    """A key or name given for tasks is not a non-empty str (a wrong type, or empty: one rule)."""


def check_key(key: object, option: str) -> str:
    """``key``, given as ``option=``, if it can name tasks: a non-empty ``str``.

    The rule for ``dask_key_name=``, ``.options(key=)``, and ``name=`` (a
    value's key, or the start of a function's task keys). Where dask also
    takes numbers, bytes and tuples such as ``("x", 0)``, tarry takes strings.

    Examples
    --------
    >>> check_key(("x", 0), "dask_key_name")
    Traceback (most recent call last):
    tarry._keys.InvalidKeyError: dask_key_name=('x', 0) cannot name a task: a task key must be \
a str, not tuple (where dask takes a number or a tuple such as ('x', 0), write a str: 'x-0')
    """
    if isinstance(key, str) and key:
        return key
    shown = reprlib.repr(key)  # short, even for a list of a million items
    rule = "a str, not empty" if isinstance(key, str) else (
        f"a str, not {type(key).__name__} (where dask takes a number or a tuple such as "
        "('x', 0), write a str: 'x-0')"
    )  # fmt: skip
    raise InvalidKeyError(f"{option}={shown} cannot name a task: a task key must be {rule}")


def new_key(name: str) -> str:
    """A key no other call in any process has: ``"<name>-<token>"``.

    Examples
    --------
    >>> a, b = new_key("inc"), new_key("inc")
    >>> a.startswith("inc-") and a != b
    True
    """
    return f"{name}-{_prefix}{next(_counter):x}"
