"""Runs the calling script inside a private venv holding pinned PyPI packages (shared by the scripts)."""

import os
import subprocess
import sys


def reexec_in_venv(name, venv, packages, ready):
    """Returns when `ready()` is true in this interpreter; otherwise creates `venv` if needed,
    pip-installs `packages` into it and re-executes the current script there (never returns).
    Exits with one clear message when PyPI cannot provide the packages."""
    if ready():
        return
    marker = "FRS_PINNED_VENV"
    if os.environ.get(marker) == venv:
        sys.exit(f"{name}: {venv} lacks {' '.join(packages)} after installing them")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        print(f"{name}: creating {venv}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    try:
        subprocess.check_call(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + packages, stdout=sys.stderr
        )
    except subprocess.CalledProcessError:
        sys.exit(f"{name}: could not install {' '.join(packages)} from PyPI")
    os.execve(python, [python] + sys.argv, dict(os.environ, **{marker: venv}))
