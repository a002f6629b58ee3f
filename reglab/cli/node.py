"""``reglab node up|trust|mirror|forget|pull|down``: a Kubernetes node's image side (notebook 11).

    reglab node up                                  Debian's containerd with CRI, in a container
    reglab node trust HOST:PORT [--ca CA_FILE]      its hosts.toml (plain HTTP without --ca)
    reglab node mirror docker.io --via HOST:PORT [--ca CA_FILE]
    reglab node pull REF [--user NAME --password-stdin]   the kubelet's CRI PullImage
    reglab node forget HOST:PORT                    remove that host's settings
    reglab node down                                the node and every image it pulled

Each prints the lines a terminal types to do the same (``$ ...``), then does it. The node is
``NAME-node`` (``--name``, else ``REGLAB_NAME``), its ``hosts.toml`` files under the working
folder's ``node/certs.d``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reglab.base.settings import Settings
from reglab.base.shell import PathStyle
from reglab.cli.login import add_login_options, read_password
from reglab.engine.connection import connect
from reglab.engine.spec import Step
from reglab.node.container import REGISTRY_HOST, node_of

T = TypeVar("T")


def add_actions(actions: Any, add: Callable[..., None]) -> None:
    """The node's actions, on ``reglab node``'s subparsers; ``add(parser, port=False)`` gives
    each --name and --workdir (reglab.cli.args)."""
    s = actions.add_parser("up", help="start the node: Debian's containerd with CRI")
    add(s, port=False)
    s = actions.add_parser("trust", help="write the hosts.toml of a registry (and its CA)")
    s.add_argument(
        "address", metavar="HOST:PORT", help=f"as the node names it: {REGISTRY_HOST}:5000"
    )
    s.add_argument(
        "--ca", type=Path, metavar="CA_FILE", help="HTTPS with this CA (else plain HTTP)"
    )
    add(s, port=False)
    s = actions.add_parser("mirror", help="send a registry's pulls to yours (docker.io)")
    s.add_argument("upstream", metavar="REGISTRY", help="the registry mirrored, e.g. docker.io")
    s.add_argument("--via", required=True, metavar="HOST:PORT", help="your registry")
    s.add_argument(
        "--ca", type=Path, metavar="CA_FILE", help="HTTPS with this CA (else plain HTTP)"
    )
    add(s, port=False)
    s = actions.add_parser("forget", help="remove a registry host's hosts.toml and CA")
    s.add_argument("address", metavar="HOST:PORT")
    add(s, port=False)
    s = actions.add_parser("pull", help="pull as the kubelet does (CRI PullImage)")
    s.add_argument("ref", metavar="REF", help=f"e.g. {REGISTRY_HOST}:5000/hello-world:latest")
    add_login_options(s, "(a pull secret's login)")
    add(s, port=False)
    s = actions.add_parser("down", help="remove the node and every image it holds")
    add(s, port=False)


def _run(step: Step[T]) -> T:
    return step.run(lambda line: print(f"$ {line}"))


def run(args: argparse.Namespace) -> int:
    env: Settings = args.settings  # resolved once, by reglab.cli.main
    node = node_of(connect(), env.name, env.workdir)
    style = PathStyle.here(env.workdir, env.workdir_from_env)
    if args.action == "up":
        _run(node.up(style))
        print(
            f"node {node.name}: its CRI answers; hosts.toml files in {style.show(node.hosts_dir)}"
        )
    elif args.action == "trust":
        path = _run(node.trust(args.address, args.ca, style))
        how = "HTTPS, verified with that CA" if args.ca else "plain HTTP"
        print(f"the node asks {args.address} over {how} ({style.show(path)})")
    elif args.action == "mirror":
        path = _run(node.mirror(args.via, args.ca, args.upstream, style))
        print(f"the node pulls {args.upstream}'s images from {args.via} only ({style.show(path)})")
    elif args.action == "forget":
        _run(node.forget(args.address, style))
        print(f"the node asks {args.address} over HTTPS again, with only the system's CAs")
    elif args.action == "pull":
        login = (args.user, read_password(args)) if args.user else None
        if login:
            print(f"(the login in CRICTL_CREDS, as {args.user}:PASSWORD)")
        pulled = _run(node.pull(args.ref, login))
        print(f"{args.ref}: digest {pulled.digest or '(none recorded)'}")
        print(f"image id {pulled.image_id}")
    else:
        removed = _run(node.down())
        print(f"removed the node {node.name} and its images" if removed else "no node ran")
    return 0


__all__ = ["add_actions", "run"]
