"""Who vouches for an image: signing and checking it with GnuPG simple signing, through skopeo,
each step also written as the line a terminal types.

Debian's skopeo signs with GnuPG (its sigstore support is disabled by a Debian patch):
``skopeo copy --sign-by FINGERPRINT`` of an image onto itself writes the same manifest again
and a signature of its digest into the *lookaside* store that ``registries.d`` names
(:mod:`.simplesign` writes those files). A check is a copy under a ``policy.json`` that
requires a signature by a key: skopeo refuses an unsigned image with "A signature was
required, but no signature exists". The registry's side, for clients that read no policy (the
Docker engine), is the gate (:mod:`reglab.auth.gate`, started by :mod:`.gate`).

Keys are files, as people keep them (:mod:`.keys`). In the working folder::

    sign/lookaside/          the signatures: REPOSITORY@sha256=HEX/signature-N
    sign/registries.d/       where skopeo reads and writes them, per registry
    sign/policy.json         the policy a check runs under
    sign/checked/            the image last checked (skopeo copies what it checks)
    sign/ca/ca.crt           the workshop CA alone (skopeo's --cert-dir reads every *.key too)
    sign/trust/trusted.gpg   the GnuPG keys the gate trusts (a folder: a key rotated in is seen)
    sign/trust/cosign.pub    the cosign keys it trusts
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reglab.base.errors import ConfigError, RegistryError
from reglab.base.files import write_atomic
from reglab.base.shell import PathStyle, absolute_in_shell, printf_line, show_path
from reglab.engine.spec import Step
from reglab.registry import attach, keys, simplesign
from reglab.registry.keys import Key, read_key, trust_step
from reglab.registry.sbom import Target
from reglab.registry.simplesign import SignFiles


def image_digest(target: Target) -> str:
    """The digest the registry serves for the image; one line when it has no such image."""
    with target.registry.client() as api:
        return str(attach.subject_of(api, target.repository, target.tag)["digest"])


def without_login(target: Target, what: str, own: str = "skopeo itself, with --creds") -> None:
    """reglab passes skopeo and cosign no password: a registry that asks for one is named, in
    one line, with what to use instead (``own``)."""
    config = target.registry.config
    if config.stage.auth or config.stage.token:
        raise ConfigError(
            f"reglab {what} speaks to registries without a login, and {config.name} is the "
            f"{config.stage.value} stage",
            f"use the local, persistent or tls stage (or {own})",
        )


def _tls(target: Target, files: SignFiles, style: PathStyle | None, side: str) -> str:
    """skopeo's option for one side of a copy (``src`` or ``dest``): plain HTTP, or a
    folder with the workshop CA alone."""
    if not target.registry.config.stage.tls:
        return f"--{side}-tls-verify=false"
    return f"--{side}-cert-dir {show_path(files.ca_dir, style)}"


def _ca_step(target: Target, files: SignFiles, style: PathStyle | None) -> Step[None]:
    """The workshop CA, alone in ``sign/ca`` (a TLS stage's only)."""
    if not target.registry.config.stage.tls:
        return Step([], lambda: None)
    ca = target.registry.config.paths.ca_cert

    def copy() -> None:
        write_atomic(files.ca_dir / "ca.crt", ca.read_bytes(), 0o644)

    shown = show_path(files.ca_dir, style)
    return Step([f"mkdir -p {shown}", f"cp {show_path(ca, style)} {shown}/"], copy)


def registries_step(target: Target, files: SignFiles, style: PathStyle | None) -> Step[Path]:
    """``sign/registries.d/reglab.yaml``: this registry's signatures in ``sign/lookaside``
    (a ``file://`` URL, absolute as the format wants)."""
    address = target.registry.address
    store = str(files.lookaside.resolve())
    text = simplesign.registries_d(address, f"file://{store}")
    path = files.registries_d / "reglab.yaml"
    # The file names the store absolutely (file://); the typed line lets the shell fill it in.
    typed = printf_line(
        text, show_path(path, style), {store: absolute_in_shell(files.lookaside, style)}
    )

    def write() -> Path:
        files.lookaside.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, text.encode(), 0o644)

    return Step(
        [f"mkdir -p {show_path(files.lookaside, style)} {show_path(files.registries_d, style)}",
         typed],
        write,
    )  # fmt: skip


def _skopeo(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise ConfigError("skopeo is not installed", "install it: apt-get install skopeo")
    return subprocess.run([skopeo, *argv], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip


def skopeo_problem(done: subprocess.CompletedProcess[str]) -> str:
    """skopeo's own words, without its log prefix: ``time=... level=fatal msg="..."``."""
    said = (done.stderr or done.stdout).strip().splitlines()
    last = said[-1] if said else "no output"
    if 'msg="' in last:
        last = last.split('msg="', 1)[1].rstrip('"')
    return last.replace('\\"', '"')


def sign_step(
    target: Target, key: Key, files: SignFiles, style: PathStyle | None = None
) -> Step[str]:
    """Sign the image as the registry serves it with ``key``: the key imported into a GnuPG
    home for this step (:func:`.keys.gnupg_home`), then ``skopeo copy --sign-by`` of the
    image onto itself. Returns the
    digest signed (the signature is ``sign/lookaside/REPOSITORY@sha256=HEX/signature-N``)."""
    if not key.secret:
        raise ConfigError(f"{key.path} holds no secret key", "gpg --export-secret-keys FPR > FILE")
    without_login(target, "sign")
    ca = _ca_step(target, files, style)
    registries = registries_step(target, files, style)
    home = f'"${keys.HOME_VARIABLE}"'
    ref = f"docker://{target.ref}"
    options = f"{_tls(target, files, style, 'src')} {_tls(target, files, style, 'dest')}"
    # The fingerprint is read from the key, not copied here: the line signs with whatever
    # key the file holds (the first "fpr" row is the primary key's).
    fingerprint = (
        f"FPR=$(gpg --homedir {home} --batch --with-colons --list-secret-keys "
        "| awk -F: '$1 == \"fpr\" {print $10; exit}')"
    )
    line = (
        f"GNUPGHOME={home} skopeo copy --registries.d {show_path(files.registries_d, style)} "
        f'{options} --sign-by "$FPR" {ref} {ref}'
    )
    lines = [
        *ca.lines, *registries.lines, keys.OPEN_HOME,
        f"gpg --homedir {home} --batch --import {show_path(key.path, style)}", fingerprint,
        line, keys.CLOSE_HOME,
    ]  # fmt: skip

    def sign() -> str:
        image_digest(target)  # one line if it is not there
        ca.action()
        registries.action()
        tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
        if target.registry.config.stage.tls:
            tls = ["--src-cert-dir", str(files.ca_dir), "--dest-cert-dir", str(files.ca_dir)]
        with keys.gnupg_home() as gnupg:
            imported = keys.gpg("--import", str(key.path), home=gnupg)
            if imported.returncode != 0:
                raise ConfigError(f"gpg could not import {key.path}",
                                  f"check it: gpg --show-keys {key.path}")  # fmt: skip
            done = _skopeo(
                ["copy", "--registries.d", str(files.registries_d), *tls,
                 "--sign-by", key.fingerprint, ref, ref],
                env={"GNUPGHOME": str(gnupg)},
            )  # fmt: skip
        if done.returncode != 0:
            raise RegistryError(f"skopeo could not sign {target.ref}: {skopeo_problem(done)}",
                                "check the image and the key (gpg --show-keys FILE)")  # fmt: skip
        return image_digest(target)

    return Step(lines, sign)


@dataclass(frozen=True)
class Verdict:
    """What a check under the policy said: accepted, or skopeo's refusal."""

    accepted: bool
    said: str


def verify_step(
    target: Target, key: Key, files: SignFiles, style: PathStyle | None = None
) -> Step[Verdict]:
    """Check the image under a policy that trusts ``key`` only (and rejects every other
    registry): ``skopeo copy`` into ``sign/checked`` (the image last checked, replaced each
    time), which refuses what no trusted key signed."""
    if key.secret:
        raise ConfigError(f"{key.path} holds a secret key", "give the public key: gpg --export")
    without_login(target, "verify")
    ca = _ca_step(target, files, style)
    registries = registries_step(target, files, style)
    key_path = str(key.path.resolve())
    text = simplesign.policy(target.registry.address, key_path)
    ref = f"docker://{target.ref}"
    policy = show_path(files.policy, style)
    written = printf_line(text, policy, {key_path: absolute_in_shell(key.path, style)})
    tls = _tls(target, files, style, "src")
    checked = show_path(files.checked, style)
    lines = [
        *ca.lines, *registries.lines, written, f"rm -rf {checked}",
        f"skopeo --policy {policy} copy --registries.d {show_path(files.registries_d, style)} "
        f"{tls} {ref} dir:{checked}",
    ]  # fmt: skip

    def check() -> Verdict:
        image_digest(target)
        ca.action()
        registries.action()
        write_atomic(files.policy, text.encode(), 0o644)
        options = ["--src-tls-verify=false"]
        if target.registry.config.stage.tls:
            options = ["--src-cert-dir", str(files.ca_dir)]
        shutil.rmtree(files.checked, ignore_errors=True)
        done = _skopeo(
            ["--policy", str(files.policy), "copy", "--registries.d",
             str(files.registries_d), *options, ref, f"dir:{files.checked}"],
        )  # fmt: skip
        if done.returncode == 0:
            return Verdict(True, f"{target.ref}: signed by a trusted key ({key.fingerprint})")
        problem = skopeo_problem(done)
        if "rejected" not in problem and "signature" not in problem.lower():
            raise RegistryError(f"skopeo could not read {target.ref}: {problem}",
                                "check that the image is in the registry")  # fmt: skip
        return Verdict(False, problem)

    return Step(lines, check)


__all__ = [
    "Key", "SignFiles", "Verdict", "image_digest", "read_key", "registries_step", "sign_step",
    "skopeo_problem", "trust_step", "verify_step", "without_login",
]  # fmt: skip
