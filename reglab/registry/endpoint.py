"""What a registry looks like from outside: an address, a URL, the CA to verify it, a client.

A single registry (:class:`reglab.registry.container.Registry`) and the Swarm stack's front
(:class:`reglab.swarm.SwarmRegistry`) both satisfy :class:`Endpoint`, so a checkpoint, a widget
or a command that only *talks* to a registry takes either: it never needs to know whether one
container or six replicas behind a front answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from reglab.registry.client import RegistryClient


@runtime_checkable
class Endpoint(Protocol):
    """A registry reached over HTTP(S) at ``address`` (``HOST:PORT``, the string image names
    and ``docker login`` use)."""

    @property
    def address(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def ca_file(self) -> Path | None:
        """The CA that verifies its certificate (``None``: plain HTTP)."""

    def ref(self, repository: str, tag: str = "latest") -> str:
        """``HOST:PORT/REPOSITORY:TAG``: an image name the engine pushes to this registry."""

    def client(self, auth: tuple[str, str] | None = None) -> RegistryClient:
        """Its HTTP API, verifying TLS with :attr:`ca_file`."""
