"""The swarm stack's files, rendered from fixed inputs, are exactly the golden copies in
tests/unit/golden/swarm (no Docker). ``REGLAB_UPDATE_GOLDEN=1`` rewrites the copies: then read
the diff, it is what a deployment would change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from reglab.swarm import MAX_REPLICAS, StackNames, stack_file
from reglab.swarm.render import COPIED, VERSIONS, render, versions

GOLDEN = Path(__file__).parent / "golden" / "swarm"
NAMES = StackNames("reglab-golden", 5000)
KEYS = {"http_secret": "h" * 64, "access_key": "reglab000000000000", "secret_key": "s" * 40}
#: The working folder's files, as fixed stand-ins (render copies them as they are).
COPIED_FILES = {name: f"the working folder's {name}\n".encode() for name in COPIED}


def rendered() -> dict[str, bytes]:
    files = render(NAMES, KEYS, COPIED_FILES)
    files["versions.json"] = (json.dumps(versions(files), indent=1) + "\n").encode()
    return files


def test_the_rendered_files_are_the_golden_ones() -> None:
    files = rendered()
    if os.environ.get("REGLAB_UPDATE_GOLDEN") == "1":
        for old in GOLDEN.glob("*"):
            old.unlink()
        for name, data in files.items():
            (GOLDEN / name).write_bytes(data)
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(files)
    for name, data in files.items():
        assert data == (GOLDEN / name).read_bytes(), f"{name} differs (REGLAB_UPDATE_GOLDEN=1)"


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
