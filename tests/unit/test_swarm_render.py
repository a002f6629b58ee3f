"""The swarm stack's files, rendered from fixed inputs, are exactly the golden copies in
tests/unit/golden/swarm/v3 and .../v2, one folder per registry version (no Docker).
``REGLAB_UPDATE_GOLDEN=1`` rewrites the copies: then read the diff, it is what a deployment
would change."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

from reglab.base.shell import PathStyle
from reglab.base.versions import V2, V3, RegistryVersion
from reglab.swarm import MAX_REPLICAS, StackNames, stack_file
from reglab.swarm.cluster import init_step
from reglab.swarm.deploy import deploy_step, settings
from reglab.swarm.render import COPIED, VERSIONS, render, versions

#: The real subprocess.run, for the shell that runs a printed line (the action's is replaced).
subprocess_run = subprocess.run
GOLDEN = Path(__file__).parent / "golden" / "swarm"
NAMES = StackNames("reglab-golden", 5000)
NAMES_V2 = StackNames("reglab-golden", 5000, V2)
KEYS = {"http_secret": "h" * 64, "access_key": "reglab000000000000", "secret_key": "s" * 40}
#: The working folder's files, as fixed stand-ins (render copies them as they are).
COPIED_FILES = {name: f"the working folder's {name}\n".encode() for name in COPIED}


def rendered(names: StackNames = NAMES) -> dict[str, bytes]:
    files = render(names, KEYS, COPIED_FILES)
    files["versions.json"] = (json.dumps(versions(files), indent=1) + "\n").encode()
    return files


@pytest.mark.parametrize("names", [NAMES, NAMES_V2], ids=["v3", "v2"])
def test_the_rendered_files_are_the_golden_ones(names: StackNames) -> None:
    files = rendered(names)
    golden = GOLDEN / f"v{names.version.major}"
    if os.environ.get("REGLAB_UPDATE_GOLDEN") == "1":
        golden.mkdir(exist_ok=True)
        for old in golden.glob("*"):
            old.unlink()
        for name, data in files.items():
            (golden / name).write_bytes(data)
    assert sorted(p.name for p in golden.iterdir()) == sorted(files)
    for name, data in files.items():
        assert data == (golden / name).read_bytes(), f"{name} differs (REGLAB_UPDATE_GOLDEN=1)"


def test_each_version_reads_its_own_redis_and_s3_keys() -> None:
    """Registry 3 ignores 2.8's ``redis.addr`` (and then panics on ``blobdescriptor: redis``),
    and its S3 driver makes virtual-host requests unless ``forcepathstyle`` is on."""
    v3 = yaml.safe_load(rendered(NAMES)["registry.yml"])
    v2 = yaml.safe_load(rendered(NAMES_V2)["registry.yml"])
    assert v3["redis"]["addrs"] == ["redis:6379"] and "addr" not in v3["redis"]
    assert "pool" not in v3["redis"] and v3["redis"]["maxidleconns"] == 16  # go-redis: flat
    assert v3["storage"]["s3"]["forcepathstyle"] is True
    assert v2["redis"]["addr"] == "redis:6379" and "addrs" not in v2["redis"]
    assert v2["redis"]["pool"] == {"maxidle": 16, "idletimeout": "300s"}
    assert "forcepathstyle" not in v2["storage"]["s3"]  # no such key in 2.8
    for config in (v3, v2):
        assert config["http"]["debug"]["prometheus"] == {"enabled": True, "path": "/metrics"}
    # the rest is the same
    del v3["redis"], v2["redis"], v3["storage"]["s3"]["forcepathstyle"]
    assert v3 == v2


@pytest.mark.parametrize("version", [V3, V2], ids=["v3", "v2"])
def test_the_stack_file_runs_the_version_where_it_reads_its_config(
    version: RegistryVersion,
) -> None:
    """The stack file's defaults are registry 3's; 2.8 is set by two variables."""
    stack = yaml.safe_load(stack_file())
    service = stack["services"]["registry"]
    variables = settings(StackNames("s", 5000, version), 3)

    def expand(text: str) -> str:
        name, default = text.removeprefix("${").removesuffix("}").split(":-", 1)
        return variables.get(name, default)

    assert expand(service["image"]) == version.image
    assert expand(service["secrets"][0]["target"]) == version.config_path


def test_the_files_say_what_the_stack_needs() -> None:
    """What the golden copies must hold, said once more in words: a golden file rewritten by
    mistake still fails here."""
    files = rendered()
    assert files["stack.yml"] == stack_file()
    config = yaml.safe_load(files["registry.yml"])
    assert config["http"]["secret"] == KEYS["http_secret"]
    assert config["auth"]["token"]["realm"] == "https://127.0.0.1:5000/auth"
    assert config["storage"]["s3"]["accesskey"] == KEYS["access_key"]
    haproxy = files["haproxy.cfg"].decode()
    assert f"server-template replica {MAX_REPLICAS} tasks.reglab-golden_registry:5000" in haproxy
    assert "server odd reglab-golden-odd:5000 backup" in haproxy
    assert haproxy.count("use-server ") == MAX_REPLICAS + 1
    assert "tasks.reglab-golden_front:5443" in files["relay.cfg"].decode()
    for name in COPIED:
        assert files[name] == COPIED_FILES[name]


def test_a_version_changes_with_its_files_only() -> None:
    files = render(NAMES, KEYS, COPIED_FILES)
    before = versions(files)
    users = {**COPIED_FILES, "htpasswd": b"a new user\n"}
    after = versions(render(NAMES, KEYS, users))
    assert after["REGLAB_SECRETS"] != before["REGLAB_SECRETS"]
    assert after["REGLAB_STORE"] == before["REGLAB_STORE"]  # a new user never restarts the store
    assert set(before) == set(VERSIONS)


def test_another_port_changes_only_the_realm() -> None:
    here = render(NAMES, KEYS, COPIED_FILES)
    there = render(StackNames(NAMES.name, 6000), KEYS, COPIED_FILES)
    assert [n for n in here if here[n] != there[n]] == ["registry.yml"]
    assert b"https://127.0.0.1:6000/auth" in there["registry.yml"]


def test_render_refuses_missing_inputs() -> None:
    with pytest.raises(ValueError, match="htpasswd"):
        render(NAMES, KEYS, {k: v for k, v in COPIED_FILES.items() if k != "htpasswd"})


class Recorder:
    """A stand-in for the engine: records what a step's action asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.swarm = SimpleNamespace(init=lambda **kw: self.calls.append(("swarm init", kw)))
        self.networks = SimpleNamespace(list=lambda **kw: [])
        self.services = SimpleNamespace(list=lambda **kw: [])
        node = SimpleNamespace(attrs={"Spec": {}}, update=lambda spec: self.calls.append(
            ("node update", spec)))  # fmt: skip
        self.nodes = SimpleNamespace(get=lambda node_id: node)

    def info(self) -> dict[str, Any]:
        return {"Swarm": {"LocalNodeState": "inactive", "NodeID": "n1"}}


def test_swarm_init_prints_what_it_runs() -> None:
    """The printed ``docker swarm init`` options are the keywords the SDK is called with, and
    the label the second line adds is the one the node gets."""
    engine = Recorder()
    step = init_step(cast(Any, engine))
    assert step.run() is True
    (_, init), (_, spec) = engine.calls
    words = shlex.split(step.lines[0])
    assert words[:3] == ["docker", "swarm", "init"]
    options = dict(zip(words[3::2], words[4::2], strict=True))
    assert options == {f"--{key.replace('_', '-')}": value for key, value in init.items()}
    label = shlex.split(step.lines[1])[shlex.split(step.lines[1]).index("--label-add") + 1]
    assert spec["Labels"][label.split("=")[0]] == label.split("=")[1]


def test_stack_deploy_prints_what_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The printed ``docker stack deploy`` line, run by a shell whose ``docker`` only records
    its arguments and environment, runs what the action runs: the same words, and the same
    variables (the files' versions worked out by the shell from the files on disk)."""
    folder = tmp_path / "workdir" / "swarm"
    folder.mkdir(parents=True)
    files = render(NAMES_V2, KEYS, COPIED_FILES)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    found = versions(files)
    ran: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(command: list[str], env: dict[str, str], **_: Any) -> Any:
        ran.append((command, {k: v for k, v in env.items() if k.startswith("REGLAB_")}))
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/docker")
    for name in [k for k in os.environ if k.startswith("REGLAB_")]:  # a test run's settings
        monkeypatch.delenv(name)  # are not the stack's variables
    step = deploy_step(cast(Any, Recorder()), NAMES_V2, 2, folder, found, PathStyle(folder.parent))
    step.run()

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > args; env | grep ^REGLAB_ | sort > env\n'
    )
    (fake / "docker").chmod(0o755)
    (line,) = step.lines
    shell = {"PATH": f"{fake}:/usr/bin:/bin"}
    subprocess_run(["sh", "-c", line], cwd=tmp_path, env=shell, check=True)
    typed = (tmp_path / "args").read_text().splitlines()
    typed_env = dict(v.split("=", 1) for v in (tmp_path / "env").read_text().splitlines())
    ((command, env),) = ran
    assert typed == command[1:]
    assert typed_env == env
    assert env["REGLAB_REGISTRY_IMAGE"] == V2.image  # 2.8 is named; 3 is the file's default
