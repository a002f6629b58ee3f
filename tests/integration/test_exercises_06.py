"""Notebook 06's diagnosis, against the real engine: a mirror whose upstream password was
rotated says MANIFEST_UNKNOWN for an image it never fetched, the upstream's log names the
failed login, a docker restart keeps the old password, and creating the mirror again with the
new one fixes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import free_port
from docker import DockerClient

import reglab
from reglab.base.settings import TOOLS_IMAGE, Settings
from reglab.base.wait import poll
from reglab.engine.network import remove_project_network
from reglab.lab import exercises, mirroring, operate
from reglab.lab.workshop import Workshop
from reglab.registry.config import LOGIN_FILE

pytestmark = pytest.mark.docker


@pytest.fixture
def ws(engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path) -> Iterator[Workshop]:
    name = f"reglab-test-ex06-{uuid.uuid4().hex[:8]}"
    workshop = Workshop(engine, Settings(port=free_port(), workdir=tmp_path / "workdir", name=name))
    yield workshop
    for container in engine.containers.list(all=True, filters={"name": name}):
        container.remove(force=True, v=True)
    for ref in (f"127.0.0.1:{workshop.port}/{r}:latest" for r in ("hello-world", "tools")):
        reglab.engine.transfer.remove(engine, ref)
    remove_project_network(engine)


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_a_rotated_upstream_password_is_found_in_the_upstreams_log_and_fixed_by_a_new_mirror(
    ws: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    moby = reglab.Credentials.generate("moby")
    ws.add_user(moby)
    upstream = ws.up("auth", extra_names=(ws.name,))
    ws.login(moby)
    for source, repository in (("hello-world", "hello-world"), (TOOLS_IMAGE, "tools")):
        ws.tag(source, upstream.ref(repository))
        ws.push(upstream.ref(repository), moby)
    mirror = mirroring.start_mirror(ws, upstream, login=moby)
    with mirror.client() as api:
        api.verify_image("hello-world")  # fetched through the mirror: cached there
    said(capsys)

    new = exercises.rotate_password(ws, upstream, mirror, moby)
    out = said(capsys)
    assert new.user == "moby" and new.password != moby.password
    assert "404: " in out and "MANIFEST_UNKNOWN" in out  # the symptom: not a 401
    assert new.password not in out
    with mirror.client() as api:  # what it had cached, it still serves
        api.verify_image("hello-world")

    assert not exercises.mirror_logs_in(mirror, upstream, new)
    out = said(capsys)
    assert "✘ Not yet" in out and f"docker logs {ws.name}" in out and "--env-file" in out
    failed = poll(
        "the upstream's log of the mirror's failed login",
        lambda: (
            [
                line
                for line in upstream.logs(tail=500).splitlines()
                if "user failed to authenticate" in line and "username=moby" in line
            ]
            or None
        ),
        timeout=10,
    )
    assert "/v2/tools/manifests/latest" in failed[-1]  # what the learner reads there

    # The env file written again and the container restarted: Docker read the file at create.
    login_file = ws.workdir / "mirror" / LOGIN_FILE
    login_file.write_text(f"REGISTRY_PROXY_USERNAME=moby\nREGISTRY_PROXY_PASSWORD={new.password}\n")
    container = mirror.container
    assert container is not None
    container.restart(timeout=10)
    mirror.wait_ready()
    assert not exercises.mirror_logs_in(mirror, upstream, new)
    assert "✘ Not yet" in said(capsys)

    # An answer that undoes the rotation upstream is not the fix.
    assert not exercises.mirror_logs_in(mirror, upstream, moby)
    assert "refuses moby's new password" in said(capsys)

    container.stop(timeout=10)
    assert not exercises.mirror_logs_in(mirror, upstream, new)
    assert "is not running" in said(capsys)

    fixed = mirroring.start_mirror(ws, upstream, login=new, ttl="24h")  # the solution's line
    assert exercises.mirror_logs_in(fixed, upstream, new)
    out = said(capsys)
    assert "✔ Correct" in out and "tools:latest: sha256:" in out
    assert exercises.mirror_logs_in(mirror, upstream, new)  # the same container, by name
    assert "✔ Correct" in said(capsys)
    with upstream.client(new.as_tuple()) as api, fixed.client() as mirrored:
        assert mirrored.manifest_digest("tools") == api.manifest_digest("tools")
    operate.remove(ws, fixed)
