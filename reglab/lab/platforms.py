"""Notebook 05's multi-platform image: written offline, pushed, pulled one platform at a time.

The work is :mod:`reglab.registry.ocilayout`'s (the layout) and skopeo's (the copies, through
:mod:`reglab.registry.replicate`); these functions show it, each with the ``$`` line that does
the same in a terminal opened in the notebook's folder.
"""

from __future__ import annotations

import shutil

from reglab.lab.workshop import Workshop
from reglab.registry import ocilayout, replicate
from reglab.registry.container import Registry
from reglab.registry.ocilayout import Layout

#: Where the layout is written, and where each platform is pulled to, in the working folder.
LAYOUT = "multi-platform"
PULLED = "pulled"


def write(ws: Workshop, tag: str) -> Layout:
    """Write the two-platform image as an OCI layout in the working folder; show its digests."""
    ws.cli(f"python -m reglab.registry.ocilayout {ws.style.show(ws.workdir / LAYOUT)} {tag}")
    layout = ocilayout.write_layout(ws.workdir / LAYOUT, tag)
    print(f"OCI layout {ws.style.show(layout.folder)}, tag {tag}: index {layout.index.digest}")
    for platform, digest in layout.children.items():
        print(f"  {platform:<12} manifest {digest}")
    return layout


def push(ws: Workshop, layout: Layout, registry: Registry, repository: str) -> str:
    """``skopeo copy --all`` the layout's index and every platform to the registry; return the
    digest the registry serves for the tag (the index's)."""
    ref = registry.ref(repository, layout.tag)
    shown = ocilayout.copy_command(ws.style.show(layout.folder), layout.tag, ref)
    ws.cli(" ".join(shown))
    replicate.run(ocilayout.copy_command(str(layout.folder), layout.tag, ref))
    with registry.client() as api:
        served = api.manifest_digest(repository, layout.tag)
    print(f"pushed {ref}: digest {served}")
    return served


def pull_each(ws: Workshop, layout: Layout, registry: Registry, repository: str) -> dict[str, str]:
    """Pull every platform of the image as a client of that platform would (skopeo picks its
    manifest from the index and checks every digest); return platform: pulled manifest."""
    ref = registry.ref(repository, layout.tag)
    pulled = {}
    ws.cli(f"mkdir -p {ws.style.show(ws.workdir / PULLED)}")  # skopeo makes only the last folder
    for platform in layout.children:
        into = ws.workdir / PULLED / platform.replace("/", "-")
        shutil.rmtree(into, ignore_errors=True)  # a copy from an earlier run
        into.parent.mkdir(parents=True, exist_ok=True)
        ws.cli(" ".join(ocilayout.pull_command(ref, platform, ws.style.show(into))))
        replicate.run(ocilayout.pull_command(ref, platform, str(into)))
        pulled[platform] = ocilayout.pulled_digest(into)
        print(f"{platform}: pulled manifest {pulled[platform]}")
    return pulled


def remove_files(ws: Workshop) -> None:
    """Remove the layout and the pulled copies from the working folder."""
    folders = [ws.workdir / LAYOUT, ws.workdir / PULLED]
    ws.cli("rm -rf " + " ".join(ws.style.show(f) for f in folders))
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["pull_each", "push", "remove_files", "write"]
