"""The command line's edges, without Docker: ports planned from one, settings merged once,
other libraries' errors mapped to one line, and no socket left open by a failed connect."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest
import requests

from reglab.base import ports
from reglab.base.errors import (
    ClientError,
    ConfigError,
    EngineError,
    RegistryError,
    at_boundary,
)
from reglab.base.settings import Settings
from reglab.cli.args import build_parser
from reglab.cli.main import resolve
from reglab.engine.network import NetworkRemoval
from reglab.lab.display import error_line


def test_every_service_has_its_own_port() -> None:
    assert len(set(ports.OFFSETS.values())) == len(ports.OFFSETS)
    plan = ports.Ports(5000)
    assert (
        plan.registry, plan.token_server, plan.mirror, plan.copy, plan.swarm_stats, plan.listener,
        plan.gate,
    ) == (5000, 5001, 5002, 5003, 5004, 5005, 5006)  # fmt: skip
    assert set(plan.all().values()) == {5000, 5001, 5002, 5003, 5004, 5005, 5006}


def test_ports_stay_distinct_and_in_range_at_the_top() -> None:
    found = ports.Ports(65534).all()
    assert len(set(found.values())) == len(found)
    assert all(1 <= p <= 65535 for p in found.values()), found


def test_settings_plan_the_companions_ports() -> None:
    assert Settings(port=6000).ports.mirror == 6002


def test_options_given_win_over_the_environment(tmp_path: Path) -> None:
    env = Settings.from_env({"REGLAB_PORT": "6000", "REGLAB_WORKDIR": str(tmp_path / "env")})
    assert env.workdir_from_env
    merged = env.merged(port=7000, workdir=tmp_path / "arg", name="other")
    assert (merged.port, merged.workdir, merged.name) == (7000, tmp_path / "arg", "other")
    assert not merged.workdir_from_env  # the folder was typed: commands spell it out
    assert env.merged() == env  # nothing given: the environment as it was
    with pytest.raises(ConfigError, match="is not valid"):
        env.merged(name="no spaces")


def test_the_command_line_resolves_its_settings_in_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGLAB_PORT", "6000")
    monkeypatch.setenv("REGLAB_NAME", "from-env")
    args = build_parser().parse_args(["up", "local", "--workdir", str(tmp_path)])
    found = resolve(args)
    assert (found.port, found.workdir, found.name) == (6000, tmp_path, "from-env")
    args = build_parser().parse_args(["status"])
    assert resolve(args).name == "from-env"  # a command without the option keeps the setting


def _one_line_with_fix(error: object) -> str:
    text = str(error)
    assert "\n" not in text and " - fix: " in text, text
    return text


def test_a_docker_error_becomes_an_engine_error_with_a_fix() -> None:
    error = at_boundary(docker.errors.DockerException("Error while fetching server API version"))
    assert isinstance(error, EngineError)
    assert "Error while fetching server API version" in _one_line_with_fix(error)


def test_a_docker_api_error_keeps_the_engines_words_and_known_fix() -> None:
    response = requests.Response()
    response.status_code = 500
    exc = docker.errors.APIError("500", response, explanation="dial tcp: connection refused")
    error = at_boundary(exc)
    assert isinstance(error, EngineError)
    assert "start the registry" in _one_line_with_fix(error)


def test_an_http_error_names_the_url_and_status() -> None:
    refused = requests.ConnectionError("refused", request=requests.Request("GET", "http://h:1/v2/"))
    error = at_boundary(refused)
    assert isinstance(error, ClientError)
    assert "http://h:1/v2/" in _one_line_with_fix(error)
    response = requests.Response()
    response.status_code, response.reason = 503, "Service Unavailable"
    answered = requests.HTTPError("503", response=response)
    error = at_boundary(answered)
    assert isinstance(error, ClientError) and error.status == 503
    assert "503 Service Unavailable" in _one_line_with_fix(error)


@pytest.mark.parametrize(
    "exc, fix",
    [
        (PermissionError(errno.EACCES, "Permission denied", "/w/auth"), "permissions"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/w"), "a file stands"),
        (OSError(errno.ENOSPC, "No space left on device"), "free some disk space"),
        (OSError(errno.EIO, "Input/output error"), "check the path"),
    ],
)
def test_an_os_error_is_one_line_with_a_fix(exc: OSError, fix: str) -> None:
    error = at_boundary(exc)
    assert isinstance(error, ConfigError)
    text = _one_line_with_fix(error)
    assert exc.strerror is not None  # every case above gives one
    assert exc.strerror in text and fix in text
    if exc.filename:
        assert exc.filename in text


def test_reglab_errors_pass_and_bugs_are_not_hidden() -> None:
    mine = RegistryError("it broke", "fix it")
    assert at_boundary(mine) is mine
    assert at_boundary(ValueError("a bug")) is None
    assert at_boundary(KeyError("a bug")) is None


def test_a_notebook_shows_the_same_line() -> None:
    line = error_line(PermissionError(errno.EACCES, "Permission denied", "/w/auth"))
    assert line.startswith("ConfigError: Permission denied: /w/auth - fix: ")
    assert (
        error_line(RegistryError("it broke", "fix it")) == "RegistryError: it broke - fix: fix it"
    )


def test_a_network_kept_says_who_holds_it() -> None:
    assert str(NetworkRemoval("reglab-net", True)) == "removed network reglab-net"
    kept = NetworkRemoval("reglab-net", False, ("reglab-mirror",))
    assert not kept
    assert str(kept) == "network reglab-net left in place: reglab-mirror still uses it"


def test_connect_leaves_no_socket_open_when_nobody_serves(tmp_path: Path) -> None:
    """A Unix socket that exists but where nobody listens: connect() fails in one line, and
    with ResourceWarning as an error nothing is reported unclosed (the SDK alone leaks one)."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(path))  # bound, never listening: connections are refused
        script = (
            "import gc\n"
            "from reglab.base.errors import EngineError\n"
            "from reglab.engine.connection import connect\n"
            "try:\n"
            "    connect()\n"
            "except EngineError as exc:\n"
            "    print('refused:', exc)\n"
            "gc.collect()\n"
        )
        result = subprocess.run(
            [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "DOCKER_HOST": f"unix://{path}"},
            cwd=Path(__file__).parent,
        )
    assert "refused: no Docker engine answers" in result.stdout, result.stderr
    assert "ResourceWarning" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr


def test_offline_is_set_by_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from reglab.cli.args import build_parser
    from reglab.cli.main import resolve

    monkeypatch.setenv("REGLAB_OFFLINE", "1")
    assert resolve(build_parser().parse_args(["images"])).offline  # not undone by a default
    monkeypatch.delenv("REGLAB_OFFLINE")
    assert not resolve(build_parser().parse_args(["images"])).offline
    assert resolve(build_parser().parse_args(["images", "--offline"])).offline
