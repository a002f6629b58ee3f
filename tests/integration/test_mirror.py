"""A pull-through mirror in front of a workshop registry, against real registries."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import MakeRegistry, container_of, free_port
from docker import DockerClient
from test_cli import assert_one_line_error, run

import reglab
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.versions import V2
from reglab.base.wait import poll
from reglab.engine import transfer
from reglab.engine.network import NETWORK, remove_project_network
from reglab.registry import gc, mirror, replicate
from reglab.registry.config import LOGIN_FILE
from reglab.registry.status import running_version

pytestmark = pytest.mark.docker


@pytest.fixture
def upstream(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> Iterator[reglab.Registry]:
    """A persistent registry holding hello-world (pulled through the mirror) and another
    image (never pulled through it)."""
    registry = make_registry("persistent")
    for source, repository in (("hello-world", "hello-world"), (TOOLS_IMAGE, "uncached/tools")):
        ref = registry.ref(repository)
        cleanup_images.append(ref)
        transfer.tag(engine, source, ref)
        transfer.push(engine, ref)
    yield registry
    container = registry.container
    if container is not None:
        container.remove(force=True, v=True)
    remove_project_network(engine)


def test_the_mirror_serves_the_upstreams_digest_and_keeps_serving_without_it(
    engine: DockerClient, upstream: reglab.Registry, tmp_path: Path, cleanup_images: list[str]
) -> None:
    name = f"reglab-test-mirror-{uuid.uuid4().hex[:6]}"
    try:
        proxy = mirror.start_mirror(engine, upstream.config.name, free_port(), tmp_path, name)
        assert NETWORK in container_of(upstream).attrs["NetworkSettings"]["Networks"]
        with upstream.client() as api:
            want = api.manifest_digest("hello-world")
        ref = proxy.ref("hello-world")
        cleanup_images.append(ref)
        assert gc.blob_bytes(proxy.config.paths) == 0  # empty until the first pull
        assert transfer.pull(engine, ref) == want
        assert gc.blob_bytes(proxy.config.paths) > 0  # the first pull filled its storage

        with proxy.client() as api, pytest.raises(reglab.ClientError, match="UNSUPPORTED"):
            api.upload_blob("pushed/here", b"a push starts with an upload: refused")

        container_of(upstream).stop(timeout=5)  # the upstream goes down
        transfer.remove(engine, ref)
        assert transfer.pull(engine, ref) == want  # served from the mirror's own storage
        uncached = proxy.ref("uncached/tools")
        with pytest.raises(reglab.ImageError):  # never pulled through it: nothing to serve
            transfer.pull(engine, uncached)
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()


def test_a_mirror_is_not_started_on_an_upstream_that_does_not_answer(
    engine: DockerClient, upstream: reglab.Registry, tmp_path: Path
) -> None:
    name = f"reglab-test-mirror-{uuid.uuid4().hex[:6]}"
    container_of(upstream).stop(timeout=5)
    args = ["--port", str(free_port()), "--workdir", str(tmp_path), "--name", name]
    down = run("up", "mirror", "--upstream", upstream.config.name, *args)
    assert_one_line_error(down, "registry", "is exited")
    container_of(upstream).start()
    upstream.wait_ready()
    nowhere = run("up", "mirror", "--upstream", "http://reglab-no-such-host:5000", *args)
    assert_one_line_error(nowhere, "does not answer GET /v2/ with 200")
    assert_one_line_error(run("up", "mirror", *args), "needs the registry to mirror")
    assert_one_line_error(run("up", "local", "--upstream", "x", *args), "only applies to a mirror")
    missing = run("up", "mirror", "--upstream", f"reglab-test-{uuid.uuid4().hex[:6]}", *args)
    assert_one_line_error(missing, "no registry named")
    assert engine.containers.list(all=True, filters={"name": name}) == []  # none was started

    ok = run("up", "mirror", "--upstream", upstream.config.name, *args)
    try:
        assert ok.returncode == 0, ok.stderr
        assert "-e REGISTRY_PROXY_REMOTEURL=http://" in ok.stdout
        assert "pushes are refused" in ok.stdout
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()


def test_skopeo_sync_copies_every_tag_with_the_same_digests(
    engine: DockerClient,
    upstream: reglab.Registry,
    make_registry: MakeRegistry,
    cleanup_images: list[str],
) -> None:
    ref = upstream.ref("hello-world", "v2")
    cleanup_images.append(ref)
    transfer.tag(engine, TOOLS_IMAGE, ref)
    transfer.push(engine, ref)
    copy = make_registry("persistent", name=f"reglab-test-copy-{uuid.uuid4().hex[:6]}")
    replicate.sync(upstream.address, "hello-world", copy.address)
    with upstream.client() as source, copy.client() as target:
        assert target.tags("hello-world") == source.tags("hello-world") == ["latest", "v2"]
        for tag in ("latest", "v2"):
            assert target.manifest_digest("hello-world", tag) == source.manifest_digest(
                "hello-world", tag
            )
            target.verify_image("hello-world", tag)
    assert replicate.digest(copy.ref("hello-world", "v2")) == transfer.pull(engine, ref)


def test_skopeo_errors_are_one_line(
    upstream: reglab.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(reglab.RegistryError, match="skopeo sync failed") as err:
        replicate.sync(upstream.address, "no-such-repository", "127.0.0.1:9")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(reglab.ConfigError, match="skopeo is not installed"):
        replicate.sync(upstream.address, "hello-world", "127.0.0.1:9")


# --- a TLS + basic-auth upstream, proxy.ttl, and how 2.8 differs ------------------------------


@pytest.fixture
def moby() -> reglab.Credentials:
    return reglab.Credentials.generate("moby")


@pytest.fixture
def auth_upstream(
    engine: DockerClient, make_registry: MakeRegistry, moby: reglab.Credentials
) -> Iterator[reglab.Registry]:
    """The auth stage (TLS with the workshop CA, basic auth) holding hello-world. Its
    certificate does not name the container yet: a mirror's start adds that name."""
    registry = make_registry("auth", users=[moby])
    ref = registry.ref("hello-world")
    transfer.tag(engine, "hello-world", ref)
    transfer.push(engine, ref, moby.auth_config())
    transfer.remove(engine, ref)
    yield registry
    container = registry.container  # off the network first, so that the network can go
    if container is not None:
        container.remove(force=True, v=True)
    remove_project_network(engine)


def mirror_name() -> str:
    return f"reglab-test-mirror-{uuid.uuid4().hex[:6]}"


def test_a_v3_mirror_logs_in_to_a_tls_basic_auth_upstream_and_schedules_by_its_ttl(
    engine: DockerClient, auth_upstream: reglab.Registry, moby: reglab.Credentials
) -> None:
    name, tmp_path = mirror_name(), auth_upstream.config.workdir  # the upstream's CA is there
    try:
        with pytest.raises(reglab.ConfigError, match="asks for a login"):
            mirror.start_mirror(engine, auth_upstream.config.name, free_port(), tmp_path, name)
        proxy = mirror.start_mirror(
            engine, auth_upstream.config.name, free_port(), tmp_path, name, login=moby, ttl="2h"
        )
        assert auth_upstream.config.paths.server_certificate().covers(auth_upstream.config.name)
        line = proxy.config.docker_run_command()
        assert moby.password not in line and "--env-file" in line and "SSL_CERT_FILE" in line
        login_file = tmp_path / "mirror" / LOGIN_FILE
        assert login_file.stat().st_mode & 0o777 == 0o600
        with auth_upstream.client(moby.as_tuple()) as api:
            want = api.manifest_digest("hello-world")
        with proxy.client() as api:
            assert api.manifest_digest("hello-world") == want
            assert api.verify_image("hello-world") > 0
        state = proxy.config.paths.data / "scheduler-state.json"
        entries = poll("the schedule", lambda: state.exists() and state.read_text() or None,
                       timeout=20)  # fmt: skip
        for entry in json.loads(entries).values():  # each expires 2 h after it was fetched
            left = dt.datetime.fromisoformat(entry["ExpiryData"]) - dt.datetime.now(dt.UTC)
            assert dt.timedelta(hours=1.9) < left <= dt.timedelta(hours=2)
        assert running_version(container_of(proxy)).endswith("3.1.2")  # re-verifies digests
        # Read back from its container, the mirror keeps its trust, its login and its TTL.
        attached = reglab.Registry.attach(engine, name, proxy.config.workdir)
        assert attached.config.docker_run_command() == line
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()


def test_a_short_ttl_forgets_what_the_mirror_fetched(
    engine: DockerClient, upstream: reglab.Registry, tmp_path: Path
) -> None:
    name = mirror_name()
    try:
        proxy = mirror.start_mirror(
            engine, upstream.config.name, free_port(), tmp_path, name, ttl="3s"
        )
        with proxy.client() as api:
            api.verify_image("hello-world")
        container_of(upstream).stop(timeout=5)  # only the mirror's own copy is left

        def forgotten() -> bool | None:
            with proxy.client() as api:
                try:
                    api.manifest_digest("hello-world")
                except reglab.ClientError:
                    return True
            return None

        assert poll("the mirror to forget hello-world", forgotten, timeout=30)
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()


@pytest.mark.parametrize("registry_version", ["2"])
def test_on_2_8_the_ttl_is_seven_days_and_a_basic_auth_upstream_is_unknown(
    engine: DockerClient, auth_upstream: reglab.Registry, moby: reglab.Credentials
) -> None:
    name, tmp_path = mirror_name(), auth_upstream.config.workdir
    args = (engine, auth_upstream.config.name, free_port(), tmp_path, name)
    with pytest.raises(reglab.ConfigError, match="token-auth upstreams only"):
        mirror.start_mirror(*args, version=V2, login=moby)
    found = mirror.upstream_of(engine, auth_upstream.config.name, tmp_path)
    mirror.login_step(moby, tmp_path / "mirror").run()
    config = mirror.mirror_config(found, free_port(), tmp_path, name, None, V2, True, "1h")
    proxy = reglab.Registry(config, engine)
    try:
        proxy.start()  # 2.8 starts (the upstream answers), with the login and the TTL ignored
        with proxy.client() as api, pytest.raises(reglab.ClientError, match="MANIFEST_UNKNOWN"):
            api.manifest("hello-world")  # the upstream's 401, as 2.8 reports it
    finally:
        proxy.remove()


@pytest.mark.parametrize("registry_version", ["2"])
def test_on_2_8_cached_content_expires_after_seven_days_whatever_the_ttl(
    engine: DockerClient, upstream: reglab.Registry, tmp_path: Path
) -> None:
    name = mirror_name()
    found = mirror.upstream_of(engine, upstream.config.name, tmp_path)
    config = mirror.mirror_config(found, free_port(), tmp_path, name, version=V2, ttl="1h")
    proxy = reglab.Registry(config, engine)
    try:
        proxy.start()
        with proxy.client() as api:
            api.verify_image("hello-world")
        state = proxy.config.paths.data / "scheduler-state.json"
        entries = poll("the schedule", lambda: state.exists() and state.read_text() or None,
                       timeout=20)  # fmt: skip
        for entry in json.loads(entries).values():
            left = dt.datetime.fromisoformat(entry["ExpiryData"]) - dt.datetime.now(dt.UTC)
            assert dt.timedelta(days=6.9) < left <= dt.timedelta(days=7)
    finally:
        proxy.remove()


def test_reglab_up_mirror_takes_the_upstreams_login_and_a_ttl(
    engine: DockerClient, auth_upstream: reglab.Registry, moby: reglab.Credentials
) -> None:
    name, port = mirror_name(), free_port()
    args = ["--upstream", auth_upstream.config.name, "--port", str(port), "--name", name]
    args += ["--workdir", str(auth_upstream.config.workdir), "--ttl", "2h"]
    try:
        assert_one_line_error(run("up", "mirror", *args), "asks for a login", "--user")
        wrong = run("up", "mirror", *args, "--user", "moby", "--password-stdin", stdin="nope\n")
        assert_one_line_error(wrong, "refuses moby's password")
        assert_one_line_error(run("up", "local", "--ttl", "2h"), "--ttl only applies to a mirror")
        assert engine.containers.list(all=True, filters={"name": name}) == []

        ok = run("up", "mirror", *args, "--user", "moby", "--password-stdin",
                 stdin=f"{moby.password}\n")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert moby.password not in ok.stdout
        login_file = auth_upstream.config.workdir / "mirror" / LOGIN_FILE
        assert (
            f'REGISTRY_PROXY_PASSWORD "$PASSWORD_MOBY" > {login_file}' in ok.stdout
        )  # the line that writes it
        assert f"--env-file {login_file}" in ok.stdout and "-e REGISTRY_PROXY_TTL=2h" in ok.stdout
        proxy = reglab.Registry.attach(engine, name, auth_upstream.config.workdir)
        assert "REGISTRY_PROXY_TTL=2h" in container_of(proxy).attrs["Config"]["Env"]
        with auth_upstream.client(moby.as_tuple()) as api:
            want = api.manifest_digest("hello-world")
        with proxy.client() as api:  # logged in upstream with moby's password from the file
            assert api.manifest_digest("hello-world") == want
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()
