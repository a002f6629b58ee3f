"""The conformance suite's report, read without a registry: which workflow each test belongs
to, why it failed, and the one-line errors a user can cause."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from common import free_port

from reglab.base.errors import ConfigError, ImageError, RegistryError
from reglab.images import gobuild
from reglab.registry import conformance
from reglab.registry.client import RegistryClient
from reglab.registry.conformance import Outcome, Report, Workflow

ROOT = "OCI Conformance Test"

JUNIT = f"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6">
  <testsuite name="{ROOT}" tests="6" failures="2" errors="0">
    <testcase name="{ROOT}/image/pull/manifest-by-tag" status="passed"></testcase>
    <testcase name="{ROOT}/image/push/manifest-by-tag" status="passed"></testcase>
    <testcase name="{ROOT}/sha512 blobs/post+put/blob-post-put" status="failure">
      <system-out>Docker-Content-Digest header value expected "sha512:1", received "sha256:2"
second line</system-out></testcase>
    <testcase name="{ROOT}/sha256 blobs/post only/blob-post-only" status="skipped">
      <system-out>registry does not support content in the POST, fallback to PUT</system-out>
    </testcase>
    <testcase name="{ROOT}/image/delete/tag-delete" status="error">
      <system-out>something new</system-out></testcase>
    <testcase name="{ROOT}/image/tag-list" status="passed"></testcase>
  </testsuite>
</testsuites>
"""


@pytest.mark.parametrize(
    ("name", "workflow"),
    [
        ("ping", Workflow.PULL),
        ("image/pull/manifest-by-digest", Workflow.PULL),
        ("image/head/blob-head", Workflow.PULL),
        ("sha256 blobs/range requests/range 500-0", Workflow.PULL),
        ("missing-manifest/by-tag", Workflow.PULL),
        ("image/push/manifest-by-tag", Workflow.PUSH),
        ("sha256 blobs/mount/blob-mount", Workflow.PUSH),
        ("sha256 blobs/stream/blob-patch-stream", Workflow.PUSH),
        ("invalid-digest-format/manifest-put", Workflow.PUSH),
        ("empty/tag list", Workflow.DISCOVERY),
        ("image/tag-list", Workflow.DISCOVERY),
        ("empty/referrers", Workflow.DISCOVERY),
        ("image/delete/tag-delete", Workflow.MANAGEMENT),
        ("sha256 blobs/post+put/blob-delete", Workflow.MANAGEMENT),
    ],
)
def test_each_test_of_the_suite_belongs_to_one_workflow(name: str, workflow: Workflow) -> None:
    assert conformance.workflow_of(f"{ROOT}/{name}") == workflow


def key(name: str, status: str, message: str) -> str | None:
    cause = conformance.cause_of(f"{ROOT}/{name}", status, message)
    return cause.key if cause else None


def test_a_cause_applies_to_its_status_only_and_the_first_match_wins() -> None:
    mount = "sha512 blobs/mount anonymous/blob-mount-anonymous"
    assert key(mount, "skipped", "fell back") == "anonymous-mount"
    assert key(mount, "failed", "digest mismatch") == "sha512"
    denied = "blob delete failed: unexpected status code, expected one of [202], received 401"
    assert key("sha512 blobs/x/blob-delete", "failed", denied) == "denied"
    assert key("image/pull/blob-get", "failed", "something new") is None


def test_the_report_counts_each_workflow_and_names_what_is_unexplained(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    outcomes = conformance.parse_junit(tmp_path / "junit.xml")
    assert [o.status for o in outcomes] == [
        "passed",
        "passed",
        "failed",
        "skipped",
        "failed",
        "passed",
    ]
    assert (
        outcomes[2].message.startswith("Docker-Content-Digest") and "\n" not in outcomes[2].message
    )
    report = Report("http://127.0.0.1:5000", outcomes, 1.5)
    assert report.counts(Workflow.PULL) == (1, 0, 0)
    assert report.counts(Workflow.PUSH) == (1, 1, 1)
    assert report.causes(Workflow.PUSH, "failed") == {"sha512": 1}
    assert report.counts(Workflow.MANAGEMENT) == (0, 1, 0)
    assert report.unexplained() == [
        Outcome(f"{ROOT}/image/delete/tag-delete", "failed", "something new")
    ]
    table = report.table()
    assert "  push             1      1       1  sha512 1, post-only 1" in table
    assert "sha512: distribution addresses content by sha256 only" in table
    assert f"? failed {ROOT}/image/delete/tag-delete: something new" in table


def test_workflows_are_named_as_the_spec_names_them() -> None:
    assert conformance.parse_workflows("push, pull") == (Workflow.PULL, Workflow.PUSH)
    with pytest.raises(ConfigError, match="unknown workflow delete - fix: give some of pull,push"):
        conformance.parse_workflows("pull,delete")


class Nowhere:
    """An endpoint where nothing listens."""

    def __init__(self) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.address}"
        self.ca_file = None

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"{self.address}/{repository}:{tag}"

    def client(self, auth: tuple[str, str] | None = None) -> RegistryClient:
        return RegistryClient(self.url, auth=auth, timeout=2)


def test_user_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="a run without push reads content"):
        conformance.run(Nowhere(), workflows=(Workflow.PULL,))
    with pytest.raises(RegistryError, match="the suite cannot run: .* - fix: ") as err:
        conformance.run(Nowhere())
    assert "\n" not in str(err.value)

    monkeypatch.setenv("XDG_CACHE_HOME", str(Path("/nonexistent")))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(gobuild, "GO_CANDIDATES", ())
    with pytest.raises(ImageError, match="Go is not installed, so reglab cannot build oci-conf"):
        conformance.run(Nowhere())


def test_the_command_takes_its_options() -> None:
    from reglab.cli import conformance as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--name", "r", "--workflows", "pull", "--user", "bob"])
    assert (args.name, args.workflows, args.user, args.namespace) == (
        "r",
        "pull",
        "bob",
        "conformance",
    )
