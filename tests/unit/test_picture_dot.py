"""The picture of what runs, from ``docker inspect``'s answer (no engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reglab.lab.picture import Picture, add_container, svg

WORKDIR = Path("/srv/w/workdir")


def inspected(name: str = "reglab-registry") -> dict[str, Any]:
    """What ``docker inspect`` says of a TLS-stage registry, trimmed to what is drawn."""
    return {
        "Name": f"/{name}",
        "Config": {"Image": "registry:3", "Labels": {"org.reglab.owned": "true"}},
        "State": {"Status": "running"},
        "NetworkSettings": {
            "Ports": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5000"}], "5001/tcp": None},
            "Networks": {"bridge": {}},
        },
        "Mounts": [
            {"Type": "bind", "Source": f"{WORKDIR}/registry-data",
             "Destination": "/var/lib/registry", "RW": True},
            {"Type": "bind", "Source": f"{WORKDIR}/certs/domain.key",
             "Destination": "/certs/domain.key", "RW": False},
            {"Type": "volume", "Name": "0123abcd" * 8, "Destination": "/data", "RW": True},
        ],
    }  # fmt: skip


def test_a_container_is_drawn_with_its_ports_mounts_and_networks() -> None:
    picture = Picture()
    me = add_container(picture, inspected(), WORKDIR)
    assert picture.nodes[me].label == "reglab-registry\nregistry:3\nrunning"
    edges = {(picture.nodes[e.source].label, e.label) for e in picture.edges if e.target == me}
    assert edges == {
        ("127.0.0.1:5000", "5000/tcp"),  # published; 5001 (the debug server) is not
        ("workdir/registry-data", "/var/lib/registry"),
        ("workdir/certs/domain.key", "/certs/domain.key (ro)"),
        ("volume " + ("0123abcd" * 3), "/data"),
    }
    assert [n.label for n in picture.of_kind("network")] == ["network bridge"]


def test_the_dot_text_quotes_what_it_shows_and_graphviz_draws_it() -> None:
    picture = Picture()
    add_container(picture, inspected('odd"name'), None)
    text = picture.dot()
    assert '"c:odd\\"name"' in text and text.startswith("digraph reglab {")
    drawn = svg(picture)
    assert drawn.lstrip().startswith("<?xml") and "<svg" in drawn and "odd&quot;name" in drawn
