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

The access list is docker_auth's (cesanta/docker_auth, ``auth_server/authz/acl.go``), format
and matching alike, so a list written here grants the same there: a YAML list of rules, each
``match`` on ``account``, ``type``, ``name`` and ``service`` and the ``actions`` it allows. A
pattern is a glob as Go's ``path.Match`` reads it (``*`` and ``?`` never cross a ``/``: ``team/*``
is not ``team/a/b``), or a regular expression between slashes, searched unanchored (``/foo/``
matches ``xfoox``). ``${account}``, ``${type}``, ``${name}`` and ``${service}`` stand for the
request's values (quoted), ``${account:1}`` for a group of the account's regular expression;
``""`` is the anonymous account; a field left out matches anything. For each requested scope
the **first** matching rule decides; no rule, no access. ``["*"]`` alone allows whatever was
asked; otherwise the requested actions the rule lists (``[]`` denies). A changed list is read
again at the next request, as docker_auth reloads its configuration (an unusable one is logged
and the old one kept). docker_auth's ``ip`` and ``labels`` matches are refused, not ignored.

This module is the whole server: it imports only the standard library, ``cryptography``,
``bcrypt`` and ``yaml``, so the token server's container runs this one file
(``python3 tokenserver.py --help``). reglab imports it to check access lists and users.
"""

from __future__ import annotations

import argparse
import base64
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


#: The fields a rule matches on; Go's regexp.QuoteMeta's special characters.
FIELDS = ("account", "type", "name", "service")
_GO_META = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Rule:
    """One access-list rule: patterns for the request's fields (None: any) and ``actions``."""

    account: str | None
    type: str | None
    name: str | None
    actions: tuple[str, ...]
    service: str | None = None

    def matches(self, account: str, type_: str, name: str, service: str = "") -> bool:
        """docker_auth's ``MatchConditions.Matches``: each pattern given matches its field, after
        ``${field}`` is replaced by the request's value, quoted as Go's ``regexp.QuoteMeta``
        does, and ``${field:N}`` by group N of that field's regular expression (unquoted)."""
        request = {"account": account, "type": type_, "name": name, "service": service}
        patterns = {key: getattr(self, key) for key in FIELDS}
        values = {
            f"${{{k}}}": "".join("\\" + c if c in _GO_META else c for c in v)
            for k, v in request.items()
        }
        given = " ".join(p for p in patterns.values() if p)
        for whole, key, group in re.findall(r"(\$\{(.+?):(\d+)\})", given):
            key = key[:1].lower() + key[1:]  # Go finds the field by strings.Title(key)
            source = patterns.get(key) or ""
            found = re.search(source[1:-1], request[key]) if _is_regex(source) else None
            if found and 1 <= int(group) <= len(found.groups()):
                values[whole] = found.group(int(group)) or ""
        keys = "|".join(map(re.escape, values))  # one pass, as Go's strings.Replacer
        return all(
            pattern is None
            or match_pattern(re.sub(keys, lambda m: values[m.group()], pattern), request[key])
            for key, pattern in patterns.items()
        )

    def allows(self, wanted: list[str]) -> list[str]:
        """The requested actions it allows: all for ``["*"]`` alone (docker_auth tests exactly
        that), else those it lists (``*`` among others grants only the catalog's ``*``)."""
        return list(wanted) if self.actions == ("*",) else [a for a in wanted if a in self.actions]


def _is_regex(pattern: str) -> bool:
    return len(pattern) > 2 and pattern[0] == "/" and pattern[-1] == "/"  # "//" is a glob


def match_pattern(pattern: str, value: str) -> bool:
    """docker_auth's ``matchString``: a regular expression between slashes, searched (not
    anchored), or a glob matching all of ``value`` as Go's ``path.Match``; a malformed
    pattern matches nothing."""
    if _is_regex(pattern):
        try:
            return re.search(pattern[1:-1], value) is not None
        except re.error:
            return False
    regex = glob_regex(pattern)
    return regex is not None and re.fullmatch(regex, value, re.DOTALL) is not None


def glob_regex(pattern: str) -> str | None:
    """Go's ``path.Match`` pattern as a Python regular expression; None for Go's ErrBadPattern.
    ``*`` is any run of characters but ``/``, ``?`` one of them, ``[a-z]``/``[^a-z]`` a class
    (which may match ``/``), ``\\c`` the character c."""
    out, i = [], 0
    while i < len(pattern):
        char, i = pattern[i], i + 1
        if char == "\\":
            if i == len(pattern):
                return None
            char, i = pattern[i], i + 1
        elif char in "*?":
            out.append("[^/]*" if char == "*" else "[^/]")
            continue
        elif char == "[":
            negated = pattern.startswith("^", i)
            i, ranges, count = i + negated, "", 0
            while not (pattern.startswith("]", i) and count):
                lo, i = _class_char(pattern, i)
                hi, i = _class_char(pattern, i + 1) if lo and pattern[i] == "-" else (lo, i)
                if lo is None or hi is None:
                    return None
                count += 1  # Go: a range from high to low is allowed, and matches nothing
                ranges += f"{re.escape(lo)}-{re.escape(hi)}" if lo <= hi else ""
            i += 1
            out.append(f"[{'^' * negated}{ranges}]" if ranges else "." if negated else "(?!)")
            continue
        out.append(re.escape(char))
    return "".join(out)


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    """Go's ``getEsc``: one character of a class, maybe escaped, with more after it."""
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    i += pattern[i] == "\\"
    return (None, i) if i + 1 >= len(pattern) else (pattern[i], i + 1)


def parse_acl(text: str, where: str = "the access list") -> list[Rule]:
    """Rules from docker_auth's YAML format; AclError (one line) for anything else."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
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
        unknown = sorted(set(match) - set(FIELDS))
        if unknown:  # docker_auth also matches ip and labels: said, not ignored
            raise AclError(f"rule {n} of {where} matches on {unknown[0]!r}, unsupported")
        patterns = {k: None if match.get(k) is None else str(match[k]) for k in FIELDS}
        for key, pattern in patterns.items():  # docker_auth refuses such a list at load too
            try:
                re.compile(pattern[1:-1]) if pattern and _is_regex(pattern) else None
            except re.error as exc:
                raise AclError(f"rule {n} of {where}: {key} {pattern} is not a regular "
                               f"expression: {exc}") from None  # fmt: skip
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise AclError(f"rule {n} of {where}: 'actions' must be a list, e.g. [pull]")
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise AclError(f"rule {n} of {where} names an unknown action {bad[0]!r} "
                           f"(known: {', '.join(sorted(ACTIONS))})")  # fmt: skip
        rules.append(Rule(actions=tuple(actions), **patterns))
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
        allowed = rule.allows(wanted) if rule is not None else []
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
