"""The foundation images, built ``FROM scratch`` from programs of this machine: ``registry:3``
(distribution 3, built from its Go module), ``registry:2`` (2.8, Debian's registry server),
``hello-world`` (a tiny static C program) and ``reglab-tools`` (busybox). Each carries the hash
of reglab's files it is made from (``*_sources``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker

from reglab.base import settings
from reglab.base.errors import ImageError
from reglab.base.progress import ProgressCallback
from reglab.base.versions import V2, V3, V3_MODULE, V3_RELEASE
from reglab.images import gobuild
from reglab.images.context import BuildContext, asset, source_digest

REGISTRY_BINARY_CANDIDATES = ("/usr/bin/docker-registry", "/usr/bin/registry", "/bin/registry")
#: Debian's busybox-static ships a static busybox; Debian's busybox a dynamic one (its
#: libraries then go into the image too).
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

REGISTRY_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
EXPOSE 5000
VOLUME ["/var/lib/registry"]
ENTRYPOINT ["/bin/registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
"""
#: Registry 3 as the official image has it (distribution-library-image): the configuration at
#: /etc/distribution/config.yml, tracing off, and an entrypoint that maps ``serve``,
#: ``garbage-collect``, ``help`` and flags to the registry program. busybox is its /bin/sh.
REGISTRY3_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
ENV OTEL_TRACES_EXPORTER=none
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/entrypoint.sh"]
CMD ["/etc/distribution/config.yml"]
"""
#: The registry 3 server at the pinned release, its version set as distribution's own
#: Dockerfile sets it (``registry --version`` then names it).
REGISTRY3_PROGRAM = gobuild.GoProgram(
    "registry",
    f"{V3_MODULE}/cmd/registry",
    f"v{V3_RELEASE}",
    ldflags=f"-s -w -X {V3_MODULE}/version.version=v{V3_RELEASE} "
    f"-X {V3_MODULE}/version.mainpkg={V3_MODULE}",
)
HELLO_DOCKERFILE = b"""\
FROM scratch
COPY hello /
CMD ["/hello"]
"""
HELLO_FLAGS = ["-static", "-Os", "-s"]
TOOLS_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/bin/busybox"]
"""


def registry_sources() -> list[bytes]:
    return [REGISTRY_DOCKERFILE, asset("config.yml")]


def registry3_sources() -> list[bytes]:
    return [
        REGISTRY3_DOCKERFILE,
        asset("config-v3.yml"),
        asset("registry-entrypoint.sh"),
        f"{REGISTRY3_PROGRAM}".encode(),
    ]


def hello_sources() -> list[bytes]:
    return [HELLO_DOCKERFILE, asset("hello.c"), " ".join(HELLO_FLAGS).encode()]


def tools_sources() -> list[bytes]:
    return [TOOLS_DOCKERFILE]


def find_registry_binary(binary: str | Path | None = None) -> Path:
    """Find the registry server binary: given path, ``REGLAB_REGISTRY_BINARY``, or Debian's."""
    candidates = (
        [binary]
        if binary
        else [os.environ.get("REGLAB_REGISTRY_BINARY"), *REGISTRY_BINARY_CANDIDATES]
    )
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ImageError(
        f"no registry server binary found ({binary or ', '.join(REGISTRY_BINARY_CANDIDATES)})"
        " and registry:2 cannot be pulled",
        "install Debian's package (apt-get install docker-registry), give --registry-binary PATH, "
        "or load a saved tarball: reglab images --load FILE.tar",
    )


def build_registry_image(
    client: docker.DockerClient,
    *,
    binary: str | Path | None = None,
    ref: str = V2.image,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``registry:2`` from the registry server binary on this machine; return the ref.

    The image holds the binary, the libraries it links, and the official config file.
    """
    context = BuildContext(REGISTRY_DOCKERFILE)
    context.add_binary(find_registry_binary(binary), "/bin/registry")
    context.add_bytes(asset("config.yml"), "rootfs/etc/docker/registry/config.yml")
    context.add_dir("rootfs/var/lib/registry")
    context.add_dir("rootfs/tmp", 0o1777)
    return context.build(client, ref, progress, source_digest(registry_sources()))


def build_registry3_image(
    client: docker.DockerClient,
    *,
    ref: str = V3.image,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``registry:3`` from distribution's Go module at the pinned release; return the ref.

    Static (no libraries), with busybox as the shell its entrypoint script needs.
    """
    binary = gobuild.build(REGISTRY3_PROGRAM)
    context = BuildContext(REGISTRY3_DOCKERFILE)
    context.add_file(binary, "rootfs/bin/registry")
    context.add_binary(_busybox(), "/bin/busybox")
    context.add_symlink("rootfs/bin/sh", "busybox")
    context.add_bytes(asset("registry-entrypoint.sh"), "rootfs/entrypoint.sh", 0o755)
    context.add_bytes(asset("config-v3.yml"), "rootfs/etc/distribution/config.yml")
    context.add_dir("rootfs/var/lib/registry")
    context.add_dir("rootfs/tmp", 0o1777)
    return context.build(client, ref, progress, source_digest(registry3_sources()))


def build_hello_image(
    client: docker.DockerClient,
    *,
    ref: str = settings.HELLO_IMAGE,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``hello-world`` from a static C program compiled here; return the ref."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ImageError(
            "no C compiler found to build hello-world offline",
            "install one (apt-get install gcc libc6-dev), or load a saved tarball: "
            "reglab images --load FILE.tar",
        )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hello.c").write_bytes(asset("hello.c"))
        result = subprocess.run(
            [compiler, *HELLO_FLAGS, "-o", "hello", "hello.c"],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ImageError(
                f"compiling hello-world failed: {result.stderr.strip()[:200]}",
                "install the static C library (apt-get install libc6-dev)",
            )
        context = BuildContext(HELLO_DOCKERFILE)
        context.add_file(Path(tmp) / "hello", "hello")
    return context.build(client, ref, progress, source_digest(hello_sources()))


def build_tools_image(
    client: docker.DockerClient,
    *,
    ref: str = settings.TOOLS_IMAGE,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``reglab-tools`` from this machine's busybox; return the ref.

    ``docker run --rm reglab-tools:1 cp ...`` runs busybox's cp: enough for the file operations
    reglab does as the engine, and small (about 2 MB).
    """
    context = BuildContext(TOOLS_DOCKERFILE)
    context.add_binary(_busybox(), "/bin/busybox")
    context.add_dir("rootfs/tmp", 0o1777)
    return context.build(client, ref, progress, source_digest(tools_sources()))


def _busybox() -> Path:
    path = next((Path(p) for p in BUSYBOX_CANDIDATES if Path(p).is_file()), None)
    if path is None:
        raise ImageError(
            "no busybox found to build reglab's images offline",
            "install Debian's busybox-static (apt-get install busybox-static), or load a saved "
            "tarball: reglab images --load FILE.tar",
        )
    return path
