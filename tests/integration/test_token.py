"""Token authentication against the real registry and the real token server container."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from common import free_port
from cryptography.hazmat.primitives.asymmetric import rsa
from docker import DockerClient
from test_cli import assert_one_line_error, run

import reglab
from reglab.auth.tokenserver import decode, jwk, sign
from reglab.engine import transfer
from reglab.lab import checks
from reglab.registry.config import TOKEN_SERVICE

pytestmark = pytest.mark.docker

PASSWORDS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture(params=["3", "2"], ids=["v3", "v2.8"])
def token_registry(
    engine: DockerClient,
    workshop_images: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[reglab.Registry, list[str]]]:
    """The token stage as ``reglab up token`` starts it, on registry 3 and on 2.8: both verify
    the token server's x5c chain against the workshop CA."""
    name, port = f"reglab-test-{uuid.uuid4().hex[:6]}", free_port()
    args = ["--port", str(port), "--workdir", str(tmp_path / "w"), "--name", name]
    args += ["--registry", request.param]
    for user, password in PASSWORDS.items():
        added = run("user", "add", user, "--password-stdin", "--workdir", str(tmp_path / "w"),
                    stdin=password + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
    started = run("up", "token", *args)
    assert started.returncode == 0, started.stderr
    yield reglab.Registry.attach(engine, name, tmp_path / "w"), args
    run("down", "--workdir", str(tmp_path / "w"), "--name", name)


def users() -> dict[str, reglab.Credentials]:
    return {u: reglab.Credentials(u, p) for u, p in PASSWORDS.items()}


def test_every_rule_of_the_access_list_holds_and_down_removes_the_token_server(
    engine: DockerClient,
    token_registry: tuple[reglab.Registry, list[str]],
    cleanup_images: list[str],
) -> None:
    registry, args = token_registry
    assert registry.config.stage.token and registry.config.token_port is not None
    for user, repository in (("bob", "team/app"), ("admin", "public/hello")):
        ref = registry.ref(repository)
        cleanup_images.append(ref)
        transfer.tag(engine, "hello-world", ref)
        transfer.push(engine, ref, auth=users()[user].auth_config())
    checks.access_as_written(registry, users())
    down = run("down", "--workdir", str(registry.config.workdir), "--name", registry.config.name)
    assert down.returncode == 0, down.stderr
    names = {c.name for c in engine.containers.list(all=True)}
    assert registry.config.name not in names and f"{registry.config.name}-token" not in names


def test_the_engine_logs_in_through_the_token_server_and_a_wrong_password_is_a_401(
    engine: DockerClient, token_registry: tuple[reglab.Registry, list[str]], tmp_path: Path
) -> None:
    registry, _ = token_registry
    config = tmp_path / "docker-config"
    login = ["docker", "--config", str(config), "login", registry.address, "--password-stdin"]
    good = subprocess.run(
        [*login, "-u", "alice"], input="alice-pw\n", capture_output=True, text=True
    )
    assert good.returncode == 0 and "Login Succeeded" in good.stdout, good.stderr
    bad = subprocess.run([*login, "-u", "alice"], input="wrong\n", capture_output=True, text=True)
    assert bad.returncode != 0
    refused = pytest.raises(reglab.AuthenticationRequired, match="the token server refused alice")
    with refused, registry.client(auth=("alice", "wrong")) as api:
        api.tags("team/app")
    logs = bytes(engine.containers.get(f"{registry.config.name}-token").logs()).decode()
    assert "refused: wrong user or password" in logs and "Traceback" not in logs


def test_a_foreign_signer_is_refused_and_a_list_audience_only_by_2_8(
    token_registry: tuple[reglab.Registry, list[str]],
) -> None:
    """What reglab's tokens get right, shown to matter: a token signed by a key the workshop
    CA did not certify is refused by both versions. ``aud`` as a list (RFC 7519 allows it) is
    accepted by registry 3 and refused by 2.8, so reglab's token server writes a string."""
    registry, _ = token_registry
    paths = registry.config.paths
    signer = reglab.Certificate.load(paths.token_cert, paths.token_key)
    now = int(time.time())
    claims = {"iss": "reglab-token", "sub": "admin", "aud": "reglab-registry", "exp": now + 60,
              "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
              "access": [{"type": "registry", "name": "catalog", "actions": ["*"]}]}  # fmt: skip

    def status(token: str) -> int:
        bearer = {"Authorization": f"Bearer {token}"}
        with registry.client() as api:
            answer = api.session.get(f"{api.url}/v2/_catalog", verify=api.verify, headers=bearer)
        return answer.status_code

    assert isinstance(signer.key, rsa.RSAPrivateKey)  # RS256 tokens need an RSA key
    assert status(sign(claims, signer.key, [signer.cert])) == 200
    listed = status(sign({**claims, "aud": ["reglab-registry"]}, signer.key, [signer.cert]))
    assert listed == (200 if registry.config.version.v3 else 401)
    # Registry 3's second way to trust the signer: its key in jwks.json, named by thumbprint.
    kid = jwk(signer.key.public_key())["kid"]
    by_kid = status(sign(claims, signer.key, [], kid=kid))
    assert by_kid == (200 if registry.config.version.v3 else 401)
    assert status(sign(claims, signer.key, [], kid="not-a-known-key")) == 401
    foreign = reglab.CA.create("not the workshop CA").issue_signing_cert("intruder")
    assert isinstance(foreign.key, rsa.RSAPrivateKey)
    assert status(sign(claims, foreign.key, [foreign.cert])) == 401  # not the rootcertbundle


def test_bad_users_and_access_lists_are_one_line_and_change_nothing(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "w"
    add = ["user", "add", "--password-stdin", "--workdir", str(folder)]
    assert_one_line_error(run(*add[:2], "a:b", *add[2:], stdin="pw\n"), "contains ':'")
    assert_one_line_error(run(*add[:2], "carol", *add[2:], stdin="\n"), "password is empty")
    assert not (folder / "auth" / "htpasswd").exists()
    assert run(*add[:2], "bob", *add[2:], stdin="bob-pw\n").returncode == 0
    acl = folder / "auth" / "acl.yml"
    acl.write_text("- match: {account: bob}\n  actions: [pull]\n")
    name = f"reglab-test-{uuid.uuid4().hex[:6]}"
    args = ["--port", str(free_port()), "--workdir", str(folder), "--name", name]
    for text, message in (
        ("- match: {account: bob\n", "is not valid YAML"),
        ("- match: {account: bob}\n  actions: [pull, fly]\n", "unknown action 'fly'"),
        ("- actions: [pull]\n", "has no 'match:'"),
    ):
        bad = tmp_path / "bad.yml"
        bad.write_text(text)
        assert_one_line_error(run("up", "token", "--acl", str(bad), *args), message)
    assert acl.read_text() == "- match: {account: bob}\n  actions: [pull]\n"  # untouched
    assert engine.containers.list(all=True, filters={"name": name}) == []
    assert_one_line_error(run("up", "tls", "--acl", str(acl), *args), "only applies to the token")


def test_the_token_server_answers_oauth2s_password_grant_as_docker_auth_does(
    token_registry: tuple[reglab.Registry, list[str]],
) -> None:
    """POST /auth with a form (distribution's docs, "oauth"): what containerd, and so every
    Kubernetes node, asks first when it has a login (tests/integration/test_node.py pulls
    through it). The scope is one space-separated field; other grants are refused."""
    registry, _ = token_registry
    realm, ca = registry.config.realm, str(registry.config.paths.ca_cert)
    form = {"grant_type": "password", "service": TOKEN_SERVICE, "client_id": "test",
            "username": "alice", "password": "alice-pw",
            "scope": "repository:team/app:pull,push repository:other:pull"}  # fmt: skip
    answer = requests.post(realm, data=form, verify=ca, timeout=10)
    assert answer.status_code == 200, answer.text
    access = decode(answer.json()["access_token"])[1]["access"]
    assert access == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    wrong = requests.post(realm, data={**form, "password": "nope"}, verify=ca, timeout=10)
    assert wrong.status_code == 401
    refresh = requests.post(realm, data={**form, "grant_type": "refresh_token"}, verify=ca,
                            timeout=10)  # fmt: skip
    assert refresh.status_code == 400 and refresh.json() == {"error": "unsupported_grant_type"}
