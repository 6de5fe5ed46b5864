"""What an image's Dockerfile sets in its environment, as scripts/build-images reads it.

``image_env("sidecar/Dockerfile")`` is the final stage's ``ENV`` (with the base image's), so a
process started outside the image (the footprint bench) can run as the image runs it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["image_env", "load_build_images"]

REPO = Path(__file__).resolve().parent.parent


def load_build_images() -> ModuleType:
    """scripts/build-images as a module (it is a script: no ``.py``, not on the path)."""
    module = sys.modules.get("build_images")
    if module is not None:
        return module
    path = REPO / "scripts" / "build-images"
    loader = importlib.machinery.SourceFileLoader("build_images", str(path))
    spec = importlib.util.spec_from_loader("build_images", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_images"] = module
    loader.exec_module(module)
    return module


def image_env(dockerfile: str = "sidecar/Dockerfile") -> dict[str, str]:
    """The environment the Dockerfile's final stage gives its containers."""
    bi = load_build_images()
    config = bi.final_config(bi.parse_dockerfile(REPO / dockerfile))
    return dict(entry.split("=", 1) for entry in config.env)
