"""Widgets and exercises, driven the way JupyterLab drives them (values set, buttons clicked)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import MakeRegistry, build_random_image, container_of, free_port, push_as
from docker import DockerClient

import reglab
from reglab.auth.htpasswd import Htpasswd
from reglab.base.settings import TOOLS_IMAGE
from reglab.engine import transfer
from reglab.lab import Workshop, exercises
from reglab.lab.display import NotebookProgress
from reglab.lab.widgets import (
    EventTable,
    LoginForm,
    RegistryBrowser,
    StatusPanel,
    add_user_and_login,
)
from reglab.registry import gc, mirror
from reglab.registry.events import Listener

pytestmark = pytest.mark.docker

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@pytest.fixture
def auth_registry(
    make_registry: MakeRegistry, tmp_path: Path
) -> tuple[reglab.Registry, reglab.Credentials]:
    moby = reglab.Credentials.generate("moby")
    return make_registry("auth", users=[moby]), moby


def test_login_form_adds_a_user_logs_in_and_forgets_the_password(
    engine: DockerClient, auth_registry: tuple[reglab.Registry, reglab.Credentials]
) -> None:
    registry, _ = auth_registry
    form = LoginForm(engine, registry)
    form.user.value = "alice"
    form.password.value = "alice-secret-pw"
    form.button.click()
    assert form.message.value.startswith("✔ alice is in htpasswd and can log in")
    assert form.password.value == ""  # not kept in the widget
    users = Htpasswd.load(registry.config.paths.htpasswd)
    assert users.names() == ["moby", "alice"] and users.verify("alice", "alice-secret-pw")
    with registry.client(auth=("alice", "alice-secret-pw")) as api:
        assert api.ping() == 200


def test_login_form_reports_bad_input_in_one_line_and_writes_nothing(
    engine: DockerClient, auth_registry: tuple[reglab.Registry, reglab.Credentials]
) -> None:
    registry, _ = auth_registry
    before = registry.config.paths.htpasswd.read_bytes()
    form = LoginForm(engine, registry)
    form.user.value = "bob"
    form.button.click()  # no password
    assert form.message.value.startswith("✘ the password is empty - fix:")
    assert registry.config.paths.htpasswd.read_bytes() == before


def test_add_user_and_login_refuses_a_wrong_registry_password(
    engine: DockerClient, auth_registry: tuple[reglab.Registry, reglab.Credentials]
) -> None:
    registry, _ = auth_registry
    registry.remove()  # nothing answers: the login cannot succeed
    with pytest.raises(reglab.ReglabError, match="login to"):
        add_user_and_login(engine, registry, "carol", "pw")


def test_registry_browser_walks_repositories_tags_and_layers(
    engine: DockerClient,
    auth_registry: tuple[reglab.Registry, reglab.Credentials],
    cleanup_images: list[str],
) -> None:
    registry, moby = auth_registry
    ref = registry.ref("browse/hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    digest = transfer.push(engine, ref, auth=moby.auth_config())
    browser = RegistryBrowser(registry, auth=moby.as_tuple())
    assert browser.repositories.options == ("browse/hello-world",)
    browser.repositories.value = "browse/hello-world"
    assert browser.tags.options == ("latest",)
    browser.tags.value = "latest"
    assert digest in browser.details.value and "layer 1" in browser.details.value

    second = registry.ref("browse/again")
    cleanup_images.append(second)
    transfer.tag(engine, "hello-world", second)
    transfer.push(engine, second, auth=moby.auth_config())
    browser.refresh_button.click()
    assert "browse/again" in browser.repositories.options


def test_registry_browser_without_credentials_says_why(
    auth_registry: tuple[reglab.Registry, reglab.Credentials],
) -> None:
    registry, _ = auth_registry
    browser = RegistryBrowser(registry)
    assert browser.repositories.options == ()
    assert "401" in browser.details.value


def test_status_panel_shows_stage_port_tls_and_auth(
    engine: DockerClient, auth_registry: tuple[reglab.Registry, reglab.Credentials]
) -> None:
    registry, _ = auth_registry
    panel = StatusPanel(engine)
    row = next(r for r in panel.table.value.split("<tr>") if registry.config.name in r)
    assert "auth" in row and str(registry.config.port) in row and row.count(">on<") == 2
    registry.remove()
    panel.refresh_button.click()
    assert registry.config.name not in panel.table.value


def test_progress_adds_up_layer_bytes(
    engine: DockerClient,
    make_registry: MakeRegistry,
    cleanup_images: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = make_registry("local")
    ref = registry.ref("progress/data")
    source = build_random_image(
        engine, f"reglab-test-progress:{registry.config.port}", layers=2, layer_bytes=1 << 20
    )
    cleanup_images += [source, ref]
    transfer.tag(engine, source, ref)
    bar = NotebookProgress("push")
    transfer.push(engine, ref, progress=bar)
    assert bar.bar.value == 100
    assert bar.totals.total >= 2 << 20 and len(bar.totals.done) >= 2
    assert "push: " in bar.label.value


@pytest.fixture
def workshop(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, port: int
) -> Iterator[Workshop]:
    """A notebook helper on a free port and a fresh working folder, cleaned up afterwards."""
    settings = reglab.Settings(port=port, workdir=tmp_path / "workdir", name="reglab-test-ex")
    ws = Workshop(engine, settings)
    yield ws
    ws.cleanup()
    reglab.engine.network.remove_project_network(engine)


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_01_exercises_diagnose_and_typed_in_a_terminal(
    workshop: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not exercises.why_refused("")
    assert "answer with one letter" in said(capsys)
    assert not exercises.why_refused("a")
    assert "does listen there" in said(capsys)
    assert exercises.why_refused("(b)")
    assert "✔ Correct" in said(capsys)

    reg = workshop.up("local")
    workshop.ensure_stored(reg)
    assert not exercises.pushed(reg, "terminal/hello", "v1")
    assert "docker tag hello-world" in said(capsys)
    ref = reg.ref("terminal/hello", "v1")
    typed = subprocess.run(  # as a learner types it in a terminal
        f"docker tag hello-world {ref} && docker push -q {ref}",
        shell=True, capture_output=True, text=True,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    assert exercises.pushed(reg, "terminal/hello", "v1")
    assert "with hello-world's digest" in said(capsys)


def test_02_exercise_predicts_what_docker_rm_leaves(
    workshop: Workshop, engine: DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    volumes_before = {v.name for v in engine.volumes.list()}
    assert not exercises.leftover_volumes(workshop, None)
    assert "answer with a number" in said(capsys)
    assert not exercises.leftover_volumes(workshop, 0)
    assert "the engine left 1" in said(capsys)
    assert exercises.leftover_volumes(workshop, 1)
    out = said(capsys)
    assert "docker rm -f reglab-test-ex-predict" in out and "docker volume rm" in out
    assert {v.name for v in engine.volumes.list()} == volumes_before  # the experiment cleaned up
    assert not engine.containers.list(all=True, filters={"name": "reglab-test-ex-predict"})


def test_03_exercise_diagnoses_a_certificate_without_the_gateway(
    workshop: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = workshop.network()
    reg = workshop.up("tls", bind=("127.0.0.1", gateway))
    assert exercises.gateway_in_certificate(reg, gateway)  # issued with the gateway
    exercises.break_certificate(workshop, reg)
    assert not exercises.gateway_in_certificate(reg, gateway)
    assert "Issue the certificate again with the gateway" in said(capsys)
    reg = workshop.up("tls", bind=("127.0.0.1", gateway))  # the fix
    assert exercises.gateway_in_certificate(reg, gateway)
    assert gateway in said(capsys)


def test_04_exercises_predict_shared_credentials_and_fix_an_md5_line(
    workshop: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    moby = reglab.Credentials.generate("moby")
    workshop.add_user(moby)
    reg = workshop.up("auth")
    workshop.login(moby)
    try:
        assert not exercises.shared_credentials(workshop, reg, ["127.0.0.1", "localhost"])
        assert "the pushes worked for ['127.0.0.1']" in said(capsys)
        assert exercises.shared_credentials(workshop, reg, {"127.0.0.1"})
        assert "✔ Correct" in said(capsys)
    finally:
        workshop.logout()

    carol = exercises.md5_user(workshop)
    assert "$apr1$" in reg.config.paths.htpasswd.read_text()
    with reg.client(auth=carol.as_tuple()) as api:
        assert api.status() == 401  # a right password, an MD5 line: refused
    assert not exercises.user_can_log_in(reg, carol)
    assert "is not a bcrypt hash" in said(capsys)
    workshop.add_user(carol)  # the fix
    assert exercises.user_can_log_in(reg, carol)
    assert "answers 200" in said(capsys)
    assert Htpasswd.load(reg.config.paths.htpasswd).names() == ["moby", "carol"]


def test_registry_browser_deletes_only_after_saying_which_tags_go(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    digest = push_as(engine, registry, "hello-world", "app", "v1", cleanup_images)
    push_as(engine, registry, "hello-world", "app", "same", cleanup_images)
    push_as(engine, registry, TOOLS_IMAGE, "app", "v2", cleanup_images)
    browser = RegistryBrowser(registry)
    browser.repositories.value = "app"
    browser.tags.value = "v1"
    assert set(browser.ask_delete()) == {"v1", "same"}
    assert "These tags go with it:" in browser.message.value
    assert browser.confirm_button.layout.display == ""  # waiting for "Delete them"
    with registry.client() as api:
        assert api.manifest_digest("app", "v1") == digest  # nothing deleted yet
    browser.delete()
    assert browser.message.value.startswith(f"✔ deleted app@{digest}")
    assert browser.tags.options == ("v2",)
    assert browser.confirm_button.layout.display == "none"
    with registry.client() as api:
        assert api.tags("app") == ["v2"]


def test_registry_browser_shows_an_index_as_its_platforms(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    children = []
    for source, tag, platform in (
        ("hello-world", "amd64", {"os": "linux", "architecture": "amd64"}),
        (TOOLS_IMAGE, "arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ):
        digest = push_as(engine, registry, source, "multi", tag, cleanup_images)
        with registry.client() as api:
            head = api.request("HEAD", f"/v2/multi/manifests/{digest}",
                               headers={"Accept": MANIFEST_V2})  # fmt: skip
        size = int(head.headers["Content-Length"])
        children.append(
            {"mediaType": MANIFEST_V2, "digest": digest, "size": size, "platform": platform}
        )
    index = {"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": children}
    with registry.client() as api:
        api.request("PUT", "/v2/multi/manifests/both", data=json.dumps(index),
                    headers={"Content-Type": MANIFEST_LIST})  # fmt: skip
        summary = api.image_summary("multi", "both")
    assert summary.platforms == (
        ("linux/amd64", children[0]["digest"]),
        ("linux/arm64/v8", children[1]["digest"]),
    )
    browser = RegistryBrowser(registry)
    browser.repositories.value = "multi"
    browser.tags.value = "both"
    assert "linux/arm64/v8" in browser.details.value and "platforms" in browser.details.value


def test_05_exercise_predicts_how_many_blobs_the_collector_deletes(
    engine: DockerClient,
    make_registry: MakeRegistry,
    cleanup_images: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = make_registry("persistent")
    push_as(engine, registry, "hello-world", "app", "v1", cleanup_images)
    push_as(engine, registry, TOOLS_IMAGE, "app", "v2", cleanup_images)
    with registry.client() as api:
        gc.delete_image(api, "app", "v1")  # by digest: its blobs become garbage
    assert not exercises.blobs_collected(registry, None)
    assert "answer with a number" in said(capsys)
    assert not exercises.blobs_collected(registry, 2)  # forgetting the manifest is a blob
    assert "the manifest is a blob itself" in said(capsys)
    assert exercises.blobs_collected(registry, 3)  # hello-world's layer, config, manifest
    assert "3 blob(s) eligible" in said(capsys)
    with registry.client() as api:
        api.verify_image("app", "v2")  # a dry run: nothing went


def test_06_exercise_predicts_what_a_mirror_serves_without_its_upstream(
    engine: DockerClient,
    make_registry: MakeRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upstream = make_registry("persistent")
    for source, repository in (("hello-world", "hello-world"), (TOOLS_IMAGE, "tools")):
        push_as(engine, upstream, source, repository, "latest", [])
        transfer.remove(engine, upstream.ref(repository))
    name = f"reglab-test-mirror-{uuid.uuid4().hex[:6]}"
    proxy = mirror.start_mirror(engine, upstream.config.name, free_port(), tmp_path, name)
    try:
        with proxy.client() as api:
            api.verify_image("hello-world")  # fetched through the mirror once
        assert not exercises.served_without_upstream(proxy, upstream, {"hello-world"})
        assert "stop the upstream first" in said(capsys)
        container_of(upstream).stop(timeout=5)
        assert not exercises.served_without_upstream(proxy, upstream, {"hello-world", "tools"})
        out = said(capsys)
        assert "tools: GET /v2/tools/manifests/latest answered 404" in out and "Not yet" in out
        assert exercises.served_without_upstream(proxy, upstream, ["hello-world"])
        assert "✔ Correct" in said(capsys)
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()
        upstream.remove()
        reglab.engine.network.remove_project_network(engine)


def test_07_exercise_predicts_the_events_of_a_pull_and_the_table_follows(
    workshop: Workshop, engine: DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = Listener(reglab.engine.network.project_network(engine)).start()
    try:
        table = EventTable(listener)
        assert "no events yet" in table.table.value
        reg = workshop.up("local", notify=listener.url, network=reglab.engine.network.NETWORK)
        workshop.tag("hello-world", reg.ref("hello-world"))
        digest = workshop.push(reg.ref("hello-world"))
        assert not exercises.pull_events(workshop, reg, listener, None)
        assert "answer with a number" in said(capsys)
        assert not exercises.pull_events(workshop, reg, listener, 1)
        out = said(capsys)
        assert (
            "0 blob event(s)" in out and "every other event was a request for the manifest" in out
        )
        assert exercises.pull_events(workshop, reg, listener, 0)
        assert "✔ Correct" in said(capsys)
        assert "HEAD" in {e.method for e in listener.events if e.what == "manifest"}
        assert digest[:19] in table.table.value and "<td>pull</td>" in table.table.value
    finally:
        listener.stop()


def test_registry_browser_follows_the_token_flow_and_says_what_a_token_does_not_grant(
    engine: DockerClient, workshop: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    users = {u: reglab.Credentials.generate(u) for u in ("admin", "alice")}
    for credentials in users.values():
        workshop.add_user(credentials)
    reg = workshop.up("token")
    workshop.tag("hello-world", reg.ref("team/app"))
    digest = transfer.push(engine, reg.ref("team/app"), auth=users["admin"].auth_config())
    browser = RegistryBrowser(reg, auth=users["admin"].as_tuple())  # admin: the catalog too
    assert browser.repositories.options == ("team/app",)
    browser.repositories.value = "team/app"
    browser.tags.value = "latest"
    assert digest in browser.details.value
    denied = RegistryBrowser(reg, auth=users["alice"].as_tuple())  # no rule grants her it
    assert "does not grant registry:catalog:*" in denied.details.value
