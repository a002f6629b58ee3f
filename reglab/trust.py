"""Making Docker trust the workshop CA for one registry address.

Docker reads ``/etc/docker/certs.d/HOST:PORT/ca.crt`` on every connection, so no daemon restart is
needed (the classic tutorial's restart is not). ``HOST:PORT`` must be exactly the string used in
image tags. Docker never verifies registries on 127.0.0.0/8 or ::1 at all, so trust matters only
at other addresses.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from .errors import CertificateError
from .files import write_atomic

DOCKER_CERTS_D = Path("/etc/docker/certs.d")


def docker_ca_path(host: str, port: int, certs_d: str | Path = DOCKER_CERTS_D) -> Path:
    """Where Docker looks for a registry's CA: ``certs.d/HOST:PORT/ca.crt``.

    HOST:PORT must be exactly the string used in image tags. IPv6 hosts go in brackets.
    """
    host = f"[{host}]" if ":" in host else host
    return Path(certs_d) / f"{host}:{port}" / "ca.crt"


def install_ca_for_docker(
    ca_cert: str | Path, host: str, port: int, certs_d: str | Path = DOCKER_CERTS_D
) -> Path:
    """Copy the CA certificate where Docker trusts it for HOST:PORT; no daemon restart needed.

    CLI: ``sudo mkdir -p /etc/docker/certs.d/HOST:PORT && sudo cp ca.crt .../ca.crt``.
    Raises CertificateError with that exact command when the folder is not writable.
    """
    target = docker_ca_path(host, port, certs_d)
    data = Path(ca_cert).read_bytes()
    try:
        write_atomic(target, data, 0o644)
    except PermissionError:
        raise CertificateError(
            f"{target.parent} is not writable by this user",
            f"run: sudo mkdir -p '{target.parent}' && sudo cp '{ca_cert}' '{target}'",
        ) from None
    return target


def uninstall_ca_for_docker(host: str, port: int, certs_d: str | Path = DOCKER_CERTS_D) -> bool:
    """Remove the CA installed for HOST:PORT; False when none was there."""
    target = docker_ca_path(host, port, certs_d)
    if not target.exists():
        return False
    target.unlink()
    with contextlib.suppress(OSError):  # the folder holds other files: leave it
        target.parent.rmdir()
    return True
