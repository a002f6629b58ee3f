"""Checkpoints of notebooks 00 to 04: one registry, started, pushed to, then made safe (TLS,
basic auth). Some (``same``, ``push_refused``, ``file_exists``) serve every later notebook too."""

from __future__ import annotations

from pathlib import Path

import docker

from reglab.auth.htpasswd import Htpasswd, cost_of
from reglab.base.errors import ClientError, TLSVerificationFailed
from reglab.engine.oneoff import run_once
from reglab.engine.transfer import exists
from reglab.lab.checks.failed import CheckFailed, ok
from reglab.registry.client import RegistryClient
from reglab.registry.endpoint import Endpoint
from reglab.registry.login import Credentials


def registry_answers(
    registry: Endpoint, expect: int = 200, auth: tuple[str, str] | None = None
) -> None:
    """``GET /v2/`` answers with ``expect`` (200 open, 401 when auth is on and none is sent)."""
    try:
        with registry.client(auth=auth) as api:
            status = api.status()
    except ClientError as exc:
        raise CheckFailed(
            f"the registry at {registry.url} does not answer: {exc.problem}",
            "start it (run the 'start the registry' cell again)",
        ) from None
    if status != expect:
        raise CheckFailed(
            f"GET {registry.url}/v2/ answered {status}, expected {expect}",
            "check the stage you started and the credentials",
        )
    ok(f"GET {registry.url}/v2/ -> {status}")


def registry_serves(
    registry: Endpoint, repository: str, digest: str, auth: tuple[str, str] | None = None
) -> None:
    """The registry lists ``repository`` and serves ``digest`` for its ``latest`` tag."""
    with registry.client(auth=auth) as api:
        try:
            catalog = api.catalog()
            served = api.manifest_digest(repository) if repository in catalog else None
        except ClientError as exc:
            raise CheckFailed(
                f"cannot read the registry: {exc.problem}", exc.fix or "check the registry"
            ) from None
    if served is None:
        raise CheckFailed(
            f"{repository} is not in the registry's catalog {catalog}",
            "push the image first (the push cell above)",
        )
    if served != digest:
        raise CheckFailed(
            f"the registry serves {served} for {repository}, not {digest}", "push the image again"
        )
    ok(f"the registry serves {repository}:latest with digest {digest}")


def image_present(engine: docker.DockerClient, ref: str, digest: str | None = None) -> None:
    """The local engine has ``ref`` (pulled with ``digest`` when given)."""
    if not exists(engine, ref):
        raise CheckFailed(f"the engine has no image {ref}", "run the pull cell above")
    if digest is not None:
        repo_digests = engine.images.get(ref).attrs.get("RepoDigests") or []
        if not any(d.endswith(digest) for d in repo_digests):
            raise CheckFailed(
                f"{ref} does not have digest {digest} (it has {repo_digests})",
                "pull it again from the registry",
            )
        ok(f"{ref} is back in the engine, digest {digest}")
    else:
        ok(f"the engine has {ref}")


def image_absent(engine: docker.DockerClient, *refs: str) -> None:
    """None of ``refs`` is in the local engine (so a later pull really comes from the registry)."""
    present = [ref for ref in refs if exists(engine, ref)]
    if present:
        raise CheckFailed(
            f"still in the engine: {', '.join(present)}", "remove them (the docker rmi cell above)"
        )
    ok(f"removed from the engine: {', '.join(refs)}")


def tls_verified(registry: Endpoint) -> None:
    """A verifying client trusts the registry with the workshop CA, and refuses it without."""
    if not registry.url.startswith("https://"):
        raise CheckFailed(f"{registry.url} is not HTTPS", "start the tls stage")
    try:
        with RegistryClient(registry.url) as untrusting:
            untrusting.status()
    except TLSVerificationFailed as exc:
        ok(f"without the CA, verification fails: {exc.problem.split(': ', 1)[-1]}")
    else:
        raise CheckFailed(
            "a client that does not have the workshop CA trusted the registry",
            "the registry must use the certificate issued by the workshop CA",
        )
    try:
        with registry.client() as trusting:
            status = trusting.status()
    except TLSVerificationFailed as exc:
        raise CheckFailed(
            f"with the workshop CA, verification still fails: {exc.problem}",
            "issue the certificate again from the workshop CA",
        ) from None
    ok(f"with {Path(str(registry.ca_file)).name}, verification succeeds (GET /v2/ -> {status})")


def refused(registry: Endpoint, auth: tuple[str, str] | None = None) -> None:
    """The registry answers 401 to these credentials (or to none)."""
    with registry.client(auth=auth) as api:
        status = api.status()
    who = "no credentials" if auth is None else f"user {auth[0]} with that password"
    if status != 401:
        raise CheckFailed(
            f"the registry answered {status} to {who}, expected 401",
            "start the auth stage so the registry asks for credentials",
        )
    ok(f"{who}: 401 Unauthorized")


def file_exists(path: str | Path, what: str) -> None:
    """A file the step should have written is there and not empty."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckFailed(f"{what} {path.name} is missing or empty", "run the step above again")
    ok(f"{what} {path.name} written ({path.stat().st_size} bytes)")


def container_says(engine: docker.DockerClient, image: str, text: str) -> None:
    """A container from ``image`` runs and prints ``text``."""
    output = run_once(
        engine,
        image,
        [],
        what=f"{image} did not run",
        fix="run 'reglab images' again",
        error=CheckFailed,
    )
    if text not in output:
        raise CheckFailed(f"{image} ran but did not print {text!r}", "run 'reglab images' again")
    ok(f"{image} ran and printed {text!r}")


def push_refused(error: str | None, expected: str) -> None:
    """A push that should have been refused was, for the expected reason."""
    if error is None:
        raise CheckFailed(
            "the push was accepted, but it should have been refused",
            "check the registry's stage and Docker's insecure-registries setting",
        )
    if expected not in error:
        raise CheckFailed(
            f"the push was refused for another reason: {error}",
            "read the message; the troubleshooting table below may help",
        )
    ok(f"refused as expected: {expected}")


def same(actual: object, expected: object, what: str, fix: str) -> None:
    """``actual`` equals ``expected``; says so with ``what``."""
    if actual != expected:
        raise CheckFailed(f"{what}: got {_shown(actual)}, expected {_shown(expected)}", fix)
    ok(f"{what}: {_shown(actual)}")


def _shown(value: object) -> str:
    """Numbers with thousands separators (byte counts read better, and compare as N)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def htpasswd_matches(path: str | Path, credentials: Credentials) -> None:
    """The htpasswd file has a bcrypt entry for the user that matches the password."""
    users = Htpasswd.load(path)  # refuses non-bcrypt entries
    if not users.verify(credentials.user, credentials.password):
        raise CheckFailed(
            f"{Path(path).name} has no matching entry for {credentials.user}", "add the user again"
        )
    ok(
        f"{credentials.user}'s entry is bcrypt (cost {cost_of(users.users[credentials.user])}) "
        "and matches the password"
    )
