"""The working folder, in the layout learners know from the classic tutorial.

::

    workdir/
      registry-data/       the registry's storage (bind-mounted at /var/lib/registry)
      certs/domain.crt     the registry's certificate and key (mounted read-only)
      certs/domain.key
      certs/ca.crt         the workshop CA's certificate, for clients
      ca/ca.key            the CA's key: apart, so it is never mounted into a container
      auth/htpasswd        bcrypt users
      auth/acl.yml         the token server's access list
      certs/token.crt      the key that signs tokens, and its certificate from the CA
      certs/token.key
      trust/HOST:PORT/     ca.crt staged for Docker's certs.d (reglab.engine.trust)
      mirror/              a mirror's own working folder (its registry-data), reglab.registry.mirror

It also knows where the registry keeps things inside ``registry-data/`` (the filesystem
driver's ``docker/registry/v2/`` tree), so no other module spells those paths out.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from reglab.auth import tokenserver
from reglab.auth.certs import CA, CA_DAYS, CA_NAME, DEFAULT_NAMES, SERVER_DAYS, Certificate
from reglab.auth.htpasswd import Htpasswd, add_user_commands
from reglab.base.errors import ConfigError
from reglab.base.files import write_atomic
from reglab.base.settings import TOKEN_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.oneoff import one_off
from reglab.engine.spec import Mount, Step

#: The subject of the token-signing certificate.
TOKEN_SIGNER = "reglab token signer"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Workdir:
    """The files of one workshop."""

    root: Path

    #: What reglab and the notebooks create in a working folder; purge removes these, and
    #: refuses a folder holding anything else.
    ENTRIES = (
        "registry-data", "certs", "ca", "auth", "trust", "mirror", "swarm", "upgrade", "node",
        "sbom", "sign", "keys",
    )  # fmt: skip

    @property
    def data(self) -> Path:
        return self.root / "registry-data"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def server_cert(self) -> Path:
        return self.certs / "domain.crt"

    @property
    def server_key(self) -> Path:
        return self.certs / "domain.key"

    @property
    def ca_cert(self) -> Path:
        return self.certs / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's key lives apart from certs/, so it can never be mounted into a container."""
        return self.root / "ca" / "ca.key"

    @property
    def htpasswd(self) -> Path:
        return self.root / "auth" / "htpasswd"

    @property
    def acl(self) -> Path:
        """The token server's access list (docker_auth's YAML format, reglab.auth.tokenserver)."""
        return self.root / "auth" / "acl.yml"

    @property
    def token_key(self) -> Path:
        return self.certs / "token.key"

    @property
    def token_cert(self) -> Path:
        """The certificate of the key that signs tokens, issued by the workshop CA."""
        return self.certs / "token.crt"

    @property
    def jwks(self) -> Path:
        """The signing key as a JSON Web Key Set: registry 3's second way to trust it."""
        return self.certs / "jwks.json"

    @property
    def mirror(self) -> Path:
        """A mirror's own working folder: never the upstream's registry-data."""
        return self.root / "mirror"

    @property
    def trust(self) -> Path:
        """Where ca.crt is staged, as trust/HOST:PORT/ca.crt, before the engine copies it to
        Docker's certs.d."""
        return self.root / "trust"

    # --- inside registry-data/ -------------------------------------------------------------
    @property
    def storage(self) -> Path:
        """The root of the registry's storage tree (filesystem driver)."""
        return self.data / "docker" / "registry" / "v2"

    def repository(self, name: str) -> Path:
        """A repository's folder: links to its layers, manifests and tags, never the blobs."""
        return self.storage / "repositories" / name

    def tag_link(self, repository: str, tag: str) -> Path:
        """The file holding the manifest digest a tag points to."""
        return self.repository(repository) / "_manifests" / "tags" / tag / "current" / "link"

    def layer_links(self, repository: str) -> list[Path]:
        """The repository's links to its layer and config blobs."""
        return sorted((self.repository(repository) / "_layers").rglob("link"))

    def blob(self, digest: str) -> Path:
        """Where the content of blob ``sha256:HEX`` is stored, once for all repositories."""
        algorithm, _, hexdigest = digest.partition(":")
        return self.storage / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    # --- certificates ----------------------------------------------------------------------
    def ca(self) -> CA | None:
        """The workshop CA, when its certificate and key are here (checked for expiry)."""
        return self._ca()

    def _ca(self) -> CA | None:
        if self.ca_key.exists() and self.ca_cert.exists():
            ca = CA.load(self.ca_cert, self.ca_key)
            ca.certificate.check()
            return ca
        return None

    def server_certificate(self, names: tuple[str, ...] = DEFAULT_NAMES) -> Certificate:
        """The registry's certificate: reused when valid for ``names``, issued when absent.

        A certificate the workshop CA issued that lacks one of ``names`` is reissued for
        ``names`` by the same CA, so clients that trust ``ca.crt`` still do. Any other problem
        (expired, key mismatch, a certificate you brought that does not cover a name) raises
        CertificateError: files are never overwritten silently.
        """
        ca = self._ca()
        if self.server_cert.exists() or self.server_key.exists():
            cert = Certificate.load(self.server_cert, self.server_key)
            missing = [n for n in names if not cert.covers(n)]
            if missing and ca is not None and cert.issuer == ca.certificate.subject:
                cert.check()  # expiry and key still must be right
                cert = ca.issue_cert(*names)
                cert.write(self.server_cert, self.server_key)
            cert.check(names)
            return cert
        if ca is None:
            ca = CA.create()
            ca.write(self.ca_cert, self.ca_key)
        cert = ca.issue_cert(*names)
        cert.write(self.server_cert, self.server_key)
        return cert

    def _ca_or_new(self) -> CA:
        """The workshop CA, made first when its files are missing (as the openssl lines do)."""
        ca = self._ca()
        if ca is None:
            ca = CA.create()
            ca.write(self.ca_cert, self.ca_key)
        return ca

    def issue_server_certificate(self, names: tuple[str, ...]) -> Certificate:
        """A new server certificate for exactly ``names`` from the workshop CA, whatever was
        there: what the openssl lines of :meth:`certificate_commands` do when typed."""
        cert = self._ca_or_new().issue_cert(*names)
        cert.write(self.server_cert, self.server_key)
        return cert

    def signing_certificate(self, reissue: bool = False) -> Certificate:
        """The token-signing certificate: reused while valid and issued by this CA (unless
        ``reissue``, as the typed openssl lines always do), else issued (the CA is made first
        when missing)."""
        ca = self._ca()
        if self.token_cert.exists() and self.token_key.exists() and ca is not None and not reissue:
            cert = Certificate.load(self.token_cert, self.token_key)
            if cert.issuer == ca.certificate.subject:
                cert.check()
                self._write_jwks(cert)
                return cert
        cert = self._ca_or_new().issue_signing_cert(TOKEN_SIGNER)
        cert.write(self.token_cert, self.token_key)
        self._write_jwks(cert)
        return cert

    def _write_jwks(self, cert: Certificate) -> None:
        """jwks.json from the signing certificate, as ``tokenserver.py jwks`` prints it."""
        text = json.dumps(tokenserver.jwks(cert.cert), indent=1) + "\n"
        if not self.jwks.exists() or self.jwks.read_text() != text:
            write_atomic(self.jwks, text.encode())

    def user_step(self, user: str, password: str, cost: int, style: PathStyle) -> Step[None]:
        """A user in auth/htpasswd (added, or their password changed), bcrypt at ``cost``:
        Apache's htpasswd lines, and reglab's own writer (reglab.auth.htpasswd)."""
        path = self.htpasswd
        lines = add_user_commands(style.show(path), style.show(path.parent), user, cost)

        def add() -> None:
            users = Htpasswd.load(path, replacing=user)
            users.set(user, password, cost)
            users.save()

        return Step(lines, add)

    def signing_certificate_step(self, style: PathStyle) -> Step[Certificate]:
        """The signing certificate: openssl's lines, and a new one issued as they do."""
        return Step(
            self.signing_certificate_commands(style), lambda: self.signing_certificate(True)
        )

    def certificate_step(self, names: tuple[str, ...], style: PathStyle) -> Step[Certificate]:
        """The server certificate: openssl's lines, and a new one for exactly ``names``, as
        they issue it (a certificate with more names, say 06's, is replaced: the typed lines
        would replace it too)."""
        return Step(
            self.certificate_commands(names, style), lambda: self.issue_server_certificate(names)
        )

    def signing_certificate_commands(self, style: PathStyle) -> list[str]:
        """openssl lines that do what :meth:`signing_certificate` does (the CA's lines come
        from :meth:`certificate_commands`)."""
        ca_key, ca_cert = style.show(self.ca_key), style.show(self.ca_cert)
        key, cert = style.show(self.token_key), style.show(self.token_cert)
        csr = style.show(self.ca_key.parent / "token.csr")
        serial = style.show(self.ca_key.parent / "ca.srl")
        jwks = one_off(
            TOKEN_IMAGE,
            ("jwks", "/certs/token.crt"),
            mounts=(Mount(self.token_cert, "/certs/token.crt", read_only=True),),
        )
        return [
            f"openssl req -new -newkey rsa:2048 -nodes -subj '/CN={TOKEN_SIGNER}' "
            f"-keyout {key} -out {csr}",
            f"openssl x509 -req -in {csr} -CA {ca_cert} -CAkey {ca_key} -CAcreateserial "
            f"-CAserial {serial} -days {SERVER_DAYS} -out {cert}",
            f"{jwks.shell(style)} > {style.show(self.jwks)}",
        ]

    def certificate_commands(self, names: tuple[str, ...], style: PathStyle) -> list[str]:
        """openssl lines that do what :meth:`server_certificate` does: the CA made only when its
        key is missing (kept in ca/), then a server certificate with ``names`` as SANs, signed
        by it. (``openssl req -x509`` alone would make a self-signed certificate, not a CA's.)
        The lines are the same whatever is already there, as a learner would type them."""
        ca_key, ca_cert = style.show(self.ca_key), style.show(self.ca_cert)
        key, cert = style.show(self.server_key), style.show(self.server_cert)
        csr, ext = (
            style.show(self.ca_key.parent / "domain.csr"),
            style.show(self.ca_key.parent / "domain.ext"),
        )
        serial = style.show(self.ca_key.parent / "ca.srl")
        ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        sans = ",".join(f"{'IP' if _is_ip(n) else 'DNS'}:{n}" for n in names)
        return [
            f"mkdir -p {style.show(self.ca_key.parent)} {style.show(self.certs)}",
            f"[ -f {ca_key} ] || openssl req -x509 {ec} -days {CA_DAYS} -subj '/CN={CA_NAME}' "
            "-addext 'basicConstraints=critical,CA:TRUE,pathlen:0' "
            f"-addext 'keyUsage=critical,keyCertSign,cRLSign' -keyout {ca_key} -out {ca_cert}",
            f"openssl req -new {ec} -subj '/CN={names[0]}' -keyout {key} -out {csr}",
            f"printf '%s\\n' \"subjectAltName={sans}\" 'basicConstraints=critical,CA:FALSE' "
            f"'extendedKeyUsage=serverAuth' > {ext}",
            f"openssl x509 -req -in {csr} -CA {ca_cert} -CAkey {ca_key} -CAcreateserial "
            f"-CAserial {serial} -days {SERVER_DAYS} -extfile {ext} -out {cert}",
        ]

    # --- purge -----------------------------------------------------------------------------
    def check_purgeable(self) -> None:
        """Refuse to purge a folder holding anything reglab did not put there."""
        if not self.root.exists():
            return
        foreign = sorted(p.name for p in self.root.iterdir() if p.name not in self.ENTRIES)
        if foreign:
            raise ConfigError(
                f"{self.root} holds files reglab did not make ({', '.join(foreign[:3])}), "
                "so it is not purged",
                "check --workdir; remove the folder yourself if you are sure",
            )

    def purge(self) -> None:
        """Delete the registry data, certificates, CA and users, then the folder if empty."""
        self.check_purgeable()
        for entry in self.ENTRIES:
            shutil.rmtree(self.root / entry, ignore_errors=True)
        if self.root.exists():
            self.root.rmdir()
