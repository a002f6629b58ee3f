"""Every container reglab runs, parsed back from the `docker run` line it prints: the line and
the Docker SDK's arguments must say the same (image, name, ports, mounts, env, user, labels,
command). Pure logic, no Docker."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reglab.base.errors import ConfigError
from reglab.base.shell import PathStyle
from reglab.engine.oneoff import one_off
from reglab.engine.spec import ContainerSpec, Mount, Step, invoker
from reglab.engine.trust import EngineTrust
from reglab.node.container import Node
from reglab.registry import gc
from reglab.registry.config import LOGIN_FILE, RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.disk import SmallDisk, file_bytes_script, volume_file_bytes_spec
from reglab.registry.login import Credentials
from reglab.registry.mirror import login_step, mirror_config
from reglab.registry.token import TokenServer
from reglab.registry.workdir import Workdir
from reglab.swarm.front import relay_spec
from reglab.swarm.names import StackNames
from reglab.swarm.odd import odd_spec

WORKDIR = Path("/srv/lab/workdir")
STYLES = {
    "absolute": PathStyle(WORKDIR),
    "relative": PathStyle(WORKDIR, WORKDIR.parent),  # "$PWD/workdir/..." in mounts
    "from-env": PathStyle(WORKDIR, WORKDIR.parent, from_env=True),  # "$REGLAB_WORKDIR/..."
}


def config(stage: str, **kw: Any) -> RegistryConfig:
    return RegistryConfig(stage=Stage.parse(stage), port=5055, workdir=WORKDIR, name="reg", **kw)


class Stored(Registry):
    """A registry whose data is in registry-data/ (no engine asked)."""

    def data_source(self) -> Path | str | None:
        return self.config.paths.data


def stages() -> dict[str, ContainerSpec]:
    return {
        "local": config("local").spec(),
        "persistent": config("persistent").spec(),
        "tls": config("tls", bind=("127.0.0.1", "172.30.0.1")).spec(),
        "auth": config("auth").spec(),
        "token": config("token").spec(),
        "mirror": mirror_config("http://up:5000", 5056, WORKDIR, "reg-mirror").spec(),
        "notify": config("local", notify="http://172.20.0.1:4000/events", network="net").spec(),
        "read-only": config("persistent", read_only=True, data_volume="reg-disk").spec(),
    }


def helpers() -> dict[str, ContainerSpec]:
    disk = SmallDisk("reg-disk", 24)
    trust = EngineTrust(None, "172.20.0.1", 5055, WORKDIR / "trust")
    stored = Stored(config("persistent"), engine=None)
    return {
        "token server": TokenServer(config("token"), engine=None).spec(),
        "disk keeper": disk.keeper_spec(),
        "disk usage": disk.usage_spec(),
        "blob bytes": volume_file_bytes_spec("reg-disk", "docker/registry/v2/blobs"),
        "collector": gc.collector_spec(stored, delete_untagged=True),
        "collector, dry run": gc.collector_spec(stored, dry_run=True),
        "trust": trust.copy_spec(),
        "untrust": trust.delete_spec(),
        "swarm relay": relay_spec(StackNames("reg", 5055), WORKDIR / "swarm"),
        "swarm odd registry": odd_spec(StackNames("reg", 5055), WORKDIR / "swarm"),
        "node": Node(None, "reglab-node", WORKDIR / "node").spec(),
        "odd values": one_off(
            "img:1", ("sh", "-c", "echo 'a b' \"$x\""), env={"A": "x y", "B": "it's"}
        ),  # fmt: skip
    }


ALL = {**stages(), **helpers()}


def expanded(line: str) -> str:
    """The line as the shell expands it in the notebook's folder: $PWD, the user's ids."""
    text = line.replace("\\\n", " ").replace('"$(id -u):$(id -g)"', invoker())
    return text.replace("$PWD", str(WORKDIR.parent)).replace("$REGLAB_WORKDIR", str(WORKDIR))


def parse(line: str) -> dict[str, Any]:
    """The SDK arguments a `docker run` line asks for, read back as the shell would split it
    (in the notebook's folder, for the learner who runs it)."""
    words = shlex.split(expanded(line))
    assert words[:2] == ["docker", "run"], line
    found: dict[str, Any] = {
        "image": None, "command": None, "detach": False, "remove": False, "name": None,
        "entrypoint": None, "labels": {}, "ports": {}, "volumes": {}, "environment": {},
        "user": None, "restart_policy": None, "network": None, "cap_add": None,
        "extra_hosts": None,
    }  # fmt: skip
    rest = iter(words[2:])
    for word in rest:
        if not word.startswith("-"):
            found["image"] = word
            break
        if word in ("-d", "--rm"):
            found["detach" if word == "-d" else "remove"] = True
            continue
        value = next(rest)
        if word == "--label":
            key, _, label = value.partition("=")
            found["labels"][key] = label
        elif word == "-p":
            address, host_port, container_port = value.rsplit(":", 2)
            found["ports"].setdefault(f"{container_port}/tcp", []).append((address, int(host_port)))
        elif word == "-v":
            mode = "ro" if value.endswith(":ro") else "rw"
            source, target = value.removesuffix(":ro").rsplit(":", 1)
            found["volumes"][source] = {"bind": target, "mode": mode}
        elif word == "-e":
            key, _, env = value.partition("=")
            found["environment"][key] = env
        elif word == "--restart":
            found["restart_policy"] = {"Name": value}
        elif word == "--env-file":  # as docker reads it: NAME=VALUE lines, taken as they are
            lines = Path(value).read_text().splitlines()
            found["environment"].update(line.split("=", 1) for line in lines if "=" in line)
        elif word == "--cap-add":
            found["cap_add"] = [*(found["cap_add"] or []), value]
        elif word == "--add-host":
            host, _, address = value.partition(":")
            found["extra_hosts"] = {**(found["extra_hosts"] or {}), host: address}
        elif word == "--entrypoint":
            found["entrypoint"] = [value]
        else:
            found[word.lstrip("-")] = value
    found["command"] = list(rest) or None
    return found


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("what", ALL)
def test_the_printed_line_runs_what_the_sdk_runs(what: str, style: str) -> None:
    spec = ALL[what]
    line = spec.shell(STYLES[style])
    assert parse(line) == spec.run_kwargs(), line
    assert shlex.split(expanded(line)) == spec.argv()  # the words docker receives


def test_the_lines_are_typeable_in_the_notebooks_folder() -> None:
    relative = STYLES["relative"]
    for what, spec in ALL.items():
        line = spec.shell(relative)
        assert "..." not in line and str(WORKDIR) not in line, (what, line)
    persistent = stages()["persistent"].shell(relative)
    assert '-v "$PWD/workdir/registry-data:/var/lib/registry"' in persistent
    assert '--user "$(id -u):$(id -g)"' in persistent


def test_every_stage_and_helper_sets_what_it_must() -> None:
    kwargs = {what: spec.run_kwargs() for what, spec in ALL.items()}
    assert kwargs["token"]["environment"]["REGISTRY_AUTH"] == "token"
    assert kwargs["mirror"]["environment"]["REGISTRY_PROXY_REMOTEURL"] == "http://up:5000"
    assert kwargs["mirror"]["network"] == "reglab-net"
    assert "REGISTRY_NOTIFICATIONS_ENDPOINTS" in kwargs["notify"]["environment"]
    assert kwargs["read-only"]["volumes"] == {
        "reg-disk": {"bind": "/var/lib/registry", "mode": "rw"}
    }
    assert kwargs["read-only"]["user"] is None  # a named volume is root's
    assert kwargs["token server"]["user"] == invoker()
    assert kwargs["token server"]["ports"] == {"5001/tcp": [("127.0.0.1", 5056)]}
    assert kwargs["collector"]["entrypoint"] == ["/bin/registry"]
    assert kwargs["collector"]["remove"] and not kwargs["collector"]["detach"]
    assert kwargs["collector, dry run"]["volumes"][str(WORKDIR / "registry-data")]["mode"] == "ro"
    assert kwargs["disk keeper"]["detach"] and kwargs["disk keeper"]["name"] == "reg-disk-keeper"


def test_a_mirrors_login_comes_from_its_env_file_and_no_line_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the notebook's folder, where the line is typed
    workdir = tmp_path / "workdir"
    moby = Credentials("moby", "it's a $ecret")
    style = PathStyle(workdir, tmp_path)
    step = login_step(moby, workdir / "mirror", style)
    assert step.lines == [
        "(umask 077 && printf '%s=%s\\n' REGISTRY_PROXY_USERNAME moby "
        'REGISTRY_PROXY_PASSWORD "$PASSWORD_MOBY" > "workdir/mirror/upstream.env")'
    ]
    (workdir / "mirror").mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "PASSWORD_MOBY": moby.password}
    subprocess.run(["sh", "-c", step.lines[0]], cwd=tmp_path, env=env, check=True)
    typed = (workdir / "mirror" / LOGIN_FILE).read_text()  # what the printed line writes
    assert (workdir / "mirror" / LOGIN_FILE).stat().st_mode & 0o777 == 0o600
    step.run()
    assert (workdir / "mirror" / LOGIN_FILE).stat().st_mode & 0o777 == 0o600
    assert (workdir / "mirror" / LOGIN_FILE).read_text() == typed  # and what reglab writes
    spec = mirror_config("https://up:5000", 5056, workdir, "reg-mirror", login=True).spec()
    kwargs = spec.run_kwargs()
    assert kwargs["environment"]["REGISTRY_PROXY_USERNAME"] == "moby"
    assert kwargs["environment"]["REGISTRY_PROXY_PASSWORD"] == moby.password
    line = spec.shell(style)
    assert '--env-file "workdir/mirror/upstream.env"' in line
    assert moby.password not in line and "$ecret" not in spec.shell()
    text = line.replace("\\\n", " ").replace("$PWD", str(tmp_path))
    text = text.replace('"$(id -u):$(id -g)"', invoker())
    assert parse(text) == kwargs, line
    words = [str(Path(w).absolute()) if w.startswith("workdir/") else w for w in shlex.split(text)]
    assert words == spec.argv()


def test_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    spec = mirror_config("http://up:5000", 5056, tmp_path, "reg-mirror", login=True).spec()
    with pytest.raises(ConfigError, match="cannot read the env file .*upstream.env") as err:
        spec.run_kwargs()
    assert "\n" not in str(err.value)


def test_the_collector_runs_the_registrys_own_image() -> None:
    custom = Stored(config("persistent", image="registry:2.8.3"), engine=None)
    spec = gc.collector_spec(custom)
    assert spec.run_kwargs()["image"] == "registry:2.8.3"
    assert " registry:2.8.3 garbage-collect /etc/distribution/config.yml" in spec.shell()
    older = Stored(config("persistent", version="2"), engine=None)
    assert (
        " registry:2 garbage-collect /etc/docker/registry/config.yml"
        in gc.collector_spec(older).shell()
    )


def test_the_registry_line_is_the_one_the_notebooks_show() -> None:
    line = config("auth").spec().shell(STYLES["relative"])
    assert line == "docker run -d \\\n  " + " \\\n  ".join(
        [
            "--name reg",
            "--label org.reglab.owned=true",
            "--label org.reglab.stage=auth",
            "-p 127.0.0.1:5055:5000",
            "--restart unless-stopped",
            '--user "$(id -u):$(id -g)"',
            '-v "$PWD/workdir/registry-data:/var/lib/registry"',
            '-v "$PWD/workdir/certs/domain.crt:/certs/domain.crt:ro"',
            '-v "$PWD/workdir/certs/domain.key:/certs/domain.key:ro"',
            '-v "$PWD/workdir/auth:/auth:ro"',
            "-e REGISTRY_STORAGE_DELETE_ENABLED=true",
            "-e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt",
            "-e REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
            "-e REGISTRY_AUTH=htpasswd",
            "-e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm'",
            "-e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
            "registry:3",
        ]
    )


def test_a_one_off_stays_on_one_line_and_a_volume_by_name() -> None:
    spec = one_off("reglab-tools:1", ("df", "-k", "/disk"), mounts=(Mount("vol", "/disk", True),))
    assert spec.shell() == "docker run --rm -v vol:/disk:ro reglab-tools:1 df -k /disk"


def test_a_step_shows_its_lines_then_runs() -> None:
    shown: list[str] = []

    def ran() -> int:
        shown.append("ran")
        return len(shown)

    step = Step(["mkdir -p x"], ran)
    assert step.run(shown.append) == 2
    assert shown == ["mkdir -p x", "ran"]
    assert Step(["a"], lambda: 7).run() == 7


def test_the_user_step_lines_and_its_action_make_the_same_user(tmp_path: Path) -> None:
    """The htpasswd lines a learner types and reglab's own writer give a bcrypt entry of the
    same cost that Apache's htpasswd verifies with the same password."""
    typed, written = Workdir(tmp_path / "typed"), Workdir(tmp_path / "written")
    step = typed.user_step("moby", "s3cret pw", 5, PathStyle(typed.root))
    env = {"PATH": os.environ["PATH"], "PASSWORD_MOBY": "s3cret pw"}
    for line in step.lines:
        subprocess.run(["bash", "-c", line], env=env, check=True, capture_output=True)
    written.user_step("moby", "s3cret pw", 5, PathStyle(written.root)).run()
    for paths in (typed, written):
        entry = paths.htpasswd.read_text().strip()
        assert entry.startswith("moby:$2") and entry.split("$")[2] == "05"
        verify = ["htpasswd", "-vb", str(paths.htpasswd), "moby", "s3cret pw"]
        assert subprocess.run(verify, capture_output=True).returncode == 0


def test_the_typed_blob_sum_is_the_sum_reglab_counts(tmp_path: Path) -> None:
    """The line notebook 05 prints adds the files' sizes, as gc.blob_bytes does (du -sb would
    add each folder's size too), and prints 0 before the first blob."""
    blobs = tmp_path / "blobs"
    script = file_bytes_script(shlex.quote(str(blobs)))
    empty = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert empty.stdout.strip() == "0"
    for n, size in enumerate((1, 4097, 70000)):
        (blobs / "sha256" / f"{n:02x}").mkdir(parents=True)
        (blobs / "sha256" / f"{n:02x}" / "data").write_bytes(b"x" * size)
    summed = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert int(summed.stdout) == 1 + 4097 + 70000
