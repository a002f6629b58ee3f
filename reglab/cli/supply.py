"""``reglab sbom`` and ``reglab referrers``: what an image carries (the supply-chain stage).

    reglab sbom REF [--name NAME] [--user USER --password-stdin]
    reglab referrers REF [--name NAME] [--user USER --password-stdin]
    reglab sign REF --key SECRET-KEY-FILE [--name NAME]
    reglab verify REF --key PUBLIC-KEY-FILE [--name NAME]

``sbom`` makes the image's SBOM with syft (``WORKDIR/sbom/REPO-TAG.spdx.json``) and attaches
it to the image; it prints the lines a terminal types (syft, oras) and the attachment's
digest. ``referrers`` lists what is attached, and says whether the registry's referrers API
or the fall-back tag answered. ``sign`` signs the image with GnuPG through skopeo (the
signature in ``WORKDIR/sign/lookaside``), or with cosign when the key is cosign's (the
signature then a referrer of the image, in the registry); ``verify`` checks it with the given
public key only (skopeo under a policy, or ``cosign verify``), and exits 1 when it is
refused. REF is ``REPOSITORY[:TAG]`` of the registry named by ``--name`` (default
``REGLAB_NAME``), or the same with its address in front.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reglab.base.shell import PathStyle
from reglab.cli.login import add_login_options, login_for
from reglab.engine.connection import connect
from reglab.registry import attach, cosign, keys, signing
from reglab.registry.config import RegistryConfig
from reglab.registry.container import Registry
from reglab.registry.sbom import Target, attach_step, ensure_oras, sbom_step
from reglab.registry.simplesign import SignFiles


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
    for name, key, what in (
        ("sign", "the secret key (gpg --export-secret-keys --armor FPR > FILE, or cosign.key)",
         "sign an image with GnuPG (skopeo copy --sign-by)"),
        ("verify", "the public key(s) to trust (gpg --export --armor FPR > FILE, or cosign.pub)",
         "check an image's signature under a policy that trusts one key file"),
    ):  # fmt: skip
        p = sub.add_parser(name, help=what)
        p.add_argument("ref", metavar="REF", help="REPOSITORY[:TAG] of the registry")
        p.add_argument("--key", type=Path, required=True, metavar="FILE", help=key)
        common(p, port=False, running=True)


def _target(args: argparse.Namespace, config: RegistryConfig) -> Target:
    return Target.parse(Registry.attach(connect(), config.name, config.workdir), args.ref)


def _show(line: str) -> None:
    print(f"$ {line}")


def sbom(args: argparse.Namespace, config: RegistryConfig) -> int:
    target = _target(args, config)
    login = login_for(target.registry.config, args)
    style = _style(args, target)
    out = target.registry.config.workdir / "sbom" / target.file_name
    ensure_oras()  # for the typed lines
    file = sbom_step(target, out, login, style).run(_show)
    digest = attach_step(target, file, login=login, style=style).run(_show)
    print(f"SBOM of {target.ref}: {style.show(file)} ({file.stat().st_size:,} bytes)")
    print(f"attached as {digest}")
    return 0


def _style(args: argparse.Namespace, target: Target) -> PathStyle:
    """Paths as this terminal types them ("$REGLAB_WORKDIR" only when that is the registry's
    own folder)."""
    workdir = target.registry.config.workdir
    from_env = (
        args.settings.workdir_from_env and args.settings.workdir.resolve() == workdir.resolve()
    )
    return PathStyle.here(workdir, from_env)


def sign(args: argparse.Namespace, config: RegistryConfig) -> int:
    key = signing.read_key(args.key, secret=True)  # a bad key: one line, nothing done
    target = _target(args, config)
    signing.image_digest(target)  # no such image: one line, before any line is printed
    style = _style(args, target)
    if key.kind == keys.COSIGN:
        digest = cosign.sign_step(target, key, style).run(_show)
    else:
        files = SignFiles.of(target.registry.config.workdir)
        digest = signing.sign_step(target, key, files, style).run(_show)
    print(f"signed {target.ref} ({digest}) with {key.fingerprint}")
    return 0


def verify(args: argparse.Namespace, config: RegistryConfig) -> int:
    key = signing.read_key(args.key, secret=False)
    target = _target(args, config)
    signing.image_digest(target)
    style = _style(args, target)
    if key.kind == keys.COSIGN:
        verdict = cosign.verify_step(target, key, style).run(_show)
    else:
        files = SignFiles.of(target.registry.config.workdir)
        verdict = signing.verify_step(target, key, files, style).run(_show)
    print(verdict.said if verdict.accepted else f"refused: {verdict.said}")
    return 0 if verdict.accepted else 1


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


__all__ = ["add_commands", "referrers", "sbom", "sign", "verify"]
