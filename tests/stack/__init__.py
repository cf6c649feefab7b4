"""Offline checks of the compose stack: docker-compose.yml, Dockerfile, .dockerignore, .env.example.

No Docker engine runs in CI, so the stack is proved piece by piece with real
tools instead: the compose-spec schema (check-jsonschema), Docker's own
.dockerignore rules (the ``docker`` SDK), a clean ``pip install`` of exactly what
the Dockerfile installs, and the compose services' real commands and
healthchecks run against that install. The helpers here read the files the way
those tools do; they are shared by ``test_compose.py`` and ``test_install.py``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as data (YAML anchors and ``<<`` merges resolved, as compose does)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found: dict[str, dict[str, Any]] = load_compose()["services"]
    return found


def built_services() -> dict[str, dict[str, Any]]:
    """The services that run the image built from the repo's Dockerfile."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def command_args(service: dict[str, Any]) -> list[str]:
    """A service's ``command`` as an argument list (string form split like a shell)."""
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` for each Dockerfile instruction, continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines may sit inside a continuation, too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path.name}: dangling line continuation"
    return instructions


def dockerfile_args(path: Path = DOCKERFILE) -> dict[str, str]:
    """``ARG NAME=default`` declarations of the Dockerfile."""
    found = {}
    for keyword, args in dockerfile_instructions(path):
        if keyword == "ARG" and "=" in args:
            name, _, default = args.partition("=")
            found[name.strip()] = default.strip().strip("\"'")
    return found


def dockerfile_exec_form(keyword: str, path: Path = DOCKERFILE) -> list[str]:
    """The JSON (exec) form of the last ``keyword`` instruction, e.g. ENTRYPOINT or CMD."""
    values = [args for kw, args in dockerfile_instructions(path) if kw == keyword]
    assert values, f"{path.name} has no {keyword}"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list), f"{keyword} must use the exec form"
    return [str(part) for part in parsed]


#: the install line the image uses; the extras come from ``ARG EXTRAS``
PIP_INSTALL = 'pip install ".[${EXTRAS}]"'


def dockerfile_extras(path: Path = DOCKERFILE) -> str:
    """The extras the image installs (``ARG EXTRAS``), after checking the RUN line uses them."""
    runs = [args for kw, args in dockerfile_instructions(path) if kw == "RUN" and "pip install" in args]
    assert len(runs) == 1, f"{path.name}: expected one RUN with pip install, found {runs}"
    assert PIP_INSTALL in runs[0], f"{path.name}: the install must be exactly {PIP_INSTALL}, got: {runs[0]}"
    extras = dockerfile_args(path).get("EXTRAS", "")
    assert re.fullmatch(r"[a-z0-9_-]+(,[a-z0-9_-]+)*", extras), f"{path.name}: bad ARG EXTRAS={extras!r}"
    return extras


def dockerfile_copies(path: Path = DOCKERFILE) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of every COPY (shell form, no ``--from``)."""
    copies = []
    for keyword, args in dockerfile_instructions(path):
        if keyword != "COPY":
            continue
        parts = shlex.split(args)
        assert not any(p.startswith("--") for p in parts), f"COPY flags are not expected here: {args}"
        copies.append((parts[:-1], parts[-1]))
    return copies
