"""Load: concurrent pushes and pulls against the TLS + auth registry, every digest verified."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from common import MakeRegistry, build_random_image
from conftest import REPORT
from docker import DockerClient

import reglab
from reglab.engine import transfer

pytestmark = pytest.mark.docker
PUSHES, PULLS = 8, 32


def test_concurrent_pushes_and_pulls_with_zero_errors(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, cleanup_images: list[str]
) -> None:
    creds = reglab.Credentials.generate("loader")
    registry = make_registry("auth", users=[creds])

    run = uuid.uuid4().hex[:8]
    sources = [
        build_random_image(engine, f"reglab-test-load{n}:{run}", layers=3, layer_bytes=2 << 20)
        for n in range(PUSHES)
    ]
    refs = [registry.ref(f"load/image{n}") for n in range(PUSHES)]
    cleanup_images += sources + refs
    for source, ref in zip(sources, refs, strict=True):
        transfer.tag(engine, source, ref)

    def push(ref: str) -> str:
        return transfer.push(reglab.connect(), ref, auth=creds.auth_config())

    start = time.monotonic()
    with ThreadPoolExecutor(PUSHES) as pool:
        pushed = list(pool.map(push, refs))  # any error raises here
    push_seconds = time.monotonic() - start
    assert len(set(pushed)) == PUSHES  # distinct images

    def pull(n: int) -> int:
        with registry.client(auth=creds.as_tuple()) as api:
            return api.verify_image(f"load/image{n % PUSHES}")  # every blob's SHA-256 checked

    start = time.monotonic()
    with ThreadPoolExecutor(PULLS) as pool:
        sizes = list(pool.map(pull, range(PULLS)))
    pull_seconds = time.monotonic() - start
    assert all(size > 6_000_000 for size in sizes)

    with registry.client(auth=creds.as_tuple()) as api:
        for n, digest in enumerate(pushed):
            assert api.manifest_digest(f"load/image{n}") == digest

    # The engine pulls them back too (local copies removed first), digests checked.
    for ref in refs:
        transfer.remove(engine, ref)
    with ThreadPoolExecutor(PUSHES) as pool:
        pulled = list(
            pool.map(lambda r: transfer.pull(reglab.connect(), r, auth=creds.auth_config()), refs)
        )
    assert pulled == pushed
    REPORT.append(
        f"load (TLS + auth, bcrypt cost {reglab.DEFAULT_COST}): {PUSHES} concurrent "
        f"pushes of 6 MiB in {push_seconds:.2f} s; {PULLS} concurrent verified pulls "
        f"in {pull_seconds:.2f} s; 0 errors"
    )
