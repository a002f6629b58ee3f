"""Stage descriptions, settings and error explanations: pure logic, no Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from reglab.base import settings
from reglab.base.errors import ConfigError, engine_text, explain
from reglab.base.refs import split_ref
from reglab.registry.config import RegistryConfig, Stage


def config(stage: str, **kw: Any) -> RegistryConfig:
    return RegistryConfig(
        stage=Stage.parse(stage), port=5055, workdir=kw.pop("workdir", "/srv/w"), name="reg", **kw
    )


def test_each_stage_adds_one_feature() -> None:
    local, persistent, tls, auth = (config(s) for s in ("local", "persistent", "tls", "auth"))
    deletes = {"REGISTRY_STORAGE_DELETE_ENABLED": "true"}  # every stage: deletes by digest
    assert local.volumes() == {} and local.environment() == deletes
    assert local.restart_policy is None
    assert persistent.volumes() == {
        "/srv/w/registry-data": {"bind": "/var/lib/registry", "mode": "rw"}
    }
    assert tls.environment() == {
        **deletes,
        "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt",
        "REGISTRY_HTTP_TLS_KEY": "/certs/domain.key",
    }
    assert tls.restart_policy == {"Name": "unless-stopped"}
    assert auth.environment()["REGISTRY_AUTH"] == "htpasswd"
    assert auth.environment()["REGISTRY_AUTH_HTPASSWD_PATH"] == "/auth/htpasswd"
    assert set(auth.volumes()) == set(tls.volumes()) | {"/srv/w/auth"}
    assert tls.url == "https://127.0.0.1:5055" and local.url == "http://127.0.0.1:5055"


def test_only_the_server_certificate_and_key_are_mounted() -> None:
    vols = config("auth").volumes()
    mounted = {spec["bind"]: host for host, spec in vols.items()}
    assert mounted["/certs/domain.crt"] == "/srv/w/certs/domain.crt"
    assert mounted["/certs/domain.key"] == "/srv/w/certs/domain.key"
    assert not any("ca" in host.split("/")[-1] for host in vols)  # neither ca.crt nor ca/ca.key
    assert all(spec["mode"] == "ro" for spec in vols.values() if spec["bind"].startswith("/certs"))


def test_docker_run_command_matches_the_container_settings() -> None:
    cmd = config("auth").docker_run_command()
    assert cmd.startswith("docker run -d")
    assert "-p 127.0.0.1:5055:5000" in cmd
    assert "--restart unless-stopped" in cmd
    assert "-v /srv/w/certs/domain.key:/certs/domain.key:ro" in cmd
    assert "-e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm'" in cmd  # quoted for the shell
    assert cmd.rstrip().endswith("registry:3")  # distribution 3 unless 2.8 is asked for
    assert config("auth", version="2").docker_run_command().rstrip().endswith("registry:2")
    assert "--restart" not in config("local").docker_run_command()
    assert '--user "$(id -u):$(id -g)"' in cmd  # its files in registry-data are the user's
    assert "--user" not in config("local").docker_run_command()  # an anonymous volume: root's


def test_bind_addresses_go_into_the_certificate_names() -> None:
    cfg = config("tls", bind=("127.0.0.1", "172.30.0.1"), extra_names=("reg.test",))
    assert cfg.cert_names == ("localhost", "127.0.0.1", "::1", "172.30.0.1", "reg.test")
    assert cfg.ports() == {"5000/tcp": [("127.0.0.1", 5055), ("172.30.0.1", 5055)]}


@pytest.mark.parametrize(
    "port, message",
    [
        ("abc", "is not a number"),
        (0, "out of range"),
        (70000, "out of range"),
        (-1, "out of range"),
    ],
)
def test_bad_ports_are_refused(port: int | str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        # "abc" is no int: the config checks the port it is given when made
        RegistryConfig(stage=Stage.LOCAL, port=cast(int, port))


def test_bad_stage_and_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown stage 'secure'.*local, persistent, tls, auth"):
        RegistryConfig(stage=cast(Stage, "secure"))  # a string, parsed (and refused) when made
    with pytest.raises(ConfigError, match="not valid"):
        RegistryConfig(name="-bad name")


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {"REGLAB_PORT": "5123", "REGLAB_WORKDIR": str(tmp_path), "REGLAB_OFFLINE": "1"}
    found = settings.Settings.from_env(env)
    assert (found.port, found.workdir, found.offline) == (5123, tmp_path, True)
    assert settings.Settings.from_env({}) == settings.Settings(workdir=Path("workdir").resolve())
    with pytest.raises(ConfigError, match="not a number"):
        settings.Settings.from_env({"REGLAB_PORT": "five"})


def test_the_registry_config_does_not_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGLAB_PORT", "5123")
    monkeypatch.setenv("REGLAB_WORKDIR", "/elsewhere")
    config = RegistryConfig()
    assert config.port == settings.DEFAULT_PORT
    assert config.workdir == Path(settings.DEFAULT_WORKDIR).resolve()


@pytest.mark.parametrize(
    "message, fix",
    [
        ("no basic auth credentials", "docker login HOST:PORT"),
        ("unauthorized: authentication required", "bcrypt"),
        ("http: server gave HTTP response to HTTPS client", "insecure-registries"),
        ("x509: certificate signed by unknown authority", "/etc/docker/certs.d/HOST:PORT/ca.crt"),
        ("cannot validate certificate for 1.2.3.4 because it doesn't contain any IP SANs", "IP"),
    ],
)
def test_common_errors_are_explained(message: str, fix: str) -> None:
    assert fix in (explain(message) or "")


def test_unknown_errors_are_not_guessed() -> None:
    assert explain("something else entirely") is None


def test_split_ref() -> None:
    assert split_ref("127.0.0.1:5000/hello-world") == ("127.0.0.1:5000/hello-world", "latest")
    assert split_ref("127.0.0.1:5000/hello-world:v1") == ("127.0.0.1:5000/hello-world", "v1")
    assert split_ref("hello-world:latest") == ("hello-world", "latest")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hello-world", ("docker.io", "library/hello-world", "latest")),
        ("docker.io/hello-world:latest", ("docker.io", "library/hello-world", "latest")),
        ("moby/buildkit:v1", ("docker.io", "moby/buildkit", "v1")),
        ("127.0.0.1:5000/hello-world", ("127.0.0.1:5000", "hello-world", "latest")),
        ("localhost/team/app:2", ("localhost", "team/app", "2")),
        ("registry.example/app@sha256:00", ("registry.example", "app", "latest")),
    ],
)
def test_image_names_are_read_as_docker_reads_them(
    name: str, expected: tuple[str, str, str]
) -> None:
    from reglab.base.refs import parse_reference

    assert parse_reference(name) == expected


def test_writability_is_tested_by_writing(tmp_path: Path) -> None:
    from reglab.engine.connection import writable_problem

    assert writable_problem(tmp_path / "new" / "workdir") is None  # parent exists, writable
    assert "not writable" in str(writable_problem(Path("/sys/reglab-workdir")))  # even as root
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert writable_problem(blocker / "workdir") is not None


@pytest.mark.parametrize(
    "engine_says",
    [
        'Get "https://172.20.0.1:5000/v2/": x509: certificate signed by unknown authority',
        'Get "https://172.20.0.1:5000/v2/": tls: failed to verify certificate: '
        "x509: certificate signed by unknown authority",
    ],
    ids=["docker-20.10", "docker-26"],
)
def test_engine_wording_is_the_same_on_every_engine(engine_says: str) -> None:
    assert engine_text(engine_says) == (
        'Get "https://172.20.0.1:5000/v2/": x509: certificate signed by unknown authority'
    )
    assert "certs.d/HOST:PORT/ca.crt" in (explain(engine_text(engine_says)) or "")


def test_the_data_folder_is_made_as_its_line_says(tmp_path: Path) -> None:
    step = config("persistent", workdir=tmp_path / "w").folder_step()
    assert step.lines == [f"mkdir -p {tmp_path / 'w' / 'registry-data'}"]
    step.run()
    assert (tmp_path / "w" / "registry-data").is_dir()
    assert config("local", workdir=tmp_path / "x").folder_step().lines == []  # anonymous volume
    on_disk = config("persistent", workdir=tmp_path / "y", data_volume="disk").folder_step()
    assert on_disk.lines == [] and (on_disk.run(), (tmp_path / "y").exists()) == (None, False)
