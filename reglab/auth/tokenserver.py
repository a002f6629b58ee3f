"""A token server for the registry's token authentication, small enough to read in one sitting.

The flow (the registry's "token authentication specification"): the registry answers ``401``
with ``WWW-Authenticate: Bearer realm="https://HOST:PORT/auth",service="...",scope="..."``; the
client asks the realm ``GET /auth?service=...&scope=repository:team/app:pull,push`` with its
user and password (HTTP basic auth) or none (anonymous); this server checks the password
against the bcrypt ``htpasswd`` file (once per token, not per request as basic auth does) and
answers ``{"token": JWT}`` granting what the access list allows, signed RS256 with a key the
workshop CA certified, whose certificate travels in the ``x5c`` header (the registry trusts it
through its ``rootcertbundle``, never reaching this server); the client retries with
``Authorization: Bearer JWT``.

The access list and its matching are docker_auth's: ``reglab.auth.acl``.

With ``acl.py``, this module is the whole server: the two import only the standard library,
``cryptography``, ``bcrypt`` and ``yaml``, so the token server's container runs them as they
are (``python3 -m reglab.auth.tokenserver --help``, beside an empty ``reglab`` package). reglab
imports them to check access lists and users.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import ssl
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reglab.auth.acl import AclError, Rule, grant, load_acl

#: A token's lifetime. The registry allows a little clock skew on ``nbf`` and ``exp``; the
#: token starts 10 s in the past for the same reason.
LIFETIME_S = 300
LEEWAY_S = 10


def load_users(path: str | Path) -> dict[str, bytes]:
    """``name: bcrypt hash`` from an htpasswd file (other lines are skipped: the registry
    ignores them too)."""
    users = {}
    for line in Path(path).read_text().splitlines():
        name, sep, hashed = line.strip().partition(":")
        if sep and hashed.startswith(("$2y$", "$2b$", "$2a$")):
            users[name] = hashed.encode()
    return users


def check_password(users: dict[str, bytes], name: str, password: str) -> bool:
    hashed = users.get(name)
    return hashed is not None and bcrypt.checkpw(password.encode(), hashed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """The public key as a JSON Web Key whose ``kid`` is its RFC 7638 thumbprint: the SHA-256
    of the required members (``e``, ``kty``, ``n``) in that order, without spaces. Registry 3
    trusts a token whose ``kid`` names a key of its ``jwks`` file."""
    numbers = key.public_numbers()

    def unsigned(value: int) -> str:
        return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    members = {"e": unsigned(numbers.e), "kty": "RSA", "n": unsigned(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = _b64(hashlib.sha256(canonical).digest())
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}


def jwks(cert: x509.Certificate) -> dict[str, list[dict[str, str]]]:
    """The JSON Web Key Set of a signing certificate's key (registry 3's ``auth.token.jwks``)."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the signing certificate's key is not RSA (tokens are signed RS256)")
    return {"keys": [jwk(key)]}


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, chain: list[x509.Certificate],
         kid: str | None = None) -> str:  # fmt: skip
    """A JWT signed RS256, with the certificate chain in ``x5c``: both registry versions verify
    that chain against their ``rootcertbundle``. With ``kid`` instead, the header names the key
    only: registry 3 looks it up in its ``jwks`` file; 2.8 wants libtrust's fingerprint there."""
    header: dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
    if kid is not None:
        header["kid"] = kid
    else:
        header["x5c"] = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain
        ]
    parts = (json.dumps(part, separators=(",", ":")).encode() for part in (header, claims))
    signing_input = ".".join(_b64(part) for part in parts)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A token's header and claims, unverified (to read them; the registry verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three parts separated by dots")

    def part(text: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return data

    return part(parts[0]), part(parts[1])


@dataclass
class Issuer:
    """What the server needs to answer a token request."""

    issuer: str
    service: str
    users_path: Path
    rules: list[Rule]
    key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]
    acl_path: Path | None = None  # read again when it changes
    acl_stamp: int = 0

    def current_rules(self) -> list[Rule]:
        """The access list, read again when its file changed, as docker_auth reloads its
        configuration: a rule moved takes effect at the next token, no restart; a list that
        does not load is logged and the last good one kept."""
        try:
            stamp = self.acl_path.stat().st_mtime_ns if self.acl_path else self.acl_stamp
            if stamp != self.acl_stamp and self.acl_path:
                self.rules, self.acl_stamp = load_acl(self.acl_path), stamp
                _log(f"token server: access list read again, {len(self.rules)} rule(s)")
        except (OSError, AclError) as exc:
            _log(f"token server: kept the last access list: {exc}")
        return self.rules

    def token(self, account: str, scopes: list[str], now: float | None = None) -> dict[str, Any]:
        now = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": self.service,  # a string: 2.8 refuses a list here
            "exp": now + LIFETIME_S,
            "nbf": now - LEEWAY_S,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": grant(self.current_rules(), account, scopes, self.service),
        }
        token = sign(claims, self.key, self.chain)
        return {
            "token": token,
            "access_token": token,
            "expires_in": LIFETIME_S,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }

    def authenticate(self, header: str | None) -> str | None:
        """The account of a request: "" for anonymous, None when the password is wrong."""
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return self.check(name, password)

    def check(self, name: str, password: str) -> str | None:
        """``name`` when the password is right, else None."""
        users = load_users(self.users_path)  # read per request: users added later count
        return name if check_password(users, name, password) else None


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            url = urlparse(self.path)
            if url.path != "/auth":
                return self._answer(404, {"errors": [{"code": "NOT_FOUND"}]})
            query = parse_qs(url.query)
            account = issuer.authenticate(self.headers.get("Authorization"))
            self._issue(query.get("service", [issuer.service])[0], account, query.get("scope", []))

        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            """The OAuth2 password grant of the token spec (distribution's docs, "oauth"):
            containerd, so every Kubernetes node, asks here first when it has a login, and
            falls back to GET only on 400, 401, 404 or 405. docker_auth serves it too."""
            if urlparse(self.path).path != "/auth":
                return self._answer(404, {"errors": [{"code": "NOT_FOUND"}]})
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(min(length, 65536)).decode(errors="replace"))
            if form.get("grant_type", [""])[0] != "password":
                return self._answer(400, {"error": "unsupported_grant_type"})
            name, password = form.get("username", [""])[0], form.get("password", [""])[0]
            scopes = " ".join(form.get("scope", [])).split()  # space-separated, as OAuth2's
            self._issue(form.get("service", [""])[0], issuer.check(name, password), scopes)

        def _issue(self, service: str, account: str | None, scopes: list[str]) -> None:
            if service != issuer.service:
                return self._answer(400, {"errors": [{"code": "UNKNOWN_SERVICE"}]})
            if account is None:  # a wrong password or unknown user: no token at all
                self.log_message("refused: wrong user or password")
                return self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            body = issuer.token(account, scopes)
            granted = [
                f"{a['name']}:{','.join(a['actions'])}" for a in decode(body["token"])[1]["access"]
            ]
            self.log_message(
                f"token for {account or '(anonymous)'}: {' '.join(granted) or 'nothing'}"
            )
            self._answer(200, body)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            _log(f"{self.address_string()} {format % args}")

    return Handler


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load_chain(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file, leaf first (Debian 12's cryptography 38 lacks
    ``load_pem_x509_certificates``)."""
    end = b"-----END CERTIFICATE-----"
    blocks = [block + end for block in pem.split(end) if b"-----BEGIN CERTIFICATE-----" in block]
    return [x509.load_pem_x509_certificate(block.strip()) for block in blocks]


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["jwks"]:  # tokenserver.py jwks CERT: the JWKS registry 3 may trust
        if len(words) != 2:
            print("usage: tokenserver.py jwks SIGNING_CERT.pem > jwks.json", file=sys.stderr)
            return 2
        print(json.dumps(jwks(load_chain(Path(words[1]).read_bytes())[0]), indent=1))
        return 0
    parser = argparse.ArgumentParser(description="reglab's token server for registry token auth")
    parser.add_argument("--listen", default="0.0.0.0:5001", help="address:port (%(default)s)")
    for flag, what in (
        ("--htpasswd", "bcrypt users"),
        ("--acl", "access list (docker_auth)"),
        ("--signing-key", "RSA key, PEM"),
        ("--signing-cert", "its certificate"),
    ):
        parser.add_argument(flag, required=True, type=Path, help=what)  # fmt: skip
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path, help="and this key")
    parser.add_argument("--issuer", default="reglab-token")
    parser.add_argument("--service", default="reglab-registry")
    args = parser.parse_args(argv)
    try:
        rules = load_acl(args.acl)
    except AclError as exc:
        print(f"token server: {exc}", file=sys.stderr)
        return 2
    key = serialization.load_pem_private_key(args.signing_key.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        print("token server: the signing key must be RSA (RS256)", file=sys.stderr)
        return 2
    chain = load_chain(args.signing_cert.read_bytes())
    stamp = args.acl.stat().st_mtime_ns
    issuer = Issuer(args.issuer, args.service, args.htpasswd, rules, key, chain, args.acl, stamp)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), handler(issuer))
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    _log(f"token server: {len(rules)} rule(s), listening on {args.listen}")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
