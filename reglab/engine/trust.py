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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from reglab.base.errors import CertificateError
from reglab.base.files import write_atomic
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.oneoff import one_off, run_once
from reglab.engine.spec import ContainerSpec, Mount, Step

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


@dataclass(frozen=True)
class EngineTrust:
    """Docker's trust of a CA for one ``HOST:PORT``, changed in certs.d through the engine.

    Each change is a :class:`~reglab.engine.spec.Step`: the lines a learner types, and what
    reglab runs (the same one-off container, through the SDK).
    """

    engine: docker.DockerClient
    host: str
    port: int
    #: The working folder's trust/, where ca.crt is staged as HOST:PORT/ca.crt.
    stage_dir: Path
    certs_d: Path = DOCKER_CERTS_D

    @property
    def name(self) -> str:
        return host_port(self.host, self.port)

    def copy_spec(self) -> ContainerSpec:
        """A reglab-tools one-off that copies the staged trust/ into certs.d."""
        mounts = (Mount(self.certs_d, CERTS_D_MOUNT), Mount(self.stage_dir, STAGE_MOUNT, True))
        return one_off(TOOLS_IMAGE, ("cp", "-r", f"{STAGE_MOUNT}/.", f"{CERTS_D_MOUNT}/"),
                       mounts=mounts)  # fmt: skip

    def delete_spec(self) -> ContainerSpec:
        """A reglab-tools one-off that removes certs.d/HOST:PORT."""
        command = ("rm", "-rf", f"{CERTS_D_MOUNT}/{self.name}")
        return one_off(TOOLS_IMAGE, command, mounts=(Mount(self.certs_d, CERTS_D_MOUNT),))

    def _run(self, spec: ContainerSpec) -> None:
        run_once(
            self.engine,
            spec,
            what=f"cannot change {self.certs_d} through the engine ({' '.join(spec.command[:2])})",
            fix="run 'reglab images' (it makes reglab-tools:1)",
            error=CertificateError,
        )

    def add(self, ca_cert: Path, style: PathStyle | None = None) -> Step[Path]:
        """Make Docker trust ``ca_cert`` for HOST:PORT: staged, then copied into certs.d."""
        show = _shown(style)
        staged = self.stage_dir / self.name
        copy = self.copy_spec()

        def action() -> Path:
            write_atomic(staged / "ca.crt", Path(ca_cert).read_bytes(), 0o644)
            self._run(copy)
            return Path(self.certs_d) / self.name / "ca.crt"

        lines = [
            f"mkdir -p {show(staged)} && cp {show(ca_cert)} {show(staged / 'ca.crt')}",
            copy.shell(style),
        ]
        return Step(lines, action)

    def remove(self, style: PathStyle | None = None) -> Step[None]:
        """Remove Docker's trust for HOST:PORT (the whole certs.d/HOST:PORT), and the stage."""
        show = _shown(style)
        staged = self.stage_dir / self.name
        delete = self.delete_spec()

        def action() -> None:
            self._run(delete)
            shutil.rmtree(staged, ignore_errors=True)

        return Step([delete.shell(style), f"rm -rf {show(staged)}"], action)


def _shown(style: PathStyle | None) -> Callable[[Path], str]:
    """How a path is typed: as ``style`` writes it, else absolute."""
    return style.show if style else lambda path: shlex.quote(str(path))
