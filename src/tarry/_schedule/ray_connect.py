"""Connecting to Ray, and noticing that the cluster a compute runs on has gone.

:func:`connect` connects the process once: to the configured address, or
to a local cluster it starts (its own, never one ``ray start`` noted in
Ray's temp dir, with Ray's token authentication).

Ray notices a lost head late, and by ending the process. A driver whose
head (its GCS, the cluster's directory) stays unreachable for 60 s
(``RAY_gcs_rpc_server_reconnect_timeout_s``) is killed with no Python error,
and ``ray.init`` to an address where nothing listens waits for minutes. So
tarry looks for itself, with a plain TCP connection to the head's port:
before it connects, and every second while a compute waits for its tasks.
A head that refuses connections for :data:`LOST_AFTER` seconds, or a
``ConnectionError`` from Ray during a compute, makes the compute raise
:class:`ClusterLostError`, a :class:`ConnectionError` naming the address. A
connection tarry made itself is then shut down, so that Ray does not end
the process and the next compute connects again; on a ``ray://``
connection tarry makes, Ray's client gives up after :data:`LOST_AFTER`
seconds too (``RAY_CLIENT_RECONNECT_GRACE_PERIOD``, 30 s by default), unless
the user set that variable.

Examples
--------
>>> head_of("127.0.0.1:6379"), head_of("ray://head.example:10001"), head_of("auto")
(('127.0.0.1', 6379), ('head.example', 10001), None)
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.cpus import usable_cpus

__all__ = [
    "LOST_AFTER",
    "ClusterLostError",
    "Lifeline",
    "connect",
    "disconnect",
    "head_of",
    "lifeline_for",
]

#: seconds the head may refuse connections before a compute gives up on the
#: cluster: long enough for a slow answer on a loaded machine, short beside
#: Ray's own 60 s (after which it kills the process)
LOST_AFTER = 10.0
#: seconds between looks at the head while no task finishes
_LOOK_EVERY = 1.0
#: how long one look waits for the head to accept the connection
_CONNECT_TIMEOUT = 1.0


class ClusterLostError(ConnectionError):
    """The head of the Ray cluster a compute ran on stopped answering; its tasks are lost."""


def head_of(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an address ``ray.init`` takes, or None if it names none ("auto")."""
    host, colon, port = address.removeprefix("ray://").partition("/")[0].rpartition(":")
    if not colon or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _answers(head: tuple[str, int]) -> bool:
    try:
        socket.create_connection(head, timeout=_CONNECT_TIMEOUT).close()
    except OSError:
        return False
    return True


def check_reachable(address: str) -> None:
    """Raise ConnectionError at once if nothing accepts connections at ``address``.

    Called before ``ray.init``, which would wait for minutes.
    """
    head = head_of(address)
    if head is not None and not _answers(head):
        raise ConnectionError(
            f"no Ray cluster answers at {address}: nothing accepts connections there. "
            "Start one (`ray start --head`), or set tarry.config ray_address or RAY_ADDRESS "
            "to the address it printed"
        )


class Lifeline:
    """Looks at the head of the cluster ``ray`` is connected to, during one compute.

    ``address``: the address tarry connected to, looked at as it is; None
    (or "auto") when tarry started the cluster or the user called
    ``ray.init``: then the GCS address Ray reports is looked at. ``ours``:
    tarry called ``ray.init``, and disconnects when the head is lost.
    """

    def __init__(self, ray: Any, address: str | None, ours: bool) -> None:
        self.name = address
        self.head = None if address is None else head_of(address)
        self.ours = ours
        if self.head is None:
            gcs = _gcs_address(ray)
            if gcs is not None:
                self.head = head_of(gcs)
                self.name = gcs if address is None else f"{address} (GCS {gcs})"
        self.next_look = time.monotonic() + _LOOK_EVERY
        self.silent_since: float | None = None

    def check(self) -> None:
        """Look at the head if a second has passed; raise if it has refused for too long."""
        now = time.monotonic()
        if self.head is None or now < self.next_look:
            return
        if _answers(self.head):
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = now
        elif now - self.silent_since >= LOST_AFTER:
            raise self.lost(f"its head has refused connections for {now - self.silent_since:.0f} s")
        self.next_look = time.monotonic() + _LOOK_EVERY

    def lost(self, why: str) -> ClusterLostError:
        """The error a compute raises when the cluster is gone, ``why`` saying how it showed."""
        then = (
            "tarry disconnected from it: the next Ray compute connects again"
            if self.ours
            else "Ray ends this process once its head has been gone for 60 s "
            "(RAY_gcs_rpc_server_reconnect_timeout_s), unless ray.shutdown() is called"
        )
        return ClusterLostError(
            f"lost the Ray cluster at {self.name} ({why}): its head was killed or stopped "
            f"(`ray stop`), and the tasks of this compute are lost; {then}"
        )


def _gcs_address(ray: Any) -> str | None:
    try:
        address = ray.get_runtime_context().gcs_address
    except Exception:  # a Ray client connection (ray://) may not say
        return None
    return address if isinstance(address, str) else None


_lock = threading.Lock()
#: (Ray's job id, address) of the connection tarry's own ray.init made (address
#: None: the local cluster it started); None before, or if the user's is in use
_ours: tuple[Any, str | None] | None = None


def connect(settings: Settings = DEFAULTS) -> Any:
    """The ``ray`` module, connected: to ``settings.ray_address``, or a local one started once.

    Without an address, ``RAY_ADDRESS`` is used if set; a local cluster gets
    ``settings.num_workers`` CPUs (default: the usable ones). Nothing
    accepting connections at the address is a ConnectionError at once.

    Examples
    --------
    >>> ray = connect()  # doctest: +SKIP
    >>> ray.is_initialized()  # doctest: +SKIP
    True
    """
    global _ours
    import ray

    with _lock:
        if not ray.is_initialized():
            address = settings.ray_address or os.environ.get("RAY_ADDRESS")
            if address:
                check_reachable(address)
                grace = str(int(LOST_AFTER)) if address.startswith("ray://") else None
                with _unless_set("RAY_CLIENT_RECONNECT_GRACE_PERIOD", grace):
                    ray.init(address=address, ignore_reinit_error=True)
            else:
                with _token_auth():
                    ray.init(
                        # not the cluster `ray start` last noted in Ray's temp dir
                        address="local",
                        num_cpus=settings.num_workers or usable_cpus(),
                        include_dashboard=False,
                        ignore_reinit_error=True,
                        _node_ip_address="127.0.0.1",
                    )
            _ours = (_job_id(ray), address)
    return ray


def _job_id(ray: Any) -> Any:
    """This process's Ray job: a new one after each ``ray.init``."""
    try:
        return ray.get_runtime_context().get_job_id()
    except Exception:  # a connection that does not say: taken as tarry's if tarry made one
        return None


def lifeline_for(ray: Any) -> Lifeline:
    """A :class:`Lifeline` for the connection ``ray`` has now (tarry's own, or the user's)."""
    ours = _ours is not None and _ours[0] == _job_id(ray)
    return Lifeline(ray, _ours[1] if _ours is not None and ours else None, ours)


def disconnect(ray: Any) -> None:
    """End tarry's own connection to a cluster that is gone (Ray would end the process)."""
    global _ours
    with _lock:
        _ours = None
        ray.shutdown()


@contextlib.contextmanager
def _unless_set(name: str, value: str | None) -> Iterator[bool]:
    """The environment variable ``name`` is ``value`` in the block, unless the user set it.

    Yields whether it was set here; it is removed again afterwards, so that a
    later ``ray.init`` of the user's is not affected. ``value`` None: nothing.
    """
    if value is None or name in os.environ:
        yield False
        return
    os.environ[name] = value
    try:
        yield True
    finally:
        os.environ.pop(name, None)


@contextlib.contextmanager
def _token_auth() -> Iterator[None]:
    """Start a local cluster with token authentication (unless the user chose a mode).

    The cluster's processes read the mode from the environment when they
    start, and Ray makes a token for a local cluster itself; this driver read
    its settings when ``ray`` was imported, so they are read again (as Ray
    does when it turns the mode on by default): otherwise the driver would
    not send the token, and the cluster's GCS would refuse it.
    """
    with _unless_set("RAY_AUTH_MODE", "token") as chosen_here:
        if chosen_here:
            from ray._raylet import Config  # type: ignore[attr-defined]  # (no stub for it)

            Config.initialize("")
        yield
