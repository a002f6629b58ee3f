"""The token server's pure parts: the access list, scopes, what a token grants, its signature."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reglab.auth.certs import CA
from reglab.auth.tokenserver import (
    AclError,
    Issuer,
    decode,
    grant,
    jwk,
    load_users,
    parse_acl,
    parse_scope,
)
from reglab.registry.token import DEFAULT_ACL


def test_the_example_access_list_grants_what_it_says() -> None:
    rules = parse_acl(DEFAULT_ACL)
    both = "repository:team/app:pull,push"
    assert grant(rules, "bob", [both]) == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    assert grant(rules, "alice", [both]) == [
        {"type": "repository", "name": "team/app", "actions": ["pull"]}
    ]
    assert grant(rules, "", ["repository:public/hello:pull,push"]) == [
        {"type": "repository", "name": "public/hello", "actions": ["pull"]}
    ]
    assert grant(rules, "", [both]) == []  # no rule for anonymous on team/*
    assert grant(rules, "alice", ["registry:catalog:*"]) == []
    assert grant(rules, "admin", ["registry:catalog:*"]) == [
        {"type": "registry", "name": "catalog", "actions": ["*"]}
    ]
    assert grant(rules, "mallory", [both]) == []


def test_the_first_matching_rule_decides_even_when_a_later_one_allows_more() -> None:
    rules = parse_acl(
        """
- match: {account: alice, name: "team/secret"}
  actions: []
- match: {account: alice, name: "team/*"}
  actions: [pull, push]
"""
    )
    assert grant(rules, "alice", ["repository:team/secret:pull"]) == []
    assert grant(rules, "alice", ["repository:team/app:push"])[0]["actions"] == ["push"]


def test_docker_auths_config_file_with_an_acl_key_is_accepted() -> None:
    rules = parse_acl("acl:\n  - match: {account: bob}\n    actions: [pull]\n")
    assert rules[0].account == "bob" and rules[0].name == "*"


@pytest.mark.parametrize(
    "text, message",
    [
        ("- match: {account: bob\n", "is not valid YAML (line"),
        ("match: {account: bob}", "must be a YAML list of rules"),
        ("- actions: [pull]", "rule 1 of the access list has no 'match:'"),
        ("- match: {account: bob}\n  actions: [pull, fly]", "unknown action 'fly'"),
        ("- match: {account: bob}\n  actions: pull", "'actions' must be a list"),
        ("- match: {user: bob}\n  actions: [pull]", "matches on 'user', unsupported"),
    ],
)
def test_a_bad_access_list_is_one_line_naming_the_rule(text: str, message: str) -> None:
    with pytest.raises(AclError) as err:
        parse_acl(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_scopes_keep_a_registry_port_in_the_name() -> None:
    assert parse_scope("repository:team/app:pull,push") == (
        "repository",
        "team/app",
        ["pull", "push"],
    )
    assert parse_scope("repository:localhost:5000/app:pull") == (
        "repository", "localhost:5000/app", ["pull"],
    )  # fmt: skip
    assert parse_scope("nonsense") is None


def test_a_token_is_rs256_with_the_chain_and_a_string_audience(tmp_path: Path) -> None:
    ca = CA.create()
    signer = ca.issue_signing_cert("reglab token signer")
    users = tmp_path / "htpasswd"
    users.write_text("alice:$2y$05$" + "a" * 53 + "\nmd5user:$apr1$x$y\n")
    assert list(load_users(users)) == ["alice"]  # the registry ignores non-bcrypt lines too
    assert isinstance(signer.key, rsa.RSAPrivateKey)  # RS256 tokens need an RSA key
    issuer = Issuer("reglab-token", "reglab-registry", users, parse_acl(DEFAULT_ACL),
                    signer.key, [signer.cert])  # fmt: skip
    answer = issuer.token("alice", ["repository:team/app:pull,push"], now=1_000_000)
    header, claims = decode(answer["token"])
    assert header["alg"] == "RS256" and "kid" not in header
    assert claims["aud"] == "reglab-registry" and isinstance(claims["aud"], str)
    assert (claims["exp"] - claims["iat"], claims["iat"] - claims["nbf"]) == (300, 10)
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    signing_input, _, signature = answer["token"].rpartition(".")
    leaf = base64.b64decode(header["x5c"][0])
    assert leaf == signer.cert.public_bytes(
        __import__("cryptography").hazmat.primitives.serialization.Encoding.DER
    )
    public = signer.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(  # raises when the signature is wrong
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        signing_input.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert json.loads(json.dumps(answer))["expires_in"] == 300


def test_docker_auths_variables_and_regular_expressions_match_as_there() -> None:
    rules = parse_acl(
        """
- match: {account: "/.+/", name: "${account}/*"}
  actions: ["*"]
- match: {account: "/.+/", type: registry, name: catalog}
  actions: ["*"]
- match: {account: "/.+/"}
  actions: [pull]
"""
    )
    assert grant(rules, "carol", ["repository:carol/app:push"])[0]["actions"] == ["push"]
    assert grant(rules, "carol", ["repository:dave/app:push,pull"])[0]["actions"] == ["pull"]
    assert grant(rules, "", ["repository:carol/app:pull"]) == []  # "/.+/": not anonymous
    assert grant(rules, "carol", ["registry:catalog:*"])[0]["actions"] == ["*"]
    with pytest.raises(AclError, match="is not a regular expression"):
        parse_acl("- match: {name: '/(unclosed/'}\n  actions: [pull]\n")
    with pytest.raises(AclError, match="matches on 'ip', unsupported"):
        parse_acl("- match: {ip: 127.0.0.0/8}\n  actions: ['*']\n")


def test_the_jwk_kid_is_the_rfc_7638_thumbprint() -> None:
    """RFC 7638 section 3.1's example key and its thumbprint."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJ"
        "ECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW"
        "2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
        "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    key = rsa.RSAPublicNumbers(number("AQAB"), number(n)).public_key()
    assert jwk(key)["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk(key)["n"] == n and jwk(key)["e"] == "AQAB"


def test_one_scope_parameter_may_hold_several_scopes() -> None:
    """RFC 6749's space-separated scopes: a blob mount asks for two in one parameter."""
    rules = parse_acl(
        "- match: {account: bob, name: 'team/*'}\n  actions: [pull, push]\n", "acl.yml"
    )
    granted = grant(rules, "bob", ["repository:team/a:pull,push repository:team/b:pull"])
    assert granted == [
        {"type": "repository", "name": "team/a", "actions": ["pull", "push"]},
        {"type": "repository", "name": "team/b", "actions": ["pull"]},
    ]
