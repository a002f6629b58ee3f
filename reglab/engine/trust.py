"""Making Docker trust the workshop CA for one registry address.

Docker reads ``/etc/docker/certs.d/HOST:PORT/ca.crt`` on every connection, so no daemon restart is
needed (the classic tutorial's restart is not). ``HOST:PORT`` must be exactly the string used in
image tags. Docker never verifies registries on 127.0.0.0/8 or ::1 at all, so trust matters only
at other addresses.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
from pathlib import Path

import docker

from reglab.base.errors import CertificateError
from reglab.base.files import write_atomic
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.oneoff import run_once

DOCKER_CERTS_D = Path("/etc/docker/certs.d")


def host_port(host: str, port: int) -> str:
    """``HOST:PORT`` as Docker spells the registry (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def docker_ca_path(host: str, port: int, certs_d: str | Path = DOCKER_CERTS_D) -> Path:
    """Where Docker looks for a registry's CA: ``certs.d/HOST:PORT/ca.crt``.

    HOST:PORT must be exactly the string used in image tags.
    """
    return Path(certs_d) / host_port(host, port) / "ca.crt"


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


# --- through the engine: for a learner in the docker group who is not root -------------------
# The engine runs as root, so anyone allowed to use it can write any file on this machine: being
# in the docker group is being root, in effect. Here that is put to an honest use: a short-lived
# container with /etc/docker/certs.d mounted copies ca.crt there, so no sudo is needed. The
# certificate is first staged in the working folder as trust/HOST:PORT/ca.crt, the layout
# certs.d wants, so one plain `cp -r` does it.

CERTS_D_MOUNT = "/certs.d"
STAGE_MOUNT = "/trust"


def _as_the_engine(
    engine: docker.DockerClient,
    command: list[str],
    certs_d: str | Path,
    more: dict[str, dict[str, str]] | None = None,
) -> None:
    """Run ``command`` in a short-lived reglab-tools container with certs.d mounted."""
    run_once(
        engine,
        TOOLS_IMAGE,
        command,
        volumes={str(certs_d): {"bind": CERTS_D_MOUNT, "mode": "rw"}, **(more or {})},
        what=f"cannot change {certs_d} through the engine ({' '.join(command[:2])})",
        fix="run 'reglab images' (it makes reglab-tools:1)",
        error=CertificateError,
    )


def trust_through_engine(
    engine: docker.DockerClient,
    ca_cert: str | Path,
    host: str,
    port: int,
    stage_dir: Path,
    certs_d: str | Path = DOCKER_CERTS_D,
) -> Path:
    """Make Docker trust ``ca_cert`` for HOST:PORT, writing certs.d through the engine."""
    name = host_port(host, port)
    write_atomic(stage_dir / name / "ca.crt", Path(ca_cert).read_bytes(), 0o644)
    stage = {str(stage_dir): {"bind": STAGE_MOUNT, "mode": "ro"}}
    _as_the_engine(engine, ["cp", "-r", f"{STAGE_MOUNT}/.", f"{CERTS_D_MOUNT}/"], certs_d, stage)
    return Path(certs_d) / name / "ca.crt"


def untrust_through_engine(
    engine: docker.DockerClient,
    host: str,
    port: int,
    stage_dir: Path,
    certs_d: str | Path = DOCKER_CERTS_D,
) -> None:
    """Remove Docker's trust for HOST:PORT (the whole certs.d/HOST:PORT folder), and the stage."""
    name = host_port(host, port)
    _as_the_engine(engine, ["rm", "-rf", f"{CERTS_D_MOUNT}/{name}"], certs_d)
    shutil.rmtree(stage_dir / name, ignore_errors=True)


def trust_commands(
    style: PathStyle, ca_cert: Path, host: str, port: int, stage_dir: Path
) -> list[str]:
    """The command lines that do what :func:`trust_through_engine` does."""
    name = host_port(host, port)
    staged = style.show(stage_dir / name)
    return [
        f"mkdir -p {staged} && cp {style.show(ca_cert)} {style.show(stage_dir / name / 'ca.crt')}",
        f"docker run --rm -v {DOCKER_CERTS_D}:{CERTS_D_MOUNT} "
        f"-v {style.show(stage_dir, mount_to=STAGE_MOUNT + ':ro')} {TOOLS_IMAGE} "
        f"cp -r {STAGE_MOUNT}/. {CERTS_D_MOUNT}/",
    ]


def untrust_commands(style: PathStyle, host: str, port: int, stage_dir: Path) -> list[str]:
    """The command lines that do what :func:`untrust_through_engine` does."""
    name = host_port(host, port)
    return [
        f"docker run --rm -v {DOCKER_CERTS_D}:{CERTS_D_MOUNT} {TOOLS_IMAGE} "
        f"rm -rf {shlex.quote(CERTS_D_MOUNT + '/' + name)}",
        f"rm -rf {style.show(stage_dir / name)}",
    ]
