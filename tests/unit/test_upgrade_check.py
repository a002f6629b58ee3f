"""The upgrade check: what registry 3 would read differently in a 2.8 configuration, and the
translation that keeps it doing what it did (pure: no engine)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from reglab.base.errors import ConfigError
from reglab.cli import upgrade as command
from reglab.registry.upgrade import check, report, translate, write_translation
from reglab.registry.v2config import Source, env_key, from_container, load_file, with_env
from reglab.registry.v3keys import unknown_keys

#: notebook 09's 2.8 replicas, as reglab wrote their file: Redis and S3 the 2.8 way.
SWARM_28 = """
version: 0.1
storage:
  s3: {region: us-east-1, regionendpoint: 'http://s3:8333', bucket: registry, v4auth: true}
  cache: {blobdescriptor: redis}
  delete: {enabled: true}
redis:
  addr: redis:6379
  dialtimeout: 1s
  pool: {maxidle: 16, maxactive: 64, idletimeout: 300s}
http: {addr: ':5000', secret: s3cret}
compatibility: {schema1: {enabled: true}}
notifications:
  endpoints: [{name: a, url: 'http://x', colour: red}]
"""


def source(text: str = SWARM_28) -> Source:
    return Source("config.yml", yaml.safe_load(text))


def blocking(found: Source) -> dict[str, str]:
    return {f.key: str(f) for f in check(found) if f.blocking}


def test_every_key_v3_would_ignore_is_named_with_its_fix() -> None:
    assert unknown_keys(source().config) == [
        "redis.addr", "redis.pool", "compatibility", "notifications.endpoints.colour",
    ]  # fmt: skip
    found = blocking(source())
    assert "redis.addrs: [redis:6379]" in found["redis.addr"]
    assert "panics at start" in found["redis.addr"]  # blobdescriptor: redis
    assert "redis.maxidleconns, redis.poolsize, redis.connmaxidletime" in found["redis.pool"]
    assert "schema-1" in found["compatibility"]
    assert "forcepathstyle: true" in found["storage.s3.forcepathstyle"]
    assert "no such key" in found["notifications.endpoints.colour"]
    assert all("\n" not in line for line in report("config.yml", check(source())))


def test_a_v3_configuration_is_clean_and_notes_do_not_block() -> None:
    text = """
version: 0.1
storage: {filesystem: {rootdirectory: /var/lib/registry}, delete: {enabled: true}}
http: {addr: ':5000', headers: {X-Anything: [yes]}}
log: {fields: {service: registry}}
proxy: {remoteurl: 'http://up:5000', username: u, password: p}
"""
    findings = check(source(text))
    assert [f.key for f in findings if f.blocking] == []
    assert {f.key for f in findings} == {"config file", "proxy.ttl", "proxy.password"}
    assert report("c", findings)[0] == "c: registry 3 reads it as 2.8 did"
    assert "CVE-2026-33540" in str(next(f for f in findings if f.key == "proxy.password"))


def test_token_auth_a_wrong_algorithm_blocks_and_kid_is_a_note() -> None:
    text = "version: 0.1\nstorage: inmemory\nauth: {token: {realm: r, signingalgorithms: [RS1]}}"
    findings = {f.key: f for f in check(source(text))}
    assert findings["auth.token.signingalgorithms"].blocking
    assert not findings["auth.token"].blocking and "RFC 7638" in findings["auth.token"].what


def test_environment_names_map_to_keys_as_the_registry_maps_them() -> None:
    assert env_key("REGISTRY_STORAGE_S3_REGION") == "storage.s3.region"
    assert env_key("REGISTRY_NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES") == (
        "notifications.events.includereferences"
    )
    config = with_env(
        {"version": 0.1},
        {"REGISTRY_AUTH_TOKEN_REALM": "https://x", "REGISTRY_AUTH": "token", "PATH": "/bin",
         "REGISTRY_STORAGE_MAINTENANCE_READONLY": '{"enabled": true}'},
    )  # fmt: skip
    assert config == {
        "version": 0.1,
        "auth": {"token": {"realm": "https://x"}},
        "storage": {"maintenance": {"readonly": {"enabled": True}}},
    }


def attrs(
    env: dict[str, str], image: str = "registry:2", mounts: tuple[str, ...] = ()
) -> dict[str, object]:
    return {
        "Config": {"Env": [f"{k}={v}" for k, v in env.items()], "Image": image},
        "Mounts": [{"Destination": m, "Source": "/nowhere/config.yml"} for m in mounts],
    }


def test_a_workshop_container_is_clean_and_deletes_left_to_the_image_are_not() -> None:
    ours = from_container("r", attrs({"REGISTRY_STORAGE_DELETE_ENABLED": "true"}))
    assert blocking(ours) == {}
    bare = from_container("r", attrs({}))
    assert "registry:3's accepts them" in blocking(bare)["storage.delete.enabled"]
    assert translate(bare).config["storage"]["delete"] == {"enabled": False}
    redis = from_container("r", attrs({"REGISTRY_REDIS_ADDR": "redis:6379"}))
    assert "redis.addr" in blocking(redis)


def test_a_config_file_mounted_at_the_old_path_is_named(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text("version: 0.1\nstorage: {filesystem: {}, delete: {enabled: true}}\n")
    found = from_container(
        "r", {"Config": {"Image": "registry:2"},
              "Mounts": [{"Destination": "/etc/docker/registry/config.yml", "Source": str(file)}]},
    )  # fmt: skip
    assert "/etc/distribution/config.yml" in blocking(found)["/etc/docker/registry/config.yml"]


def test_the_translation_passes_its_own_check_and_is_written_whole(tmp_path: Path) -> None:
    done = write_translation(source(), tmp_path / "v3.yml")
    written = yaml.safe_load((tmp_path / "v3.yml").read_text())
    assert written == done.config
    assert written["redis"] == {
        "dialtimeout": "1s", "addrs": ["redis:6379"], "maxidleconns": 16, "poolsize": 64,
        "connmaxidletime": "300s",
    }  # fmt: skip
    assert written["storage"]["s3"]["forcepathstyle"] is True
    assert "compatibility" not in written
    assert written["notifications"]["endpoints"] == [{"name": "a", "url": "http://x"}]
    assert blocking(Source("v3.yml", written)) == {}


def test_nothing_is_written_when_the_translation_cannot_fix_it(tmp_path: Path) -> None:
    swift = source("version: 0.1\nstorage: {swift: {container: c}}\n")
    with pytest.raises(ConfigError) as refused:
        write_translation(swift, tmp_path / "v3.yml")
    assert "storage.swift" in str(refused.value) and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def parse(*argv: str) -> argparse.Namespace:
    return command.build_parser().parse_args(argv)


def test_the_command_exits_1_with_a_line_per_problem_and_0_when_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.yml"
    old.write_text(SWARM_28)
    assert command.run(parse("--check", "--config", str(old))) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(": note: " not in line for line in lines) == 5
    new = tmp_path / "new.yml"
    assert command.run(parse("--config", str(old), "--write", str(new))) == 0
    assert command.run(parse("--check", "--config", str(new))) == 0
    assert "registry 3 reads it as 2.8 did" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "no file"), ("a: [b", "not valid YAML at line 1"), ("- a list", "not a registry")],
)
def test_bad_input_is_one_line_with_a_fix(tmp_path: Path, content: str | None, said: str) -> None:
    file = tmp_path / "config.yml"
    if content is not None:
        file.write_text(content)
    with pytest.raises(ConfigError) as bad:
        load_file(file)
    assert said in bad.value.problem and bad.value.fix and "\n" not in str(bad.value)


def test_a_folder_with_nothing_to_check_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as empty:
        command.sources_in(tmp_path, containers=[])
    assert "nothing to check" in empty.value.problem and empty.value.fix
