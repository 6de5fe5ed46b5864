"""scripts/build-images reads sidecar/Dockerfile and operator/Dockerfile and carries them out:
the images are what the Dockerfiles say (one source). These tests pin what the script makes of
each Dockerfile, so that a Dockerfile change it cannot follow fails here, before any build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench.image_env import load_build_images

REPO = Path(__file__).resolve().parents[3]


bi = load_build_images()


def requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs}


@pytest.mark.parametrize(("image", "user", "entrypoint", "ports", "spec"), [
    ("echelon-sidecar", "65532:65532", ["echelon-sidecar"], ["8080", "9090"], "."),
    ("echelon-operator", "10001:10001", ["echelon-operator"], ["8081"], ".[operator]"),
])
def test_each_dockerfile_is_understood(image: str, user: str, entrypoint: list[str],
                                       ports: list[str], spec: str) -> None:
    df = bi.parse_dockerfile(REPO / bi.IMAGES[image])
    assert [s.name for s in df.stages] == ["build", None]
    # the base the script stands in for (Debian bookworm's Python 3.11)
    assert all(bi.PYTHON_BASE.match(s.base) for s in df.stages), [s.base for s in df.stages]
    config = bi.final_config(df)
    assert config.user == user and not config.user.startswith("0")  # non-root
    assert config.entrypoint == entrypoint  # exec form: no shell needed at run time
    assert config.ports == ports
    env = dict(e.split("=", 1) for e in config.env)
    assert env["PATH"].startswith("/opt/echelon/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert bi.pip_specs(df) == [spec]
    # the final stage takes only the virtualenv from the build stage
    copies = [i.args for i in df.final.instructions if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/echelon /opt/echelon"]
    # what the build stage copies from the repository exists
    assert all(p.exists() for p in bi.context_sources(df))


def test_the_sidecar_image_installs_only_the_sidecars_dependencies() -> None:
    sidecar = requirement_names(bi.project_requirements(".", REPO))
    operator = requirement_names(bi.project_requirements(".[operator]", REPO))
    for name in ("kopf", "kubernetes", "openai", "rich"):
        assert name not in sidecar
    assert {"kopf", "kubernetes"} <= operator
    assert {"openai", "rich"}.isdisjoint(operator)


def test_the_cmd_of_the_sidecar_image_serves_on_loopback_with_the_admin_port_open() -> None:
    config = bi.final_config(bi.parse_dockerfile(REPO / "sidecar" / "Dockerfile"))
    assert config.cmd == ["--config", "/etc/echelon", "--host", "127.0.0.1", "--port", "8080",
                          "--admin-host", "0.0.0.0", "--admin-port", "9090"]
    oci = config.to_oci()
    assert oci["ExposedPorts"] == {"8080/tcp": {}, "9090/tcp": {}}


def test_an_instruction_the_script_cannot_carry_out_is_refused(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim-bookworm\nHEALTHCHECK CMD true\n")
    with pytest.raises(bi.BuildError, match="HEALTHCHECK is not supported"):
        bi.parse_dockerfile(dockerfile)


def test_env_lines_expand_earlier_values_and_continuations() -> None:
    env = bi.parse_env("A=1 PATH=/x:$PATH B=${A}2", {"PATH": "/usr/bin"})
    assert env == {"A": "1", "PATH": "/x:/usr/bin", "B": "12"}


def test_the_mirror_comes_from_the_machines_apt_sources() -> None:
    sources = Path("/etc/apt/sources.list.d")
    if not sources.is_dir():
        pytest.skip("no apt sources on this machine")
    try:
        mirror = bi.apt_mirror()
    except bi.BuildError as exc:
        pytest.skip(str(exc))
    assert mirror.startswith(("http://", "https://", "file:"))


def test_the_node_images_follow_local_k8s_default_version(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The pause image is the one the default Kubernetes build compiled: a machine that only
    built scripts/local-k8s's default version has no other (a fresh CI machine did not)."""
    text = (REPO / "scripts" / "local-k8s").read_text()
    default = re.search(r"^K8S_DEFAULT_VERSION=(\S+)$", text, re.M)
    assert default is not None
    monkeypatch.delenv("ECHELON_K8S_VERSION", raising=False)
    assert bi._default_k8s_version() == default.group(1)
    node = (REPO / "scripts" / "local-k8s-node.sh").read_text()
    assert 'ECHELON_K8S_VERSION="$K8S_VERSION" "$SCRIPT_DIR/build-images" --node' in node
