"""Results kept across runs: a persistent cache keyed on the call graph.

* :mod:`.keys` derives a task's cache key from its function's code (without
  docstrings and comments), the code of the functions it calls from the
  user's own modules, the versions of the packages the others come from,
  its defaults and closure, its literal arguments and its inputs' keys (a
  Merkle chain);
* :mod:`.store` keeps one entry per key in a directory or at an fsspec URL,
  each written atomically with a checksum;
* :mod:`.lookup` looks every needed key up before a run starts: a hit
  becomes a literal, a miss runs and writes its result as soon as it has
  it; :mod:`.explain` says the same per task, without running anything;
* :mod:`.tally` keeps what a compute's cache did (hits, misses), for
  profiles and :func:`tarry._tools.last_run.last_run`;
* :mod:`.switch` reads ``cache=`` from a compute, :func:`tarry.cache` and
  :func:`tarry.config.set`.
"""
