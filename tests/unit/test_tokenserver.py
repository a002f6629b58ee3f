"""The token server's pure parts: the access list, scopes, what a token grants, its signature."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from reglab.auth.acl import (
    AclError,
    Rule,
    glob_regex,
    grant,
    load_acl,
    match_pattern,
    parse_acl,
    parse_scope,
)
from reglab.auth.certs import CA
from reglab.auth.tokenserver import Issuer, decode, jwk, load_users
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
    assert rules[0].account == "bob" and rules[0].name is None  # left out: any name
    assert rules[0].matches("bob", "repository", "team/a/b")  # even one with slashes


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


#: Go's own tests of path.Match (src/path/match_test.go): pattern, name, match, bad pattern.
GO_PATH_MATCH = [
    ("abc", "abc", True, False),
    ("*", "abc", True, False),
    ("*c", "abc", True, False),
    ("a*", "a", True, False),
    ("a*", "abc", True, False),
    ("a*", "ab/c", False, False),
    ("a*/b", "abc/b", True, False),
    ("a*/b", "a/c/b", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False, False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True, False),
    ("a*b?c*x", "abxbbxdbxebxczzy", False, False),
    ("ab[c]", "abc", True, False),
    ("ab[b-d]", "abc", True, False),
    ("ab[e-g]", "abc", False, False),
    ("ab[^c]", "abc", False, False),
    ("ab[^b-d]", "abc", False, False),
    ("ab[^e-g]", "abc", True, False),
    ("a\\*b", "a*b", True, False),
    ("a\\*b", "ab", False, False),
    ("a?b", "a☺b", True, False),
    ("a[^a]b", "a☺b", True, False),
    ("a???b", "a☺b", False, False),
    ("a[^a][^a][^a]b", "a☺b", False, False),
    ("[a-ζ]*", "α", True, False),
    ("*[a-ζ]", "A", False, False),
    ("a?b", "a/b", False, False),
    ("a*b", "a/b", False, False),
    ("[\\]a]", "]", True, False),
    ("[\\-]", "-", True, False),
    ("[x\\-]", "x", True, False),
    ("[x\\-]", "-", True, False),
    ("[x\\-]", "z", False, False),
    ("[\\-x]", "x", True, False),
    ("[\\-x]", "-", True, False),
    ("[\\-x]", "a", False, False),
    ("[]a]", "]", False, True),
    ("[-]", "-", False, True),
    ("[x-]", "x", False, True),
    ("[x-]", "-", False, True),
    ("[x-]", "z", False, True),
    ("[-x]", "x", False, True),
    ("[-x]", "-", False, True),
    ("[-x]", "a", False, True),
    ("\\", "a", False, True),
    ("[a-b-c]", "a", False, True),
    ("[", "a", False, True),
    ("[^", "a", False, True),
    ("[^bc", "a", False, True),
    ("a[", "a", False, True),
    ("a[", "ab", False, True),
    ("a[", "x", False, True),
    ("a/b[", "x", False, True),
    ("*x", "xxx", True, False),
]


@pytest.mark.parametrize("pattern, name, match, bad", GO_PATH_MATCH)
def test_globs_match_as_gos_path_match(pattern: str, name: str, match: bool, bad: bool) -> None:
    """docker_auth matches a glob with Go's path.Match: its cases, ported."""
    assert (glob_regex(pattern) is None) == bad
    assert match_pattern(pattern, name) == match


def rule(**match: str) -> Rule:
    return parse_acl(yaml.safe_dump([{"match": match, "actions": ["pull"]}]))[0]


#: docker_auth's TestMatching (auth_server/authz/acl_test.go): its match conditions, the
#: request (account, type, name, service) and whether they match. ai1 is its request
#: foo/bar/baz/notary. Its IP and label cases are in test_ip_and_labels_are_refused.
AI1 = ("foo", "bar", "baz", "notary")
DOCKER_AUTH_MATCHING = [
    ({}, AI1, True),
    ({"account": "foo"}, AI1, True),
    ({"account": "foo", "type": "bar"}, AI1, True),
    ({"account": "foo", "type": "baz"}, AI1, False),
    ({"account": "fo?", "type": "b*", "name": "/z$/"}, AI1, True),
    ({"account": "fo?", "type": "b*", "name": "/^z/"}, AI1, False),
    ({"name": "${account}"}, ("foo", "", "foo", ""), True),  # variable substitution
    ({"name": "/${account}_.*/"}, ("foo", "", "foo_x", ""), True),
    ({"name": "/${account}_.*/"}, (".*", "", "foo_x", ""), False),  # quoting
    ({"account": r"/^(.+)@test\.com$/", "name": "${account:1}/*"},
     ("john.smith@test.com", "", "john.smith/test", ""), True),
    ({"account": r"/^(.+)@test\.com$/", "name": "${account:3}/*"},
     ("john.smith@test.com", "", "john.smith/test", ""), False),
    ({"account": r"/^(.+)@(.+?).test\.com$/", "name": "${account:1}-${account:2}/*"},
     ("john.smith@it.test.com", "", "john.smith-it/test", ""), True),
    ({"service": "notary", "type": "bar"}, AI1, True),
    ({"service": "notary", "type": "baz"}, AI1, False),
    ({"service": "notary1", "type": "bar"}, AI1, False),
    ({"name": "${labels:group}/*"}, AI1, False),  # no labels (reglab's users have none)
    ({"name": "${labels:noexist}/*"}, AI1, False),
]  # fmt: skip


@pytest.mark.parametrize("match, request_, matches", DOCKER_AUTH_MATCHING)
def test_rules_match_as_docker_auths_own_tests_say(
    match: dict[str, str], request_: tuple[str, str, str, str], matches: bool
) -> None:
    assert rule(**match).matches(*request_) == matches


#: docker_auth's TestValidation, the patterns reglab reads (IP and labels: refused below).
DOCKER_AUTH_VALIDATION = [
    (field, pattern, ok)
    for field in ("account", "type", "name", "service")
    for pattern, ok in (("foo", True), ("foo?*", True), ("/foo.*/", True), ("/foo?*/", False))
]


@pytest.mark.parametrize("field, pattern, ok", DOCKER_AUTH_VALIDATION)
def test_access_lists_load_or_not_as_docker_auths_validation(
    field: str, pattern: str, ok: bool
) -> None:
    text = yaml.safe_dump([{"match": {field: pattern}, "actions": ["pull"]}])
    if ok:
        assert parse_acl(text)[0].matches("foo", "foo", "foo", "foo") == (pattern != "foo?*")
    else:
        with pytest.raises(AclError, match=f"{field} /foo\\?\\*/ is not a regular expression"):
            parse_acl(text)


@pytest.mark.parametrize("match", [{"ip": "127.0.0.1"}, {"labels": {"group": "admins"}}])
def test_ip_and_labels_are_refused(match: dict[str, object]) -> None:
    """docker_auth's IP and label matches need what reglab's token server does not have (the
    client's address behind the engine, labels from an identity provider): refused, not
    silently ignored, so no rule grants more here than there."""
    with pytest.raises(AclError, match=f"matches on {next(iter(match))!r}, unsupported"):
        parse_acl(yaml.safe_dump([{"match": match, "actions": ["*"]}]))


def test_a_star_does_not_cross_a_slash_and_a_regex_is_not_anchored() -> None:
    """The two differences from shell globs and full matches that decide what a list grants."""
    rules = parse_acl(DEFAULT_ACL)
    assert grant(rules, "bob", ["repository:team/app:push"])[0]["actions"] == ["push"]
    assert grant(rules, "bob", ["repository:team/app/tools:push"]) == []  # team/* stops at /
    deep = parse_acl("- match: {account: bob, name: 'team/**'}\n  actions: [push]\n")
    assert grant(deep, "bob", ["repository:team/a/b:push"]) == []  # ** is * twice in Go
    anywhere = parse_acl("- match: {account: bob, name: /team/}\n  actions: [push]\n")
    assert grant(anywhere, "bob", ["repository:myteam/app:push"])  # searched, not anchored
    assert grant(anywhere, "bob", ["repository:app:push"]) == []


def test_star_alone_allows_all_actions_and_among_others_only_itself() -> None:
    """docker_auth: ``["*"]`` is "all" only when it is the only action."""
    alone = parse_acl("- match: {account: bob}\n  actions: ['*']\n")
    mixed = parse_acl("- match: {account: bob}\n  actions: [pull, '*']\n")
    assert grant(alone, "bob", ["repository:a:pull,push"])[0]["actions"] == ["pull", "push"]
    assert grant(mixed, "bob", ["repository:a:pull,push"])[0]["actions"] == ["pull"]
    assert grant(mixed, "bob", ["registry:catalog:*"])[0]["actions"] == ["*"]


def test_a_changed_access_list_counts_at_the_next_token_and_a_bad_one_is_not_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As docker_auth reloads its configuration when written: no restart after moving a rule;
    a list that does not load leaves the last good one in force (and says so in the log)."""
    signer = CA.create().issue_signing_cert("reglab token signer")
    assert isinstance(signer.key, rsa.RSAPrivateKey)
    acl = tmp_path / "acl.yml"
    acl.write_text("- match: {account: bob}\n  actions: [pull]\n")
    issuer = Issuer("reglab-token", "reglab-registry", tmp_path / "htpasswd", load_acl(acl),
                    signer.key, [signer.cert], acl, acl.stat().st_mtime_ns)  # fmt: skip

    def granted() -> list[dict[str, object]]:
        claims = decode(issuer.token("bob", ["repository:team/app:pull,push"])["token"])[1]
        return list(claims["access"])

    assert granted()[0]["actions"] == ["pull"]
    acl.write_text("- match: {account: bob}\n  actions: [pull, push]\n")
    os.utime(acl, ns=(1, 1))  # a new modification time, however fast the file system
    assert granted()[0]["actions"] == ["pull", "push"]
    acl.write_text("- match: {account: bob}\n  actions: [fly]\n")
    os.utime(acl, ns=(2, 2))
    assert granted()[0]["actions"] == ["pull", "push"]
    assert "kept the last access list" in capsys.readouterr().err
