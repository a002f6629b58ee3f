"""Exercises at the end of each stage, with checks that tell learners whether they got it.

A check looks at the real registry (or files) and prints ``✔ Correct: ...`` or
``✘ Not yet: ...`` with a hint, and returns True or False. It never raises, so a learner
can run it as often as they like. The notebooks keep each solution in a hidden cell; the
test suite runs those solutions through these checks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..certs import Certificate
from ..client import RegistryClient
from ..container import Registry
from ..errors import ReglabError
from ..htpasswd import Htpasswd
from ..login import Credentials


def docker_time(text: str) -> dt.datetime:
    """Parse Docker's RFC 3339 times (nanoseconds, trailing zeros trimmed, ``Z``)."""
    stamp, _, fraction = text.rstrip("Z").partition(".")
    micro = (fraction + "000000")[:6]
    return dt.datetime.fromisoformat(f"{stamp}.{micro}+00:00")


def _verdict(ok: bool, good: str, hint: str) -> bool:
    print(f"✔ Correct: {good}" if ok else f"✘ Not yet: {hint}")
    return ok


def second_name(registry: Registry, repository: str = "my-first/hello", tag: str = "v1") -> bool:
    """01: hello-world pushed again as ``my-first/hello:v1``: same content, same digest."""
    try:
        with registry.client() as api:
            want = api.manifest_digest("hello-world", "latest")
            got = api.manifest_digest(repository, tag)
    except ReglabError as exc:
        return _verdict(
            False,
            "",
            f"{repository}:{tag} is not in the registry yet "
            f"({exc.problem}); tag hello-world with {registry.ref(repository, tag)}"
            " and push it",
        )
    return _verdict(
        got == want,
        f"{repository}:{tag} has the same digest as hello-world ({got}): one image, two names",
        f"{repository}:{tag} has digest {got}, hello-world has {want}",
    )


def survived_recreation(
    registry: Registry, repository: str = "survivor/hello", tag: str = "v2"
) -> bool:
    """02: an image pushed, then the container recreated: still served from registry-data."""
    link = registry.config.paths.tag_link(repository, tag)
    container = registry.container
    if not link.exists():
        return _verdict(False, "", f"{repository}:{tag} is not in registry-data; push it first")
    if container is None or container.status != "running":
        return _verdict(
            False, "", "no registry is running; start it again with ws.up('persistent')"
        )
    started = docker_time(container.attrs["State"]["StartedAt"])
    pushed = dt.datetime.fromtimestamp(link.stat().st_mtime, dt.UTC)
    if started <= pushed:
        return _verdict(
            False,
            "",
            "the container is the one you pushed to; remove it "
            "(ws.down()) and start a new one (ws.up('persistent'))",
        )
    try:
        with registry.client() as api:
            served = api.manifest_digest(repository, tag)
    except ReglabError as exc:
        return _verdict(False, "", f"the new container does not serve it: {exc.problem}")
    ok = served == link.read_text().strip()
    return _verdict(
        ok,
        f"a container started after the push serves {repository}:{tag} "
        f"({served}) from registry-data",
        "the served digest differs from the one on disk",
    )


def verifying_client(api: RegistryClient, ca_cert: str | Path) -> bool:
    """03: a client that reaches the registry as ``localhost`` and verifies it with the CA."""
    host = api.url.split("://", 1)[-1].rsplit(":", 1)[0]
    if not api.url.startswith("https://") or host != "localhost":
        return _verdict(False, "", f"the client's URL is {api.url}; use https://localhost:PORT")
    if str(api.verify) != str(ca_cert):
        return _verdict(False, "", "give the client the workshop CA: ca=paths.ca_cert")
    try:
        status = api.ping()
    except ReglabError as exc:
        return _verdict(False, "", exc.problem)
    cert = Certificate.load(Path(ca_cert).parent / "domain.crt")
    return _verdict(
        cert.covers("localhost"),
        f"https://localhost verified with the CA (GET /v2/ -> {status})",
        "the certificate does not name localhost",
    )


def two_users(registry: Registry, *users: Credentials) -> bool:
    """04: at least two users in htpasswd, and each of them gets 200 from the registry."""
    if len({u.user for u in users}) < 2:
        return _verdict(False, "", "pass two different users: two_users(reg, moby, other)")
    try:
        names = Htpasswd.load(registry.config.paths.htpasswd).names()
    except ReglabError as exc:
        return _verdict(False, "", exc.problem)
    missing = [u.user for u in users if u.user not in names]
    if missing:
        return _verdict(
            False, "", f"not in htpasswd yet: {', '.join(missing)}; add them with ws.add_user(...)"
        )
    for credentials in users:
        with registry.client(auth=credentials.as_tuple()) as api:
            status = api.status()
        if status != 200:
            return _verdict(
                False,
                "",
                f"{credentials.user} gets {status}, not 200: is the password the one you added?",
            )
    return _verdict(True, f"{', '.join(u.user for u in users)} can all log in (200)", "")
