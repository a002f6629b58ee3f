"""Signing and checking an image with cosign's key pair, no transparency log: each step also
written as the line a terminal types.

cosign (Sigstore's client, built with Go at a pinned version: :data:`COSIGN_PROGRAM`) signs
the image's digest and stores the signature *in the registry*, as an OCI 1.1 referrer of the
image: a Sigstore bundle (its DSSE envelope signs an in-toto statement naming the digest).
Neither registry version has the referrers API, so cosign lists it under the fall-back tag
``sha256-HEX``, as reglab's attachments are (:mod:`.attach`). ``cosign verify`` checks it
with the public key. Keys come from ``cosign generate-key-pair`` (``cosign.key``, encrypted
with ``COSIGN_PASSWORD``, which may be empty; ``cosign.pub``).

Without a transparency log: ``--tlog-upload=false --use-signing-config=false`` to sign,
``--insecure-ignore-tlog=true`` to check. In a room with no internet that is the only way; the
public key is then the whole trust, as a GnuPG key is for simple signing.
"""

from __future__ import annotations

import os
import subprocess

from reglab.base.errors import ConfigError, RegistryError
from reglab.base.shell import PathStyle, show_path
from reglab.engine.spec import Step
from reglab.images import gobuild
from reglab.registry.keys import COSIGN, Key
from reglab.registry.sbom import Target, tls_options
from reglab.registry.signing import Verdict, image_digest, without_login

COSIGN_PROGRAM = gobuild.GoProgram(
    "cosign",
    "github.com/sigstore/cosign/v3/cmd/cosign",
    "v3.1.3",
    ldflags="-s -w -X sigs.k8s.io/release-utils/version.gitVersion=v3.1.3",
)
#: The password of cosign.key, from the terminal's environment when it has one.
PASSWORD = 'COSIGN_PASSWORD="${COSIGN_PASSWORD:-}"'


def ensure_cosign() -> str:
    """``cosign``, built once (cached) and copied beside reglab."""
    return str(gobuild.install_beside_python(COSIGN_PROGRAM))


def _registry_options(target: Target, style: PathStyle | None) -> list[str]:
    """Plain HTTP, or the workshop CA."""
    without_login(target, "sign and verify with cosign", "cosign itself, after cosign login")
    config = target.registry.config
    if not config.stage.tls:
        return ["--allow-http-registry"]
    return ["--registry-cacert", show_path(config.paths.ca_cert, style)]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": os.environ.get("COSIGN_PASSWORD", "")}
    return subprocess.run([ensure_cosign(), *argv], env=env, capture_output=True, text=True,
                          check=False, timeout=300)  # fmt: skip


def _said(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("Error: ")


def sign_step(target: Target, key: Key, style: PathStyle | None = None) -> Step[str]:
    """``cosign sign --key cosign.key ADDRESS/REPOSITORY@DIGEST``: the digest the registry
    serves for the tag is what is signed (cosign warns when given a tag: it may move). Typed,
    ``oras resolve`` looks the digest up first, so the line signs what the tag names in that
    terminal's registry. Returns the digest."""
    if key.kind != COSIGN or not key.secret:
        raise ConfigError(f"{key.path} is not cosign's secret key", "give cosign.key")
    digest = image_digest(target)
    name = f"{target.registry.address}/{target.repository}"
    flags = ["--tlog-upload=false", "--use-signing-config=false", "--yes"]
    _, oras_tls = tls_options(target, style)
    lines = [
        f"SIGNED=$(oras resolve {oras_tls} {target.ref})",
        " ".join([PASSWORD, "cosign", "sign", "--key", show_path(key.path, style), *flags,
                  *_registry_options(target, style), f'{name}@"$SIGNED"']),
    ]  # fmt: skip

    def sign() -> str:
        argv = ["sign", "--key", str(key.path), *flags, *_registry_options(target, None)]
        done = _run([*argv, f"{name}@{digest}"])
        if done.returncode != 0:
            raise RegistryError(f"cosign could not sign {target.ref}: {_said(done)}",
                                "check the key's password (COSIGN_PASSWORD)")  # fmt: skip
        return digest

    return Step(lines, sign)


def verify_step(target: Target, key: Key, style: PathStyle | None = None) -> Step[Verdict]:
    """``cosign verify --key cosign.pub REF``, no transparency log: accepted when a signature
    by that key names the digest the tag points to now."""
    if key.kind != COSIGN or key.secret:
        raise ConfigError(f"{key.path} is not a cosign public key", "give cosign.pub")
    image_digest(target)  # one line when there is no such image
    flags = ["--insecure-ignore-tlog=true", "--output", "text"]
    shown = show_path(key.path, style)
    line = " ".join(["cosign", "verify", "--key", shown, *flags,
                     *_registry_options(target, style), target.ref])  # fmt: skip

    def check() -> Verdict:
        argv = ["verify", "--key", str(key.path), *flags, *_registry_options(target, None)]
        done = _run([*argv, target.ref])
        if done.returncode == 0:
            return Verdict(True, f"{target.ref}: signed by a trusted cosign key")
        said = _said(done)
        if "signature" not in said and "no matching" not in said:
            raise RegistryError(f"cosign could not read {target.ref}: {said}",
                                "check that the image is in the registry")  # fmt: skip
        return Verdict(False, said)

    return Step([line], check)


__all__ = ["COSIGN_PROGRAM", "PASSWORD", "ensure_cosign", "sign_step", "verify_step"]
