"""A single registry and the swarm's front are both Endpoints: what checks and widgets take."""

from __future__ import annotations

from pathlib import Path

import pytest

from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.endpoint import Endpoint
from reglab.swarm import SwarmRegistry


def _endpoints(tmp_path: Path) -> list[Endpoint]:
    """Typed as Endpoint, so mypy proves both classes satisfy it; no engine is asked."""
    single = Registry(RegistryConfig(stage=Stage.TLS, port=5500, workdir=tmp_path / "one"))
    front = SwarmRegistry(engine=None, name="stack", port=5600, workdir=tmp_path / "two")
    return [single, front]


@pytest.mark.parametrize("which", [0, 1])
def test_both_answer_the_same_questions(tmp_path: Path, which: int) -> None:
    endpoint = _endpoints(tmp_path)[which]
    assert isinstance(endpoint, Endpoint)
    port = 5500 if which == 0 else 5600
    assert endpoint.address == f"127.0.0.1:{port}"
    assert endpoint.url == f"https://127.0.0.1:{port}"
    assert endpoint.ref("team/app", "1") == f"127.0.0.1:{port}/team/app:1"
    assert endpoint.ca_file is not None and endpoint.ca_file.name == "ca.crt"
    with endpoint.client() as api:
        assert api.url == endpoint.url
