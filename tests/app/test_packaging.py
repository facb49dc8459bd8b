"""A wheel carries the built-in profiles and example scenarios: installed in a fresh venv outside the
repository, ``fleetsim profiles`` and ``fleetsim run tiny`` work."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from conftest import ROOT


def test_every_code_package_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fleetsim").rglob("__init__.py")}
    assert on_disk <= listed, f"add to pyproject.toml [tool.setuptools] packages: {sorted(on_disk - listed)}"


def _sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_a_wheel_installed_in_a_fresh_venv_outside_the_repository_lists_profiles_and_runs_tiny(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    _sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        ROOT,
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        wheels,
        cwd=tmp_path,
    )
    venv = tmp_path / "venv"
    _sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("fleetsim-*.whl")
    _sh(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path
    )
    # The dependencies (torch, ...) come from this environment: a path line in a .pth file (whose own .pth
    # files, such as this checkout's editable install, are not processed).
    site = _sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _sh(python, "-c", "import fleetsim, sys; print(fleetsim.__file__)", cwd=work, env=env)
    assert where.startswith(site), f"fleetsim imported from {where}, not the installed wheel"
    profiles = _sh(venv / "bin" / "fleetsim", "profiles", cwd=work, env=env)
    assert "phone_mid" in profiles and "jetson_agx_orin" in profiles
    _sh(venv / "bin" / "fleetsim", "run", "tiny", "--quiet", "--set", "training.mode=none", cwd=work, env=env)
    (run_dir,) = (work / "runs").iterdir()
    assert (run_dir / "updates.parquet").is_file() and (run_dir / "summary.json").is_file()
