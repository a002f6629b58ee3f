"""A picture of what runs, drawn from the engine itself: reglab's containers (and a swarm
stack's tasks), the host ports they publish, the folders and volumes they mount, the networks
they share, and a stack's secrets and configs.

Nothing is drawn from what reglab *meant* to start: the picture is read back from
``docker inspect``, so it shows a registry a learner started by hand with a typed ``docker run``
the same way, and a mistake (a missing mount, a port on every address) shows up in it. Graphviz
(``dot``, Debian's ``graphviz``) lays it out as SVG; without it the DOT text is shown, with the
one line that says how to get the drawing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from reglab.base.errors import docker_errors
from reglab.base.labels import OWNER_LABEL
from reglab.lab.display import show_svg

#: A swarm task's label: the stack it belongs to.
STACK_LABEL = "com.docker.stack.namespace"
#: Colours by kind of node: what runs, what the host offers, where data lives.
STYLE = {
    "container": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "port": 'shape=cds, style=filled, fillcolor="#fde8c8"',
    "folder": 'shape=folder, style=filled, fillcolor="#e3f1df"',
    "volume": 'shape=cylinder, style=filled, fillcolor="#e3f1df"',
    "network": "shape=ellipse, style=dashed",
    "secret": 'shape=note, style=filled, fillcolor="#f3e0f0"',
}


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    kind: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Picture:
    """Nodes and edges, in the order they were found (so the DOT text is stable)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, label: str = "") -> None:
        edge = Edge(source, target, label)
        if edge not in self.edges:
            self.edges.append(edge)

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def dot(self) -> str:
        """The picture as Graphviz DOT: the host on the left, containers, then networks."""
        lines = ["digraph reglab {", "  rankdir=LR;", '  node [fontname="sans-serif"];']
        lines.append('  edge [fontname="sans-serif", fontsize=10];')
        for node in self.nodes.values():
            lines.append(f"  {_quote(node.id)} [label={_quote(node.label)}, {STYLE[node.kind]}];")
        for edge in self.edges:
            label = f" [label={_quote(edge.label)}]" if edge.label else ""
            lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)}{label};")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shown(path: str, workdir: Path | None) -> str:
    """A host path as the notebooks print it: inside the working folder, relative to it."""
    if workdir is not None:
        try:
            return f"workdir/{Path(path).relative_to(workdir)}"
        except ValueError:
            pass
    return path


def add_container(picture: Picture, attrs: dict[str, Any], workdir: Path | None = None) -> str:
    """One container as ``docker inspect`` describes it: itself, its published ports, its
    mounts and its networks."""
    name = attrs["Name"].lstrip("/")
    config, state = attrs["Config"], attrs["State"]
    service = (config.get("Labels") or {}).get("com.docker.swarm.service.name")
    what = f"{name}\n{config['Image'].split('@')[0]}\n{state['Status']}"
    me = picture.add(Node(f"c:{name}", what if not service else f"{service}\n{what}", "container"))
    for inside, bindings in sorted((attrs["NetworkSettings"].get("Ports") or {}).items()):
        for binding in bindings or []:
            host = f"{binding['HostIp'] or '0.0.0.0'}:{binding['HostPort']}"
            port = picture.add(Node(f"p:{host}", host, "port"))
            picture.link(port, me, inside)
    for mount in attrs.get("Mounts") or []:
        read_only = "" if mount.get("RW", True) else " (ro)"
        if mount.get("Type") == "volume":
            held = picture.add(Node(f"v:{mount['Name']}", f"volume {mount['Name'][:24]}", "volume"))
        else:
            where = _shown(mount.get("Source", ""), workdir)  # its id too: no host path shows
            held = picture.add(Node(f"f:{where}", where, "folder"))
        picture.link(held, me, f"{mount.get('Destination', '')}{read_only}")
    for network in sorted(attrs["NetworkSettings"].get("Networks") or {}):
        picture.link(me, picture.add(Node(f"n:{network}", f"network {network}", "network")))
    return me


def of_engine(
    engine: docker.DockerClient,
    workdir: Path | None = None,
    stack: str | None = None,
    name: str | None = None,
) -> Picture:
    """What runs of reglab's: every container with reglab's owner label (with ``name``: that
    registry and its companions, ``NAME-token`` and the like), and the tasks of ``stack`` with
    the secrets and configs its services get."""
    picture = Picture()
    with docker_errors("cannot read what runs"):
        found = [
            c
            for c in engine.containers.list(filters={"label": OWNER_LABEL})
            if name is None or c.name == name or c.name.startswith(f"{name}-")
        ]
        if stack:
            found += engine.containers.list(filters={"label": f"{STACK_LABEL}={stack}"})
        for container in sorted({c.id: c for c in found}.values(), key=lambda c: c.name):
            add_container(picture, container.attrs, workdir)
        for service in (
            engine.services.list(filters={"label": f"{STACK_LABEL}={stack}"}) if stack else []
        ):
            _add_service_files(picture, service.attrs)
    return picture


def _add_service_files(picture: Picture, attrs: dict[str, Any]) -> None:
    """A stack service's secrets and configs, to each of its running tasks."""
    spec = attrs["Spec"]
    task = spec["TaskTemplate"]["ContainerSpec"]
    tasks = [n for n in picture.of_kind("container") if n.label.startswith(spec["Name"] + "\n")]
    for kind, items in (
        ("secret", task.get("Secrets") or []),
        ("config", task.get("Configs") or []),
    ):
        for item in items:
            name = item.get(f"{kind.capitalize()}Name", "")
            target = (item.get("File") or {}).get("Name", "")
            node = picture.add(Node(f"s:{name}", f"{kind} {name}", "secret"))
            for container in tasks:
                picture.link(node, container.id, target)


def mounted(picture: Picture, name: str, destination: str) -> str | None:
    """What the container ``name`` has at ``destination``, as drawn: a folder (shown as
    ``workdir/...``) or a volume, with `` (ro)`` when read-only; None when nothing."""
    me = f"c:{name}"
    for edge in picture.edges:
        if edge.target == me and edge.label.split(" ")[0] == destination:
            return picture.nodes[edge.source].label + (
                " (ro)" if edge.label.endswith("(ro)") else ""
            )
    return None


def svg(picture: Picture) -> str:
    """The picture laid out by Graphviz, as SVG; one-line error without ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError("Graphviz is not installed - fix: apt-get install graphviz")
    result = subprocess.run(
        [dot, "-Tsvg"], input=picture.dot(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.strip()[:200]}")
    return result.stdout


def show(
    engine: docker.DockerClient,
    workdir: Path | None = None,
    stack: str | None = None,
    name: str | None = None,
) -> Picture:
    """Draw what runs in the notebook (the DOT text, and how to get the drawing, without
    Graphviz); return the picture, which a checkpoint can ask."""
    picture = of_engine(engine, workdir, stack, name)
    try:
        show_svg(svg(picture))
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"{exc}; the picture as DOT text:\n{picture.dot()}")
    return picture


__all__ = ["Edge", "Node", "Picture", "add_container", "mounted", "of_engine", "show", "svg"]
