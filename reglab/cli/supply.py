"""``reglab sbom`` and ``reglab referrers``: what an image carries (the supply-chain stage).

    reglab sbom REF [--name NAME] [--user USER --password-stdin]
    reglab referrers REF [--name NAME] [--user USER --password-stdin]

``sbom`` makes the image's SBOM with syft (``WORKDIR/sbom/REPO-TAG.spdx.json``) and attaches
it to the image; it prints the lines a terminal types (syft, oras) and the attachment's
digest. ``referrers`` lists what is attached, and says whether the registry's referrers API
or the fall-back tag answered. REF is ``REPOSITORY[:TAG]`` of the registry named by
``--name`` (default ``REGLAB_NAME``), or the same with its address in front.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from reglab.base.shell import PathStyle
from reglab.cli.login import add_login_options, login_for
from reglab.engine.connection import connect
from reglab.registry import attach
from reglab.registry.config import RegistryConfig
from reglab.registry.container import Registry
from reglab.registry.sbom import Target, attach_step, ensure_oras, sbom_step


def add_commands(sub: Any, common: Callable[..., None]) -> None:
    """The two commands, on the ``reglab`` parser's subparsers."""
    p = sub.add_parser("sbom", help="make an image's SBOM with syft and attach it to the image")
    p.add_argument("ref", metavar="REF", help="REPOSITORY[:TAG] of the registry, e.g. tools:1")
    common(p, port=False, running=True)
    add_login_options(p)
    p = sub.add_parser("referrers", help="what is attached to an image (API, else fall-back tag)")
    p.add_argument("ref", metavar="REF", help="REPOSITORY[:TAG] of the registry")
    common(p, port=False, running=True)
    add_login_options(p)


def _target(args: argparse.Namespace, config: RegistryConfig) -> Target:
    return Target.parse(Registry.attach(connect(), config.name, config.workdir), args.ref)


def _show(line: str) -> None:
    print(f"$ {line}")


def sbom(args: argparse.Namespace, config: RegistryConfig) -> int:
    target = _target(args, config)
    login = login_for(target.registry.config, args)
    workdir = target.registry.config.workdir
    # "$REGLAB_WORKDIR" in the typed lines only when that is the registry's own folder
    from_env = (
        args.settings.workdir_from_env and args.settings.workdir.resolve() == workdir.resolve()
    )
    style = PathStyle.here(workdir, from_env)
    out = target.registry.config.workdir / "sbom" / target.file_name
    ensure_oras()  # for the typed lines
    file = sbom_step(target, out, login, style).run(_show)
    digest = attach_step(target, file, login=login, style=style).run(_show)
    print(f"SBOM of {target.ref}: {style.show(file)} ({file.stat().st_size:,} bytes)")
    print(f"attached as {digest}")
    return 0


def referrers(args: argparse.Namespace, config: RegistryConfig) -> int:
    target = _target(args, config)
    login = login_for(target.registry.config, args)
    with target.registry.client(auth=login) as api:
        found = attach.referrers(api, target.repository, target.tag)
    print(f"{target.ref} ({found.subject}): {len(found.descriptors)} attached, from {found.via}")
    for entry in found.descriptors:
        print(
            f"{entry['digest']}  {entry.get('artifactType', '?')}  {entry.get('size', 0):,} bytes"
        )
    return 0


__all__ = ["add_commands", "referrers", "sbom"]
