"""Key files, as people keep them, and the keys the signature gate trusts.

GnuPG's: a secret key to sign with (``gpg --export-secret-keys``, without a passphrase: an
unattended signer's), public keys to check with (``gpg --export``, armored or not; several
keys in one file are several trusted keys). cosign's: ``cosign.key`` (its encrypted private
key) and ``cosign.pub`` (ECDSA, PEM), as ``cosign generate-key-pair`` writes them.
:func:`read_key` tells them apart and names what is wrong with a file in one line;
:func:`trust_step` writes what the gate (:mod:`reglab.auth.gate`) reads.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reglab.base.errors import ConfigError
from reglab.base.files import write_atomic
from reglab.base.shell import PathStyle, show_path
from reglab.engine.spec import Step
from reglab.registry.simplesign import SignFiles

#: How an armored OpenPGP key file begins (anything else is read as binary packets).
ARMOR = b"-----BEGIN PGP "


#: How cosign's key files begin: its encrypted private key (cosign 2 and 3 name it SIGSTORE,
#: older ones COSIGN) and a PEM public key (``cosign generate-key-pair`` writes both).
COSIGN_SECRET = re.compile(rb"-----BEGIN ENCRYPTED (SIGSTORE|COSIGN) PRIVATE KEY-----")
PEM_PUBLIC = b"-----BEGIN PUBLIC KEY-----"
GPG, COSIGN = "gpg", "cosign"


@dataclass(frozen=True)
class Key:
    """A key file: OpenPGP (as ``gpg --import-options show-only`` reads it) or cosign's."""

    path: Path
    fingerprints: tuple[str, ...]
    secret: bool
    kind: str = GPG

    @property
    def fingerprint(self) -> str:
        return self.fingerprints[0]

    @property
    def armored(self) -> bool:
        return self.path.read_bytes().lstrip().startswith(ARMOR)


def gpg(*args: str, home: Path, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise ConfigError("gpg is not installed", "install GnuPG: apt-get install gnupg")
    return subprocess.run(
        [gpg, "--batch", "--homedir", str(home), *args],
        input=data, capture_output=True, check=False, timeout=60,
    )  # fmt: skip


#: A GnuPG home for one step, as a terminal makes it: short-lived, under /tmp. gpg-agent's
#: socket lives in the home when /run/user/UID does not exist (root in a container, CI), and a
#: socket path may not pass 107 bytes: a home deep in a working folder breaks every signature.
HOME_VARIABLE = "GPGHOME"
OPEN_HOME = f"{HOME_VARIABLE}=$(mktemp -d)"
CLOSE_HOME = f'gpgconf --homedir "${HOME_VARIABLE}" --kill gpg-agent; rm -rf "${HOME_VARIABLE}"'


@contextlib.contextmanager
def gnupg_home() -> Iterator[Path]:
    """A GnuPG home for one step (:data:`OPEN_HOME`), its agent ended and the folder removed
    after it (:data:`CLOSE_HOME`)."""
    home = Path(tempfile.mkdtemp(prefix="reglab-gpg-", dir="/tmp"))
    try:
        yield home
    finally:
        stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def stop_agent(home: Path) -> None:
    """End the gpg-agent an import or a signature started for ``home`` (it would outlive
    the folder)."""
    if home.is_dir() and shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False, timeout=30)  # fmt: skip


def read_key(path: Path, secret: bool) -> Key:
    """The key file ``path``, checked to hold a secret key (``secret``: to sign with) or public
    keys only (to trust); one line naming the problem and the fix otherwise. GnuPG's keys
    and cosign's are read (:data:`COSIGN_SECRET`, :data:`PEM_PUBLIC`)."""
    path = Path(path)
    kind = "secret key to sign with" if secret else "public key to trust"
    export = "gpg --export-secret-keys --armor" if secret else "gpg --export --armor"
    if not path.is_file():
        raise ConfigError(f"no key file at {path}", f"give a {kind}: {export} FPR > FILE")
    head = path.read_bytes()[:4096].lstrip()
    if COSIGN_SECRET.match(head) or head.startswith(PEM_PUBLIC):
        return _cosign_key(path, secret)
    with gnupg_home() as home:
        done = gpg("--with-colons", "--import-options", "show-only", "--import", str(path),
                   home=home)  # fmt: skip
    rows = [line.split(":") for line in done.stdout.decode(errors="replace").splitlines()]
    kinds = {row[0] for row in rows if row[0] in ("pub", "sec")}
    # A fingerprint after each primary key (the next "fpr" row after its "pub" or "sec").
    fingerprints, wanted = [], False
    for row in rows:
        if row[0] in ("pub", "sec"):
            wanted = True
        elif row[0] == "fpr" and wanted:
            fingerprints.append(row[9])
            wanted = False
    if not fingerprints:
        raise ConfigError(f"{path} is not an OpenPGP key", f"give a {kind}: {export} FPR > FILE")
    if secret and "sec" not in kinds:
        raise ConfigError(f"{path} holds a public key, and signing needs the secret key",
                          "export it: gpg --export-secret-keys --armor FPR > FILE")  # fmt: skip
    if not secret and "sec" in kinds:
        raise ConfigError(
            f"{path} holds a secret key: what checks a signature needs only the public key",
            "give the public key (gpg --export --armor FPR > FILE); keep the secret one apart",
        )
    return Key(path, tuple(fingerprints), "sec" in kinds)


def _cosign_key(path: Path, secret: bool) -> Key:
    """A cosign key file: its secret key (encrypted, as cosign writes it) or its public keys
    (ECDSA, PEM), named by cosign's own hint: base64 of the SHA-256 of the key's DER."""
    data = path.read_bytes()
    if COSIGN_SECRET.match(data.lstrip()):
        if not secret:
            raise ConfigError(
                f"{path} holds cosign's secret key: what checks a signature needs the public one",
                "give cosign.pub (cosign public-key --key cosign.key > cosign.pub)",
            )
        return Key(path, (f"cosign key {path.name}",), True, COSIGN)
    blocks = re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", data, re.S)
    hints = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError:
            raise ConfigError(f"{path} holds a PEM block that is not a public key",
                              "give cosign.pub as cosign wrote it") from None  # fmt: skip
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ConfigError(f"{path} is not an ECDSA key, as cosign's are",
                              "cosign generate-key-pair writes one")  # fmt: skip
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        hints.append(base64.b64encode(hashlib.sha256(der).digest()).decode())
    if secret:
        raise ConfigError(f"{path} holds a public key, and signing needs the secret key",
                          "give cosign.key (cosign generate-key-pair writes it)")  # fmt: skip
    return Key(path, tuple(hints), False, COSIGN)


def trust_step(
    keys: list[Key], files: SignFiles, style: PathStyle | None = None
) -> Step[list[Path]]:
    """The keys the gate trusts, in ``sign/trust``: GnuPG's in ``trusted.gpg`` (binary, as
    ``gpgv`` reads it), cosign's in ``cosign.pub``; a kind with no key has no file. Each file
    is replaced whole, in place: the gate reads them at its next request, so a key taken out
    no longer vouches for anything."""
    if not keys or any(key.secret for key in keys):
        raise ConfigError("the gate trusts public keys only", "give public key files")
    trust = show_path(files.trust, style)
    lines = [f"mkdir -p {trust}"]
    gpg = [key for key in keys if key.kind == GPG]
    cosign = [key for key in keys if key.kind == COSIGN]
    for number, key in enumerate(gpg):
        into = ">" if number == 0 else ">>"
        source, target = show_path(key.path, style), show_path(files.trusted, style)
        lines.append(f"gpg --dearmor < {source} {into} {target}" if key.armored
                     else f"cat {source} {into} {target}")  # fmt: skip
    if cosign:
        sources = " ".join(show_path(key.path, style) for key in cosign)
        lines.append(f"cat {sources} > {show_path(files.cosign_keys, style)}")
    absent = [f for f, used in ((files.trusted, gpg), (files.cosign_keys, cosign)) if not used]
    if absent:
        lines.append(f"rm -f {' '.join(show_path(f, style) for f in absent)}")

    def write() -> list[Path]:
        files.trust.mkdir(parents=True, exist_ok=True)
        written = []
        for path, chosen in ((files.trusted, gpg), (files.cosign_keys, cosign)):
            if not chosen:
                path.unlink(missing_ok=True)
                continue
            data = b"".join(_binary(key) if key.kind == GPG else key.path.read_bytes()
                            for key in chosen)  # fmt: skip
            written.append(write_atomic(path, data, 0o644))
        return written

    return Step(lines, write)


def _binary(key: Key) -> bytes:
    """A GnuPG key file's packets, without armor (``gpg --dearmor``)."""
    data = key.path.read_bytes()
    if not key.armored:
        return data
    with gnupg_home() as home:
        return gpg("--dearmor", home=home, data=data).stdout


__all__ = [
    "ARMOR", "CLOSE_HOME", "COSIGN", "COSIGN_SECRET", "GPG", "HOME_VARIABLE", "Key", "OPEN_HOME",
    "PEM_PUBLIC", "gnupg_home", "gpg", "read_key", "stop_agent", "trust_step",
]  # fmt: skip
