"""The ``"processes"`` backend: a warm pool of worker processes, for pure-Python CPU work.

::

    caller (driver.py)                         worker process (worker.py)
    ------------------                         --------------------------
    plan_units(run)      (units.py)
    ready units -> batch --- slim tasks ----->  run_batch: run each unit,
                          + resident inputs      drop inputs after last use
    finish / keep resident <-- outputs ------   outputs: bytes or a /dev/shm
                              + timings          file (transfer.py)
    broken pool -> WorkerDiedError <- markers.py (task key per worker)
    pool.py: one loky executor, kept warm, leased by every run


Threads share one GIL; worker processes do not. The pool is a loky
executor shared by every compute of the process, from any thread: started on
first use, kept between computes (idle workers retire after five minutes),
replaced after a worker dies or when a compute needs more workers, without
cutting off the computes that still use the old one (see
:mod:`~tarry._schedule.processes.pool`). Functions and values go through
cloudpickle, so lambdas, closures and functions defined in ``__main__`` (a
script without a ``__main__`` guard, a notebook) work, and the parent's
environment variables are left alone.

What travels, and how often:

* **Units.** Before the run, tasks are grouped into units, each run by one
  worker in one go: a linear chain is one unit, and so is a task together
  with the exclusive branch below it (inputs no other task uses), as long as
  merging several branches leaves enough units to keep every worker busy.
  Results inside a unit never leave the worker; only a unit's last task
  sends its result back.
* **Batches.** Several ready units go to a worker per round trip when their
  tasks are known (from earlier runs of functions of the same name) to be
  short; a unit of unknown or long duration goes alone, so long tasks spread
  over the workers.
* **Resident results.** A result sent back for other tasks stays pickled in
  the parent and is forwarded as it is; only the caller's results are
  unpickled. A large one travels as a file in shared memory, not through the
  pipe (see :mod:`~tarry._schedule.transfer`): written once by the worker
  that made it, mapped by the one that reads it, never copied into the
  parent.

Failures: a task's exception comes back with its type, message and
traceback, and a note naming the task; a task that cannot be pickled fails
before anything runs; a worker that dies gives a :class:`WorkerDiedError`
naming the task it was running (each worker notes its current task key in a
small file, read only after a death); the other computes that lost work
with that pool run it again in a new one. Ctrl-C cancels queued work and
stops the workers that run this compute's tasks (the next compute starts
new ones), once no other compute has work in them.

Nothing is left behind: the files of values cut short by a stopped worker,
and the notes of dead workers, are removed when their pool stops. When the
parent dies without cleaning up (SIGKILL, ``os._exit``), its workers exit
too, even in the middle of a task, and loky's resource tracker removes its
folder in shared memory. A forked child starts a pool of its own and leaves
its parent's files alone.

A compute nested in a task runs with the ``"sync"`` scheduler inside that
worker when it asks for ``"processes"``: every worker already has a CPU of
its own, and a pool inside each worker would only oversubscribe them. So
does a compute in a daemonic process (the worker of a ``multiprocessing``
pool may not start processes), and one that a signal handler starts while
its thread is inside the pool's code (it would wait for a lock its own
thread holds).

Examples
--------
>>> from tarry import delayed
>>> total = delayed(sum)([delayed(pow)(i, 2) for i in range(4)])
>>> total.compute(scheduler="processes", num_workers=1)
14
"""

from __future__ import annotations

from tarry._schedule.processes.driver import run_processes
from tarry._schedule.processes.pool import shutdown_pool

__all__ = ["run_processes", "shutdown_pool"]
