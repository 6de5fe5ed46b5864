"""Find the separate configs inside a path, so each is validated as a whole.

- a *tree root* is a directory with a ``groups/`` or ``polling_pools/`` folder: one config;
- a *manifest directory* holds only Kubernetes manifests: one config;
- any other YAML file is a config of its own (a combined file such as ``_task_groups.yaml``).

A file inside a tree or manifest directory is validated with the rest of it, since its
references point at its siblings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .loader import config_files

__all__ = ["ConfigUnit", "discover_units"]

_TREE_DIRS = ("groups", "polling_pools")
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class ConfigUnit:
    """One config to load as a whole, and why it was grouped that way."""

    path: Path
    kind: str  # "tree" | "manifests" | "file"
    requested: Path | None = None  # the file the user named, when it pulled in its unit


def _is_tree_root(directory: Path) -> bool:
    return any((directory / name).is_dir() for name in _TREE_DIRS)


def _tree_root_of(file: Path) -> Path | None:
    parent = file.parent
    if _is_tree_root(parent):
        return parent
    if parent.name in _TREE_DIRS and _is_tree_root(parent.parent):
        return parent.parent
    return None


def _is_manifest_file(file: Path) -> bool:
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return bool(docs) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d
                              for d in docs)


def _is_manifest_dir(directory: Path) -> bool:
    files = [f for f in directory.iterdir() if f.suffix in _SUFFIXES and not f.name.startswith(".")]
    subdirs = [d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return bool(files) and not any(config_files(d) for d in subdirs) and all(
        _is_manifest_file(f) for f in files
    )


def discover_units(path: Path) -> list[ConfigUnit]:
    """The configs to validate for ``path`` (see the module docstring)."""
    if path.is_file():
        root = _tree_root_of(path)
        if root is not None:
            return [ConfigUnit(root, "tree", path)]
        if _is_manifest_file(path) and _is_manifest_dir(path.parent):
            return [ConfigUnit(path.parent, "manifests", path)]
        return [ConfigUnit(path, "file")]
    if not path.is_dir():
        return [ConfigUnit(path, "file")]  # the loader reports that it does not exist
    if _is_tree_root(path):
        return [ConfigUnit(path, "tree")]
    if _is_manifest_dir(path):
        return [ConfigUnit(path, "manifests")]
    units: list[ConfigUnit] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            units.extend(discover_units(child))
        elif child.suffix in _SUFFIXES:
            units.append(ConfigUnit(child, "file"))
    return units
