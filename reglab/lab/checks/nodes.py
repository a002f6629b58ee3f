"""Checkpoints of notebook 11: what a node holds, as CRI reports it."""

from __future__ import annotations

from reglab.lab.checks.failed import CheckFailed, ok
from reglab.node.container import Node


def node_holds(node: Node, ref: str, digest: str) -> None:
    """The node holds ``ref`` with the registry's digest (CRI ``ImageStatus``: the digests
    containerd recorded when it pulled)."""
    found = node.image(ref)
    if found is None:
        raise CheckFailed(f"the node holds no {ref}", "run the pull cell above again")
    if found.digest != digest:
        raise CheckFailed(
            f"the node holds {ref} as {found.digest}, not the registry's {digest}",
            "pull it again: the registry's tag moved since",
        )
    ok(f"the node holds {ref} with the registry's digest {digest}")


__all__ = ["node_holds"]
