"""tarry and dask together: tarry values inside dask, dask collections inside tarry.

* :mod:`.dask_protocol`: dask's collection protocol for :class:`tarry.Delayed`
  (``dask.compute(x)``, ``client.compute(x)``, ``da.from_delayed(x, ...)``);
* :mod:`.dask_collections`: a dask collection met in a task's arguments or
  in ``compute()`` becomes tasks of tarry's graph;
* :mod:`.dask_settings`: what a dask user leaves in place (a default
  ``distributed.Client``, ``dask.config.set(scheduler=...)``, an active
  ``dask.diagnostics.ProgressBar``) and what tarry does with it.

Every module here is imported only when dask is in use already (dask calls
a ``__dask_*__`` method, an argument is a dask collection, or the user
imported dask), so ``import tarry`` never imports dask.
"""
