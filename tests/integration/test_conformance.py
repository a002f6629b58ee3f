"""The OCI conformance suite against every stage, on registry 3 and on 2.8.

A second opinion on what the notebooks teach: the stage in front (TLS, a login, a token, a
mirror) changes nothing the spec checks, and where distribution departs from the spec, each
departure has a known reason (reglab.registry.conformance.CAUSES). Each test asserts the
exact counts per workflow, so a new failure, a fixed one or a new skip shows. The tables go
to the end of the run's output (reglab measurements).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from common import MakeRegistry, free_port
from conftest import REPORT
from docker import DockerClient

import reglab
from reglab.base.versions import registry_version as version_of
from reglab.engine import transfer
from reglab.engine.network import remove_project_network
from reglab.registry import conformance, mirror
from reglab.registry.conformance import Report, Workflow

# The registry's verdict, not the engine's: checked once, on the first engine.
pytestmark = [pytest.mark.docker, pytest.mark.one_engine]

#: Passed, failed, skipped per workflow, on the local, tls and auth stages alike.
EXPECTED = {
    "3": {
        Workflow.PULL: (270, 26, 0),
        Workflow.PUSH: (133, 59, 18),
        Workflow.DISCOVERY: (18, 5, 0),
        Workflow.MANAGEMENT: (161, 0, 0),
    },
    "2": {
        Workflow.PULL: (263, 29, 0),
        Workflow.PUSH: (130, 62, 18),
        Workflow.DISCOVERY: (16, 7, 0),
        Workflow.MANAGEMENT: (147, 0, 14),
    },
}
#: The reasons of every failure and skip: both versions', and 2.8's own.
BOTH = {"sha512", "referrers", "non-distributable", "post-only", "cancel", "anonymous-mount"}
CAUSES = {
    "3": BOTH,
    "2": BOTH | {"tag-delete", "out-of-order", "bad-range", "tags-last", "bad-digest"},
}


@pytest.fixture(params=["3", "2"])
def registry_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def reasons(report: Report, workflows: tuple[Workflow, ...] = conformance.WORKFLOWS) -> set[str]:
    return {k for w in workflows for s in ("failed", "skipped") for k in report.causes(w, s)}


def show(report: Report, what: str) -> None:
    REPORT.append(f"{what}:\n{report.table()}")


@pytest.mark.parametrize("stage", ["local", "tls", "auth"])
def test_every_stage_gets_the_same_verdict_with_every_departure_explained(
    make_registry: MakeRegistry, registry_version: str, stage: str, tmp_path: Path
) -> None:
    tester = reglab.Credentials("tester", "tester-pw")
    registry = make_registry(stage, users=[tester] if stage == "auth" else [])
    auth = (tester.user, tester.password) if stage == "auth" else None
    report = conformance.run(registry, auth=auth, results=tmp_path / "results")
    show(report, f"registry {registry_version}, stage {stage}")
    assert report.unexplained() == []
    assert reasons(report) == CAUSES[registry_version]
    assert {w: report.counts(w) for w in conformance.WORKFLOWS} == EXPECTED[registry_version]


def test_on_the_token_stage_bob_pulls_and_pushes_team_but_may_not_delete(
    make_registry: MakeRegistry, registry_version: str, tmp_path: Path
) -> None:
    bob = reglab.Credentials("bob", "bob-pw")
    registry = make_registry("token", users=[bob])
    report = conformance.run(
        registry, auth=("bob", "bob-pw"), namespace="team", results=tmp_path / "results"
    )
    show(report, f"registry {registry_version}, stage token, as bob (pull, push on team/*)")
    # The suite asks for a mount's two scopes (push here, pull where it mounts from) in one
    # space-separated scope parameter: the token server grants both, so mounts pass.
    assert report.unexplained() == []
    pull, push, discovery = (report.counts(w) for w in conformance.WORKFLOWS[:3])
    assert pull[1:] == EXPECTED[registry_version][Workflow.PULL][1:]
    # No delete succeeds, so the tags pile up: on 2.8 every listing with ?last= then fails.
    assert discovery == {"3": (18, 5, 0), "2": (2, 21, 0)}[registry_version]
    assert push[1:] == (EXPECTED[registry_version][Workflow.PUSH][1], 18)
    found = reasons(report, conformance.WORKFLOWS[:3])
    assert found == CAUSES[registry_version] - {"tag-delete"}
    passed, failed, skipped = report.counts(Workflow.MANAGEMENT)
    assert passed == 0 and failed > 100 and skipped == 0
    assert set(report.causes(Workflow.MANAGEMENT, "failed")) == {"denied"}


def test_a_mirror_serves_pulls_as_the_spec_says(
    engine: DockerClient,
    make_registry: MakeRegistry,
    registry_version: str,
    tmp_path: Path,
    cleanup_images: list[str],
) -> None:
    upstream = make_registry("persistent")
    ref = upstream.ref("hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    transfer.push(engine, ref)
    name = f"reglab-test-mirror-{uuid.uuid4().hex[:6]}"
    version = version_of(registry_version)
    try:
        proxy = mirror.start_mirror(
            engine, upstream.config.name, free_port(), tmp_path, name, version=version
        )
        content = conformance.content_of(proxy, "hello-world", None)
        report = conformance.run(
            proxy, workflows=(Workflow.PULL,), content=content, results=tmp_path / "results"
        )
        show(report, f"registry {registry_version}, a mirror (pull only)")
        # its tag and digest, 2 blobs: GET and HEAD of each. hello-world's manifest is
        # Docker's type, which 2.8 does not serve by tag to a client that asks for OCI only.
        expected = {"3": ((8, 0, 0), set()), "2": ((6, 2, 0), {"schema1"})}[registry_version]
        assert (report.counts(Workflow.PULL), reasons(report)) == expected
        assert all("/read-only/" in o.name for o in report.outcomes)  # hello-world's, no other
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()
        container = upstream.container
        if container is not None:
            container.remove(force=True, v=True)
        remove_project_network(engine)
