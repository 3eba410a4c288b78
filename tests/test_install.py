"""``pip install tarry`` as a newcomer does it: the wheel and sdist built, installed in fresh venvs.

The wheel and the sdist are built from a copy of this tree (with ``build
--no-isolation``: the dev extra brings setuptools and build), then the wheel
is installed into a fresh virtualenv twice: bare, where pip brings only the
five small required dependencies, and with the ``tutorial`` extra. In each,
a script does what the README advertises and the features whose extra is
missing must say which extra to install. pip fetches the dependencies from
the package index (its cache makes later runs quick), so these tests are
``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: folders of the working tree that are not the project's sources
NOT_SOURCES = {
    ".venv", ".git", "build", "dist", "data", "tarry-output", ".tmp",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
}  # fmt: skip

BARE_SCRIPT = """
import json, tarry
out = {}
out["processes"] = tarry.compute(tarry.delayed(lambda x: x + 1)(1), scheduler="processes")[0]
out["progress"] = tarry.delayed(abs)(-1).compute(progress=True)
with tarry.profile() as prof:
    tarry.delayed(abs)(-1).compute()
for what, use in [
    ("ray", lambda: tarry.delayed(abs)(-1).compute(scheduler="ray")),
    ("dask", lambda: tarry.delayed(abs)(-1).compute(scheduler="dask")),
    ("to_dataframe", prof.to_dataframe),
    ("timeline", prof.timeline),
]:
    try:
        use()
        out[what] = "ran"
    except ImportError as error:
        out[what] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


def _ignored(folder: str, names: list[str]) -> set[str]:
    top = NOT_SOURCES if Path(folder) == ROOT else set()
    return {
        name
        for name in names
        if name in top
        or name == "__pycache__"
        or name.endswith(".egg-info")
        or (name == "_build" and Path(folder).name == "docs")
    }


def _run(
    command: list[str], extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` without this process's PYTHONPATH, which could reach the source tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | (extra_env or {})
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=900, check=False
    )


def _ok(command: list[str], extra_env: dict[str, str] | None = None) -> str:
    done = _run(command, extra_env)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel built from this tree: ``(sdist, wheel)``."""
    pytest.importorskip("build")
    import shutil

    work = tmp_path_factory.mktemp("dist")
    tree = work / "tarry"
    shutil.copytree(ROOT, tree, ignore=_ignored, symlinks=True)
    _ok([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "out"),
         str(tree)])  # fmt: skip
    (sdist,) = (work / "out").glob("*.tar.gz")
    (wheel,) = (work / "out").glob("*.whl")
    return sdist, wheel


def _venv(where: Path, requirement: str) -> Path:
    """A fresh virtualenv in ``where`` with ``requirement`` pip-installed; its bin folder."""
    _ok([sys.executable, "-m", "venv", str(where)])
    _ok([str(where / "bin" / "python"), "-m", "pip", "install", "-q", requirement])
    return where / "bin"


@pytest.fixture(scope="module")
def bare(dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install tarry`` (the wheel): the bin folder of its virtualenv."""
    return _venv(tmp_path_factory.mktemp("bare") / "venv", str(dists[1]))


def test_a_bare_install_brings_only_the_five_required_packages(bare: Path) -> None:
    listed = json.loads(_ok([str(bare / "python"), "-m", "pip", "list", "--format", "json"]))
    names = {p["name"].lower() for p in listed} - {"pip", "setuptools", "wheel"}
    assert names == {"tarry", "loky", "cloudpickle", "tblib", "tqdm", "psutil"}


def test_a_bare_install_runs_processes_and_progress_and_names_the_missing_extras(
    bare: Path,
) -> None:
    out = json.loads(_ok([str(bare / "python"), "-c", BARE_SCRIPT]).splitlines()[-1])
    assert out["processes"] == 2  # a lambda, through cloudpickle and loky
    assert out["progress"] == 1
    assert out["to_dataframe"] == (
        "MissingExtraError: Profile.to_dataframe() needs pandas, which is not installed: "
        "pip install 'tarry[diagnostics]'"
    )
    assert out["timeline"] == (
        "MissingExtraError: Profile.timeline() needs matplotlib, which is not installed: "
        "pip install 'tarry[diagnostics]'"
    )


def test_a_bare_install_names_the_extra_of_ray_and_dask(bare: Path) -> None:
    out = json.loads(_ok([str(bare / "python"), "-c", BARE_SCRIPT]).splitlines()[-1])
    assert out["ray"] == (
        "MissingExtraError: scheduler='ray' needs ray, which is not installed: "
        "pip install 'tarry[ray]'"
    )
    assert out["dask"] == (
        "MissingExtraError: scheduler='dask' needs distributed, which is not installed: "
        "pip install 'tarry[dask]'"
    )


def test_the_command_line_of_a_bare_install(bare: Path, tmp_path: Path) -> None:
    tarry = str(bare / "tarry")
    assert _ok([tarry, "--version"]) == "tarry 0.1.0\n"
    done = _run([tarry, "tutorial", "--data", str(tmp_path / "data")])
    assert done.returncode == 1
    assert done.stderr == (
        "tarry: tarry tutorial needs numpy, pandas, matplotlib, platformdirs, which are not "
        "installed: pip install 'tarry[tutorial]'\n"
    )
    assert not (tmp_path / "data").exists()
    _ok([tarry, "tutorial", "--notebook", str(tmp_path / "tutorial.ipynb")])
    shipped = ROOT / "src" / "tarry" / "_tutorial" / "tutorial.ipynb"
    assert (tmp_path / "tutorial.ipynb").read_bytes() == shipped.read_bytes()


def test_tutorial_extra_is_enough_for_tarry_tutorial(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_folder = _venv(tmp_path / "venv", f"tarry[tutorial] @ {dists[1].as_uri()}")
    done = _run([str(bin_folder / "tarry"), "tutorial", "--sleep", "0", "--small",
                 "--output", str(tmp_path / "pictures")],
                extra_env={"XDG_CACHE_HOME": str(tmp_path / "cache")})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "s |" in line]
    assert len(rows) == 7  # 4 exercises, groupby on processes, groupby twice with a cache
    assert all(row.endswith("| yes |") for row in rows)
    assert (tmp_path / "pictures" / "groupby-timeline.png").is_file()
    assert (tmp_path / "cache" / "tarry" / "nycflights-small" / "1999.csv").is_file()


def test_wheel_metadata_and_license(dists: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(dists[1]) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(wheel.read("tarry-0.1.0.dist-info/METADATA").decode())
    assert {"tarry/py.typed", "tarry/_tutorial/tutorial.ipynb"} <= names
    assert "tarry-0.1.0.dist-info/licenses/LICENSE" in names
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata["Author"] == "tarry developers"
    assert metadata.get_all("Project-URL")
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    requires = metadata.get_all("Requires-Dist") or []
    required = [r for r in requires if "extra ==" not in r]
    required_names = sorted(r.split(">")[0] for r in required)
    assert required_names == ["cloudpickle", "loky", "psutil", "tblib", "tqdm"]
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"diagnostics", "viz", "ray", "dask", "tutorial", "all", "dev"} <= extras


def test_sdist_ships_the_complete_tests(dists: tuple[Path, Path]) -> None:
    with tarfile.open(dists[0]) as sdist:
        shipped = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    tests = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert tests - shipped == set()
    assert {"tests/conftest.py", "tests/remote_helpers.py", "tests/golden/tutorial_z.dot"} <= tests
    assert {"LICENSE", "README.md", "dev", "docs/benchmarks.md", "examples/tutorial.ipynb"} <= (
        shipped
    )
