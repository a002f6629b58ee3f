"""Making the workshop's images available, and tag/push/pull that never hide a failure.

Docker Hub may be out of reach (an air-gapped classroom, a firewall). So ``ensure_images`` uses an
image that is present, else pulls it, else builds it locally:

- ``registry:2`` from the real registry server binary on this machine (Debian's
  ``docker-registry`` package ships it as /usr/bin/docker-registry), the C libraries it links, and
  the same config file the official image has;
- ``hello-world`` from a tiny static C program.

A room without network can also be provisioned from a tarball (``save_images`` / ``load_images``,
the same format as ``docker save`` / ``docker load``).

The Docker engine reports push and pull failures *inside* a 200 response, as an ``errorDetail``
line of the progress stream; docker-py passes that through without raising. Every stream here is
read to the end and an ``errorDetail`` raises :class:`ImageError`, so a failed push can never look
like success.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import docker
import docker.errors

from . import settings
from .errors import ImageError

WORKSHOP_IMAGES = (settings.REGISTRY_IMAGE, settings.HELLO_IMAGE)
#: Marks images reglab built. Not the container owner label: containers inherit image labels,
#: and every container started from hello-world would then look like reglab's own.
BUILT_LABEL = "org.reglab.built"
REGISTRY_BINARY_CANDIDATES = ("/usr/bin/docker-registry", "/usr/bin/registry", "/bin/registry")


@dataclass(frozen=True)
class Progress:
    """One progress event: which layer, what is happening, bytes done of total (when known)."""

    action: str
    status: str
    layer: str | None = None
    current: int | None = None
    total: int | None = None


ProgressCallback = Callable[[Progress], None]
#: The status of the last event of a push, pull or build that succeeded.
COMPLETE = "complete"


# --- what the engine's error lines mean --------------------------------------------------------

_FIXES = (
    ("no basic auth credentials",
     "log in first with the exact host:port used in the tag (docker login HOST:PORT)"),
    ("unauthorized",
     "check user and password; the registry ignores non-bcrypt htpasswd entries"),
    ("server gave HTTP response to HTTPS client",
     "serve the registry over TLS, or add HOST:PORT to \"insecure-registries\" in "
     "/etc/docker/daemon.json and restart Docker"),
    ("certificate signed by unknown authority",
     "trust the CA: copy ca.crt to /etc/docker/certs.d/HOST:PORT/ca.crt (exact name used in tags)"),
    ("doesn't contain any IP SANs",
     "issue the certificate again with the IP address as a subject alternative name"),
    ("legacy Common Name field",
     "issue the certificate again with subject alternative names (SANs)"),
    ("connection refused",
     "start the registry (reglab up STAGE) and check the port"),
    ("no such host",
     "Docker Hub or the host is unreachable; use 'reglab images' to build the images offline"),
)


def explain(message: str) -> str | None:
    """The fix for a Docker or registry error message learners commonly hit, if known."""
    for needle, fix in _FIXES:
        if needle.lower() in message.lower():
            return fix
    return None


def _follow(stream: Iterable[dict[str, Any]], action: str, ref: str,
            progress: ProgressCallback | None) -> list[dict[str, Any]]:
    """Read a decoded engine stream to the end; raise on an error line; report progress."""
    events = []
    for event in stream:
        events.append(event)
        error = event.get("errorDetail", {}).get("message") or event.get("error")
        if error:
            message = " ".join(str(error).split())
            raise ImageError(f"{action} of {ref} failed: {message}", explain(message))
        if progress is not None:
            detail = event.get("progressDetail") or {}
            progress(Progress(action, event.get("status") or event.get("stream", "").strip(),
                              event.get("id"), detail.get("current"), detail.get("total")))
    if progress is not None:
        progress(Progress(action, COMPLETE))
    return events


def parse_reference(name: str) -> tuple[str, str, str]:
    """Split an image name into (registry host, repository, tag) the way Docker reads it.

    The first part is a registry host only if it has a '.' or ':' or is ``localhost``;
    otherwise the image is on Docker Hub (``docker.io``), where one-word names live under
    ``library/``: ``hello-world`` is ``docker.io/library/hello-world:latest``.
    """
    name = name.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, remainder = first, rest
    else:
        host, remainder = "docker.io", name
    if host == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    repository, tag_ = split_ref(remainder)
    return host, repository, tag_


def split_ref(ref: str) -> tuple[str, str]:
    """Split ``host:port/repo:tag`` into (``host:port/repo``, ``tag``); default tag latest."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag


# --- tag, push, pull, remove ---------------------------------------------------------------------

def tag(client: docker.DockerClient, source: str, target: str) -> None:
    """Give image ``source`` the extra name ``target``.  CLI: ``docker tag SOURCE TARGET``."""
    repository, tag_ = split_ref(target)
    try:
        client.api.tag(source, repository, tag_)
    except docker.errors.ImageNotFound:
        raise ImageError(f"image {source} is not present",
                         "run 'reglab images' or pull/build it first") from None


def _transfer(client: docker.DockerClient, action: str, ref: str,
              auth: dict[str, str] | None, progress: ProgressCallback | None) -> list[dict]:
    """Run ``docker push`` or ``docker pull`` through the engine API; return its events."""
    repository, tag_ = split_ref(ref)
    call = client.api.push if action == "push" else client.api.pull
    try:
        stream = call(repository, tag_, stream=True, decode=True, auth_config=auth)
        return _follow(stream, action, ref, progress)
    except docker.errors.APIError as exc:
        message = exc.explanation or str(exc)
        raise ImageError(f"{action} of {ref} failed: {message}", explain(message)) from None


def push(client: docker.DockerClient, ref: str, auth: dict[str, str] | None = None,
         progress: ProgressCallback | None = None) -> str:
    """Push ``ref`` and return the manifest digest the registry stored.

    CLI: ``docker push REF``. Raises ImageError when the engine reports any error.
    """
    events = _transfer(client, "push", ref, auth, progress)
    for event in reversed(events):
        digest = (event.get("aux") or {}).get("Digest")
        if digest:
            return digest
    raise ImageError(f"push of {ref} ended without a digest", "check the registry's logs")


def pull(client: docker.DockerClient, ref: str, auth: dict[str, str] | None = None,
         progress: ProgressCallback | None = None) -> str:
    """Pull ``ref`` and return its manifest digest (``sha256:...``).  CLI: ``docker pull REF``."""
    events = _transfer(client, "pull", ref, auth, progress)
    for event in events:
        match = re.search(r"Digest: (sha256:[0-9a-f]{64})", event.get("status", ""))
        if match:
            return match.group(1)
    raise ImageError(f"pull of {ref} ended without a digest", "check the registry's logs")


def remove(client: docker.DockerClient, ref: str) -> bool:
    """Remove the name ``ref`` from the local engine; False when it was not there.

    CLI: ``docker rmi REF``. Only the name goes; layers stay while another name uses them.
    """
    try:
        client.images.remove(ref)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:  # 409: a container still uses it
        raise ImageError(f"cannot remove {ref}: {exc.explanation or exc}",
                         "remove the containers that use it first (docker ps -a)") from None
    return True


def exists(client: docker.DockerClient, ref: str) -> bool:
    """True when the local engine has an image called ``ref``."""
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def missing_images(client: docker.DockerClient) -> list[str]:
    """The workshop images the engine does not have yet."""
    return [ref for ref in WORKSHOP_IMAGES if not exists(client, ref)]


# --- making the images available ----------------------------------------------------------------

def ensure_images(client: docker.DockerClient, *, offline: bool | None = None,
                  registry_binary: str | Path | None = None,
                  progress: ProgressCallback | None = None) -> dict[str, str]:
    """Make ``registry:2`` and ``hello-world`` available; return how each was obtained.

    Order: already present -> pull (skipped when offline) -> build locally.
    CLI: ``reglab images``.
    """
    offline = settings.offline() if offline is None else offline
    how: dict[str, str] = {}
    for ref in WORKSHOP_IMAGES:
        if exists(client, ref):
            how[ref] = "present"
            continue
        if not offline:
            try:
                pull(client, ref, progress=progress)
                how[ref] = "pulled"
                continue
            except ImageError:
                pass  # unreachable Docker Hub: build it instead
        if ref == settings.REGISTRY_IMAGE:
            build_registry_image(client, binary=registry_binary, progress=progress)
        else:
            build_hello_image(client, progress=progress)
        how[ref] = "built"
    return how


def find_registry_binary(binary: str | Path | None = None) -> Path:
    """Find the registry server binary: given path, ``REGLAB_REGISTRY_BINARY``, or Debian's."""
    candidates = [binary] if binary else [os.environ.get("REGLAB_REGISTRY_BINARY"),
                                          *REGISTRY_BINARY_CANDIDATES]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ImageError(
        f"no registry server binary found ({binary or ', '.join(REGISTRY_BINARY_CANDIDATES)})"
        " and registry:2 cannot be pulled",
        "install Debian's package (apt-get install docker-registry), give --registry-binary PATH, "
        "or load a saved tarball: reglab images --load FILE.tar",
    )


def shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries ``binary`` loads, as ldd reports them (none for a static binary)."""
    try:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ImageError("ldd is not installed, so the registry's libraries cannot be found",
                         "install libc-bin (apt-get install libc-bin)") from None
    libs = []
    for line in out.stdout.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def _add_file(tar: tarfile.TarFile, source: Path, arcname: str, mode: int = 0o755) -> None:
    data = Path(source).read_bytes()  # follows symlinks: the image gets the real file
    info = tarfile.TarInfo(arcname)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_bytes(tar: tarfile.TarFile, data: bytes, arcname: str, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(arcname)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, arcname: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _build(client: docker.DockerClient, context: bytes, ref: str,
           progress: ProgressCallback | None) -> None:
    try:
        stream = client.api.build(fileobj=io.BytesIO(context), custom_context=True, tag=ref,
                                  rm=True, forcerm=True, decode=True,
                                  labels={BUILT_LABEL: "offline"})
        _follow(stream, "build", ref, progress)
    except docker.errors.APIError as exc:
        raise ImageError(f"build of {ref} failed: {exc.explanation or exc}",
                         "check that the Docker engine is healthy ('docker info')") from None


REGISTRY_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
EXPOSE 5000
VOLUME ["/var/lib/registry"]
ENTRYPOINT ["/bin/registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
"""


def build_registry_image(client: docker.DockerClient, *, binary: str | Path | None = None,
                         ref: str = settings.REGISTRY_IMAGE,
                         progress: ProgressCallback | None = None) -> str:
    """Build ``registry:2`` from the registry server binary on this machine; return the ref.

    The image holds the binary, the libraries it links, and the official config file.
    """
    path = find_registry_binary(binary)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_bytes(tar, REGISTRY_DOCKERFILE, "Dockerfile")
        _add_file(tar, path, "rootfs/bin/registry")
        for lib in shared_libraries(path):
            _add_file(tar, lib, "rootfs" + str(lib))
        config = resources.files("reglab").joinpath("assets/config.yml").read_bytes()
        _add_bytes(tar, config, "rootfs/etc/docker/registry/config.yml")
        _add_dir(tar, "rootfs/var/lib/registry")
        _add_dir(tar, "rootfs/tmp", 0o1777)
    _build(client, buf.getvalue(), ref, progress)
    return ref


HELLO_DOCKERFILE = b"""\
FROM scratch
COPY hello /
CMD ["/hello"]
"""


def build_hello_image(client: docker.DockerClient, *, ref: str = settings.HELLO_IMAGE,
                      progress: ProgressCallback | None = None) -> str:
    """Build ``hello-world`` from a static C program compiled here; return the ref."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ImageError("no C compiler found to build hello-world offline",
                         "install one (apt-get install gcc libc6-dev), or load a saved tarball: "
                         "reglab images --load FILE.tar")
    source = resources.files("reglab").joinpath("assets/hello.c").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hello.c").write_bytes(source)
        result = subprocess.run([compiler, "-static", "-Os", "-s", "-o", "hello", "hello.c"],
                                cwd=tmp, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImageError(f"compiling hello-world failed: {result.stderr.strip()[:200]}",
                             "install the static C library (apt-get install libc6-dev)")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            _add_bytes(tar, HELLO_DOCKERFILE, "Dockerfile")
            _add_file(tar, Path(tmp) / "hello", "hello")
    _build(client, buf.getvalue(), ref, progress)
    return ref


def build_random_image(client: docker.DockerClient, ref: str, layers: int = 8,
                       layer_bytes: int = 8 << 20, seed: int | None = None,
                       progress: ProgressCallback | None = None) -> str:
    """Build an image of ``layers`` layers of random data (for load tests and benchmarks).

    Random data does not compress, so pushes move every byte. Distinct seeds give distinct
    images; no seed gives a fresh random image each time.
    """
    import random

    rng = random.Random(seed)
    buf = io.BytesIO()
    steps = ["FROM scratch"]
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for n in range(layers):
            _add_bytes(tar, rng.randbytes(layer_bytes), f"layer{n}.bin")
            steps.append(f"COPY layer{n}.bin /data/layer{n}.bin")
        _add_bytes(tar, ("\n".join(steps) + "\n").encode(), "Dockerfile")
    _build(client, buf.getvalue(), ref, progress)
    return ref


# --- a tarball for rooms without network --------------------------------------------------------

def save_images(client: docker.DockerClient, path: str | Path,
                refs: Iterable[str] = WORKSHOP_IMAGES) -> Path:
    """Write ``refs`` to one tarball (``docker save`` format), atomically.

    CLI: ``docker save registry:2 hello-world -o FILE.tar``.
    """
    refs = list(refs)
    missing = [ref for ref in refs if not exists(client, ref)]
    if missing:
        raise ImageError(f"cannot save: {', '.join(missing)} not present",
                         "run 'reglab images' first")
    path = Path(path)
    # docker-py's get_image() takes one name; the engine's endpoint takes several and writes
    # one archive, exactly like `docker save a b`. So call the endpoint through the low-level
    # client's request helpers.
    api = client.api
    response = api._get(api._url("/images/get"), params={"names": refs}, stream=True)
    api._raise_for_status(response)
    _write_atomically(path, api._stream_raw_result(response, 1 << 20, False))
    return path


def _write_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # a classroom file, meant to be copied around
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_images(client: docker.DockerClient, path: str | Path) -> list[str]:
    """Load images from a tarball made by ``save_images`` or ``docker save``; return their names.

    CLI: ``docker load -i FILE.tar``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image tarball {path} does not exist",
                         "give the file made by 'reglab images --save FILE.tar'")
    try:
        with path.open("rb") as data:
            images = client.images.load(data)
    except docker.errors.DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        raise ImageError(f"{path} is not an image tarball ({reason})",
                         "make it with 'reglab images --save FILE.tar' or 'docker save'") from None
    return sorted(tag for image in images for tag in image.tags)
