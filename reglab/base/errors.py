"""One small exception hierarchy, one "problem + fix" type, and the one place that maps other
libraries' errors onto it.

Every error reglab raises is a :class:`ReglabError` whose message is a single line saying what is
wrong and how to fix it, so the command line and the notebooks can show it as-is, without a
traceback. :func:`docker_errors` turns the Docker SDK's errors inside a block into one of these
(the way httpx maps httpcore's exceptions in ``map_httpcore_exceptions``); it chains the cause
with ``from``, so a developer still sees it in a traceback.

:func:`at_boundary` is the net under every call site: the command line (``reglab.cli.main``)
and the notebooks (``reglab.lab.display``) hand it whatever reached them, and a Docker SDK
error, an HTTP error or an OS error a call site did not map still becomes one line with a fix.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import docker.errors
import requests


@dataclass(frozen=True)
class Problem:
    """One thing in the way, with its fix. ``str()`` is the one line users see."""

    what: str
    fix: str | None = None

    def __str__(self) -> str:
        return f"{self.what} - fix: {self.fix}" if self.fix else self.what


class ReglabError(Exception):
    """Base class: ``str(err)`` is one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(str(Problem(problem, fix)))

    def as_problem(self) -> Problem:
        return Problem(self.problem, self.fix)


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
    """A container or network with that name exists but was not created by reglab."""


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


# --- what the engine's and the registry's error texts mean -----------------------------------

#: Error texts learners commonly hit, and their fixes. Texts differ between engine versions
#: (Docker 26 says "tls: failed to verify certificate: x509: certificate signed by unknown
#: authority" where 20.10 says "x509: certificate signed by unknown authority"), so each needle
#: is the part every version shares.
_FIXES = (
    (
        "no basic auth credentials",
        "log in first with the exact host:port used in the tag (docker login HOST:PORT)",
    ),
    ("unauthorized", "check user and password; the registry ignores non-bcrypt htpasswd entries"),
    (
        "server gave HTTP response to HTTPS client",
        'serve the registry over TLS, or add HOST:PORT to "insecure-registries" in '
        "/etc/docker/daemon.json and restart Docker",
    ),
    (
        "certificate signed by unknown authority",
        "trust the CA: copy ca.crt to /etc/docker/certs.d/HOST:PORT/ca.crt "
        "(exact name used in tags)",
    ),
    (
        "doesn't contain any IP SANs",
        "issue the certificate again with the IP address as a subject alternative name",
    ),
    (
        "legacy Common Name field",
        "issue the certificate again with subject alternative names (SANs)",
    ),
    ("connection refused", "start the registry (reglab up STAGE) and check the port"),
    (
        "no such host",
        "Docker Hub or the host is unreachable; use 'reglab images' to build the images offline",
    ),
)


def explain(message: str) -> str | None:
    """The fix for a Docker or registry error message learners commonly hit, if known."""
    for needle, fix in _FIXES:
        if needle.lower() in message.lower():
            return fix
    return None


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its white space folded to single spaces, cut at ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


#: Words that differ between engine versions for the same failure, and the form reglab shows
#: (20.10's, the shorter). Docker 26 wraps Go's x509 errors in "tls: failed to verify
#: certificate: ". Learners see one wording, whatever engine they brought.
_ENGINE_WORDING = (("tls: failed to verify certificate: x509: ", "x509: "),)


def engine_text(text: object, limit: int = 300) -> str:
    """The engine's words on one line, in the same form on every engine version."""
    message = one_line(text, 10 * limit)
    for variant, common in _ENGINE_WORDING:
        message = message.replace(variant, common)
    return message[:limit]


def docker_message(exc: docker.errors.DockerException) -> str:
    """The engine's own words for ``exc``, on one line."""
    return engine_text(getattr(exc, "explanation", None) or exc)


@contextmanager
def docker_errors(
    what: str, fix: str | None = None, error: type[ReglabError] = EngineError
) -> Iterator[None]:
    """Turn an error of the Docker SDK inside the block into ``error`` ("WHAT: engine's words").

    ``fix`` defaults to what :func:`explain` knows of the engine's message.
    """
    try:
        yield
    except docker.errors.DockerException as exc:
        message = docker_message(exc)
        raise error(f"{what}: {message}", fix or explain(message)) from exc


# --- the boundary: whatever reaches the command line or a notebook --------------------------

#: What :func:`at_boundary` turns into one line. ``requests.RequestException`` is an OSError
#: too; it is named for the reader.
MAPPED = (ReglabError, docker.errors.DockerException, requests.RequestException, OSError)

#: OS errors a learner meets, and their fixes (by errno).
_OS_FIXES = {
    errno.EACCES: "fix the permissions, or choose another folder (--workdir DIR)",
    errno.EPERM: "fix the permissions, or choose another folder (--workdir DIR)",
    errno.EROFS: "choose a folder on a writable file system (--workdir DIR)",
    errno.ENOSPC: "free some disk space (docker system df shows what Docker holds)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a file stands where a folder should be: move it, or choose another path",
    errno.EEXIST: "a file stands where a folder should be: move it, or choose another path",
    errno.ECONNREFUSED: "start it, or check the port (reglab status)",
}


def at_boundary(exc: BaseException) -> ReglabError | None:
    """``exc`` as the one line a user sees: a ReglabError as it is; a Docker SDK error, an HTTP
    error or an OS error mapped to one with a fix; None for anything else (a bug: let its
    traceback show)."""
    if isinstance(exc, ReglabError):
        return exc
    if isinstance(exc, docker.errors.DockerException):
        message = docker_message(exc)
        return EngineError(
            f"the Docker engine: {message}",
            explain(message) or "check that Docker runs and answers: reglab doctor",
        )
    if isinstance(exc, requests.RequestException):
        url = exc.request.url if exc.request is not None else None
        where = f" {one_line(url, 120)}" if url else ""
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            status = exc.response.status_code
            return ClientError(
                f"HTTP{where} answered {status} {one_line(exc.response.reason, 80)}",
                explain(str(exc)) or "check the registry runs (reglab status) and its logs",
                status=status,
            )
        return ClientError(
            f"HTTP request{where} failed: {one_line(exc, 200)}",
            explain(str(exc)) or "check the registry runs (reglab status) and the port",
        )
    if isinstance(exc, OSError):
        what = exc.strerror or one_line(exc, 200) or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        fix = _OS_FIXES.get(exc.errno or 0, "check the path, its permissions and the free space")
        return ConfigError(f"{what}{where}", fix)
    return None
