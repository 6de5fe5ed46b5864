"""The sidecar measured inside its image: the archive scripts/build-images wrote, unpacked.

``image_root(archive)`` unpacks an OCI archive's layers (whiteouts applied) into a temporary
root file system with ``/proc`` and ``/dev`` bound into it, and ``image_launcher(root)`` gives
the command that starts ``echelon-sidecar`` there as the image's user (``chroot --userspec``,
the image's ``User``), with the image's environment (its ``Env``, ``PATH`` included): the
image's own Python, its bytecode, its CA store and its dependencies, which a process started
from the repository's virtualenv does not have. Linux, as root, with ``chroot`` and ``mount``;
``skip_reason()`` says why not otherwise. Not a container: no namespaces or cgroup limits (the
real-pods tier runs the image in pods).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImageRoot", "image_root", "sidecar_archive", "skip_reason"]

_IMAGES = Path(__file__).resolve().parents[1] / "dist" / "images"


def sidecar_archive(images: Path | None = None) -> Path | None:
    found = sorted((images or _IMAGES).glob("echelon-sidecar-*.tar"))
    return found[-1] if found else None


def skip_reason(archive: Path | None) -> str | None:
    if archive is None:
        return "no sidecar image in dist/images (scripts/build-images builds it)"
    if os.geteuid() != 0:
        return "not root: unpacking an image and chroot need root"
    missing = [tool for tool in ("chroot", "mount", "umount") if shutil.which(tool) is None]
    if missing:
        return f"no {', '.join(missing)} on this machine"
    return None


@dataclass
class ImageRoot:
    root: Path
    env: dict[str, str]
    user: str
    entrypoint: list[str]

    def launcher(self) -> list[str]:
        """The command prefix that runs the image's entrypoint in its root, as its user."""
        return ["chroot", f"--userspec={self.user}", str(self.root), *self.entrypoint]

    def add_config(self, config: Path, name: str) -> str:
        """Copy a config file or folder into the root; its path inside the image."""
        inside = Path("/etc") / f"echelon-bench-{name}"
        target = self.root / inside.relative_to("/")
        if config.is_dir():
            shutil.copytree(config, target)
        else:
            target.mkdir(parents=True)
            shutil.copy(config, target / config.name)
            inside = inside / config.name
        subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
        return str(inside)


def read_image(archive: Path | str) -> tuple[dict[str, Any], list[bytes]]:
    """An OCI image archive's image config and its layers (uncompressed tars), bottom first."""
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> bytes:
            member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
            assert member is not None
            return member.read()

        index = json.loads(blob_of(tar, "index.json"))
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config: dict[str, Any] = json.loads(blob(manifest["config"]["digest"]))
        return config, [gzip.decompress(blob(layer["digest"])) for layer in manifest["layers"]]


def blob_of(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ValueError(f"{tar.name}: no file {name}")
    return member.read()


def _unpack(archive: Path, root: Path) -> dict[str, Any]:
    config, layers = read_image(archive)
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as files:
            members = []
            for member in files.getmembers():
                folder, _, name = member.name.rpartition("/")
                if name.startswith(".wh."):  # a whiteout: the lower layer's file is gone
                    gone = root / folder / name[len(".wh."):]
                    if gone.is_dir() and not gone.is_symlink():
                        shutil.rmtree(gone)
                    else:
                        gone.unlink(missing_ok=True)
                    continue
                if not member.isdev():
                    members.append(member)
            files.extractall(root, members=members, numeric_owner=True)
    return config


@contextlib.contextmanager
def image_root(archive: Path) -> Iterator[ImageRoot]:
    """The image unpacked with /proc and /dev bound in; removed at the end, once unmounted
    (a bind mount still in place leaves the whole folder where it is: never removed through)."""
    tmp = Path(tempfile.mkdtemp(prefix="echelon-image-root."))
    root = tmp / "rootfs"
    mounted: list[Path] = []
    try:
        root.mkdir()
        oci = _unpack(archive, root)["config"]
        assert isinstance(oci, dict)
        for name in ("proc", "dev"):
            (root / name).mkdir(exist_ok=True)
            subprocess.run(["mount", "--bind", f"/{name}", str(root / name)], check=True)
            mounted.append(root / name)
        yield ImageRoot(root=root, env=dict(e.split("=", 1) for e in oci.get("Env", [])),
                        user=str(oci.get("User") or "0:0"),
                        entrypoint=list(oci.get("Entrypoint") or []))
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", str(path)], check=False)
        if any(os.path.ismount(path) for path in mounted):
            raise RuntimeError(f"{tmp}: a bind mount could not be undone; left in place")
        shutil.rmtree(tmp, ignore_errors=True)
