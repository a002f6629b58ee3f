"""A tarball of the workshop's images, for rooms without network.

The format is ``docker save``'s, so ``docker load`` reads it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import docker

from reglab.base.errors import ImageError, docker_errors
from reglab.base.files import write_atomic
from reglab.engine.transfer import exists
from reglab.images.recipes import WORKSHOP_IMAGES


def save_images(
    client: docker.DockerClient, path: str | Path, refs: Iterable[str] = WORKSHOP_IMAGES
) -> Path:
    """Write ``refs`` to one tarball (``docker save`` format), atomically.

    CLI: ``docker save registry:2 hello-world -o FILE.tar``.
    """
    refs = list(refs)
    missing = [ref for ref in refs if not exists(client, ref)]
    if missing:
        raise ImageError(
            f"cannot save: {', '.join(missing)} not present", "run 'reglab images' first"
        )
    # docker-py's get_image() takes one name; the engine's endpoint takes several and writes
    # one archive, exactly like `docker save a b`. So call the endpoint through the low-level
    # client's request helpers.
    api = client.api
    with docker_errors(f"cannot save {', '.join(refs)}", error=ImageError):
        response = api._get(api._url("/images/get"), params={"names": refs}, stream=True)
        api._raise_for_status(response)
        # 0644: a classroom file, meant to be copied around
        return write_atomic(path, api._stream_raw_result(response, 1 << 20, False), 0o644)


def load_images(client: docker.DockerClient, path: str | Path) -> list[str]:
    """Load images from a tarball made by ``save_images`` or ``docker save``; return their names.

    CLI: ``docker load -i FILE.tar``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(
            f"image tarball {path} does not exist",
            "give the file made by 'reglab images --save FILE.tar'",
        )
    with (
        path.open("rb") as data,
        docker_errors(
            f"{path} is not an image tarball",
            "make it with 'reglab images --save FILE.tar' or 'docker save'",
            ImageError,
        ),
    ):
        loaded = client.images.load(data)
    return sorted(tag for image in loaded for tag in image.tags)
