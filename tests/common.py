"""Helpers shared by the tests (fixtures live in conftest.py and use these)."""

from __future__ import annotations

import os
import random
import socket
import sys
from pathlib import Path

import docker

from reglab.images import BuildContext

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"


def nbval_command(*paths: str | Path, options: tuple[str, ...] = ()) -> list[str]:
    """The command line that runs notebooks under nbval, as the README's test command does."""
    return [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options,
        "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
        *(str(p) for p in paths),
    ]  # fmt: skip


sys.path.insert(0, str(ROOT / "scripts"))
import engine_control  # noqa: E402  (scripts/: the same code the set-up scripts run)


def restart_our_engine() -> engine_control.Engine:
    """Restart the engine the clients here use, only if this project started it.

    Raises engine_control.NotOurs (one line: why not) for any other engine.
    """
    engine = engine_control.for_socket(engine_control.current_socket())
    return engine_control.restart(engine.name)


def strict() -> bool:
    """True in CI (or with REGLAB_REQUIRE_DOCKER=1): a missing engine or a skip is a failure."""
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"}
        for v in ("CI", "REGLAB_REQUIRE_DOCKER")
    )


def free_port() -> int:
    """A port nothing listens on, from the ephemeral range: never a learner's 5000."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_random_image(
    client: docker.DockerClient,
    ref: str,
    layers: int = 8,
    layer_bytes: int = 8 << 20,
    seed: int | None = None,
) -> str:
    """Build an image of ``layers`` layers of random data (for load tests and benchmarks).

    Random data does not compress, so pushes move every byte. Distinct seeds give distinct
    images; no seed gives a fresh random image each time.
    """
    rng = random.Random(seed)
    steps = ["FROM scratch"] + [f"COPY layer{n}.bin /data/layer{n}.bin" for n in range(layers)]
    context = BuildContext(("\n".join(steps) + "\n").encode())
    for n in range(layers):
        context.add_bytes(rng.randbytes(layer_bytes), f"layer{n}.bin")
    return context.build(client, ref)
