"""tag, push, pull and remove through the engine, never hiding a failure.

The Docker engine reports push and pull failures *inside* a 200 response, as an ``errorDetail``
line of the progress stream; docker-py passes that through without raising (docker-py #3161,
#3277). Every stream here is read to the end and an ``errorDetail`` raises :class:`ImageError`,
so a failed push can never look like success.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors

from reglab.base.errors import ImageError, docker_errors, engine_text, explain
from reglab.base.progress import COMPLETE, Progress, ProgressCallback
from reglab.base.refs import split_ref

Event = dict[str, Any]


def follow(
    stream: Iterable[Event], action: str, ref: str, progress: ProgressCallback | None
) -> list[Event]:
    """Read a decoded engine stream to the end; raise on an error line; report progress."""
    events = []
    for event in stream:
        events.append(event)
        error = event.get("errorDetail", {}).get("message") or event.get("error")
        if error:
            message = engine_text(error, 1000)
            raise ImageError(f"{action} of {ref} failed: {message}", explain(message))
        if progress is not None:
            detail = event.get("progressDetail") or {}
            status = event.get("status") or event.get("stream", "").strip()
            progress(
                Progress(
                    action, status, event.get("id"), detail.get("current"), detail.get("total")
                )
            )
    if progress is not None:
        progress(Progress(action, COMPLETE))
    return events


def tag(client: docker.DockerClient, source: str, target: str) -> None:
    """Give image ``source`` the extra name ``target``.  CLI: ``docker tag SOURCE TARGET``."""
    if not exists(client, source):
        raise ImageError(f"image {source} is not present", "run 'reglab images' or pull it first")
    repository, tag_ = split_ref(target)
    with docker_errors(f"cannot tag {source} as {target}", error=ImageError):
        client.api.tag(source, repository, tag_)


def _transfer(
    client: docker.DockerClient,
    action: str,
    ref: str,
    auth: dict[str, str] | None,
    progress: ProgressCallback | None,
) -> list[Event]:
    """Run ``docker push`` or ``docker pull`` through the engine API; return its events."""
    repository, tag_ = split_ref(ref)
    call = client.api.push if action == "push" else client.api.pull
    with docker_errors(f"{action} of {ref} failed", error=ImageError):
        stream = call(repository, tag_, stream=True, decode=True, auth_config=auth)
        try:
            return follow(stream, action, ref, progress)
        finally:
            # follow() stops at the first error event; the rest of the engine's answer is read
            # anyway, so its connection goes back to the client's pool instead of being left
            # open (a ResourceWarning, and a socket held, for every failed push or pull).
            with contextlib.suppress(Exception):  # the error that matters is follow()'s
                for _ in stream:
                    pass


def push(
    client: docker.DockerClient,
    ref: str,
    auth: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> str:
    """Push ``ref`` and return the manifest digest the registry stored.

    CLI: ``docker push REF``. Raises ImageError when the engine reports any error.
    """
    for event in reversed(_transfer(client, "push", ref, auth, progress)):
        digest = (event.get("aux") or {}).get("Digest")
        if digest:
            return str(digest)
    raise ImageError(f"push of {ref} ended without a digest", "check the registry's logs")


def pull(
    client: docker.DockerClient,
    ref: str,
    auth: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> str:
    """Pull ``ref`` and return its manifest digest (``sha256:...``).  CLI: ``docker pull REF``."""
    for event in _transfer(client, "pull", ref, auth, progress):
        match = re.search(r"Digest: (sha256:[0-9a-f]{64})", event.get("status", ""))
        if match:
            return match.group(1)
    raise ImageError(f"pull of {ref} ended without a digest", "check the registry's logs")


def remove(client: docker.DockerClient, ref: str) -> bool:
    """Remove the name ``ref`` from the local engine; False when it was not there.

    CLI: ``docker rmi REF``. Only the name goes; layers stay while another name uses them.
    """
    if not exists(client, ref):
        return False
    # 409 when a container still uses it
    with docker_errors(
        f"cannot remove {ref}", "remove the containers that use it first (docker ps -a)", ImageError
    ):
        client.images.remove(ref)
    return True


def exists(client: docker.DockerClient, ref: str) -> bool:
    """True when the local engine has an image called ``ref``."""
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
