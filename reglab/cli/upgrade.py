"""``reglab upgrade``: is a 2.8 registry's configuration ready for registry 3, and the v3 file.

    reglab upgrade --check [--config FILE | --name NAME | --workdir DIR]
    reglab upgrade [--config FILE | --name NAME | --workdir DIR] --write FILE

``--check`` exits 0 when registry 3 reads the configuration as 2.8 did, else 1 with one line
per problem and its fix (notes, which need no change, never fail it). ``--write`` writes the
translated configuration, for ``/etc/distribution/config.yml``, only when that passes the check.
Without a source: the registry container named by ``REGLAB_NAME``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import docker.errors

from reglab.base.errors import ConfigError, docker_errors
from reglab.base.labels import OWNER_LABEL, STAGE_LABEL
from reglab.base.settings import Settings
from reglab.engine.connection import connect
from reglab.registry.status import workdir_of
from reglab.registry.upgrade import check, report, write_translation
from reglab.registry.v2config import Source, from_container, load_file

#: notebook 09's replicas' file, in the working folder (reglab.swarm.render).
SWARM_CONFIG = Path("swarm/registry.yml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="list what registry 3 reads differently (the default)")  # fmt: skip
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE", help="a 2.8 config.yml")
    source.add_argument("--name", help="a registry container (default: REGLAB_NAME)")
    source.add_argument("--workdir", type=Path, metavar="DIR",
                        help="each registry of a working folder, and its swarm's file")  # fmt: skip
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="write the configuration for registry 3 (checked first)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command's own parser (``reglab upgrade`` adds the same arguments to its subparser)."""
    parser = argparse.ArgumentParser(prog="reglab upgrade", description=__doc__)
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    sources = _sources(args)
    if args.write is not None:
        if len(sources) != 1:
            raise ConfigError(
                f"{len(sources)} configurations found, --write takes one",
                "name one with --config FILE or --name NAME",
            )
        done = write_translation(sources[0], args.write)
        for change in done.changes:
            print(f"{sources[0].label}: {change}")
        print(f"wrote {args.write}: mount it at /etc/distribution/config.yml")
        if not args.check:
            return 0
    failed = False
    for source in sources:
        findings = check(source)
        failed = failed or any(f.blocking for f in findings)
        for line in report(source.label, findings):
            print(line)
    return 1 if failed else 0


def _sources(args: argparse.Namespace) -> list[Source]:
    if args.config is not None:
        return [load_file(args.config)]
    if args.workdir is not None:
        return sources_in(args.workdir)
    settings: Settings | None = getattr(args, "settings", None)
    return [container_source(args.name or (settings or Settings.from_env()).name)]


def container_source(name: str) -> Source:
    engine = connect()
    with docker_errors(f"cannot inspect container {name}"):
        try:
            container = engine.containers.get(name)
        except docker.errors.NotFound:
            raise ConfigError(
                f"no container {name}",
                "give a registry's name (reglab status lists them), or --config FILE",
            ) from None
    return from_container(name, container.attrs)


def sources_in(workdir: Path, containers: list[tuple[str, Any]] | None = None) -> list[Source]:
    """Every configuration of ``workdir``: its swarm's file, and each of reglab's registry
    containers that mounts it (``containers``: name and ``docker inspect`` answer; default:
    asked from the engine)."""
    if not workdir.is_dir():
        raise ConfigError(f"no folder {workdir}", "give the working folder (REGLAB_WORKDIR)")
    found = [load_file(workdir / SWARM_CONFIG)] if (workdir / SWARM_CONFIG).is_file() else []
    if containers is None:
        containers = _registries()
    for name, attrs in containers:
        mounted = workdir_of(_Inspected(attrs))
        if mounted is not None and mounted.resolve() == workdir.resolve():
            found.append(from_container(name, attrs))
    if not found:
        raise ConfigError(
            f"nothing to check in {workdir}: no {SWARM_CONFIG} and no registry mounts it",
            "start its registry (reglab up STAGE), or give --config FILE or --name NAME",
        )
    return found


class _Inspected:
    """What workdir_of reads of a container: its ``attrs``."""

    def __init__(self, attrs: Any) -> None:
        self.attrs = attrs


def _registries() -> list[tuple[str, Any]]:
    engine = connect()
    with docker_errors("cannot list containers"):
        listed = engine.containers.list(all=True, filters={"label": OWNER_LABEL})
    return [(c.name, c.attrs) for c in listed if STAGE_LABEL in (c.labels or {})]


__all__ = ["add_arguments", "build_parser", "container_source", "run", "sources_in"]
