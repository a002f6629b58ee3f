"""A token server for the registry's token authentication, small enough to read in one sitting.

The flow (the registry's "token authentication specification"):

1. A client asks the registry; the registry answers ``401`` with
   ``WWW-Authenticate: Bearer realm="https://HOST:PORT/auth",service="...",scope="..."``.
2. The client asks the realm: ``GET /auth?service=...&scope=repository:team/app:pull,push``,
   with its user name and password (HTTP basic auth), or with none (anonymous).
3. This server checks the password against the bcrypt ``htpasswd`` file (once per token, not
   on every request as basic auth does), grants what the access list allows of the scope, and
   answers ``{"token": JWT}``: claims ``iss``, ``sub``, ``aud``, ``exp``, ``nbf``, ``iat``,
   ``jti`` and ``access``, signed RS256 with a key the workshop CA certified. The certificate
   travels in the token's ``x5c`` header; the registry trusts it through its
   ``rootcertbundle`` (the workshop CA), so it never needs to reach this server.
4. The client retries with ``Authorization: Bearer JWT``.

The access list has the format of the docker_auth server (cesanta/docker_auth), so what
learners write here carries over: a YAML list of rules, each ``match`` on ``account``,
``type`` and ``name`` (globs, or regular expressions between slashes; ``${account}`` and the
like stand for the request's values; ``""`` is the anonymous account) and the ``actions`` it
allows (``[]`` denies, ``["*"]`` allows all). For each requested scope the **first** matching
rule decides; no rule, no access. (docker_auth's ``ip``, ``service`` and ``labels`` matches
are not supported: such a rule is refused, not ignored.)

This module is the whole server: it imports only the standard library, ``cryptography``,
``bcrypt`` and ``yaml``, so the token server's container runs this one file
(``python3 tokenserver.py --help``). reglab imports it to check access lists and users.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import re
import ssl
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import bcrypt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: What a rule may allow. ``*`` grants whatever was asked (the catalog asks for ``*``).
ACTIONS = frozenset({"pull", "push", "delete", "*"})
#: A token's lifetime. The registry allows a little clock skew on ``nbf`` and ``exp``; the
#: token starts 10 s in the past for the same reason.
LIFETIME_S = 300
LEEWAY_S = 10


class AclError(ValueError):
    """An access list that cannot be used; the message is one line naming the rule."""


@dataclass(frozen=True)
class Rule:
    """One access-list rule: who (``account``), what (``type``, ``name``), and ``actions``."""

    account: str
    type: str
    name: str
    actions: tuple[str, ...]

    def matches(self, account: str, type_: str, name: str, service: str = "") -> bool:
        request = {"account": account, "type": type_, "name": name, "service": service}
        return all(
            _matches(pattern, value, request)
            for pattern, value in ((self.account, account), (self.type, type_), (self.name, name))
        )


def _matches(pattern: str, value: str, request: dict[str, str]) -> bool:
    """docker_auth's rule: a glob, or a regular expression between slashes (``/.+/``), after
    ``${account}``, ``${type}``, ``${name}`` and ``${service}`` are replaced by the request's."""
    for key, text in request.items():
        pattern = pattern.replace("${" + key + "}", text)
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.fullmatch(pattern[1:-1], value) is not None
    return fnmatch.fnmatchcase(value, pattern)


def parse_acl(text: str, where: str = "the access list") -> list[Rule]:
    """Rules from docker_auth's YAML format; AclError (one line) for anything else."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise AclError(f"{where} is not valid YAML{line}") from None
    if isinstance(data, dict) and "acl" in data:  # docker_auth's config file: the acl key
        data = data["acl"]
    if not isinstance(data, list):
        raise AclError(f"{where} must be a YAML list of rules (- match: ..., actions: [...])")
    rules = []
    for n, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), dict):
            raise AclError(f"rule {n} of {where} has no 'match:' mapping")
        match, actions = entry["match"], entry.get("actions", [])
        unknown = set(match) - {"account", "type", "name"}
        if unknown:  # docker_auth also matches ip, service and labels: said, not ignored
            raise AclError(f"rule {n} of {where} matches on {sorted(unknown)[0]!r}, unsupported")
        for key in ("account", "type", "name"):
            pattern = str(match.get(key, ""))
            if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
                try:
                    re.compile(pattern[1:-1])
                except re.error as exc:
                    raise AclError(
                        f"rule {n} of {where}: {key} {pattern} is not a regular expression: {exc}"
                    ) from None

        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise AclError(f"rule {n} of {where}: 'actions' must be a list, e.g. [pull]")
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise AclError(
                f"rule {n} of {where} names an unknown action {bad[0]!r} "
                f"(known: {', '.join(sorted(ACTIONS))})"
            )
        rules.append(
            Rule(
                account=str(match.get("account", "*")),
                type=str(match.get("type", "*")),
                name=str(match.get("name", "*")),
                actions=tuple(actions),
            )
        )
    return rules


def load_acl(path: str | Path) -> list[Rule]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise AclError(f"cannot read the access list {path}: {exc.strerror}") from None
    return parse_acl(text, str(path))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``repository:team/app:pull,push`` -> ("repository", "team/app", ["pull", "push"]).
    The name may hold a ``:`` (a registry host with a port); the actions follow the last one."""
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        return None
    return type_, name, [a for a in actions.split(",") if a]


def grant(
    rules: Iterable[Rule], account: str, scopes: Iterable[str], service: str = ""
) -> list[dict[str, Any]]:
    """The ``access`` claim: for each scope, the requested actions the first matching rule
    allows (scopes that get nothing are left out).

    One ``scope`` parameter may hold several scopes separated by spaces (RFC 6749, 3.3): a
    client mounting a blob asks for push here and pull where it mounts from in one."""
    rules = list(rules)
    access = []
    for scope in [s for value in scopes for s in value.split()]:
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        type_, name, wanted = parsed
        rule = next((r for r in rules if r.matches(account, type_, name, service)), None)
        if rule is None:
            continue
        allowed = [a for a in wanted if a in rule.actions or "*" in rule.actions]
        if allowed:
            access.append({"type": type_, "name": name, "actions": allowed})
    return access


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


def sign(
    claims: dict[str, Any],
    key: rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
    kid: str | None = None,
) -> str:
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
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
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
            "access": grant(self.rules, account, scopes, self.service),
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
        users = load_users(self.users_path)  # read per request: users added later count
        return name if check_password(users, name, password) else None


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            url = urlparse(self.path)
            if url.path != "/auth":
                return self._answer(404, {"errors": [{"code": "NOT_FOUND"}]})
            query = parse_qs(url.query)
            if query.get("service", [issuer.service])[0] != issuer.service:
                return self._answer(400, {"errors": [{"code": "UNKNOWN_SERVICE"}]})
            account = issuer.authenticate(self.headers.get("Authorization"))
            if account is None:  # a wrong password or unknown user: no token at all
                self.log_message("refused: wrong user or password")
                return self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            body = issuer.token(account, query.get("scope", []))
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
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


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
    parser.add_argument(
        "--listen", default="0.0.0.0:5001", help="address:port (default %(default)s)"
    )
    parser.add_argument("--htpasswd", required=True, type=Path, help="bcrypt users")
    parser.add_argument("--acl", required=True, type=Path, help="access list (docker_auth YAML)")
    parser.add_argument("--signing-key", required=True, type=Path, help="RSA key, PEM")
    parser.add_argument("--signing-cert", required=True, type=Path, help="its certificate, PEM")
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
    issuer = Issuer(args.issuer, args.service, args.htpasswd, rules, key, chain)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), handler(issuer))
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(
        f"token server: {len(rules)} rule(s), listening on {args.listen}",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
