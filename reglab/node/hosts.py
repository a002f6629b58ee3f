"""What a Kubernetes node reads to reach a registry: containerd's ``hosts.toml`` files.

The kubelet pulls through containerd (CRI's ``ImageService/PullImage``), and containerd reads
neither Docker's ``daemon.json`` nor ``/etc/docker/certs.d``: it reads one ``hosts.toml`` per
registry host under its ``config_path``, in a folder named as the image reference names the
host (``certs.d/127.0.0.1:5000/hosts.toml``, ``certs.d/docker.io/hosts.toml``). The files are
read at each pull: no restart. The format, and the fall-backs when a file is missing, are in
containerd's ``docs/hosts.md``.

Three files cover what a workshop registry needs, each rendered here from data:

- :func:`trust`: a TLS registry signed by a private CA (``ca = "ca.crt"``, beside the file: a
  relative path, so the folder works wherever it is copied, kind's nodes included). Without
  it, a pull fails with ``x509: certificate signed by unknown authority``. The CA is written
  at the top of the file too: containerd adds ``server`` as one more host, with the file's
  top-level settings only, and a 404 from the ``[host]`` (a missing tag) makes it ask that
  one next, which without the CA reports a certificate error instead of "not found".
- :func:`plain_http`: a registry without TLS. containerd asks every host over HTTPS unless its
  file says ``http://`` (``localhost`` and loopback addresses excepted: it never resolves a
  name to decide); without it: ``http: server gave HTTP response to HTTPS client``.
- :func:`mirror`: another registry in front of an upstream (``docker.io``), for ``pull`` and
  ``resolve`` only. containerd adds ``?ns=docker.io`` to each request it sends a mirror.

``skip_verify = true`` exists (:class:`Host`), and is never what these functions write: it
turns off what TLS is for, and a CA file does the same job properly.

Pure functions of their arguments: no engine, no disk (:mod:`reglab.node` writes the files).
"""

from __future__ import annotations

from dataclasses import dataclass

from reglab.base.errors import ConfigError
from reglab.images.nodeconfig import CRI_REGISTRY_SECTION

#: What containerd may ask a host for: finding a digest by tag, fetching, pushing.
PULL = ("pull", "resolve")
ALL = ("pull", "resolve", "push")
#: Where Docker Hub's images are served from: the ``server`` of ``docker.io``'s file.
DOCKER_HUB_SERVER = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Host:
    """One ``[host."URL"]`` table: a place containerd tries, in the file's order."""

    url: str
    capabilities: tuple[str, ...] = PULL
    #: The CA file, as the node's containerd sees it (a path on the node).
    ca: str | None = None
    #: Never written by reglab (see the module's docstring); here to be read and explained.
    skip_verify: bool = False

    def toml(self) -> str:
        lines = [f"[host.{_quote(self.url)}]"]
        lines.append(f"  capabilities = [{', '.join(_quote(c) for c in self.capabilities)}]")
        if self.ca is not None:
            lines.append(f"  ca = {_quote(self.ca)}")
        if self.skip_verify:
            lines.append("  skip_verify = true")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class HostsFile:
    """One ``hosts.toml``: the folder it goes in under ``config_path`` (the host as image
    references name it) and what it says."""

    namespace: str
    server: str
    hosts: tuple[Host, ...] = ()
    #: The CA at the top level: what ``server`` (asked last) verifies with.
    ca: str | None = None

    @property
    def path(self) -> str:
        """Where it goes, relative to ``config_path``."""
        return f"{self.namespace}/hosts.toml"

    def toml(self) -> str:
        top = f"server = {_quote(self.server)}\n"
        if self.ca is not None:
            top += f"ca = {_quote(self.ca)}\n"
        parts = [top]
        parts += [host.toml() for host in self.hosts]
        return "\n".join(parts)


def trust(address: str, ca: str = "ca.crt") -> HostsFile:
    """A TLS registry at ``address`` (``host:port``) whose certificate the CA file ``ca`` (a
    path on the node, or relative to the file's folder) signed: pulls and pushes, verified,
    by the ``[host]`` and by ``server`` alike."""
    address = registry_address(address)
    url = f"https://{address}"
    return HostsFile(address, url, (Host(url, ALL, ca=ca),), ca=ca)


def plain_http(address: str) -> HostsFile:
    """A registry at ``address`` that speaks plain HTTP (the local stage)."""
    address = registry_address(address)
    url = f"http://{address}"
    return HostsFile(address, url, (Host(url, ALL),))


def mirror(
    via: str, upstream: str = "docker.io", ca: str | None = None, fallback: bool = True
) -> HostsFile:
    """Send pulls of ``upstream``'s images (``docker.io/library/NAME``) to the registry at
    ``via`` first (HTTPS verified with ``ca``; plain HTTP without). With ``fallback`` the file
    names the upstream as ``server``, which containerd asks when the mirror cannot answer (a
    connected cluster's choice); without, the mirror is the server too, so a pull never leaves
    for the upstream (an air-gapped cluster's, and this workshop's: nothing leaves the
    machine). Only ``pull`` and ``resolve``: nothing is pushed to a mirror."""
    via = registry_address(via)
    url = f"https://{via}" if ca else f"http://{via}"
    server = DOCKER_HUB_SERVER if upstream == "docker.io" else f"https://{upstream}"
    top_ca = ca if not fallback else None  # the upstream keeps the system's CAs
    return HostsFile(
        registry_address(upstream), server if fallback else url, (Host(url, PULL, ca=ca),), top_ca
    )


def registry_address(address: str) -> str:
    """``host`` or ``host:port`` as an image reference names a registry: no scheme, no path.
    Anything else is one line (a ConfigError) naming what to give instead."""
    text = address.strip()
    if not text or any(c in text for c in "/ \t") or text.startswith(":"):
        raise ConfigError(
            f"not a registry address: {address!r}",
            "give host:port as an image reference starts, for example 127.0.0.1:5000",
        )
    host, colon, port = text.rpartition(":")
    if colon and not text.endswith("]") and not (port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(
            f"not a registry address: {address!r} (the port must be 1-65535)",
            "give host:port, for example 127.0.0.1:5000",
        )
    return text


def containerd_config(config_path: str, version: int = 2) -> str:
    """The part of containerd's ``config.toml`` that points its CRI plugin at the folder of
    ``hosts.toml`` files (``config_path``); ``version`` is the file's own (2 or 3)."""
    if version not in CRI_REGISTRY_SECTION:
        raise ConfigError(
            f"containerd configuration version {version} is not one reglab writes",
            "use 2 (containerd 1.6 and 1.7) or 3 (containerd 2.x)",
        )
    return (
        f"version = {version}\n\n[{CRI_REGISTRY_SECTION[version]}]\n"
        f"  config_path = {_quote(config_path)}\n"
    )


def _quote(text: str) -> str:
    """A TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = [
    "ALL", "CRI_REGISTRY_SECTION", "DOCKER_HUB_SERVER", "Host", "HostsFile", "PULL",
    "containerd_config", "mirror", "plain_http", "registry_address", "trust",
]  # fmt: skip
