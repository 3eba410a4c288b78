"""Noticing that the Ray cluster a compute runs on has gone: its head killed or stopped.

Ray notices late, and by ending the process. A driver whose head (its GCS,
the cluster's directory) stays unreachable for 60 s
(``RAY_gcs_rpc_server_reconnect_timeout_s``) is killed with no Python error,
and ``ray.init`` to an address where nothing listens waits for minutes. So
tarry looks for itself, with a plain TCP connection to the head's port:
before it connects, and every second while a compute waits for its tasks.
A head that refuses connections for :data:`LOST_AFTER` seconds makes the
compute raise :class:`ClusterLostError`, a :class:`ConnectionError` naming
the address.

Examples
--------
>>> head_of("127.0.0.1:6379"), head_of("ray://head.example:10001"), head_of("auto")
(('127.0.0.1', 6379), ('head.example', 10001), None)
"""

from __future__ import annotations

import socket
import time
from typing import Any

__all__ = ["LOST_AFTER", "ClusterLostError", "Lifeline", "check_reachable", "head_of"]

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
            then = (
                "tarry disconnected from it: the next Ray compute connects again"
                if self.ours
                else "Ray ends this process once its head has been gone for 60 s "
                "(RAY_gcs_rpc_server_reconnect_timeout_s), unless ray.shutdown() is called"
            )
            raise ClusterLostError(
                f"lost the Ray cluster at {self.name}: its head has refused connections for "
                f"{now - self.silent_since:.0f} s (killed, or stopped by `ray stop`); the "
                f"tasks of this compute are lost; {then}"
            )
        self.next_look = time.monotonic() + _LOOK_EVERY


def _gcs_address(ray: Any) -> str | None:
    try:
        address = ray.get_runtime_context().gcs_address
    except Exception:  # a Ray client connection (ray://) may not say
        return None
    return address if isinstance(address, str) else None
