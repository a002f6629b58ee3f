"""Copying images from one registry to another with skopeo: replication without a mirror.

A mirror (reglab.registry.mirror) fills itself on demand, one pull at a time.
``skopeo sync`` copies every
tag of a repository ahead of time, registry to registry, without the Docker engine: the copy
keeps the manifests byte for byte, so the digests are the same on both sides. Debian's
``skopeo`` package (1.9) is a real client from outside the Docker world, which makes it a good
witness too.

Plain-HTTP workshop registries need ``--src-tls-verify=false`` / ``--dest-tls-verify=false``
(skopeo then falls back to HTTP); over TLS, give the CA with ``--src-cert-dir`` instead.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

from reglab.base.errors import ConfigError, RegistryError


def sync_command(source: str, repository: str, destination: str) -> list[str]:
    """``skopeo sync`` of every tag of ``source/repository`` into ``destination/repository``."""
    return [
        "skopeo", "sync", "--src", "docker", "--dest", "docker",
        "--src-tls-verify=false", "--dest-tls-verify=false",
        f"{source}/{repository}", destination,
    ]  # fmt: skip


def inspect_command(ref: str) -> list[str]:
    """``skopeo inspect`` printing the digest of ``ref`` (HOST:PORT/REPO:TAG)."""
    return ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{ref}"]


def shown(command: list[str]) -> str:
    return shlex.join(command)


def run(command: list[str], timeout: float = 300.0) -> str:
    """Run a skopeo command; return what it printed. One-line errors."""
    if shutil.which(command[0]) is None:
        raise ConfigError(
            f"{command[0]} is not installed", "install it: sudo apt-get install skopeo"
        )
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RegistryError(f"{shown(command[:2])} took longer than {timeout:g} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RegistryError(
            f"{shown(command[:2])} failed: {last[-300:]}",
            "check that both registries answer (reglab status)",
        )
    return result.stdout


def sync(source: str, repository: str, destination: str) -> str:
    """Copy every tag of ``repository`` from one registry (HOST:PORT) to another."""
    return run(sync_command(source, repository, destination))


def digest(ref: str) -> str:
    """The manifest digest of ``ref`` as skopeo reads it from the registry."""
    return run(inspect_command(ref)).strip()


__all__ = ["digest", "inspect_command", "sync", "sync_command"]
