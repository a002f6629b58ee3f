"""``reglab swarm up|status|scale|gc|down``: registry replicas on Docker Swarm (notebook 09)."""

from __future__ import annotations

import argparse

from reglab.base import settings
from reglab.engine.connection import connect
from reglab.swarm import StaleBridge, SwarmRegistry, front, gc
from reglab.swarm.names import StackNames


def _registry(args: argparse.Namespace) -> SwarmRegistry:
    run: settings.Settings = args.settings  # resolved once, by reglab.cli.main
    if args.action == "up":
        return SwarmRegistry(
            connect(),
            name=run.name,
            port=run.port,
            workdir=run.workdir,
            replicas=args.replicas,
            version=run.version,
        )
    # The others act on what runs: its port and working folder are read from its relay, so
    # the name is enough, from any folder. (REGLAB_WORKDIR, or down's --workdir, serve only
    # when no relay runs.)
    return SwarmRegistry.attach(connect(), run.name, run.workdir, run.port)


def stack_runs(name: str) -> bool:
    """True when a stack of that name runs here (its relay is there): ``reglab gc --name
    STACK`` then collects through the swarm."""
    return front.relay_container(connect(), StackNames(name, 0)) is not None


def run(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.action == "up":
        if registry.up(acl=args.acl):
            print("this engine is now a swarm manager (reglab swarm down leaves it again)")
        replicas = f"{registry.replicas} replicas of {registry.version.label}"
        print(f"stack {registry.name}: {replicas} behind {registry.url}")
        print(f"tokens: {registry.realm} (users: auth/htpasswd, access list: auth/acl.yml)")
        print(f"log in: docker login {registry.address} (trust certs/ca.crt first, see 03)")
    elif args.action == "status":
        for key, value in registry.status().items():
            print(f"{key}: {value}")
    elif args.action == "scale":
        registry.scale(args.replicas)
        print(f"{registry.service}: {args.replicas} replica(s), all up at the front")
    elif args.action == "gc":
        _collect(registry, args.dry_run, args.delete_untagged)
    else:
        try:
            left, stale = registry.down(purge=args.purge), None
        except StaleBridge as exc:  # left, and the engine keeps an empty docker_gwbridge
            left, stale = True, exc
        print(f"removed the stack {registry.name} and {registry.relay}")
        if args.purge:
            print(f"deleted the store's volume {registry.volume}")
        else:
            print(f"images kept in the volume {registry.volume} (--purge deletes it)")
        print("left the swarm reglab created" if left else "the engine's swarm is left as it was")
        if stale is not None:
            print(stale)
    return 0


def _collect(registry: SwarmRegistry, dry_run: bool, delete_untagged: bool) -> None:
    if not dry_run:
        print(f"{registry.service}: read-only (a rolling update), while garbage is collected")
    done = gc.collect(registry, dry_run=dry_run, delete_untagged=delete_untagged)
    would = "would be" if dry_run else "were"
    print(f"{len(done.eligible)} blob(s) {would} deleted")
    if dry_run:
        print("nothing changed (a dry run)")
    else:
        print(f"the store's blobs: {done.before:,} -> {done.after:,} bytes")
        print("the shared cache flushed (redis-cli FLUSHDB); replicas read-write again")
