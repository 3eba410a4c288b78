"""Pickling for other processes: cloudpickle with file names kept, registrations honoured."""

from __future__ import annotations

import pickle

from tarry._schedule.pickling import dumps


class _Registered:
    def __init__(self, note: str) -> None:
        self.note = note


def _rebuild_registered(note: str) -> _Registered:
    return _Registered(note + " (via copyreg)")


def test_copyreg_registrations_made_after_first_use_count() -> None:
    import copyreg

    assert pickle.loads(dumps(_Registered("a"))).note == "a"  # the pickler exists now
    copyreg.pickle(_Registered, lambda obj: (_rebuild_registered, (obj.note,)))
    try:
        assert pickle.loads(dumps(_Registered("b"))).note == "b (via copyreg)"
    finally:
        del copyreg.dispatch_table[_Registered]
    assert pickle.loads(dumps(_Registered("c"))).note == "c"
