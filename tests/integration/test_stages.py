"""Every stage, started through the library, proven through the registry's HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from common import MakeRegistry, container_of
from docker import DockerClient

import reglab
from reglab.engine import transfer

pytestmark = pytest.mark.docker


@pytest.fixture(params=["3", "2"], ids=["v3", "v2.8"])
def registry_version(request: pytest.FixtureRequest) -> str:
    """Every stage on both registry versions: 3, the workshop's, and 2.8, which older
    deployments still run."""
    version: str = request.param
    return version


def round_trip(
    engine: DockerClient,
    registry: reglab.Registry,
    repo: str,
    cleanup: list[str],
    auth: dict[str, str] | None = None,
) -> str:
    """Tag, push, remove locally, pull back; return the digest, checked at every step."""
    ref = registry.ref(repo)
    cleanup.append(ref)
    transfer.tag(engine, "hello-world", ref)
    pushed = transfer.push(engine, ref, auth=auth)
    with registry.client(auth=(auth["username"], auth["password"]) if auth else None) as api:
        assert api.manifest_digest(repo) == pushed
        assert repo in api.catalog()
        assert api.tags(repo) == ["latest"]
    assert transfer.remove(engine, ref)
    assert not transfer.exists(engine, ref)
    pulled = transfer.pull(engine, ref, auth=auth)
    assert pulled == pushed
    assert f"{registry.address}/{repo}@{pushed}" in engine.images.get(ref).attrs["RepoDigests"]
    return pushed


def test_local_stage_round_trip(
    engine: DockerClient, make_registry: MakeRegistry, unique_repo: str, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    assert registry.client().ping() == 200
    round_trip(engine, registry, unique_repo, cleanup_images)
    assert registry.status().stage == "local"


def test_local_stage_loses_data_with_the_container(
    engine: DockerClient, make_registry: MakeRegistry, unique_repo: str, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    round_trip(engine, registry, unique_repo, cleanup_images)
    registry.start()  # replaces the container
    assert unique_repo not in registry.client().catalog()


def test_persistent_stage_survives_recreation(
    engine: DockerClient, make_registry: MakeRegistry, unique_repo: str, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    digest = round_trip(engine, registry, unique_repo, cleanup_images)
    old_id = container_of(registry).id
    registry.remove()
    assert registry.container is None
    registry.start()
    assert container_of(registry).id != old_id
    assert registry.client().manifest_digest(unique_repo) == digest
    blobs = registry.config.paths.data / "docker/registry/v2/blobs/sha256"
    assert (blobs / digest[7:9] / digest[7:] / "data").is_file()


def test_tls_stage_is_verified_with_the_ca_and_refused_without(
    engine: DockerClient, make_registry: MakeRegistry, unique_repo: str, cleanup_images: list[str]
) -> None:
    registry = make_registry("tls")
    assert registry.url.startswith("https://")
    assert registry.client().ping() == 200  # verified against the workshop CA
    with pytest.raises(reglab.TLSVerificationFailed, match="fix:"):
        reglab.RegistryClient(registry.url).ping()  # system trust store only
    with pytest.raises(reglab.ClientError):
        reglab.RegistryClient(registry.url.replace("https", "http")).ping()
    round_trip(engine, registry, unique_repo, cleanup_images)
    container = container_of(registry)
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_tls_refused_for_a_name_missing_from_the_certificate(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    registry = make_registry("tls", extra_names=())
    other = reglab.CA.load(registry.config.paths.ca_cert, registry.config.paths.ca_key)
    # "localhost" is in the certificate; an address that is not must be refused by a verifier.
    reissued = other.issue_cert("registry.invalid")
    reissued.write(registry.config.paths.server_cert, registry.config.paths.server_key)
    container_of(registry).restart()
    registry.wait_ready()
    with pytest.raises(reglab.TLSVerificationFailed, match="127.0.0.1"):
        registry.client().ping()


def test_auth_stage_401_without_and_with_wrong_password_200_with_right(
    engine: DockerClient,
    make_registry: MakeRegistry,
    unique_repo: str,
    cleanup_images: list[str],
    tmp_path: Path,
) -> None:
    good = reglab.Credentials.generate("moby")
    registry = make_registry("auth", users=[good])
    assert registry.client().status() == 401
    with pytest.raises(reglab.AuthenticationRequired, match="no credentials sent"):
        registry.client().catalog()
    with pytest.raises(reglab.AuthenticationRequired, match="wrong user or password"):
        registry.client(auth=(good.user, "wrong-password")).catalog()
    assert registry.client(auth=good.as_tuple()).ping() == 200

    ref = registry.ref(unique_repo)
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    with pytest.raises(reglab.ImageError, match="no basic auth credentials"):
        transfer.push(engine, ref)  # a refused push raises; it never looks like success
    round_trip(engine, registry, unique_repo, cleanup_images, auth=good.auth_config())


def test_docker_login_through_the_engine(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    good = reglab.Credentials.generate("moby")
    registry = make_registry("auth", users=[good])
    with pytest.raises(reglab.AuthenticationRequired, match="wrong user or password"):
        reglab.login(engine, registry.address, reglab.Credentials(good.user, "wrong"))
    assert reglab.login(engine, registry.address, good) == "Login Succeeded"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {registry.address: {"auth": "eA=="}, "other:1": {}}}))
    assert reglab.logout(engine, registry.address, config_path=config)
    assert registry.address not in config.read_text() and "other:1" in config.read_text()


def test_auth_stage_without_users_is_refused(make_registry: MakeRegistry) -> None:
    with pytest.raises(reglab.HtpasswdError, match="has no users"):
        make_registry("auth")


def test_context_manager_removes_the_container(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, port: int
) -> None:
    config = reglab.RegistryConfig(
        stage=reglab.Stage.LOCAL, port=port, workdir=tmp_path, name="reglab-test-ctx"
    )
    with reglab.Registry(config, engine) as registry:
        assert registry.client().ping() == 200
    assert reglab.Registry(config, engine).container is None


def test_a_manifest_without_accept_keeps_its_digest_on_3_and_not_on_2_8(
    engine: DockerClient,
    make_registry: MakeRegistry,
    registry_version: str,
    unique_repo: str,
    cleanup_images: list[str],
) -> None:
    """Notebook 01's note: asked without an Accept header, registry 3 answers with the
    manifest as pushed; 2.8 converts it to schema 1, under another digest."""
    registry = make_registry("local")
    pushed = round_trip(engine, registry, unique_repo, cleanup_images)
    with registry.client() as api:
        bare = api.answer("GET", f"/v2/{unique_repo}/manifests/latest", headers={"Accept": ""})
    assert bare.status_code == 200
    if registry_version == "3":
        assert bare.headers["Docker-Content-Digest"] == pushed
    else:
        assert bare.headers["Docker-Content-Digest"] != pushed
        assert bare.json()["schemaVersion"] == 1
