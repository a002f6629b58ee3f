"""Security properties: what reaches the container, key modes, passwords, stored credentials."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import nbformat
import pytest
from common import MakeRegistry, free_port
from docker import DockerClient
from docker.models.containers import Container
from nbclient import NotebookClient
from notebook_runner import NOTEBOOKS

import reglab
from reglab.auth.htpasswd import Htpasswd
from reglab.engine import transfer

pytestmark = pytest.mark.docker


def files_in(container: Container, path: str) -> list[str]:
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_only_the_server_certificate_and_key_reach_the_container(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    registry = make_registry("auth", users=[reglab.Credentials("moby", "pw")])
    paths = registry.config.paths
    assert registry.container is not None  # started
    mounts = registry.container.attrs["Mounts"]
    sources = {m["Source"]: m for m in mounts}
    assert sources[str(paths.server_key)]["Destination"] == "/certs/domain.key"
    assert sources[str(paths.server_key)]["RW"] is False
    assert not any(str(paths.ca_key.parent) in s or s.endswith("ca.crt") for s in sources)
    assert files_in(registry.container, "/certs") == ["certs/domain.crt", "certs/domain.key"]
    assert files_in(registry.container, "/auth") == ["auth/htpasswd"]
    # On disk: both keys are private to their owner.
    for key in (paths.server_key, paths.ca_key, paths.htpasswd):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_certificate_without_the_right_san_is_refused_by_a_verifying_client(
    make_registry: MakeRegistry,
) -> None:
    registry = make_registry("tls")
    ca = reglab.CA.load(registry.config.paths.ca_cert, registry.config.paths.ca_key)
    ca.issue_cert("localhost").write(
        registry.config.paths.server_cert, registry.config.paths.server_key
    )  # no IP SAN
    assert registry.container is not None  # started
    registry.container.restart()
    registry.wait_ready()
    with pytest.raises(reglab.TLSVerificationFailed, match="127.0.0.1"):
        registry.client().ping()


def test_docker_login_credentials_are_removed_by_the_workshop_cleanup(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, cleanup_images: list[str]
) -> None:
    """`docker login` (the real CLI) stores credentials; reglab.logout removes exactly those."""
    creds = reglab.Credentials.generate("moby")
    registry = make_registry("auth", users=[creds])
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"auths": {"other.example:1": {}}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    login = subprocess.run(
        ["docker", "login", registry.address, "--username", creds.user, "--password-stdin"],
        input=creds.password,
        text=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    assert registry.address in json.loads((config_dir / "config.json").read_text())["auths"]

    assert reglab.logout(None, registry.address, config_path=config_dir / "config.json")
    stored = json.loads((config_dir / "config.json").read_text())["auths"]
    assert registry.address not in stored and "other.example:1" in stored
    ref = registry.ref("after-logout/hello-world")
    cleanup_images.append(ref)
    reglab.tag(engine, "hello-world", ref)
    push = subprocess.run(
        ["docker", "push", ref], capture_output=True, text=True, env=env, timeout=60
    )
    assert push.returncode != 0 and "no basic auth credentials" in push.stderr


@pytest.mark.notebooks  # runs notebook 04
def test_the_demo_password_appears_nowhere_but_as_a_bcrypt_hash(
    engine: DockerClient,
    workshop_images: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGLAB_PORT", str(free_port()))
    monkeypatch.setenv("REGLAB_WORKDIR", str(tmp_path / "workdir"))
    monkeypatch.setenv("REGLAB_NAME", f"reglab-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    nb = nbformat.read(NOTEBOOKS / "04-basic-auth.ipynb", as_version=4)
    # One extra cell, for this test only: reveal the password the notebook generated.
    nb.cells.append(nbformat.v4.new_code_cell("print('PASSWORD=' + moby.password)"))
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    password = nb.cells[-1].outputs[0]["text"].strip().split("=", 1)[1]
    assert len(password) >= 20
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells[:-1]])
    assert password not in outputs
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    users = Htpasswd.load(tmp_path / "workdir" / "auth" / "htpasswd")
    assert users.verify("moby", password)  # it is there, as a bcrypt hash


def test_the_registry_writes_registry_data_as_the_user_who_started_it(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    """A learner who is not root can delete their own working folder afterwards."""
    registry = make_registry("persistent")
    ref = registry.ref("owned/hello-world")
    transfer.tag(engine, "hello-world", ref)
    try:
        transfer.push(engine, ref)
    finally:
        transfer.remove(engine, ref)
    owners = {p.stat().st_uid for p in registry.config.paths.data.rglob("*")}
    assert owners == {os.getuid()}
