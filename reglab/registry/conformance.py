"""The OCI distribution-spec conformance suite as a second opinion on a registry.

The workshop's checks ask "does this registry do what the notebook says?"; the suite of the
Open Container Initiative asks "does it speak the distribution spec?", about 850 requests
that push, pull, list and delete content of many kinds. Its answer, per workflow (pull, push,
content discovery, content management), shows where a registry departs from the spec and
whether a stage (TLS, a login, a token, a mirror) changes anything: it should not.

The suite (``github.com/opencontainers/distribution-spec/conformance``) has no module tag.
Release v1.1.1 is commit a139cc4, but the module proxy serves only a later commit of it:
:data:`SUITE` pins that one, ``v0.0.0-20260831232431-97274622c111``, the rewrite that replaced
the ginkgo test binary with a command (``go build``; ``go test`` is deprecated there). It is
built once into reglab's Go cache (:mod:`reglab.images.gobuild`, a few seconds) and a run
takes about 5 seconds. It writes junit.xml, report.html (every request and answer) and
results.yaml; :func:`run` reads junit.xml.

Every failure and skip seen on distribution 3.1 and 2.8 has its reason in :data:`CAUSES`, so
a table shows why, and a failure with no known reason stands out.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reglab.base.errors import ClientError, ConfigError, RegistryError, one_line
from reglab.images.gobuild import GoProgram, build
from reglab.registry.endpoint import Endpoint

SUITE_COMMIT = "97274622c111"
SUITE = GoProgram(
    "oci-conformance",
    "github.com/opencontainers/distribution-spec/conformance",
    f"v0.0.0-20260831232431-{SUITE_COMMIT}",
    ldflags=f"-s -w -X main.Version={SUITE_COMMIT}",  # what its report names as the commit
)


class Workflow(StrEnum):
    """The spec's four workflows; the value is the name ``--workflows`` takes."""

    PULL = "pull"
    PUSH = "push"
    DISCOVERY = "discovery"
    MANAGEMENT = "management"


WORKFLOWS = tuple(Workflow)

#: The suite's switches (``OCI_API_*``) that each workflow turns on; the others stay off.
SWITCHES = {
    Workflow.PULL: ("PULL",),
    Workflow.PUSH: ("PUSH",),
    Workflow.DISCOVERY: ("TAGS_LIST", "REFERRER"),
    Workflow.MANAGEMENT: ("TAGS_DELETE", "MANIFESTS_DELETE", "BLOBS_DELETE"),
}


def workflow_of(name: str) -> Workflow:
    """The workflow a test of the suite belongs to, from its name (``.../image/push/
    manifest-by-tag``): the last part says what it does, the one before it in which step."""
    parts = name.split("/")
    leaf, step = parts[-1], parts[-2] if len(parts) > 1 else ""
    if leaf.endswith("-delete"):
        return Workflow.MANAGEMENT
    if leaf in ("tag-list", "tag list", "referrers"):
        return Workflow.DISCOVERY
    if leaf.startswith(("blob-post", "blob-patch", "blob-mount")) or leaf == "manifest-put":
        return Workflow.PUSH
    return Workflow.PUSH if step == "push" else Workflow.PULL


@dataclass(frozen=True)
class Cause:
    """Why some tests fail (or skip, per ``status``): ``pattern`` (a regular expression)
    found in the test's name or message."""

    key: str
    status: str
    why: str
    pattern: str


#: The reasons seen on distribution 3.1 and 2.8, first match wins. Those that do not start
#: with "2.8" hold for both versions (and "denied" for a token stage's limited user); the 2.8
#: ones are fixed in 3.
CAUSES = (
    Cause("post-only", "skipped", "optional: a blob in the POST itself; distribution opens an "
          "upload instead and the suite goes on with POST then PUT", "content in the POST"),
    Cause("cancel", "skipped", "not tested at spec 1.1: cancelling an upload", "post cancel"),
    Cause("anonymous-mount", "skipped", "optional: a mount without from=; distribution opens an "
          "upload instead (202)", "mount-anonymous"),
    Cause("tag-delete", "skipped", "2.8 deletes by digest only: DELETE of a tag answers 400; 3 "
          "deletes tags", "tag-delete"),
    Cause("denied", "failed", "the access list grants this account no delete (in reglab's "
          "example, bob may pull and push team/*)", r"delete failed: .*received 401"),
    Cause("sha512", "failed", "distribution addresses content by sha256 only: a sha512 push is "
          "stored and answered under its sha256 digest, or not at all", "sha512"),
    Cause("referrers", "failed", "distribution implements neither the referrers API (404) nor "
          "the OCI-Subject header after a manifest with a subject", "/referrers|OCI-Subject"),
    Cause("non-distributable", "failed", "distribution refuses a manifest whose layers it does "
          "not hold (non-distributable layers, deprecated in image-spec 1.1); its pulls then "
          "find nothing", "non-distributable"),
    Cause("out-of-order", "failed", "2.8 takes a PATCH whose Content-Range does not continue "
          "the upload (202); 3 answers 416", "out of order chunk"),
    Cause("bad-range", "failed", "2.8 answers an unsatisfiable Range with 416 and a "
          "Content-Length but no body; 3 answers 416 cleanly", "unexpected EOF"),
    Cause("tags-last", "failed", "2.8 ignores tags/list?last= without n= and answers every "
          "tag; 3 answers the tags after it", "returned when last set to"),
    Cause("schema1", "failed", "2.8 turns a Docker manifest asked for by tag into schema 1 "
          "for a client that accepts only OCI types, and refuses (400, schema 1 is off); by "
          "digest it serves it; 3 serves it as it is", r"read-only/.*-by-tag.*received 400"),
    Cause("bad-digest", "failed", "2.8 takes sha256:baddigeststring for a tag and its storage "
          "fails (500); 3 answers 400", "invalid-digest-format"),
)  # fmt: skip


def cause_of(name: str, status: str, message: str) -> Cause | None:
    text = f"{name} {message}"
    return next((c for c in CAUSES if c.status == status and re.search(c.pattern, text)), None)


@dataclass(frozen=True)
class Outcome:
    """One test of the suite: its name, ``passed``/``failed``/``skipped`` and why."""

    name: str
    status: str
    message: str = ""

    @property
    def workflow(self) -> Workflow:
        return workflow_of(self.name)

    @property
    def cause(self) -> Cause | None:
        return cause_of(self.name, self.status, self.message)


@dataclass
class Report:
    """What the suite found on one registry, and how long it took."""

    target: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    folder: Path | None = None  # junit.xml, report.html, results.yaml

    def of(self, workflow: Workflow, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.workflow == workflow and o.status == status]

    def counts(self, workflow: Workflow) -> tuple[int, int, int]:
        """Passed, failed, skipped."""
        return tuple(len(self.of(workflow, s)) for s in ("passed", "failed", "skipped"))  # type: ignore[return-value]

    def causes(self, workflow: Workflow, status: str) -> dict[str, int]:
        """How many tests of ``status`` each cause explains (``?``: no known cause)."""
        found: dict[str, int] = {}
        for outcome in self.of(workflow, status):
            key = outcome.cause.key if outcome.cause else "?"
            found[key] = found.get(key, 0) + 1
        return found

    def unexplained(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "passed" and o.cause is None]

    def table(self) -> str:
        """Plain text: a row per workflow, then each failure's and skip's reason."""
        lines = [f"OCI conformance ({SUITE.version}) against {self.target}, {self.seconds:.1f} s"]
        lines.append(f"  {'workflow':<11} {'passed':>6} {'failed':>6} {'skipped':>7}  why")
        for workflow in WORKFLOWS:
            passed, failed, skipped = self.counts(workflow)
            if passed + failed + skipped == 0:
                continue
            why = [
                f"{k} {n}"
                for s in ("failed", "skipped")
                for k, n in self.causes(workflow, s).items()
            ]
            lines.append(f"  {workflow:<11} {passed:>6} {failed:>6} {skipped:>7}  {', '.join(why)}")
        used = {o.cause.key: o.cause for o in self.outcomes if o.cause and o.status != "passed"}
        lines += [f"  {key}: {cause.why}" for key, cause in used.items()]
        lines += [f"  ? {o.status} {o.name}: {o.message}" for o in self.unexplained()]
        return "\n".join(lines)


def parse_junit(path: Path) -> list[Outcome]:
    """The suite's junit.xml as outcomes. Its messages are in ``system-out`` (the first line
    is kept); ``status`` says passed, skipped, failure or error."""
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        status = {"failure": "failed", "error": "failed"}.get(case.get("status", ""), "")
        status = status or case.get("status", "failed")
        text = (case.findtext("system-out") or "").strip()
        message = one_line(text.splitlines()[0] if text else "", 200)
        outcomes.append(Outcome(case.get("name", "?"), status, message))
    return outcomes


@dataclass(frozen=True)
class Content:
    """What a pull-only run reads (a mirror refuses pushes): a repository's tags, manifests
    and blobs, as the suite's ``OCI_RO_DATA_*`` want them."""

    repository: str
    tags: tuple[str, ...]
    manifests: tuple[str, ...]
    blobs: tuple[str, ...]


def content_of(endpoint: Endpoint, repository: str, auth: tuple[str, str] | None) -> Content:
    """The tags of ``repository``, their manifests (an index's too) and their blobs."""
    manifests: list[str] = []
    blobs: list[str] = []
    with endpoint.client(auth=auth) as api:
        tags = api.tags(repository)
        for tag in tags:
            digest = api.manifest_digest(repository, tag)
            manifest = api.manifest(repository, digest)
            children = [str(m["digest"]) for m in manifest.get("manifests", [])]
            manifests += [digest, *children]
            for entry in [manifest.get("config"), *manifest.get("layers", [])]:
                blobs += [str(entry["digest"])] if entry else []
    if not tags:
        raise RegistryError(
            f"{repository} has no tags at {endpoint.address}: a pull-only run reads them",
            f"push an image to {endpoint.ref(repository)} first, or name another repository",
        )
    return Content(repository, tuple(tags), *(tuple(dict.fromkeys(x)) for x in (manifests, blobs)))


def run(
    endpoint: Endpoint,
    *,
    namespace: str = "conformance",
    auth: tuple[str, str] | None = None,
    workflows: tuple[Workflow, ...] = WORKFLOWS,
    content: Content | None = None,
    results: Path | None = None,
    timeout: float = 600.0,
) -> Report:
    """Run the suite against ``endpoint``, pushing to ``NAMESPACE/repo1`` and ``/repo2``
    (blob mounts go from one to the other), or reading ``content`` when push is not among
    ``workflows``. TLS is verified with the endpoint's CA (``SSL_CERT_FILE``). ``results``:
    where its reports go (default: a new temporary folder)."""
    if Workflow.PUSH not in workflows and content is None:
        raise ConfigError(
            "a run without push reads content that is already there",
            "name a repository to read (content_of), or add push to the workflows",
        )
    suite = build(SUITE)  # a missing Go is one line naming the suite and the fix
    try:
        with endpoint.client(auth=auth) as api:
            api.ping()
    except ClientError as exc:
        raise RegistryError(f"the suite cannot run: {exc.problem}", exc.fix) from exc
    folder = results or Path(tempfile.mkdtemp(prefix="reglab-conformance-"))
    folder.mkdir(parents=True, exist_ok=True)  # the suite runs in it
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_")}  # ours alone
    env |= {
        "OCI_REGISTRY": endpoint.address,
        "OCI_TLS": "enabled" if endpoint.url.startswith("https:") else "disabled",
        "OCI_REPO1": f"{namespace}/repo1",
        "OCI_REPO2": f"{namespace}/repo2",
        "OCI_RESULTS_DIR": str(folder),
        "OCI_LOG": "error",
    }
    env |= {f"OCI_API_{s}": "false" for w in WORKFLOWS for s in SWITCHES[w]}
    env |= {f"OCI_API_{s}": "true" for w in workflows for s in SWITCHES[w]}
    if auth:
        env |= {"OCI_USERNAME": auth[0], "OCI_PASSWORD": auth[1]}
    if endpoint.ca_file and endpoint.url.startswith("https:"):
        env["SSL_CERT_FILE"] = str(endpoint.ca_file)
    if content is not None and Workflow.PUSH not in workflows:
        env |= {"OCI_REPO1": content.repository, "OCI_RO_DATA_TAGS": " ".join(content.tags),
                "OCI_RO_DATA_MANIFESTS": " ".join(content.manifests),
                "OCI_RO_DATA_BLOBS": " ".join(content.blobs),
                # Only the tests of that content: the suite's other tests, skipped without
                # push, make it crash before it writes junit.xml (at this commit).
                "OCI_FILTER_TEST": "OCI Conformance Test/read-only"}  # fmt: skip
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(suite)], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"the conformance suite did not finish in {timeout:.0f} s against {endpoint.url}",
            "check the registry answers (reglab status) and its logs",
        ) from None
    junit = folder / "junit.xml"
    if not junit.is_file():
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RegistryError(
            f"the conformance suite wrote no report: {one_line(last)}",
            f"run it by hand to see why: OCI_REGISTRY={endpoint.address} {suite}",
        )
    # The workflows not asked for are "disabled", which junit.xml calls skipped: left out.
    outcomes = [o for o in parse_junit(junit) if o.workflow in workflows]
    return Report(endpoint.url, outcomes, time.monotonic() - started, folder)


def parse_workflows(text: str) -> tuple[Workflow, ...]:
    """``pull,push`` as workflows; one line naming the choices otherwise."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in {w.value for w in WORKFLOWS}]
    if unknown or not names:
        raise ConfigError(
            f"unknown workflow {', '.join(unknown) or '(none)'}",
            f"give some of {','.join(WORKFLOWS)} (comma-separated)",
        )
    return tuple(w for w in WORKFLOWS if w.value in names)


__all__ = [
    "CAUSES", "SUITE", "WORKFLOWS", "Cause", "Content", "Outcome", "Report", "Workflow",
    "cause_of", "content_of", "parse_junit", "parse_workflows", "run", "workflow_of",
]  # fmt: skip
