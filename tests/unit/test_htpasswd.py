"""htpasswd: bcrypt only, validation, atomic writes, other users kept."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from reglab.auth.htpasswd import DEFAULT_COST, Htpasswd, cost_of, hash_password
from reglab.base.errors import HtpasswdError


def test_add_verify_and_cost(tmp_path: Path) -> None:
    users = Htpasswd(tmp_path / "htpasswd")
    users.add("moby", "gordon-pw")
    assert users.verify("moby", "gordon-pw")
    assert not users.verify("moby", "wrong")
    assert not users.verify("nobody", "gordon-pw")
    assert users.users["moby"].startswith("$2y$")
    assert cost_of(users.users["moby"]) == DEFAULT_COST
    assert cost_of(hash_password("x", cost=7)) == 7


def test_save_keeps_other_users_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "htpasswd"
    first = Htpasswd(path)
    first.add("alice", "pw-a")
    first.add("bob", "pw-b")
    first.save()
    again = Htpasswd.load(path)
    again.update("alice", "pw-a2")
    again.remove("bob")
    again.add("carol", "pw-c")
    again.save()
    final = Htpasswd.load(path)
    assert final.names() == ["alice", "carol"]
    assert final.verify("alice", "pw-a2") and final.verify("carol", "pw-c")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["htpasswd"]  # no temp file left


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("mo:by", "contains ':'"),
        ("mo by", "white space"),
        ("moby\n", "white space"),
    ],
)
def test_bad_user_names_are_refused(tmp_path: Path, name: str, why: str) -> None:
    with pytest.raises(HtpasswdError, match=why):
        Htpasswd(tmp_path / "h").add(name, "pw")


def test_empty_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HtpasswdError, match="password is empty"):
        Htpasswd(tmp_path / "h").add("moby", "")


def test_add_existing_and_update_missing_are_refused(tmp_path: Path) -> None:
    users = Htpasswd(tmp_path / "h")
    users.add("moby", "pw")
    with pytest.raises(HtpasswdError, match="already exists"):
        users.add("moby", "pw2")
    with pytest.raises(HtpasswdError, match="no user 'alice'"):
        users.update("alice", "pw")


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("moby-without-a-hash\n")
    with pytest.raises(HtpasswdError, match="line 1 is not 'user:hash'") as err:
        Htpasswd.load(path)
    assert "\n" not in str(err.value)
    assert path.read_text() == "moby-without-a-hash\n"


def test_non_bcrypt_entry_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("moby:$apr1$abc$0123456789abcdefghijkl\n")  # MD5 form: the registry ignores it
    with pytest.raises(HtpasswdError, match="not a bcrypt hash, and the registry ignores"):
        Htpasswd.load(path)


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="apache2-utils' htpasswd is missing")
def test_apache_htpasswd_accepts_our_file(tmp_path: Path) -> None:
    """A real third-party client verifies the entries reglab writes."""
    users = Htpasswd(tmp_path / "htpasswd")
    users.add("moby", "gordon-pw")
    users.save()
    ok = subprocess.run(
        ["htpasswd", "-vb", str(users.path), "moby", "gordon-pw"], capture_output=True, text=True
    )
    bad = subprocess.run(
        ["htpasswd", "-vb", str(users.path), "moby", "nope"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode != 0
