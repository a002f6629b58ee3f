"""One small exception hierarchy.

Every error reglab raises is a :class:`ReglabError` whose message is a single line saying what is
wrong and how to fix it, so the command line and the notebooks can show it as-is, without a
traceback.
"""

from __future__ import annotations


class ReglabError(Exception):
    """Base class: ``str(err)`` is one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} - fix: {fix}" if fix else problem)


class EngineError(ReglabError):
    """The Docker engine cannot be reached or refused a request."""


class ImageError(ReglabError):
    """An image is missing, could not be built, or a push/pull failed."""


class RegistryError(ReglabError):
    """A registry container could not be started, replaced or reached."""


class RegistryNotReady(RegistryError):
    """The registry container started but never answered ``GET /v2/``."""

    def __init__(self, problem: str, fix: str | None = None, logs: str = "") -> None:
        super().__init__(problem, fix)
        self.logs = logs


class PortInUse(RegistryError):
    """The host port is already taken by another program or container."""


class NotOwned(RegistryError):
    """A container with that name exists but was not created by reglab."""


class CertificateError(ReglabError):
    """A certificate or key is missing, expired, mismatched or unverifiable."""


class HtpasswdError(ReglabError):
    """A user name, password or htpasswd file is invalid."""


class ClientError(ReglabError):
    """The registry's HTTP API answered with an error or could not be reached."""

    def __init__(self, problem: str, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(problem, fix)
        self.status = status


class AuthenticationRequired(ClientError):
    """The registry answered 401: no credentials, or wrong ones."""


class TLSVerificationFailed(ClientError):
    """The registry's certificate could not be verified by the client."""


class ConfigError(ReglabError):
    """A setting (port, folder, stage, name) is invalid."""
