"""The Dockerfiles (which cannot be built on these machines: no Docker engine) stay correct:
COPY sources exist, entrypoints are console scripts, CMD parses, the final stage is slim,
pinned, free of build tools and runs as the non-root user the chart / operator expect."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from echelon_operator.builders.sidecar import SIDECAR_UID
from echelon_operator.main import build_parser as operator_parser
from echelon_sidecar.cli import build_parser as sidecar_parser

from .helm import CHART, REPO

DOCKERFILES = {"echelon-operator": REPO / "operator" / "Dockerfile",
               "echelon-sidecar": REPO / "sidecar" / "Dockerfile"}
PARSERS = {"echelon-operator": operator_parser, "echelon-sidecar": sidecar_parser}
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cargo", "rustc", "git")
PINNED_SLIM_PYTHON = re.compile(r"^python:3\.\d+\.\d+-slim-[a-z]+$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse(path: Path) -> Dockerfile:
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stages.append(Stage(base, parts[2] if len(parts) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return Dockerfile(args, stages)


def exec_form(arg: str) -> list[str]:
    value = yaml.safe_load(arg)
    assert isinstance(value, list), f"use the exec (JSON) form: {arg}"
    return [str(v) for v in value]


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(pyproject["project"]["scripts"])


@pytest.fixture(params=sorted(DOCKERFILES), ids=str)
def image(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python(image: str) -> None:
    df = parse(DOCKERFILES[image])
    assert len(df.stages) >= 2
    for stage in df.stages:
        assert PINNED_SLIM_PYTHON.match(stage.base), stage.base
        assert "/" not in stage.base, f"{stage.base}: no registry host; users retag the base"
    assert df.stages[0].name == "build"
    assert df.stages[-1].base == df.stages[0].base  # the virtualenv is copied between them


def test_copy_sources_exist_in_the_repository(image: str) -> None:
    df = parse(DOCKERFILES[image])
    copied = 0
    for stage in df.stages:
        for arg in stage.all("COPY"):
            words = shlex.split(arg)
            if any(w.startswith("--from=") for w in words):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"{DOCKERFILES[image]}: COPY {source}: missing"
                copied += 1
    assert copied >= 3


# the package folders each image copies: the sidecar's holds the sidecar alone, the operator's
# everything (the operator renders with the sidecar's config model; `echelon fake-provider` runs
# from it)
IMAGE_PACKAGES = {"echelon-operator": {"sidecar", "operator", "tools"},
                  "echelon-sidecar": {"sidecar"}}


def test_packages_copied_are_the_ones_pyproject_installs(image: str) -> None:
    df = parse(DOCKERFILES[image])
    copied = {shlex.split(a)[0] for a in df.stages[0].all("COPY")}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    where = set(pyproject["tool"]["setuptools"]["packages"]["find"]["where"])
    assert IMAGE_PACKAGES[image] <= where
    for folder in sorted(where):
        copies = any(c.startswith(f"{folder}/") for c in copied)
        wanted = folder in IMAGE_PACKAGES[image]
        assert copies == wanted, f"{folder}/ is {'not ' if wanted else ''}copied"
    assert {"pyproject.toml", "README.md"} <= {
        w for a in df.stages[0].all("COPY") for w in shlex.split(a)[:-1]}


def test_final_stage_copies_only_the_build_output_and_installs_no_build_tools(image: str) -> None:
    final = parse(DOCKERFILES[image]).final
    copies = final.all("COPY")
    assert copies and all(c.startswith("--from=build ") for c in copies)
    for run in final.all("RUN"):
        for tool in BUILD_TOOLS:
            assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", run), f"RUN installs {tool}"
        assert "apt-get install" not in run and "pip install" not in run


def test_entrypoint_is_the_images_console_script_and_cmd_parses(image: str) -> None:
    final = parse(DOCKERFILES[image]).final
    (entrypoint,) = final.all("ENTRYPOINT")
    assert exec_form(entrypoint) == [image]
    assert image in console_scripts()
    (cmd,) = final.all("CMD")
    PARSERS[image]().parse_args(exec_form(cmd))  # SystemExit on an unknown flag


def test_final_stage_runs_as_a_non_root_numeric_user(image: str) -> None:
    final = parse(DOCKERFILES[image]).final
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot)"
    assert gid.isdigit() and int(gid) != 0
    created = " ".join(final.all("RUN"))
    assert f"--uid {uid}" in created, "the user is created in the image"


def test_operator_image_user_and_port_match_the_charts_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    final = parse(DOCKERFILES["echelon-operator"]).final
    uid = int(final.all("USER")[0].split(":")[0])
    assert values["operator"]["securityContext"]["runAsUser"] == uid
    assert values["operator"]["podSecurityContext"]["runAsUser"] == uid
    assert final.all("EXPOSE") == [str(values["operator"]["livenessPort"])]


def test_sidecar_image_user_is_the_one_the_operator_injects() -> None:
    final = parse(DOCKERFILES["echelon-sidecar"]).final
    assert final.all("USER") == [f"{SIDECAR_UID}:{SIDECAR_UID}"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert final.all("EXPOSE") == [
        f"{values['sidecar']['dataPort']} {values['sidecar']['adminPort']}"]
