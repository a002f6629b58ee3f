"""Notebook 06, diagnose then fix: a mirror whose upstream login went stale.

The upstream's operator rotates the password of the mirror's user, as a security policy asks
now and then, and logs the Docker engine in again with the new one; nobody tells the mirror.
What the learner then meets is what an operator meets: the mirror answers ``MANIFEST_UNKNOWN``
for an image the upstream has (not 401: the proxy turns every failure of its upstream into
"unknown"), still serves what it had cached (it cannot check the tag upstream, so it serves its
own copy), and says nothing about a login in its own log. The upstream's log says it:
``user failed to authenticate ... username=moby``.

The fix is to give the mirror the new password. Its login comes from an env file, which Docker
reads when the container is created (``docker run --env-file``): writing the file again and
``docker restart`` keeps the old password; the container must be created again.
"""

from __future__ import annotations

from reglab.base.errors import ReglabError
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry
from reglab.registry.login import Credentials

#: The repository the mirror has never fetched: a pull of it needs the upstream's login.
UNFETCHED = "tools"


def rotate_password(
    ws: Workshop, upstream: Registry, mirror: Registry, login: Credentials
) -> Credentials:
    """06, the setup of the diagnosis: ``login``'s user gets a new password on the upstream,
    the Docker engine logs in again with it, and a client asks the mirror for an image it never
    fetched. Returns the new credentials (the mirror still has the old ones)."""
    rotated = Credentials.generate(login.user)
    ws.add_user(rotated)  # the upstream rereads its htpasswd when the file changes
    ws.login(rotated, upstream)
    print(f"{login.user}'s password changed on the upstream; docker logged in again with it")
    path = f"/v2/{UNFETCHED}/manifests/latest"
    # (--retry-all-errors: typed right after docker start, the mirror may not listen yet;
    # without -f an HTTP error is an answer, not retried)
    ws.cli(f"curl -s --retry 5 --retry-all-errors {mirror.url}{path}")
    with mirror.client() as api:
        response = api.answer("GET", path)
    print(f"{response.status_code}: {response.text.strip()}")
    return rotated


def mirror_logs_in(mirror: Registry, upstream: Registry, login: Credentials) -> bool:
    """06, diagnose and fix: the running mirror fetches an image it never had from the
    upstream, so it logs in there with ``login`` (the user's current password), and serves
    the upstream's digest."""
    name = mirror.config.name
    container = mirror.container
    if container is None or container.status != "running":
        return verdict(False, "", f"{name} is not running: start the mirror again")
    try:
        with upstream.client(login.as_tuple()) as api:
            want = api.manifest_digest(UNFETCHED)
    except ReglabError as exc:
        return verdict(
            False,
            "",
            f"the upstream refuses {login.user}'s new password ({exc.problem[:100]}): keep the "
            "rotation (the cell above), and give the mirror the new password instead",
        )
    try:
        with mirror.client() as api:
            api.verify_image(UNFETCHED)  # a GET first: its error says what a client sees
            served = api.manifest_digest(UNFETCHED)
    except ReglabError as exc:
        print(f"{name}: {exc.problem[:160]}")
        return verdict(
            False,
            "",
            f"the upstream has {UNFETCHED}, the mirror does not fetch it. Both registries log "
            f"every request: what does the upstream say about the mirror's (docker logs "
            f"{upstream.config.name} in a terminal)? And when does Docker read a container's "
            "--env-file?",
        )
    print(f"{name} serves {UNFETCHED}:latest: {served}")
    return verdict(
        served == want,
        f"the mirror logs in with {login.user}'s new password and fetched {UNFETCHED} "
        "from the upstream. The upstream's log named the cause (user failed to authenticate), "
        "the mirror's only said manifest unknown; and Docker reads --env-file when it creates "
        "a container, so a new password means creating the mirror again, not docker restart",
        f"the mirror serves {served}, the upstream {want}: fetch it through the mirror again",
    )


__all__ = ["UNFETCHED", "mirror_logs_in", "rotate_password"]
