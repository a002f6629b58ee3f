"""pyproject.toml and environment.yml describe the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Same package, different name on conda-forge.
CONDA_NAMES = {"docker": "docker-py"}


def _name(requirement: str) -> tuple[str, str]:
    match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", requirement)
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return dict(_name(CONDA_NAMES.get(_name(r)[0], _name(r)[0]) + _name(r)[1]) for r in reqs)


def conda_requirements() -> dict[str, str]:
    deps = {}
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        # conda packages, then what only PyPI has (the pip: list), but not the project itself
        item = re.match(r"^(?:  |      )- ([^#-][^#]*?)\s*(?:#.*)?$", line)
        if in_deps and item and not item.group(1).startswith(("python", "pip")):
            name, spec = _name(item.group(1))
            deps[name] = spec
    return deps


def test_every_dependency_is_in_both_files_with_the_same_bounds() -> None:
    assert pip_requirements() == conda_requirements()


def test_the_lists_are_not_empty() -> None:
    assert {"docker-py", "cryptography", "bcrypt", "requests", "nbval"} <= set(pip_requirements())
