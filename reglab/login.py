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
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from .certs import write_private
from .errors import AuthenticationRequired, EngineError
from .htpasswd import check_password, check_username


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


def login(engine: docker.DockerClient, address: str, credentials: Credentials) -> str:
    """Log the engine in to the registry at ``address`` (``HOST:PORT``); return its answer.

    CLI: ``docker login HOST:PORT --username USER --password-stdin``. The engine checks the
    credentials against the registry; docker-py keeps them in memory for later pushes and pulls.
    """
    try:
        answer = engine.login(username=credentials.user, password=credentials.password,
                              registry=address, reauth=True)
    except docker.errors.APIError as exc:
        message = " ".join(str(exc.explanation or exc).split())
        if "401" in message or "unauthorized" in message.lower():
            raise AuthenticationRequired(f"login to {address} as {credentials.user} was refused "
                                         f"({message[:120]})", "check user and password",
                                         status=401) from None
        raise EngineError(f"login to {address} failed: {message[:200]}",
                          "check that the registry is running (reglab status)") from None
    return str(answer.get("Status", "Login Succeeded"))


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def logout(engine: docker.DockerClient | None, address: str,
           config_path: Path | None = None) -> bool:
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
            write_private(path, (json.dumps(config, indent=1) + "\n").encode(), 0o600)
            removed = True
    return removed
