"""Certificates for the TLS stage: a small private CA that issues the registry's certificate.

Choices, and why:

- **A CA plus a server certificate**, not one self-signed certificate: clients trust the CA
  (``ca.crt``), so the server certificate can be reissued (new names, expiry) without touching
  every client again, and the CA's key never has to reach the registry container.
- **Subject alternative names always.** Go clients (Docker, the registry, skopeo) ignore the
  Common Name: a CN-only certificate fails with "x509: certificate relies on legacy Common Name
  field", and reaching the registry by IP needs an IP SAN. Defaults: ``localhost``,
  ``127.0.0.1`` and ``::1``; callers add the names they use.
- **ECDSA P-256 keys**: accepted by every client involved, fast to generate, small.
- **Validity**: server certificate 365 days, CA 730 days: long enough for a course that runs over
  weeks, short enough that a forgotten workshop CA does not stay trusted for a decade.
- **Key files are written with mode 0600**, atomically.

The API follows trustme: ``CA.create().issue_cert("localhost", "127.0.0.1")`` gives a
:class:`Certificate` you can inspect or write where you want.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reglab.base.errors import CertificateError
from reglab.base.files import write_atomic

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
SERVER_DAYS = 365
CA_DAYS = 730
CA_NAME = "reglab workshop CA"

#: The keys a certificate here may have: ours are ECDSA; a certificate a learner brings may be RSA.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(certificates: bool) -> x509.KeyUsage:
    """Signatures only; and, for a CA, signatures on certificates and revocation lists.

    Every other use (encipherment, key agreement, ...) is off: an ECDSA key only signs.
    """
    allowed = {"digital_signature"} | ({"key_cert_sign", "crl_sign"} if certificates else set())
    return x509.KeyUsage(**{flag: flag in allowed for flag in _KEY_USAGE_FLAGS})


#: KeyUsage's flags, every one of which its constructor wants said.
_KEY_USAGE_FLAGS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)  # fmt: skip


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass
class Certificate:
    """A certificate and (when known) its private key."""

    cert: x509.Certificate
    key: PrivateKey | None = None

    # --- files ---
    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        if self.key is None:
            raise CertificateError("this certificate has no private key loaded")
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, cert_path: str | Path, key_path: str | Path | None = None) -> None:
        """Write the certificate (mode 0644) and, if given a path, the key (mode 0600)."""
        if key_path is not None:
            write_atomic(key_path, self.key_pem, 0o600)
        write_atomic(cert_path, self.cert_pem, 0o644)

    @classmethod
    def from_pem(cls, pem: bytes) -> Certificate:
        """A certificate (no key) from PEM bytes, e.g. what a TLS server presented."""
        return cls(x509.load_pem_x509_certificate(pem))

    @classmethod
    def load(cls, cert_path: str | Path, key_path: str | Path | None = None) -> Certificate:
        """Read a PEM certificate (and key); CertificateError names the bad file."""
        cert_path = Path(cert_path)
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except FileNotFoundError:
            raise CertificateError(
                f"certificate {cert_path} does not exist", "issue one with 'reglab up tls'"
            ) from None
        except ValueError:
            raise CertificateError(
                f"{cert_path} is not a PEM certificate",
                f"remove {cert_path.parent} and run 'reglab up tls' again to issue a new one",
            ) from None
        key: PrivateKey | None = None
        if key_path is not None:
            key_path = Path(key_path)
            try:
                loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            except FileNotFoundError:
                raise CertificateError(
                    f"key {key_path} does not exist",
                    f"remove {cert_path} too and run 'reglab up tls' again",
                ) from None
            except (ValueError, TypeError):
                raise CertificateError(
                    f"{key_path} is not an unencrypted PEM private key",
                    f"remove {key_path.parent} and run 'reglab up tls' again",
                ) from None
            if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise CertificateError(
                    f"{key_path} is neither an ECDSA nor an RSA key",
                    f"remove {key_path.parent} and run 'reglab up tls' again",
                )
            key = loaded
        return cls(cert, key)

    # --- inspection ---
    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.cert.issuer.rfc4514_string()

    @property
    def sans(self) -> list[str]:
        """The subject alternative names, as strings (DNS names and IP addresses)."""
        try:
            ext = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return [str(n.value) for n in ext.value]

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint, as ``AB:CD:...`` (what ``openssl x509 -fingerprint`` shows)."""
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def describe(self) -> dict[str, object]:
        """A plain summary for people: subject, issuer, SANs, expiry, fingerprint."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": self.sans,
            "not_after": self.not_after.strftime("%Y-%m-%d"),
            "fingerprint_sha256": self.fingerprint,
        }

    def covers(self, name: str) -> bool:
        """True when ``name`` (a host name or IP) is one of the SANs."""
        wanted = _general_name(name)
        return any(
            str(_general_name(s).value) == str(wanted.value)
            and type(_general_name(s)) is type(wanted)
            for s in self.sans
        )

    def check(self, names: Iterable[str] = (), now: dt.datetime | None = None) -> None:
        """Raise CertificateError if expired, not covering ``names``, or the key mismatches."""
        now = now or _now()
        where = "remove the certs folder and run 'reglab up tls' again to issue a new one"
        if now >= self.not_after:
            raise CertificateError(f"the certificate expired on {self.not_after:%Y-%m-%d}", where)
        if now < self.cert.not_valid_before_utc:
            raise CertificateError("the certificate is not valid yet (check the clock)", where)
        missing = [n for n in names if not self.covers(n)]
        if missing:
            raise CertificateError(
                f"the certificate does not cover {', '.join(missing)} (it has SANs: "
                f"{', '.join(self.sans) or 'none'})",
                where,
            )
        if self.key is not None and self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise CertificateError("the private key does not match the certificate", where)


class CA:
    """A private certificate authority for the workshop."""

    def __init__(self, certificate: Certificate) -> None:
        if certificate.key is None:
            raise CertificateError("a CA needs its private key to issue certificates")
        self.certificate = certificate

    @classmethod
    def create(cls, name: str = CA_NAME, days: int = CA_DAYS) -> CA:
        """A new CA with a fresh key."""
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(certificates=True),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(Certificate(cert, key))

    @classmethod
    def load(cls, cert_path: str | Path, key_path: str | Path) -> CA:
        return cls(Certificate.load(cert_path, key_path))

    def write(self, cert_path: str | Path, key_path: str | Path) -> None:
        self.certificate.write(cert_path, key_path)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.cert_pem

    def issue_cert(
        self, *names: str, days: int = SERVER_DAYS, not_before: dt.datetime | None = None
    ) -> Certificate:
        """A server certificate for ``names`` (DNS names or IPs) signed by this CA."""
        if not names:
            raise CertificateError(
                "a certificate needs at least one name",
                "pass host names or IP addresses, e.g. 'localhost'",
            )
        key = _new_key()
        start = not_before or (_now() - dt.timedelta(minutes=5))
        ca_cert, ca_key = self.certificate.cert, self.certificate.key
        assert ca_key is not None
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return Certificate(cert, key)

    def issue_signing_cert(self, name: str, days: int = SERVER_DAYS) -> Certificate:
        """A certificate for signing tokens (RSA 2048: RS256, which every registry verifies),
        signed by this CA. The registry trusts tokens whose ``x5c`` chain leads to this CA."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        start = _now() - dt.timedelta(minutes=5)
        ca_cert, ca_key = self.certificate.cert, self.certificate.key
        assert ca_key is not None
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(certificates=False),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return Certificate(cert, key)
