"""The ``reglab`` command's arguments: every command, option and its help, in one place.

A usage mistake is one line naming the fix, like every other reglab error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from reglab.base import ports, settings
from reglab.base.errors import ConfigError, Problem
from reglab.base.versions import registry_version
from reglab.cli import conformance as conformance_command
from reglab.cli import listen as listen_command
from reglab.cli import node as node_command
from reglab.cli import supply as supply_command
from reglab.cli import upgrade as upgrade_command
from reglab.cli.login import add_login_options
from reglab.images import recipes
from reglab.registry.config import Stage


def _port(value: str) -> int:
    try:
        return settings.check_port(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _registry(value: str) -> str:
    try:
        return registry_version(value).major
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _replicas(value: str) -> int:
    from reglab.swarm import SwarmRegistry  # the one place that says how many

    try:
        return SwarmRegistry.check_replicas(int(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            str(Problem(f"{value!r} is not a number of replicas", "give 1 to 9, e.g. 3"))
        ) from None
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the fix, like every other error."""

    def error(self, message: str) -> NoReturn:
        if " - fix: " not in message:  # a ConfigError from _port() has its own fix
            message = str(Problem(message, f"see '{self.prog} --help'"))
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reglab", description="Run your own Docker image registry, stage by stage."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    def common(
        p: argparse.ArgumentParser, port: bool = True, workdir: bool = True, running: bool = False
    ) -> None:
        """``running``: the command acts on a running registry, which says its own folder."""
        if port:
            p.add_argument(
                "--port", type=_port, default=None, help="host port (default: REGLAB_PORT or 5000)"
            )
        if workdir:
            p.add_argument(
                "--workdir",
                type=Path,
                default=None,
                help="working folder (default: "
                + ("the one the running registry mounts, else " if running else "")
                + "REGLAB_WORKDIR or ./workdir)",
            )
        p.add_argument(
            "--name", default=None, help="container name (default: REGLAB_NAME or reglab-registry)"
        )

    def registry(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--registry",
            type=_registry,
            default=None,
            metavar="3|2",
            help="registry version: 3 (distribution 3.1, the default) or 2 (2.8); "
            "default: REGLAB_REGISTRY or 3",
        )

    p = sub.add_parser("doctor", help="check that the workshop can run here")
    common(p)
    registry(p)
    p.add_argument(
        "--stage",
        choices=list(recipes.STAGES),
        default=recipes.FOUNDATION,
        help="check the images this stage needs (default: foundation, notebooks 00-07)",
    )

    p = sub.add_parser(
        "images",
        help="make the images a stage needs available (default: registry:3, hello-world, tools)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--stage",
        choices=list(recipes.STAGES),
        default=recipes.FOUNDATION,
        help="the images this stage needs: foundation (notebooks 00-07, the default), "
        "token (+ the token server, 08), swarm (+ store, cache and front, 09), node (+ "
        "containerd and crictl, 11), supply (+ the signature gate, 12)",
    )
    which.add_argument(
        "--all", action="store_true", help="every image (what --save writes in any case)"
    )
    p.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="never contact Docker Hub; build the images locally",
    )
    registry(p)
    p.add_argument(
        "--registry-binary",
        type=Path,
        default=None,
        help="registry 2.8 server binary to build registry:2 from (default: Debian's)",
    )
    tarball = p.add_mutually_exclusive_group()
    tarball.add_argument(
        "--save",
        type=Path,
        metavar="FILE.tar",
        help="also make every image and write them to one tarball, for rooms without network",
    )
    tarball.add_argument(
        "--load", type=Path, metavar="FILE.tar", help="load the images from a tarball instead"
    )

    p = sub.add_parser("up", help="start (or replace) the registry of a stage")
    p.add_argument(
        "stage",
        choices=[s.value for s in Stage],
        metavar="STAGE",
        help="local, persistent, tls, auth or token; or mirror (with --upstream)",
    )
    common(p)
    registry(p)
    p.add_argument(
        "--user",
        help="(auth) add this user, or change their password; (mirror) the upstream's user the "
        "mirror logs in as (its password asked, or --password-stdin)",
    )
    p.add_argument(
        "--upstream",
        metavar="NAME|URL",
        help="(mirror) the registry to mirror: a reglab registry's name, or a URL; the mirror "
        f"listens on REGLAB_PORT + {ports.MIRROR} unless --port says",
    )
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="(auth, mirror) read the user's password from standard input",
    )
    p.add_argument(
        "--ttl",
        metavar="DURATION",
        help="(mirror, registry 3) how long the mirror keeps what it fetched: a Go duration "
        "such as 24h or 30m (default 168h; 0: forever; 2.8 always keeps it 7 days)",
    )
    p.add_argument(
        "--acl",
        type=Path,
        metavar="FILE",
        help="(token) the access list to use (copied to auth/acl.yml; default: the one there, "
        "else reglab's example)",
    )
    p.add_argument(
        "--require-signed",
        type=Path,
        action="append",
        metavar="KEYFILE",
        help="(local, persistent) put reglab's signature gate in front, at REGLAB_PORT + "
        f"{ports.GATE}: a pull there needs a signature by a key of KEYFILE (GnuPG public keys, "
        "gpg --export, or cosign.pub); copied to sign/trust; repeatable",
    )
    p.add_argument(
        "--immutable",
        action="append",
        default=[],
        metavar="PATTERN",
        help="(with --require-signed) tags the gate lets no push move and no delete remove: "
        "REPOSITORY:TAG patterns such as 'prod/*:v*' (repeatable)",
    )
    p.add_argument(
        "--notify",
        metavar="URL",
        help="send the registry's events to URL (http or https; the registry joins reglab-net, "
        "whose gateway address reaches this machine)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the registry to answer (default 30)",
    )

    p = sub.add_parser("user", help="manage the workshop's users (bcrypt, auth/htpasswd)")
    users = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    u = users.add_parser("add", help="add a user, or change their password (auth and token stages)")
    u.add_argument("user", metavar="NAME")
    u.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    u.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="working folder (default: REGLAB_WORKDIR or ./workdir)",
    )

    p = sub.add_parser("status", help="show reglab's registries")
    p.add_argument("--name", default=None, help="only this container")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "delete",
        help="delete a tag (registry 3: that tag only; 2.8, which has no tag delete: the image "
        "and every tag of it)",
    )
    p.add_argument("image", metavar="REPO:TAG", help="e.g. hello-world:latest")
    p.add_argument(
        "--image",
        dest="image_and_tags",
        action="store_true",
        help="delete the image the tag points to, by digest: every tag of it goes",
    )
    common(p, port=False, running=True)
    add_login_options(p)

    supply_command.add_commands(sub, common)

    p = sub.add_parser("gc", help="collect garbage safely: read-only meanwhile, bytes reclaimed")
    common(p, port=False, running=True)
    p.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    p.add_argument(
        "--delete-untagged",
        action="store_true",
        help="also manifests no tag points to (not for multi-platform images in 2.8)",
    )

    p = sub.add_parser("notebooks", help="make the learner's copies of the notebooks (no outputs)")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=Path("notebooks"),
        help="the workshop's notebooks (default: notebooks)",
    )
    p.add_argument(
        "--to",
        dest="dest",
        type=Path,
        default=None,
        help="where the copies go (default: notebooks/learner)",
    )
    p.add_argument(
        "--reset",
        action="store_true",
        help="overwrite existing copies (and so the learner's work in them)",
    )

    p = sub.add_parser("swarm", help="registry replicas on Docker Swarm behind a front (09)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    s = actions.add_parser(
        "up", help="deploy the stack and its front (TLS + token auth); ready when it returns"
    )
    s.add_argument(
        "--replicas", type=_replicas, default=3, help="registry replicas (1-9, default 3)"
    )
    s.add_argument(
        "--acl",
        type=Path,
        metavar="FILE",
        help="the token servers' access list (copied to auth/acl.yml; default: the one there, "
        "else reglab's example)",
    )
    common(s)
    registry(s)
    s = actions.add_parser("status", help="what runs, and the replicas the front sees")
    common(s, port=False, workdir=False)
    s = actions.add_parser("scale", help="change the number of replicas; the front follows")
    s.add_argument("replicas", type=_replicas, metavar="N", help="1 to 9")
    common(s, port=False, workdir=False)
    s = actions.add_parser(
        "gc", help="collect garbage: replicas read-only, the collector, the cache flushed"
    )
    s.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    s.add_argument(
        "--delete-untagged", action="store_true", help="also delete manifests no tag points to"
    )
    common(s, port=False, workdir=False)
    s = actions.add_parser("down", help="remove the stack and front; leave a swarm reglab made")
    common(s, port=False)
    s.add_argument(
        "--purge", action="store_true", help="also delete the store's volume (every image)"
    )

    p = sub.add_parser("node", help="a Kubernetes node's image side: containerd, CRI pulls (11)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    node_command.add_actions(actions, common)

    p = sub.add_parser(
        "upgrade", help="check a 2.8 registry's configuration for registry 3; write the v3 file"
    )
    upgrade_command.add_arguments(p)

    p = sub.add_parser(
        "listen", help="print the registry's events as they arrive (notebook 07's listener)"
    )
    listen_command.add_arguments(p)

    p = sub.add_parser(
        "conformance",
        help="the OCI distribution-spec conformance suite against a running reglab registry",
    )
    conformance_command.add_arguments(p)

    p = sub.add_parser("down", help="remove the registry container (data stays)")
    common(p, port=False, running=True)
    p.add_argument(
        "--purge",
        action="store_true",
        help="also delete the working folder: data, certificates, users",
    )
    return parser
