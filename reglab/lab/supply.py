"""Notebook 12: what an image carries (an SBOM attached to it) and who vouches for it
(signatures, and a gate that refuses what no trusted key signed), each step with its command.

from reglab.lab import supply
ws = supply.setup()                                 # the gate's image; syft, oras, cosign
sbom = supply.sbom(ws, reg, "app:1")                # $ syft registry:... -o spdx-json=FILE
digest = supply.attach(ws, reg, "app:1", sbom)      # $ oras attach ...; oras tag ...
release = supply.gpg_key(ws, "release")             # $ gpg --quick-gen-key ...; gpg --export
supply.sign(ws, reg, "app:1", release.secret)       # $ skopeo copy --sign-by FPR ...
gate = supply.gate(ws, reg, [release.public])       # $ docker run ... reglab-gate:1
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from reglab.base.errors import ClientError, RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.lab.workshop import Workshop
from reglab.registry import attach as attachments
from reglab.registry import cosign, gc, keys, signing
from reglab.registry.client import RegistryClient
from reglab.registry.container import Registry
from reglab.registry.gate import Gate
from reglab.registry.sbom import Target, attach_step, ensure_oras, sbom_step
from reglab.registry.simplesign import SignFiles

#: The manifest types a ``curl`` line asks for (an attachment is an OCI manifest).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def setup() -> Workshop:
    """:meth:`Workshop.setup` with the gate's image, and the three clients the steps type
    (syft from PyPI; oras and cosign built with Go, once, and put beside reglab)."""
    ws = Workshop.setup("supply")
    ensure_oras()
    cosign.ensure_cosign()
    print("syft, oras and cosign are installed beside reglab (the terminal's PATH has them)")
    return ws


def fresh_start(ws: Workshop) -> str:
    """Remove what an earlier run of this notebook left (its keys, signatures and volume),
    then make the registry's volume: the notebook starts from the same state each time."""
    volume = f"{ws.name}-supply"
    registry = Registry(ws.config("persistent", data_volume=volume), ws.engine)
    left = Gate(registry.config, ws.engine)
    if left.container is not None:  # a gate an earlier run kept running
        ws.cli(f"docker rm -f {left.name}")
        left.remove()
    if registry.container is not None:
        ws.cli(f"docker rm -f -v {ws.name}")
        registry.remove()
    folders = [SignFiles.of(ws.workdir).root, ws.workdir / "keys"]
    ws.cli(f"rm -rf {' '.join(ws.style.show(f) for f in folders)}")
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    ws.cli(f"docker volume rm -f {volume}")
    _remove_volume(ws, volume)
    ws.cli(f"docker volume create {volume}")
    ws.engine.volumes.create(volume)
    print(f"volume {volume}: the registry's storage, new for this run")
    return volume


def sbom(ws: Workshop, registry: Registry, ref: str) -> Path:
    """Make the image's SBOM with syft (SPDX JSON, in ``sbom/``), and say what it lists."""
    target = Target.parse(registry, ref)
    out = ws.workdir / "sbom" / target.file_name
    sbom_step(target, out, None, ws.style).run(ws.cli)
    document = json.loads(out.read_text())
    found = [
        f"{p['name']} {p.get('versionInfo', '')}".strip()
        for p in document.get("packages", [])
        if p.get("name") != f"{registry.address}/{target.repository}"  # the image itself
    ]
    print(f"{document.get('spdxVersion')} document {ws.style.show(out)}")
    print(f"packages found: {', '.join(found) or 'none'}")
    return out


def attach(
    ws: Workshop,
    registry: Registry,
    ref: str,
    file: Path,
    artifact_type: str = attachments.SPDX_JSON,
) -> str:
    """Attach ``file`` to the image (``subject``), with a tag of its own; its digest."""
    target = Target.parse(registry, ref)
    digest = attach_step(target, file, artifact_type, None, ws.style).run(ws.cli)
    print(f"attached {file.name} to {ref} as {digest} ({artifact_type})")
    return digest


def attach_untagged(ws: Workshop, registry: Registry, ref: str, file: Path, kind: str) -> str:
    """``oras attach`` alone, as most people type it: the attachment gets no tag of its own,
    only its line in the fall-back index. reglab runs the very line it prints."""
    target = Target.parse(registry, ref)
    shown = ws.style.show(file)
    line = (
        f"oras attach --plain-http --disable-path-validation --artifact-type {kind} "
        f"--format go-template='{{{{.digest}}}}' {target.ref} {shown}:{kind}"
    )
    ws.cli(line)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path}, check=False)  # fmt: skip
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RegistryError(f"oras attach failed: {said[-1] if said else '?'}", "run Step 1 again")
    digest = done.stdout.strip().splitlines()[-1]
    print(f"attached {file.name} to {ref} as {digest}, with no tag of its own")
    return digest


def write_note(ws: Workshop, name: str, text: str) -> Path:
    """A small text file to attach (a build note), written as the typed line does."""
    path = ws.workdir / "sbom" / name
    ws.cli(f"printf '%s\\n' '{text}' > {ws.style.show(path)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def referrers_api(ws: Workshop, registry: Registry, repository: str, digest: str) -> int:
    """``GET /v2/REPOSITORY/referrers/DIGEST``: OCI 1.1's referrers API; its status."""
    path = f"/v2/{repository}/referrers/{digest}"
    ws.cli(f"curl -s -o /dev/null -w '%{{http_code}}\\n' {registry.url}{path}")
    status = _status(registry, path, {})
    print(status)
    return status


def _status(registry: Registry, path: str, headers: dict[str, str]) -> int:
    """The status a GET of ``path`` answers (the client raises on anything but 2xx)."""
    try:
        with registry.client() as api:
            return api.request("GET", path, headers=headers).status_code
    except ClientError as exc:
        return int(exc.status or 0)


def referrers(ws: Workshop, registry: Registry, ref: str) -> dict[str, str]:
    """What is attached to the image, from the API or else the fall-back tag: each
    attachment's digest and artifact type."""
    target = Target.parse(registry, ref)
    ws.cli(f"oras discover --plain-http {target.ref}")
    with registry.client() as api:
        found = attachments.referrers(api, target.repository, target.tag)
    print(f"{target.ref} ({found.subject}): from {found.via}")
    # by type: the index's order follows the digests, which change from run to run
    for entry in sorted(found.descriptors, key=lambda e: str(e.get("artifactType", ""))):
        print(f"  {entry['digest']}  {entry.get('artifactType', '?')}")
    return {str(e["digest"]): str(e.get("artifactType", "")) for e in found.descriptors}


def collect(ws: Workshop, registry: Registry) -> gc.Collection:
    """``reglab gc --delete-untagged``: the attachments whose image is gone deleted first (and
    their fall-back index), then notebook 05's safe collection, untagged manifests too."""
    ws.cli(f"reglab gc --delete-untagged --name {registry.config.name}")
    done = gc.collect(registry, delete_untagged=True)
    print(f"attachments whose image is gone, deleted first: {len(done.orphans or ())}")
    for digest in done.orphans or ():
        print(f"  {digest}")
    print(f"untagged manifests the collector unlinked: {len(done.manifests)}")
    for digest in done.manifests:
        print(f"  {digest}")
    print(f"blobs deleted: {len(done.eligible)}; bytes of blobs: before {done.before:,}, "
          f"after {done.after:,}")  # fmt: skip
    return done


def delete_through(ws: Workshop, front: Gate, repository: str, reference: str) -> int:
    """``DELETE`` of a manifest through the gate (a tag, or a digest); the status."""
    path = f"/v2/{repository}/manifests/{reference}"
    ws.cli(f"curl -s -o /dev/null -w '%{{http_code}}\\n' -X DELETE {front.url}{path}")
    try:
        with RegistryClient(front.url) as api:
            status = api.request("DELETE", path).status_code
    except ClientError as exc:
        status = int(exc.status or 0)
    print(status)
    return status


def kept_untagged(registry: Registry) -> int:
    """What the registry answers, after ``--delete-untagged``, for an attachment with no tag
    of its own: 200 on registry 3, which keeps what an index (the fall-back tag's) names;
    404 on 2.8, which counts tags only."""
    return 200 if registry.config.version.major == "3" else 404


def try_copy(ws: Workshop, source: str, target: str) -> str | None:
    """``skopeo copy`` between two plain-HTTP addresses, expecting a refusal: skopeo's words."""
    line = (
        f"skopeo copy --src-tls-verify=false --dest-tls-verify=false "
        f"docker://{source} docker://{target}"
    )
    ws.cli(line)
    done = subprocess.run(line.split(), capture_output=True, text=True, check=False, timeout=120)
    if done.returncode == 0:
        print(f"copied {source} to {target}")
        return None
    said = signing.skopeo_problem(done)
    print(f"refused: {said}")
    return said


def status_of(ws: Workshop, registry: Registry, repository: str, digest: str) -> int:
    """What the registry answers for a manifest by digest (200 served, 404 gone)."""
    path = f"/v2/{repository}/manifests/{digest}"
    ws.cli(
        f"curl -s -o /dev/null -w '%{{http_code}}\\n' -H 'Accept: {OCI_MANIFEST}' "
        f"{registry.url}{path}"
    )
    status = _status(registry, path, {"Accept": OCI_MANIFEST})
    print(status)
    return status


@dataclass(frozen=True)
class KeyPair:
    """A key pair's two files: the secret one signs, the public one is trusted."""

    secret: Path
    public: Path


def gpg_key(ws: Workshop, name: str) -> KeyPair:
    """A new GnuPG signing key ``NAME <NAME@reglab.test>`` (ed25519, no passphrase: an
    unattended signer's), made in a GnuPG home for this step, exported to ``keys/NAME.key``
    (secret) and ``keys/NAME.pub`` (public); the home goes afterwards."""
    folder = ws.workdir / "keys"
    pair = KeyPair(folder / f"{name}.key", folder / f"{name}.pub")
    home = f'"${keys.HOME_VARIABLE}"'
    base = f"gpg --homedir {home} --batch"
    uid = f"{name}@reglab.test"
    lines = [
        f"mkdir -p {ws.style.show(folder)}",
        keys.OPEN_HOME,
        f"{base} --pinentry-mode loopback --passphrase '' --quick-gen-key "
        f"'{name} <{uid}>' ed25519 sign never",
        f"{base} --armor --export-secret-keys {uid} > {ws.style.show(pair.secret)}",
        f"{base} --armor --export {uid} > {ws.style.show(pair.public)}",
        keys.CLOSE_HOME,
    ]
    for line in lines:
        ws.cli(line)
    folder.mkdir(parents=True, exist_ok=True)
    with keys.gnupg_home() as gnupg:
        made = keys.gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                        f"{name} <{uid}>", "ed25519", "sign", "never", home=gnupg)  # fmt: skip
        if made.returncode != 0:
            raise RegistryError(f"gpg could not make a key: {made.stderr.decode()[-200:]}",
                                "check that GnuPG is installed (gpg --version)")  # fmt: skip
        secret = keys.gpg("--armor", "--export-secret-keys", uid, home=gnupg).stdout
        public = keys.gpg("--armor", "--export", uid, home=gnupg).stdout
    write_atomic(pair.secret, secret, 0o600)
    write_atomic(pair.public, public, 0o644)
    key = keys.read_key(pair.public, secret=False)
    print(f"key {name}: fingerprint {key.fingerprint}")
    return pair


def cosign_key(ws: Workshop, name: str) -> KeyPair:
    """A new cosign key pair (``cosign generate-key-pair``, empty password): ``keys/NAME.key``
    and ``keys/NAME.pub``."""
    folder = ws.workdir / "keys"
    pair = KeyPair(folder / f"{name}.key", folder / f"{name}.pub")
    prefix = folder / name
    lines = [
        f"rm -f {ws.style.show(pair.secret)} {ws.style.show(pair.public)}",
        f"mkdir -p {ws.style.show(folder)}",
        f"COSIGN_PASSWORD= cosign generate-key-pair --output-key-prefix {ws.style.show(prefix)}",
    ]
    for line in lines:
        ws.cli(line)
    for path in (pair.secret, pair.public):
        path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [cosign.ensure_cosign(), "generate-key-pair", "--output-key-prefix", str(prefix)],
        env={**os.environ, "COSIGN_PASSWORD": ""}, capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0 or not pair.public.is_file():
        raise RegistryError(f"cosign could not make a key pair: {done.stderr.strip()[-200:]}",
                            "run the cell again")  # fmt: skip
    print(f"cosign key pair {name}: {ws.style.show(pair.secret)}, {ws.style.show(pair.public)}")
    return pair


def sign(ws: Workshop, registry: Registry, ref: str, key_file: Path) -> str:
    """Sign the image with a key file: GnuPG's through skopeo, cosign's through cosign."""
    key = keys.read_key(key_file, secret=True)
    target = Target.parse(registry, ref)
    if key.kind == keys.COSIGN:
        digest = cosign.sign_step(target, key, ws.style).run(ws.cli)
    else:
        files = SignFiles.of(registry.config.workdir)
        digest = signing.sign_step(target, key, files, ws.style).run(ws.cli)
    print(f"signed {ref} ({digest}) with {key_file.name}")
    return digest


def verify(ws: Workshop, registry: Registry, ref: str, key_file: Path) -> signing.Verdict:
    """Check the image with one public key file, as skopeo or cosign would before a pull."""
    key = keys.read_key(key_file, secret=False)
    target = Target.parse(registry, ref)
    if key.kind == keys.COSIGN:
        verdict = cosign.verify_step(target, key, ws.style).run(ws.cli)
    else:
        files = SignFiles.of(registry.config.workdir)
        verdict = signing.verify_step(target, key, files, ws.style).run(ws.cli)
    print(f"accepted: {verdict.said}" if verdict.accepted else f"refused: {verdict.said}")
    return verdict


def gate(
    ws: Workshop, registry: Registry, key_files: list[Path], immutable: tuple[str, ...] = ()
) -> Gate:
    """Start the signature gate in front of the registry, trusting ``key_files``."""
    front = Gate(registry.config, ws.engine, immutable)
    trust(ws, front, key_files)
    if front.container is not None:
        ws.cli(f"docker rm -f {front.name}")
    ws.cli(front.docker_run_command(ws.style))
    front.start()
    print(f"gate {front.name} answers at {front.url}, in front of {registry.url}")
    return front


def trust(ws: Workshop, front: Gate, key_files: list[Path]) -> None:
    """The keys the gate trusts from its next request on (the others no longer count)."""
    chosen = [keys.read_key(path, secret=False) for path in key_files]
    signing.trust_step(chosen, front.files, ws.style).run(ws.cli)
    print(f"the gate trusts: {', '.join(path.name for path in key_files)}")


def denials(ws: Workshop, front: Gate) -> list[str]:
    """What the gate refused last, as its log says."""
    ws.cli(f"docker logs {front.name} 2>&1 | grep 'denied: ' | tail -1")
    said = front.denials()
    print(said[-1] if said else "(nothing refused yet)")
    return said


def cleanup(ws: Workshop, front: Gate | None, volume: str, keep_running: bool = False) -> None:
    """Remove the gate and the registry, the image names and, unless kept, the registry's
    volume."""
    if front is not None and front.container is not None and not keep_running:
        ws.cli(f"docker rm -f {front.name}")
        front.remove()
    ws.cleanup(keep_running=keep_running)
    if keep_running:
        return
    ws.cli(f"docker volume rm {volume}")
    _remove_volume(ws, volume)
    print(f"volume {volume} removed")


def _remove_volume(ws: Workshop, volume: str) -> None:
    try:
        found = ws.engine.volumes.get(volume)
    except docker.errors.NotFound:
        return
    with docker_errors(f"cannot remove the volume {volume}", f"docker volume rm {volume}"):
        found.remove(force=True)


__all__ = [
    "KeyPair", "OCI_MANIFEST", "attach", "attach_untagged", "cleanup", "collect", "cosign_key",
    "delete_through", "denials",
    "fresh_start", "gate", "gpg_key", "kept_untagged", "referrers", "referrers_api", "sbom",
    "setup", "sign", "status_of", "trust", "try_copy", "verify", "write_note",
]  # fmt: skip
