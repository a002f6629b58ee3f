"""The benchmark's node row: a Kubernetes node's pull (CRI PullImage, through the node's
containerd and its hosts.toml mirror of docker.io) against the same pull by the Docker engine,
straight from the registry. Takes the :class:`bench.Bench` it measures for and returns its
BENCH value, ``node_pull_ratio``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from timing import alternate

from reglab.engine import transfer
from reglab.images import build as images
from reglab.node.container import Node

if TYPE_CHECKING:
    from bench import Bench


def node(bench: Bench) -> float:
    """A pull of the benchmark image by the node (``docker.io/library/bench-data``, sent to the
    registry by the node's mirror file) / the engine's pull of it from the registry. Both move
    every layer each round: each forgets the image in between."""
    images.ensure_images(bench.engine, "node", offline=True)
    registry = bench.registry("persistent").start()
    ref = registry.ref("library/bench-data")
    transfer.tag(bench.engine, bench.source, ref)
    pushed = transfer.push(bench.engine, ref)
    transfer.remove(bench.engine, bench.source)  # no other name keeps the layers
    made = Node(bench.engine, f"{bench.name}-node", bench.tmp / "node")
    made.up().run()
    made.mirror(registry.address).run()
    hub = "docker.io/library/bench-data:latest"
    try:
        made.pull(hub).run()  # once first: the same cold start for both sides after it

        def forget() -> None:
            made.remove_image(hub).run()
            transfer.remove(bench.engine, ref)

        r, c = alternate(
            bench.rounds,
            forget,
            lambda: made.pull(hub).run(),
            lambda: transfer.pull(bench.engine, ref),
        )
        held = made.pull(hub).run()  # (the last round may have ended with the engine's)
        assert held is not None and held.digest == pushed, held  # the registry's image
        transfer.pull(bench.engine, ref)
        transfer.tag(bench.engine, ref, bench.source)  # the source image, for later steps
    finally:
        made.down().run()
        transfer.remove(bench.engine, ref)
        registry.remove()
    return bench.row(f"pull {bench.image_mb:.0f} MiB: node (CRI, mirror) / engine", r, c)
