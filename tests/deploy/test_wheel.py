"""`python -m build` makes an sdist and a wheel that install and run a job
outside the source tree: with the C extension where a compiler is, without
it where none is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS = ("stockade/sandbox/_clonespawn", "stockade/runner/_maskscan")
#: The spool shim's executable (not an extension module; see setup.py).
SHIM = "stockade/sandbox/_spoolshim"


def _env() -> dict[str, str]:
    """The environment without this checkout on the path: the installed copy must serve."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=env or _env(), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from a copy of the sources (the build
    writes into its source tree: never into this checkout)."""
    work = tmp_path_factory.mktemp("build")
    tree = work / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "_spoolshim", "*.egg-info"))  # fmt: skip
    _run(sys.executable, "-m", "build", "--outdir", work / "dist", tree, cwd=work)
    return work / "dist"


def _install(wheel: Path, where: Path) -> Path:
    """A fresh venv with only ``wheel`` installed in it (``--no-deps``); its
    dependencies come from this interpreter's site-packages, added after the
    venv's own (a ``.pth`` line), so no resolution or download happens."""
    _run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    python = where / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=where).strip())  # fmt: skip
    (purelib / "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", wheel, cwd=where)  # fmt: skip
    return where / "bin"


def _runs_a_job(bin_dir: Path, cwd: Path) -> None:
    out = _run(bin_dir / "stockade", "exec", "--", "echo", "hello from the wheel", cwd=cwd)
    assert out == "hello from the wheel\n"
    where = _run(bin_dir / "python", "-c", "import stockade; print(stockade.__file__)", cwd=cwd)
    assert where.startswith(str(bin_dir.parent)), where  # the installed copy, not this checkout


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")
def test_the_wheel_installs_and_runs_a_job_with_the_extension(built: Path, tmp_path: Path) -> None:
    [sdist] = built.glob("stockade-*.tar.gz")
    [wheel] = built.glob("stockade-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for extension in EXTENSIONS:
        assert any(name.startswith(extension) and name.endswith(".so") for name in names)
    assert "stockade/py.typed" in names and "stockade/server/static/index.html" in names
    assert SHIM in names
    bin_dir = _install(wheel, tmp_path / "venv")
    _runs_a_job(bin_dir, tmp_path)
    imports = "import stockade.sandbox._clonespawn, stockade.runner._maskscan"
    _run(bin_dir / "python", "-c", imports, cwd=tmp_path)
    native = "from stockade.sandbox import spoolshim; print(spoolshim.launcher('P')[0])"
    shim = _run(bin_dir / "python", "-c", native, cwd=tmp_path).strip()
    assert shim.endswith(SHIM) and os.access(shim, os.X_OK), shim  # installed, executable
    assert sdist.stat().st_size > 0


def test_without_a_compiler_the_sdist_builds_the_pure_package(built: Path, tmp_path: Path) -> None:
    [sdist] = built.glob("stockade-*.tar.gz")
    env = dict(_env(), CC="false")  # a compiler that always fails: as if there were none
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         tmp_path / "pure", sdist, cwd=tmp_path, env=env)  # fmt: skip
    [wheel] = (tmp_path / "pure").glob("stockade-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.endswith(".so")] and SHIM not in names
    _runs_a_job(_install(wheel, tmp_path / "venv"), tmp_path)
