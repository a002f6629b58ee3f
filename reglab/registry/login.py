"""Credentials for the auth stage, and ``docker login`` / ``docker logout`` through the engine.

Credentials are kept in memory only. :class:`Credentials` never shows its password in a repr,
so printing it in a notebook cannot leak it; the only file the password reaches is the bcrypt
``htpasswd`` (as a hash).

``docker login`` run from a terminal stores credentials in ``~/.docker/config.json`` under the
*exact* ``HOST:PORT`` string (a login to ``localhost:5000`` does not cover ``127.0.0.1:5000``).
:func:`logout` removes them from there too, so the workshop's clean-up leaves none behind.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import docker

from reglab.auth.htpasswd import check_password, check_username, password_variable
from reglab.base.errors import AuthenticationRequired, EngineError, docker_errors
from reglab.base.files import write_atomic
from reglab.registry.client import probe_status


@dataclass(frozen=True)
class Credentials:
    """A user name and password; the password never appears in ``repr`` or ``str``."""

    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        check_username(self.user)
        check_password(self.password)

    @classmethod
    def generate(cls, user: str = "moby") -> Credentials:
        """Credentials with a fresh random password, so no password is written in a notebook."""
        return cls(user, secrets.token_urlsafe(18))

    def as_tuple(self) -> tuple[str, str]:
        return (self.user, self.password)

    def auth_config(self) -> dict[str, str]:
        """The form docker-py's push/pull take as ``auth_config``."""
        return {"username": self.user, "password": self.password}


def login_command(address: str, user: str) -> str:
    """The ``docker login`` line, reading the password from its variable (never shown)."""
    return (
        f"printf '%s\\n' \"${password_variable(user)}\" | "
        f"docker login {address} --username {shlex.quote(user)} --password-stdin"
    )


def login(engine: docker.DockerClient, address: str, credentials: Credentials) -> str:
    """Log the engine in to the registry at ``address`` (``HOST:PORT``); return its answer.

    CLI: ``docker login HOST:PORT --username USER --password-stdin``. The engine checks the
    credentials against the registry; docker-py keeps them in memory for later pushes and pulls.

    When the engine refuses, its words differ by version: Docker 20.10 passes on the registry's
    401, while Docker 26 retries plain HTTP on a loopback registry after the HTTPS 401 and
    reports that attempt's ``400 Bad Request``. So the registry itself is asked whether it
    refuses these credentials, and a refusal reads "wrong user or password" on every engine.
    """
    try:
        with docker_errors(
            f"login to {address} as {credentials.user} failed",
            "check that the registry is running (reglab status)",
        ):
            answer = engine.login(
                username=credentials.user,
                password=credentials.password,
                registry=address,
                reauth=True,
            )
    except EngineError as exc:
        if registry_refuses(address, credentials):
            raise AuthenticationRequired(
                f"login to {address} as {credentials.user} was refused: wrong user or password",
                "check user and password (the registry ignores non-bcrypt htpasswd entries)",
                status=401,
            ) from exc
        raise
    return str(answer.get("Status", "Login Succeeded"))


def registry_refuses(address: str, credentials: Credentials) -> bool:
    """True when the registry at ``address`` answers 401 to these credentials.

    Only classifies a failure the engine already reported: nothing is trusted or sent on
    because of it, so the certificate is not verified here (the workshop CA may not be known).
    """
    for scheme in ("https", "http"):
        status = probe_status(
            f"{scheme}://{address}/v2/", verify=False, auth=credentials.as_tuple(), timeout=5
        )
        if isinstance(status, int):  # an answer (a string names what went wrong instead)
            return status == 401
    return False


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def logout(
    engine: docker.DockerClient | None, address: str, config_path: Path | None = None
) -> bool:
    """Forget credentials for ``address``: in this engine client and in the CLI's config file.

    CLI: ``docker logout HOST:PORT``. Returns True when anything was removed. Other registries'
    entries in config.json are kept; the file is rewritten atomically.
    """
    removed = False
    if engine is not None:  # docker-py keeps logins in this mapping and offers no logout
        removed = engine.api._auth_configs.auths.pop(address, None) is not None
    path = config_path or docker_config_path()
    if path.exists():
        try:
            config = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError:
            return removed  # not ours to repair
        if address in config.get("auths", {}):
            del config["auths"][address]
            write_atomic(path, (json.dumps(config, indent=1) + "\n").encode(), 0o600)
            removed = True
    return removed
