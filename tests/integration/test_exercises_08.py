"""Notebook 08's exercises against the real engine: a new case predicted, and carol's rule
order found and fixed (Correct for the right answer, Not yet with the hint for a wrong one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from common import free_port
from docker import DockerClient

from reglab.lab import Workshop, access, exercises
from reglab.registry.container import Registry
from reglab.registry.login import Credentials
from reglab.registry.token import DEFAULT_ACL, TokenServer


@pytest.fixture
def token_ws(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Workshop, Registry, dict[str, Credentials]]]:  # fmt: skip
    monkeypatch.setenv("REGLAB_PORT", str(free_port()))
    monkeypatch.setenv("REGLAB_NAME", "reglab-test-ex08")
    monkeypatch.setenv("REGLAB_WORKDIR", str(tmp_path_factory.mktemp("ex08") / "workdir"))
    ws = Workshop.setup("token")
    users = {u: Credentials.generate(u) for u in ("admin", "alice", "bob")}
    for user in users.values():
        ws.add_user(user)
    access.write_acl(ws, DEFAULT_ACL)
    reg = ws.up("token")
    ws.login(users["admin"])
    for repository in ("team/app", "public/hello"):
        ws.tag("hello-world", reg.ref(repository))
        ws.push(reg.ref(repository))
    ws.logout()
    try:
        yield ws, reg, users
    finally:
        ws.cleanup()


def test_the_new_cases_and_carols_rule_order(
    token_ws: tuple[Workshop, Registry, dict[str, Credentials]], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, reg, users = token_ws
    assert not exercises.predict_access(reg, users, set())
    assert not exercises.predict_access(reg, users, {"a", "c", "d"})  # bob is not anonymous
    assert "a * never crosses a /" in capsys.readouterr().out
    assert not exercises.predict_access(reg, users, {"b", "c", "d"})  # team/* stops at /
    assert not exercises.predict_access(reg, users, {"z"})
    assert exercises.predict_access(reg, users, ["(C)", "d"])
    assert "✔ Correct" in capsys.readouterr().out

    carol = exercises.break_rule_order(ws, reg)
    out = capsys.readouterr().out
    assert "refused: push of" in out and "denied" in out  # the engine's word for it
    assert not exercises.rule_order_fixed(reg, users, carol)
    assert "carol still cannot push carol/app" in capsys.readouterr().out
    logs = TokenServer(reg.config, ws.engine).logs(tail=50)
    assert "token for carol: carol/app:pull\n" in logs  # what the learner reads: pull only

    broken = access.rules(ws)
    access.add_rule(ws, {"account": "carol"}, ["*"], at=1)  # a fix that gives too much
    assert not exercises.rule_order_fixed(reg, users, carol)
    assert "carol may now push team/app: too much" in capsys.readouterr().out
    access.write_acl(ws, yaml.safe_dump(broken))

    access.move_rule(ws, 6, to=5)  # the solution: her narrow rule before the broad one
    assert exercises.rule_order_fixed(reg, users, carol)
    assert "✔ Correct" in capsys.readouterr().out
    assert "token for carol: carol/app:pull,push" in TokenServer(reg.config, ws.engine).logs()
