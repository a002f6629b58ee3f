"""Notebook 08, token authentication: each step through reglab's core AND its command line.

The token flow is shown request by request with ``curl`` (the lines a learner types), and
made with reglab's HTTP client, which speaks the same flow (reglab.registry.client).
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from reglab.auth.certs import Certificate
from reglab.auth.htpasswd import password_variable
from reglab.auth.tokenserver import decode, jwk, sign
from reglab.base.errors import ClientError, ReglabError
from reglab.base.files import write_atomic
from reglab.base.shell import printf_line
from reglab.lab.workshop import Workshop
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.config import TOKEN_SERVICE
from reglab.registry.container import Registry
from reglab.registry.login import Credentials
from reglab.registry.token import check_acl


def write_acl(ws: Workshop, text: str) -> None:
    """Write ``auth/acl.yml`` (checked first: a rule that does not parse changes nothing)."""
    path = ws.config("token").paths.acl
    ws.cli(printf_line(text, ws.style.show(path)))
    staged = path.with_suffix(".new")
    write_atomic(staged, text.encode(), mode=0o644)
    try:
        rules = check_acl(staged)
    except ReglabError:
        staged.unlink()
        raise
    staged.replace(path)
    print(f"{path.name}: {len(rules)} rules; the first that matches decides")


def rules(ws: Workshop) -> list[dict[str, Any]]:
    """The access list's rules as written (``match`` and ``actions`` each), in order."""
    entries: list[dict[str, Any]] = yaml.safe_load(ws.config("token").paths.acl.read_text())
    return entries


def show_acl(ws: Workshop) -> None:
    """The rules, numbered: the order is what decides (the first rule that matches)."""
    ws.cli(f"cat {ws.style.show(ws.config('token').paths.acl)}")
    _numbered(rules(ws))


def _numbered(entries: list[dict[str, Any]]) -> None:
    for n, entry in enumerate(entries, start=1):
        print(f"{n}. {_flow(entry['match'])} -> {entry.get('actions', [])}")


def _flow(value: object) -> str:
    """One line of YAML in its JSON form (``{"account": ""}``): no quote to escape in the
    shell's single quotes, and "" stays visible."""
    return json.dumps(value)


def _write_rules(ws: Workshop, entries: list[dict[str, Any]]) -> None:
    """Write ``entries`` as the access list, one rule per two lines, and show them numbered.
    The token server reads the file again at its next token (no restart)."""
    write_acl(ws, "".join(
        f"- match: {_flow(e['match'])}\n  actions: {_flow(e.get('actions', []))}\n"
        for e in entries
    ))  # fmt: skip
    _numbered(entries)


def add_rule(
    ws: Workshop, match: dict[str, str], actions: list[str], at: int | None = None
) -> None:
    """Add a rule to the access list, as rule number ``at`` (1: first; None: last)."""
    entries = rules(ws)
    position = len(entries) if at is None else max(at - 1, 0)
    entries.insert(position, {"match": match, "actions": actions})
    _write_rules(ws, entries)


def move_rule(ws: Workshop, number: int, to: int) -> None:
    """Move rule ``number`` so that it becomes rule ``to`` (both counted from 1)."""
    entries = rules(ws)
    if not 1 <= number <= len(entries):
        raise ReglabError(
            f"the access list has no rule {number} (it has {len(entries)})",
            "access.show_acl(ws) lists them, numbered",
        )
    entries.insert(max(to - 1, 0), entries.pop(number - 1))
    _write_rules(ws, entries)


def _curl(ws: Workshop, registry: Registry) -> str:
    return f"curl -s --cacert {ws.style.show(registry.config.paths.ca_cert)}"


def challenge(ws: Workshop, registry: Registry, path: str) -> str:
    """Ask without a token: the registry answers 401 and says where to get one."""
    ws.cli(f"{_curl(ws, registry)} -i {registry.url}{path} | grep -i www-authenticate")
    with registry.client() as api:
        answer = api.answer("GET", path)
    header = answer.headers.get("WWW-Authenticate", "")
    print(f"{answer.status_code} {answer.reason}")
    print(f"WWW-Authenticate: {header}")
    return header


def token_command(
    ws: Workshop, ca: Path, realm: str, credentials: Credentials | None, scope: str
) -> str:
    """The line that asks ``realm`` for a token and keeps it in ``$TOKEN``."""
    who = f' -u "{credentials.user}:${password_variable(credentials.user)}"' if credentials else ""
    query = f"service={TOKEN_SERVICE}&scope={scope}"
    return (
        f'TOKEN=$(curl -s --cacert {ws.style.show(ca)}{who} "{realm}?{query}" '
        "| python3 -c 'import json, sys; print(json.load(sys.stdin)[\"token\"])')"
    )


def get_token(ws: Workshop, registry: Registry, credentials: Credentials | None, scope: str) -> str:
    """Ask the realm for a token for ``scope``, as ``credentials`` (None: anonymously)."""
    realm = registry.config.realm
    ws.cli(token_command(ws, registry.config.paths.ca_cert, realm, credentials, scope))
    asked = {"realm": realm, "service": TOKEN_SERVICE, "scope": scope}
    try:
        with registry.client(auth=credentials.as_tuple() if credentials else None) as api:
            token = api.token(asked)
    except ClientError as exc:
        if exc.status is None:  # no answer at all: nothing to show but the error
            raise
        print(exc.problem)  # a refusal is part of the lesson: show it
        return ""
    print(f"a token: {token[:20]}... (three base64 parts: header, claims, signature)")
    return token


def claims(token: str) -> dict[str, Any]:
    """What the token says (its header and claims; the registry checks the signature)."""
    header, body = decode(token)
    print(f"header: alg {header['alg']}, x5c: {len(header.get('x5c', []))} certificate(s)")
    for key in ("iss", "sub", "aud"):
        print(f"{key:>6}: {body[key]!r}")
    print(f"{'exp':>6}: {body['exp'] - body['iat']} s after it was issued (iat)")
    print(f"{'nbf':>6}: {body['iat'] - body['nbf']} s before it was issued (clock leeway)")
    print(f"access: {body['access']}")
    return body


def signed_by_kid(ws: Workshop, registry: Registry, token: str) -> str:
    """The same claims signed again with a ``kid`` header instead of the ``x5c`` chain: the
    key named by its RFC 7638 thumbprint, which registry 3 finds in its ``jwks`` file (shown)."""
    paths = registry.config.paths
    ws.cli(f"cat {ws.style.show(paths.jwks)}")
    published = json.loads(paths.jwks.read_text())["keys"]
    print(f"jwks.json: {len(published)} key, kid {published[0]['kid']}")
    signer = Certificate.load(paths.token_cert, paths.token_key)
    if not isinstance(signer.key, rsa.RSAPrivateKey):
        raise ReglabError(f"{paths.token_key} is not an RSA key", "start the token stage again")
    kid = jwk(signer.key.public_key())["kid"]
    again = sign(decode(token)[1], signer.key, [], kid=kid)
    header = decode(again)[0]
    print(f"new header: alg {header['alg']}, kid {header['kid']}, x5c: {'x5c' in header}")
    return again


def with_token(ws: Workshop, registry: Registry, token: str, repository: str) -> int:
    """Send the token: ``Authorization: Bearer TOKEN`` on a ``HEAD`` of the manifest of
    ``repository:latest``; show the status and the digest the registry answers with."""
    path = f"/v2/{repository}/manifests/latest"
    ws.cli(
        f'{_curl(ws, registry)} -I -H "Authorization: Bearer $TOKEN" '
        f"-H {shlex.quote('Accept: ' + MANIFEST_TYPES)} {registry.url}{path}"
    )
    with registry.client() as api:  # no user: the token is all it sends
        answer = api.answer(
            "HEAD",
            path,
            headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
        )
    print(f"{answer.status_code} {answer.reason}")
    print(f"Docker-Content-Digest: {answer.headers.get('Docker-Content-Digest', '(none)')}")
    return answer.status_code


def can(registry: Registry, credentials: Credentials | None, action: str, repository: str) -> bool:
    """Whether the registry lets ``credentials`` ``pull`` or ``push`` ``repository``, asked
    through the token flow (a push is tried as the upload every push starts with)."""
    auth = credentials.as_tuple() if credentials else None
    try:
        with registry.client(auth=auth) as api:
            if action == "pull":
                api.manifest_digest(repository)
            elif action == "push":
                api.request("POST", f"/v2/{repository}/blobs/uploads/")
            else:
                api.catalog()
    except ReglabError:
        return False
    return True


def cost(registry: Registry, credentials: Credentials, requests_: int = 20) -> tuple[float, float]:
    """Milliseconds for ``requests_`` requests with one token, and for as many new tokens (a
    bcrypt check each): where the password check's cost goes with tokens.

    The client keeps the token it got for a repository and sends it with the next requests
    for that repository, as the engine does: after a first request (which gets the token),
    each ``HEAD`` of the manifest is one request with that one token."""
    scope = "repository:team/app:pull"
    with registry.client(auth=credentials.as_tuple()) as api:
        api.manifest_digest("team/app")  # gets the token the next requests reuse
        start = time.perf_counter()
        for _ in range(requests_):
            api.manifest_digest("team/app")
        with_token_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        for _ in range(requests_):
            api.token({"realm": registry.config.realm, "service": TOKEN_SERVICE, "scope": scope})
        new_tokens_ms = (time.perf_counter() - start) * 1000
    print(f"{requests_} requests with one token: {with_token_ms:.0f} ms")
    print(f"{requests_} new tokens (a bcrypt check each): {new_tokens_ms:.0f} ms")
    return with_token_ms, new_tokens_ms
