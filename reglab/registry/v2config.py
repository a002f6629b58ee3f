"""A registry's configuration as the registry itself reads it: a YAML file, or a container's
``REGISTRY_*`` environment over its image's own file (how the workshop configures its
registries). What ``reglab upgrade`` checks (reglab.registry.upgrade).

The environment follows the registry's own rules (distribution's ``configuration/parser.go``):
``REGISTRY_A_B`` sets ``a.b``, variables apply in order of their names (a section before its
keys), and each value is YAML.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from reglab.base.errors import ConfigError
from reglab.base.versions import V2, V3, version_of_image
from reglab.registry.v3keys import ENV_ALIASES

ENV_PREFIX = "REGISTRY_"


@dataclass
class Source:
    """A 2.8 registry's configuration, as a registry reads it."""

    #: Where it came from, as a user names it: a file's path, ``container NAME``.
    label: str
    config: dict[str, Any]
    #: Where the container mounts files (empty for a file): a config at 2.8's path is ignored.
    mounts: tuple[str, ...] = ()
    #: "2" or "3" when the configuration is that image's own file under ``REGISTRY_*``
    #: variables; None for a file of the operator's.
    image_defaults: str | None = None
    #: The ``REGISTRY_*`` variables read (a file's source has none).
    env: dict[str, str] = field(default_factory=dict)


def image_config(major: str) -> dict[str, Any]:
    """The configuration file an image of reglab's carries (``registry:2`` or ``registry:3``)."""
    name = "config-v3.yml" if major == "3" else "config.yml"
    text = resources.files("reglab").joinpath(f"assets/{name}").read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def parse_yaml(text: str, label: str) -> dict[str, Any]:
    """A registry configuration from YAML text: a mapping, or a one-line ConfigError."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{label} is not valid YAML{where}", "fix that line (a registry reads YAML)"
        ) from None
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{label} is not a registry configuration (no YAML mapping in it)",
            "give a registry's config.yml (version: 0.1, storage: ...)",
        )
    return loaded


def load_file(path: Path) -> Source:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no file {path}", "give the path of a registry's config.yml") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.__class__.__name__}", "give a YAML file"
        ) from None
    return Source(str(path), parse_yaml(text, str(path)))


def env_key(name: str) -> str:
    """``REGISTRY_STORAGE_S3_REGION`` -> ``storage.s3.region``, as the registry maps it (where
    the Go field's name differs from its YAML key, the YAML key: ``ENV_ALIASES``)."""
    key = name.removeprefix(ENV_PREFIX).lower().replace("_", ".")
    for alias, real in ENV_ALIASES.items():
        if key == alias or key.startswith(alias + "."):
            return real + key[len(alias) :]
    return key


def with_env(base: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``base`` with each ``REGISTRY_*`` variable set, in the registry's order (by name: a
    section before its keys). Values are YAML, as the registry parses them."""
    config = copy.deepcopy(dict(base))
    for name in sorted(n for n in env if n.startswith(ENV_PREFIX)):
        try:
            value = yaml.safe_load(env[name])
        except yaml.YAMLError:
            value = env[name]
        _set(config, env_key(name).split("."), value)
    for section in ("storage", "auth"):  # REGISTRY_AUTH=token: a section given by its name
        if isinstance(config.get(section), str):
            config[section] = {config[section]: {}}
    return config


def _set(config: dict[str, Any], path: list[str], value: Any) -> None:
    node = config
    for part in path[:-1]:
        child = node.get(part)
        if isinstance(child, str):  # REGISTRY_AUTH=token, then REGISTRY_AUTH_TOKEN_REALM=...
            child = {child: {}}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[path[-1]] = value


def from_container(name: str, attrs: Mapping[str, Any]) -> Source:
    """The configuration a container runs with, from ``docker inspect``'s answer: its image's
    file (or a file it mounts there, read from the host) under its ``REGISTRY_*`` variables."""
    env = dict(e.split("=", 1) for e in (attrs.get("Config") or {}).get("Env") or [] if "=" in e)
    mounts = attrs.get("Mounts") or []
    image = str((attrs.get("Config") or {}).get("Image") or "")
    version = version_of_image(image) or V2
    base: dict[str, Any] | None = None
    for mount in mounts:
        if mount.get("Destination") in (V2.config_path, V3.config_path) and mount.get("Source"):
            base = load_file(Path(mount["Source"])).config
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    return Source(
        f"container {name}",
        with_env(base if base is not None else image_config(version.major), ours),
        tuple(str(m.get("Destination")) for m in mounts),
        None if base is not None else version.major,
        ours,
    )


__all__ = [
    "ENV_PREFIX",
    "Source",
    "env_key",
    "from_container",
    "image_config",
    "load_file",
    "parse_yaml",
    "with_env",
]
