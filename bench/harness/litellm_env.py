"""LiteLLM's proxy in its own venv under the user's cache (never the project's venv).

The venv is made once with the Python running the harness and ``pip install
'litellm[proxy]==LITELLM_VERSION'``; a marker file records a finished install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["LITELLM_VERSION", "default_venv", "ensure_litellm"]

#: The newest release whose dependencies all resolve from the package index these machines
#: reach (1.103 and later require a certifi release the index does not have yet); 1.107.0,
#: the compromised release, is avoided in any case.
LITELLM_VERSION = "1.102.4"


def default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "echelon" / "bench" / "litellm-venv"


def ensure_litellm(path: Path, log: Path) -> Path:
    """The venv's python with LiteLLM's proxy installed (installing it when needed)."""
    python = path / "bin" / "python"
    marker = path / f".echelon-bench-litellm-{LITELLM_VERSION}"
    if marker.exists() and python.exists():
        return python
    path.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(path)], check=True, timeout=300) \
            if base else venv.create(path, with_pip=True)
    sys.stderr.write(f"[bench] installing litellm[proxy]=={LITELLM_VERSION} into {path} "
                     f"(log: {log})\n")
    with log.open("wb") as out:
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"litellm[proxy]=={LITELLM_VERSION}"],
                       check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    marker.write_text(LITELLM_VERSION + "\n")
    return python
