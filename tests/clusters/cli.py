"""Start and stop real clusters through the engines' own command lines, for the tests.

A user who outgrows one machine starts a cluster with ``dask scheduler`` and
``dask worker``, or ``ray start --head``, as separate processes reached over
TCP. These helpers do the same on 127.0.0.1, each cluster in a folder of its
own, and stop everything they started by process group, whatever happened
(use them as context managers). Every process they start carries the
environment variable :data:`TAG` with a value of its own, so
:func:`left_behind` finds a process that escaped its group.

They never run ``ray stop``: it kills every Ray cluster of the machine,
including the test session's own.

Every process gets the tests folder, ``tests/faults`` and this folder on
its path, as the test process has them, so tasks may call
``remote_helpers`` and ``cluster_helpers``.

Examples
--------
>>> with dask_cluster(workers=1) as cluster:  # doctest: +SKIP
...     cluster.address.startswith("tcp://127.0.0.1:")
True
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["TAG", "DaskCluster", "RayCluster", "dask_cluster", "left_behind", "ray_cluster"]

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
# The cluster tests import the fault harness as ``harness`` (under that one
# name mypy knows it); pytest puts tests/faults on the path only once it
# collects that folder, after this one.
if str(TESTS / "faults") not in sys.path:
    sys.path.append(str(TESTS / "faults"))
from harness import tagged  # noqa: E402  (found through the path set just above)

BIN = Path(sys.executable).parent
#: the environment variable that tags every process a cluster starts (children inherit it)
TAG = "TARRY_TEST_CLUSTER"
#: how long a cluster may take to come up before the test fails. Generous: a
#: Ray head on a loaded 2-core machine took 10-20 s; this is how long a broken
#: start is waited for, never a bound on speed
START_TIMEOUT = 180.0
#: how long a dask cluster's processes get to exit after SIGTERM before SIGKILL
#: (a worker closes its connections first; they took under 1 s here)
STOP_GRACE = 20.0
#: how often a starting cluster is looked at
POLL = 0.1


class ClusterStartError(RuntimeError):
    """A cluster did not come up; the message holds the end of its logs."""


@dataclass
class _Processes:
    """The processes one cluster started, each the leader of its own process group."""

    folder: Path
    #: seconds between SIGTERM and SIGKILL when stopping
    grace: float = STOP_GRACE
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session; its output goes to ``<folder>/<name>.log``.

        ``env`` is added to this process's environment.
        """
        paths = [str(TESTS), str(TESTS / "faults"), str(HERE), os.environ.get("PYTHONPATH")]
        path = os.pathsep.join(filter(None, paths))
        env = {**os.environ, **(env or {}), TAG: self.tag, "PYTHONPATH": path}
        # A file, not a pipe: nobody reads it while the cluster runs, and a
        # full pipe would block the process writing its log.
        with open(self.folder / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.folder,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc

    def logs(self) -> str:
        """The end of every log, for an error message."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )

    def check_running(self) -> None:
        """Raise :class:`ClusterStartError` if a started process has exited already."""
        for proc in self.started:
            if proc.poll() is not None:
                command = " ".join(proc.args) if isinstance(proc.args, list) else str(proc.args)
                raise ClusterStartError(
                    f"{command[:200]} exited with {proc.returncode}\n{self.logs()}"
                )

    def stop(self) -> None:
        """SIGTERM every group, SIGKILL what is left after ``grace`` seconds; then reap."""
        for proc in self.started:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and (left_behind(self.tag) or _running(self.started)):
            time.sleep(POLL)
        for proc in self.started:
            _signal_group(proc.pid, signal.SIGKILL)
        for stray in left_behind(self.tag):  # one that left its group
            stray.kill()
        for proc in self.started:
            proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):  # the whole group has gone already
        os.killpg(pgid, signum)


def _running(procs: list[subprocess.Popen[bytes]]) -> bool:
    return any(proc.poll() is None for proc in procs)


def left_behind(tag: str) -> list[psutil.Process]:
    """The live processes that carry ``TAG=tag`` (zombies not counted)."""
    return tagged(tag, TAG)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on ``port`` of this machine."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _wait_until(ready: Callable[[], bool], procs: _Processes, what: str) -> None:
    """Poll ``ready()`` until true; fail with the logs if a process died or time ran out."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        procs.check_running()
        if time.monotonic() > deadline:
            raise ClusterStartError(f"{what} within {START_TIMEOUT} s\n{procs.logs()}")
        time.sleep(POLL)


# -- dask -----------------------------------------------------------------------------


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and its ``dask worker`` processes (each with its nanny)."""

    #: the scheduler's address, ``tcp://127.0.0.1:<port>``
    address: str
    #: the process of ``dask scheduler``
    scheduler: subprocess.Popen[bytes]
    #: the processes of ``dask worker``: each a nanny, which runs its worker in a child
    workers: list[subprocess.Popen[bytes]]
    #: the value of :data:`TAG` every process of this cluster carries
    tag: str
    folder: Path


@contextmanager
def dask_cluster(workers: int = 2, *scheduler_args: str) -> Iterator[DaskCluster]:
    """A dask cluster on 127.0.0.1: ``dask scheduler`` plus ``workers`` one-thread workers.

    Yields once every worker has registered with the scheduler; stops them
    all on the way out, even when the body raised. ``scheduler_args`` go to
    ``dask scheduler`` as they are.
    """
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tarry-dask-")))
        procs = _Processes(folder)
        stack.callback(procs.stop)
        file = folder / "scheduler.json"
        scheduler = procs.start(
            "scheduler",
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(file), *scheduler_args],
        )  # fmt: skip
        _wait_until(file.exists, procs, "the dask scheduler did not write its file")
        for i in range(workers):
            procs.start(
                f"worker-{i}",
                [str(BIN / "dask"), "worker", "--scheduler-file", str(file),
                 "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                 "--name", f"worker-{i}", "--local-directory", str(folder / f"worker-{i}")],
            )  # fmt: skip
        address = json.loads(file.read_text())["address"]
        _wait_for_workers(address, workers, procs)
        yield DaskCluster(address, scheduler, procs.started[1:], procs.tag, folder)


def _wait_for_workers(address: str, workers: int, procs: _Processes) -> None:
    """Return once ``workers`` workers have joined the scheduler at ``address``."""
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        try:
            client.wait_for_workers(workers, timeout=START_TIMEOUT)
        except TimeoutError:
            procs.check_running()
            raise ClusterStartError(
                f"{workers} dask workers did not join within {START_TIMEOUT} s\n{procs.logs()}"
            ) from None


# -- ray ------------------------------------------------------------------------------

#: what ``ray start`` prints once the head's daemons are up (Ray 2.x)
_RAY_STARTED = "Ray runtime started."


@dataclass
class RayCluster:
    """A Ray head started with ``ray start --head --block``."""

    #: the GCS address to connect a driver to, ``127.0.0.1:<port>``
    address: str
    #: the address of its Ray client server, ``ray://127.0.0.1:<port>``
    client_address: str
    #: the environment a driver needs to connect: token authentication, and
    #: the file of this cluster's token
    env: dict[str, str]
    #: the process of ``ray start``; its group holds every daemon it started
    head: subprocess.Popen[bytes]
    #: the value of :data:`TAG` every process of this cluster carries
    tag: str
    folder: Path


@contextmanager
def ray_cluster(num_cpus: int = 2, *head_args: str) -> Iterator[RayCluster]:
    """A Ray head on 127.0.0.1 with ``num_cpus`` CPUs, its own temp dir and free ports.

    ``head_args`` go to ``ray start`` as they are. ``--block`` keeps ``ray
    start`` in the foreground, so stopping its process group stops the
    head's daemons too (never ``ray stop``: it stops every cluster of the
    machine).
    """
    with ExitStack() as stack:
        # Short: Ray puts unix sockets under it (a socket path has at most 107 bytes).
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tr-", dir="/tmp")))
        # SIGKILL at once: on SIGTERM the head took 60 s to stop its daemons
        # here, and nothing it leaves outlives the temp dir removed after it.
        procs = _Processes(folder, grace=0.0)
        stack.callback(procs.stop)
        port, client_port = free_port(), free_port()
        # Token authentication (Ray's default here, 2.60) with a token of its own, not the
        # user's ~/.ray/auth_token; a driver needs the same two variables.
        token = folder / "auth_token"
        token.write_text(uuid.uuid4().hex)
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        head = procs.start(
            "head",
            [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
             f"--temp-dir={folder / 'ray'}", f"--num-cpus={num_cpus}",
             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             f"--ray-client-server-port={client_port}", "--disable-usage-stats", *head_args],
            env,
        )  # fmt: skip
        address = f"127.0.0.1:{port}"
        log = folder / "head.log"
        _wait_until(lambda: _RAY_STARTED in log.read_text(), procs, "the Ray head did not start")
        # the client server starts after the head says so: a driver connecting
        # by ray:// at once found nothing listening there (once in a CI run)
        _wait_until(lambda: _accepts(client_port), procs, "Ray's client server did not listen")
        client_address = f"ray://127.0.0.1:{client_port}"
        yield RayCluster(address, client_address, env, head, procs.tag, folder)
