"""The benchmark's gate row: the Docker engine's pull of a signed image through reglab's
signature gate against the same pull straight from the registry. Takes the :class:`bench.Bench`
it measures for and returns its BENCH value, ``gate_pull_ratio`` (target: at most 1.10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common import Signer
from timing import alternate

from reglab.engine import transfer
from reglab.images import build as images
from reglab.registry import signing
from reglab.registry.gate import Gate
from reglab.registry.sbom import Target
from reglab.registry.simplesign import SignFiles

if TYPE_CHECKING:
    from bench import Bench


def gate(bench: Bench) -> float:
    """A pull through the gate (a manifest checked: ``gpgv`` over its signature, then every
    layer streamed through) / the same pull from the registry. Both move every layer each
    round: the image is forgotten in between."""
    images.ensure_images(bench.engine, "supply", offline=True)
    registry = bench.registry("persistent").start()
    direct = registry.ref("bench/signed")
    transfer.tag(bench.engine, bench.source, direct)
    pushed = transfer.push(bench.engine, direct)
    signer = Signer(bench.tmp / "gnupg", "bench")
    key = bench.tmp / "bench.key"
    key.write_bytes(signer.secret_key())
    public = bench.tmp / "bench.pub"
    public.write_bytes(signer.public_key(armor=True))
    files = SignFiles.of(registry.config.workdir)
    front = Gate(registry.config, bench.engine)
    through = f"{front.address}/bench/signed:latest"
    try:
        target = Target.parse(registry, "bench/signed:latest")
        signing.sign_step(target, signing.read_key(key, secret=True), files).run()
        signing.trust_step([signing.read_key(public, secret=False)], files).run()
        front.start()

        def forget() -> None:
            for ref in (direct, through, bench.source):
                transfer.remove(bench.engine, ref)

        forget()
        r, c = alternate(
            bench.rounds,
            forget,
            lambda: transfer.pull(bench.engine, through),
            lambda: transfer.pull(bench.engine, direct),
        )
        transfer.pull(bench.engine, through)
        digests = bench.engine.images.get(through).attrs["RepoDigests"]
        assert f"{front.address}/bench/signed@{pushed}" in digests, digests  # the signed one
        transfer.tag(bench.engine, through, bench.source)  # the source image, for later steps
    finally:
        front.remove()
        signer.close()
        for ref in (direct, through, f"{front.address}/bench/signed@{pushed}"):
            transfer.remove(bench.engine, ref)
        registry.remove()
    return bench.row(f"pull {bench.image_mb:.0f} MiB: through the gate / direct", r, c)
