"""tarry and dask together: tarry values inside dask, dask collections inside tarry.

* :mod:`.collection`: dask's collection protocol (``__dask_graph__``...) as a
  base class of :class:`tarry.Delayed`, so ``dask.compute(x)``,
  ``client.compute(x)`` and ``da.from_delayed(x, ...)`` take tarry values;
* :mod:`.dask_protocol`: the dask graph of a tarry value, which that protocol
  hands to dask;
* :mod:`.dask_collections`: a dask collection met in a task's arguments or
  in ``compute()`` becomes tasks of tarry's graph;
* :mod:`.dask_settings`: what a dask user leaves in place (a default
  ``distributed.Client``, ``dask.config.set(scheduler=...)``, an active
  ``dask.diagnostics.ProgressBar``) and what tarry does with it.

``import tarry`` imports :mod:`.collection` and :mod:`.dask_settings`, which
import no dask (the settings are read from ``sys.modules``); the other two
import dask, and are imported only when dask is in use already: dask calls a
``__dask_*__`` method, or an argument is a dask collection.
"""
