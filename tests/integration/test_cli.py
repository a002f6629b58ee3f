"""The reglab command as a user runs it: exit codes, one-line errors, data and users kept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import MakeRegistry, container_of
from docker import DockerClient

import reglab
from reglab.auth.htpasswd import Htpasswd
from reglab.base.labels import OWNER_LABEL, STAGE_LABEL
from reglab.base.ports import Ports
from reglab.base.settings import TOOLS_IMAGE
from reglab.engine import transfer
from reglab.engine.network import NETWORK, remove_project_network
from reglab.registry.config import CONTAINER_PORT

pytestmark = pytest.mark.docker


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reglab", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line: no traceback
    assert "Traceback" not in result.stderr
    assert "fix:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def cli(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, port: int
) -> Iterator[list[str]]:
    """Common arguments for a CLI registry that is removed afterwards."""
    name = f"reglab-test-{uuid.uuid4().hex[:8]}"
    args = ["--port", str(port), "--workdir", str(tmp_path / "w"), "--name", name]
    yield args
    run("down", "--workdir", str(tmp_path / "w"), "--name", name)


def test_up_twice_keeps_data_certificates_and_users(
    engine: DockerClient, cli: list[str], tmp_path: Path, cleanup_images: list[str]
) -> None:
    first = run("up", "auth", *cli, "--user", "moby", "--password-stdin", stdin="pw-one\n")
    assert first.returncode == 0, first.stderr
    assert "docker run -d" in first.stdout and "REGISTRY_AUTH=htpasswd" in first.stdout
    workdir = tmp_path / "w"
    cert_before = (workdir / "certs" / "domain.crt").read_bytes()

    port = int(cli[1])
    registry = reglab.Registry(
        reglab.RegistryConfig(stage=reglab.Stage.AUTH, port=port, workdir=workdir, name=cli[5]),
        engine,
    )
    ref = registry.ref("kept/hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    digest = transfer.push(engine, ref, auth={"username": "moby", "password": "pw-one"})

    second = run("up", "auth", *cli, "--user", "alice", "--password-stdin", stdin="pw-two\n")
    assert second.returncode == 0, second.stderr
    assert (workdir / "certs" / "domain.crt").read_bytes() == cert_before
    users = Htpasswd.load(workdir / "auth" / "htpasswd")
    assert users.names() == ["moby", "alice"]
    for user, pw in (("moby", "pw-one"), ("alice", "pw-two")):
        assert registry.client(auth=(user, pw)).manifest_digest("kept/hello-world") == digest


def test_status_and_down_leave_no_container(engine: DockerClient, cli: list[str]) -> None:
    assert run("up", "local", *cli).returncode == 0
    status = run("status", "--name", cli[5])
    assert status.returncode == 0 and "running, registry 3.1.2, stage local" in status.stdout
    down = run("down", "--workdir", cli[3], "--name", cli[5])
    assert down.returncode == 0 and "removed" in down.stdout
    assert reglab.Registry(reglab.RegistryConfig(name=cli[5]), engine).container is None
    assert run("status", "--name", cli[5]).returncode == 1


def test_down_keeps_data_unless_purged(cli: list[str], tmp_path: Path) -> None:
    assert run("up", "persistent", *cli).returncode == 0
    assert "data kept" in run("down", "--workdir", cli[3], "--name", cli[5]).stdout
    assert (tmp_path / "w" / "registry-data").is_dir()
    assert run("down", "--workdir", cli[3], "--name", cli[5], "--purge").returncode == 0
    assert not (tmp_path / "w").exists()


def test_port_in_use_by_another_program(cli: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(cli[1])))
        sock.listen()
        assert_one_line_error(
            run("up", "local", *cli), f"port {cli[1]} is already in use", "another program"
        )
        doctor = run("doctor", "--port", cli[1], "--workdir", cli[3])
        assert doctor.returncode == 1 and f"port {cli[1]} is already in use" in doctor.stdout


def test_port_in_use_by_another_registry(cli: list[str], make_registry: MakeRegistry) -> None:
    other = make_registry("local", port=int(cli[1]))
    assert_one_line_error(
        run("up", "local", *cli),
        f"container {other.config.name}",
        f"docker rm -f {other.config.name}",
    )
    assert container_of(other).status == "running"  # left alone


def test_name_taken_by_a_container_reglab_does_not_own(
    engine: DockerClient, cli: list[str]
) -> None:
    foreign = engine.containers.create("hello-world", name=cli[5])
    try:
        assert_one_line_error(run("up", "local", *cli), "was not created by reglab")
        assert_one_line_error(run("down", "--name", cli[5]), "was not created by reglab")
        foreign.reload()
        assert foreign.id == engine.containers.get(cli[5]).id  # untouched
    finally:
        foreign.remove(force=True)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["up", "local", "--port", "0"], "out of range"),
        (["up", "local", "--port", "http"], "is not a number"),
        (["up", "nonsense"], "invalid choice"),
        (["up", "auth", "--user", "mo:by", "--password-stdin"], "contains ':'"),
        (["up", "auth", "--user", "", "--password-stdin"], "--password-stdin needs --user"),
        (["up", "auth", "--user", "moby", "--password-stdin"], "password is empty"),
        (
            ["up", "local", "--user", "moby", "--password-stdin"],
            "only applies to the auth and token stages",
        ),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    result = run(*args, "--workdir", str(tmp_path / "w"), stdin="\n")
    assert_one_line_error(result, needle)
    assert not (tmp_path / "w" / "auth" / "htpasswd").exists()  # nothing half-written


def test_workdir_not_writable(cli: list[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run(
        "up", "persistent", "--port", cli[1], "--workdir", str(blocker / "w"), "--name", cli[5]
    )
    assert_one_line_error(result, "is not writable")


def test_corrupt_htpasswd_is_refused_and_kept(cli: list[str], tmp_path: Path) -> None:
    htpasswd = tmp_path / "w" / "auth" / "htpasswd"
    htpasswd.parent.mkdir(parents=True)
    htpasswd.write_text("moby:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    result = run("up", "auth", *cli, "--user", "alice", "--password-stdin", stdin="pw\n")
    assert_one_line_error(result, "not a bcrypt hash")
    assert htpasswd.read_text() == "moby:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"


def test_engine_unreachable(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    assert_one_line_error(
        run("up", "local", "--workdir", str(tmp_path), env=env),
        "no Docker engine answers",
        "start Docker",
    )
    doctor = run("doctor", "--workdir", str(tmp_path), env=env)
    assert doctor.returncode == 1 and "no Docker engine answers" in doctor.stdout


def test_doctor_ready_names_the_engine_version_and_api(
    engine: DockerClient, cli: list[str]
) -> None:
    result = run("doctor", *cli)
    assert result.returncode == 0, result.stdout
    version = engine.version()
    assert result.stdout.startswith(
        f"ready: Docker engine {version['Version']} (API {version['ApiVersion']}) answers"
    ), result.stdout


def test_certificate_problems_are_one_line_and_files_kept(cli: list[str], tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    assert run("up", "tls", *cli).returncode == 0
    ca = reglab.CA.load(workdir / "certs" / "ca.crt", workdir / "ca" / "ca.key")
    brought = reglab.CA.create("someone else's CA").issue_cert("registry.invalid")
    brought.write(workdir / "certs" / "domain.crt", workdir / "certs" / "domain.key")
    assert_one_line_error(run("up", "tls", *cli), "does not cover localhost")
    assert (workdir / "certs" / "domain.crt").read_bytes() == brought.cert_pem  # not replaced
    mismatched = ca.issue_cert("localhost", "127.0.0.1", "::1")
    (workdir / "certs" / "domain.crt").write_bytes(mismatched.cert_pem)
    assert_one_line_error(run("up", "tls", *cli), "private key does not match")
    assert (workdir / "certs" / "domain.crt").read_bytes() == mismatched.cert_pem  # kept


def test_workshop_certificate_gains_a_new_name_keeping_the_ca(
    cli: list[str], tmp_path: Path
) -> None:
    workdir = tmp_path / "w"
    assert run("up", "tls", *cli).returncode == 0
    ca_before = (workdir / "certs" / "ca.crt").read_bytes()
    config = reglab.RegistryConfig(
        stage=reglab.Stage.TLS, workdir=workdir, extra_names=("reg.test",)
    )
    cert = config.paths.server_certificate(config.cert_names)
    assert cert.covers("reg.test") and cert.covers("127.0.0.1")
    assert (workdir / "certs" / "ca.crt").read_bytes() == ca_before  # clients still trust it


def test_images_missing_while_offline(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    """hello-world gone, no network, no compiler: doctor and images say so in one line."""
    backup = f"reglab-test-backup/hello-world:{uuid.uuid4().hex[:8]}"
    transfer.tag(engine, "hello-world", backup)
    try:
        assert transfer.remove(engine, "hello-world")
        doctor = run("doctor", "--workdir", str(tmp_path), "--port", "1")
        assert doctor.returncode == 1
        # the fix names the command, with the stage that needs the image (reglab images --stage)
        assert "image hello-world:latest is missing - fix: run 'reglab images" in doctor.stdout
        no_compiler = run("images", "--offline", env={"PATH": str(tmp_path)})
        assert_one_line_error(no_compiler, "no C compiler found", "reglab images --load")
        assert not transfer.exists(engine, "hello-world")
    finally:
        transfer.tag(engine, backup, "hello-world")
        transfer.remove(engine, backup)


def test_expired_certificate_is_one_line_and_kept(cli: list[str], tmp_path: Path) -> None:
    import datetime as dt

    workdir = tmp_path / "w"
    assert run("up", "tls", *cli).returncode == 0
    ca = reglab.CA.load(workdir / "certs" / "ca.crt", workdir / "ca" / "ca.key")
    old = ca.issue_cert(
        "localhost",
        "127.0.0.1",
        "::1",
        days=1,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
    )
    old.write(workdir / "certs" / "domain.crt", workdir / "certs" / "domain.key")
    assert_one_line_error(run("up", "tls", *cli), "the certificate expired on")
    assert (workdir / "certs" / "domain.crt").read_bytes() == old.cert_pem


def test_whitespace_in_user_name(tmp_path: Path) -> None:
    assert_one_line_error(
        run("up", "auth", "--user", "mo by", "--password-stdin", "--workdir", str(tmp_path)),
        "contains white space",
    )


def test_purge_refuses_a_folder_with_other_files(cli: list[str], tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    assert run("up", "persistent", *cli).returncode == 0
    (workdir / "thesis.tex").write_text("years of work")
    assert_one_line_error(
        run("down", "--workdir", cli[3], "--name", cli[5], "--purge"),
        "holds files reglab did not make (thesis.tex)",
    )
    assert (workdir / "thesis.tex").read_text() == "years of work"
    assert (workdir / "registry-data").is_dir()
    assert reglab.Registry(reglab.RegistryConfig(name=cli[5], workdir=workdir)).container


# --- the boundary: every kind of error one line, whatever raised it ------------------------


@pytest.mark.parametrize("command", [["status"], ["gc", "--name", "x"], ["down", "--name", "x"]])
def test_no_engine_is_one_line_for_every_command(command: list[str], tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/nonexistent.sock"}
    assert_one_line_error(run(*command, env=env), "no Docker engine answers", "start Docker")


def test_a_registry_that_refuses_http_is_one_line(
    engine: DockerClient, workshop_images: dict[str, str], port: int
) -> None:
    """A container reglab would take for its registry, publishing the port but not answering
    HTTP there: the request fails, in one line."""
    name = f"reglab-test-refuses-{uuid.uuid4().hex[:6]}"
    labels = {OWNER_LABEL: "true", STAGE_LABEL: "local"}
    silent = engine.containers.run(
        TOOLS_IMAGE, ["sleep", "120"], detach=True, name=name, labels=labels,
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
    )  # fmt: skip
    try:
        assert_one_line_error(run("delete", "hello-world:latest", "--name", name), str(port))
    finally:
        silent.remove(force=True)


@pytest.mark.parametrize(
    "command",
    [
        ["user", "add", "moby", "--password-stdin", "--workdir", "{blocked}/w"],
        ["notebooks", "--to", "{blocked}/learner"],
    ],
)
def test_a_folder_that_cannot_be_written_is_one_line(command: list[str], tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"  # a file where a folder should be: even root cannot write
    blocked.write_text("x")
    args = [part.format(blocked=blocked) for part in command]
    assert_one_line_error(run(*args, stdin="pw\n"), str(blocked), "a file stands")
    assert blocked.read_text() == "x"


# --- commands that act on a running registry read it ----------------------------------------


def test_down_gc_and_status_find_the_folder_in_the_container(
    engine: DockerClient, cli: list[str], tmp_path: Path, cleanup_images: list[str]
) -> None:
    workdir = tmp_path / "w"
    assert run("up", "persistent", *cli).returncode == 0
    ref = reglab.Registry.attach(engine, cli[5], workdir).ref("kept/hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    transfer.push(engine, ref)  # a registry with nothing in it has nothing to collect
    status = run("status", "--name", cli[5])
    assert f"folder {workdir}" in status.stdout, status.stdout
    collected = run("gc", "--name", cli[5], "--dry-run")  # no --workdir: read from the container
    assert collected.returncode == 0 and "dry run" in collected.stdout, collected.stderr
    down = run("down", "--name", cli[5])
    assert f"data kept in {workdir / 'registry-data'}" in down.stdout, down.stdout


def test_delete_finds_the_ca_in_the_container(
    engine: DockerClient, cli: list[str], tmp_path: Path, cleanup_images: list[str]
) -> None:
    assert run("up", "tls", *cli).returncode == 0
    registry = reglab.Registry.attach(engine, cli[5], tmp_path / "w")
    ref = registry.ref("gone/hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    transfer.push(engine, ref)
    deleted = run("delete", "gone/hello-world:latest", "--name", cli[5])  # no --workdir
    assert deleted.returncode == 0 and "untagged gone/hello-world:latest" in deleted.stdout, (
        deleted.stderr
    )


def test_the_mirror_and_the_token_server_default_to_different_ports(
    engine: DockerClient, cli: list[str], port: int
) -> None:
    """reglab up mirror beside a registry on REGLAB_PORT takes its own port (not the token
    server's), and the shared network stays while the mirror is on it."""
    assert run("up", "persistent", *cli).returncode == 0
    mirror = f"{cli[5]}-mirror"
    try:
        started = run(
            "up", "mirror", "--upstream", cli[5], "--name", mirror, "--workdir", cli[3],
            env={"REGLAB_PORT": str(port)},
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert f"answers at http://127.0.0.1:{Ports(port).mirror}" in started.stdout
        assert Ports(port).mirror != Ports(port).token_server
        kept = remove_project_network(engine)
        assert not kept and mirror in kept.kept_for, str(kept)
        assert engine.networks.list(names=[NETWORK])
    finally:
        reglab.Registry(reglab.RegistryConfig(name=mirror), engine).remove()
        run("down", "--workdir", cli[3], "--name", cli[5])
        remove_project_network(engine)
