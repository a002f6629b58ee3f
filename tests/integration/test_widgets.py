"""Widgets and exercises, driven the way JupyterLab drives them (values set, buttons clicked)."""

from __future__ import annotations

import pytest
from common import build_random_image

import reglab
from reglab import transfer
from reglab.htpasswd import Htpasswd
from reglab.lab import exercises
from reglab.lab.display import NotebookProgress
from reglab.lab.widgets import LoginForm, RegistryBrowser, StatusPanel, add_user_and_login

pytestmark = pytest.mark.docker


@pytest.fixture
def auth_registry(make_registry, tmp_path):
    moby = reglab.Credentials.generate("moby")
    return make_registry("auth", users=[moby]), moby


def test_login_form_adds_a_user_logs_in_and_forgets_the_password(engine, auth_registry):
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


def test_login_form_reports_bad_input_in_one_line_and_writes_nothing(engine, auth_registry):
    registry, _ = auth_registry
    before = registry.config.paths.htpasswd.read_bytes()
    form = LoginForm(engine, registry)
    form.user.value = "bob"
    form.button.click()  # no password
    assert form.message.value.startswith("✘ the password is empty - fix:")
    assert registry.config.paths.htpasswd.read_bytes() == before


def test_add_user_and_login_refuses_a_wrong_registry_password(engine, auth_registry):
    registry, _ = auth_registry
    registry.remove()  # nothing answers: the login cannot succeed
    with pytest.raises(reglab.ReglabError, match="login to"):
        add_user_and_login(engine, registry, "carol", "pw")


def test_registry_browser_walks_repositories_tags_and_layers(engine, auth_registry, cleanup_images):
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


def test_registry_browser_without_credentials_says_why(auth_registry):
    registry, _ = auth_registry
    browser = RegistryBrowser(registry)
    assert browser.repositories.options == ()
    assert "401" in browser.details.value


def test_status_panel_shows_stage_port_tls_and_auth(engine, auth_registry):
    registry, _ = auth_registry
    panel = StatusPanel(engine)
    row = next(r for r in panel.table.value.split("<tr>") if registry.config.name in r)
    assert "auth" in row and str(registry.config.port) in row and row.count(">on<") == 2
    registry.remove()
    panel.refresh_button.click()
    assert registry.config.name not in panel.table.value


def test_progress_adds_up_layer_bytes(engine, make_registry, cleanup_images, capsys):
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


def test_exercise_checks_say_not_yet_then_correct(
    engine, make_registry, cleanup_images, tmp_path, capsys
):
    registry = make_registry("local")
    hello = registry.ref("hello-world")
    second = registry.ref("my-first/hello", "v1")
    cleanup_images += [hello, second]
    transfer.tag(engine, "hello-world", hello)
    transfer.push(engine, hello)
    assert not exercises.second_name(registry)
    assert "✘ Not yet" in capsys.readouterr().out
    transfer.tag(engine, "hello-world", second)
    transfer.push(engine, second)
    assert exercises.second_name(registry)

    persistent = make_registry(
        "persistent", port=registry.config.port, start=False, workdir=tmp_path / "p"
    )
    registry.remove()
    persistent.start()
    survivor = persistent.ref("survivor/hello", "v2")
    cleanup_images.append(survivor)
    transfer.tag(engine, "hello-world", survivor)
    transfer.push(engine, survivor)
    assert not exercises.survived_recreation(persistent)  # same container as the push
    persistent.remove()
    persistent.start()
    assert exercises.survived_recreation(persistent)


def test_tls_and_auth_exercise_checks(engine, auth_registry):
    registry, moby = auth_registry
    ca = registry.config.paths.ca_cert
    port = registry.config.port
    assert not exercises.verifying_client(
        reglab.RegistryClient(f"https://127.0.0.1:{port}", ca=ca), ca
    )
    assert not exercises.verifying_client(reglab.RegistryClient(f"https://localhost:{port}"), ca)
    assert exercises.verifying_client(
        reglab.RegistryClient(f"https://localhost:{port}", ca=ca, auth=moby.as_tuple()), ca
    )
    alice = reglab.Credentials.generate("alice")
    assert not exercises.two_users(registry, moby, alice)  # alice not added yet
    users = Htpasswd.load(registry.config.paths.htpasswd)
    users.add(alice.user, "a-different-password")
    users.save()
    assert not exercises.two_users(registry, moby, alice)  # wrong password: 401
    users.update(alice.user, alice.password)
    users.save()
    assert exercises.two_users(registry, moby, alice)  # no registry restart needed
