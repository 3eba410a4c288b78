"""Optional dependencies: which feature needs which package, and the pip command that adds it.

A plain ``pip install tarry`` runs graphs on every local scheduler (sync,
threads, processes) and shows progress bars. Everything else comes with an
extra (see ``[project.optional-dependencies]`` in ``pyproject.toml`` and the
README's table). Each :class:`Feature` below names what a user asked for,
the packages it needs and the extra that installs them; a feature whose
packages are missing raises :class:`MissingExtraError` before it does any
work, with the command that fixes it::

    Profile.to_dataframe() needs pandas, which is not installed: pip install 'tarry[diagnostics]'

:meth:`Feature.check` only looks for the packages (``importlib.util.find_spec``
imports nothing), so checking up front keeps ``import tarry`` and a compute
light; the caller imports the package afterwards, where it uses it. An
installed package that fails to import (one of *its* dependencies is
missing, say) raises its own error then: that is not something an extra
fixes.

Examples
--------
>>> DATAFRAME.extra, DATAFRAME.modules
('diagnostics', ('pandas',))
>>> missing = Feature("the frobnicator", "frob", ("tarry_no_such_module",))
>>> missing.check()
Traceback (most recent call last):
...
tarry._extras.MissingExtraError: the frobnicator needs tarry_no_such_module, which is not \
installed: pip install 'tarry[frob]'
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CACHE_URL",
    "DASK",
    "DATAFRAME",
    "PARQUET",
    "PROCESSES",
    "PROGRESS",
    "RAY",
    "SCHEDULERS",
    "TIMELINE",
    "TUTORIAL",
    "Feature",
    "MissingExtraError",
]


class MissingExtraError(ModuleNotFoundError):
    """A feature's optional package is missing; the message gives the pip command.

    A ``ModuleNotFoundError`` (so an ``ImportError``), as the raw error was,
    so code that caught that one still catches this one.
    """


@dataclass(frozen=True)
class Feature:
    """Something a user asks for that needs packages beyond the standard library.

    Attributes
    ----------
    name
        What the user asked for, as they wrote it: ``"scheduler='ray'"``.
    extra
        The extra of ``pip install 'tarry[extra]'`` that installs the
        packages, or None for tarry's own required dependencies (then the
        message asks to reinstall tarry).
    modules
        Top-level modules the feature imports.
    """

    name: str
    extra: str | None
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        """The modules of this feature that are not installed (imports nothing).

        Examples
        --------
        >>> Feature("x", None, ("json", "tarry_no_such_module")).missing()
        ['tarry_no_such_module']
        """
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    def check(self) -> None:
        """Raise :class:`MissingExtraError` naming the pip command if a module is missing."""
        missing = self.missing()
        if missing:
            raise MissingExtraError(self._message(missing), name=missing[0])

    def _message(self, missing: list[str]) -> str:
        one = len(missing) == 1
        names = ", ".join(missing)
        if self.extra is None:
            what = "it is a required dependency" if one else "they are required dependencies"
            return (
                f"{self.name} needs {names}, {'which is' if one else 'which are'} not installed; "
                f"{what} of tarry, so this installation of tarry is incomplete: "
                f"pip install --force-reinstall tarry"
            )
        return (
            f"{self.name} needs {names}, {'which is' if one else 'which are'} not installed: "
            f"pip install 'tarry[{self.extra}]'"
        )


#: the processes scheduler: a loky pool, cloudpickle for functions, tblib
#: for tracebacks (required dependencies: missing only after --no-deps)
PROCESSES: Final = Feature("scheduler='processes'", None, ("loky", "cloudpickle", "tblib"))
#: compute(progress=True) and tarry.progress() (a required dependency)
PROGRESS: Final = Feature("progress=True", None, ("tqdm",))
RAY: Final = Feature("scheduler='ray'", "ray", ("ray", "cloudpickle"))
DASK: Final = Feature("scheduler='dask'", "dask", ("distributed", "cloudpickle"))
DATAFRAME: Final = Feature("Profile.to_dataframe()", "diagnostics", ("pandas",))
TIMELINE: Final = Feature("Profile.timeline()", "diagnostics", ("matplotlib",))
TUTORIAL: Final = Feature(
    "tarry tutorial", "tutorial", ("numpy", "pandas", "matplotlib", "platformdirs")
)
#: tarry.cache("s3://...") and any other URL (fsspec opens it)
CACHE_URL: Final = Feature("a cache at a URL", "cache", ("fsspec",))
#: f.options(cache_format="parquet") (pandas objects are Parquet when it is installed)
PARQUET: Final = Feature("cache_format='parquet'", "cache", ("pyarrow",))
#: scheduler name -> what it needs; the others need nothing beyond Python
SCHEDULERS: Final = {"processes": PROCESSES, "ray": RAY, "dask": DASK}
