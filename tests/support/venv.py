"""A virtualenv with pgfleet pip-installed, as a user of the library has it."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from .program import ROOT


def pgfleet_venv(venv: Path) -> Path:
    """A virtualenv at `venv` that sees the pinned SDKs of the environment running the tests
    (system packages or a virtualenv of its own) but gets pgfleet only from pip; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The SDKs: this interpreter's site-packages, after the new venv's own (where pgfleet goes).
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    sdks = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(own) / "parent-sdks.pth").write_text("".join(f"{path}\n" for path in sdks))
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
                   check=True, capture_output=True)
    return python
