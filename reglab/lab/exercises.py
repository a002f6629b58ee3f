"""Exercises that make the learner think: predict, then run; diagnose, then fix.

A check looks at the real registry, engine or files and prints ``✔ Correct: ...`` or
``✘ Not yet: ...`` with a hint, and returns True or False. It never raises, so a learner can
run it as often as they like. A prediction is checked against what the engine really does,
which the check runs and shows. The notebooks keep each solution in a collapsed cell; the
learner's copy has no outputs, so no answer shows before the learner asks for it.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterable

import requests

from reglab.auth.certs import Certificate
from reglab.auth.htpasswd import Htpasswd, password_variable
from reglab.base.errors import ReglabError, docker_errors
from reglab.base.labels import owner_labels
from reglab.base.settings import REGISTRY_IMAGE
from reglab.engine import transfer
from reglab.engine.login import Credentials
from reglab.lab import access
from reglab.lab.workshop import Workshop
from reglab.registry import gc
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.events import Listener
from reglab.swarm import SwarmRegistry, split_upload


def _verdict(ok: bool, good: str, hint: str) -> bool:
    print(f"✔ Correct: {good}" if ok else f"✘ Not yet: {hint}")
    return ok


# --- 01 -------------------------------------------------------------------------------------


def why_refused(answer: str) -> bool:
    """01, diagnose: why Docker refuses a plain-HTTP registry at the gateway address."""
    choice = str(answer).strip().lower().strip("()")
    hints = {
        "a": "the registry does listen there: its port is published on the gateway address "
        "too (look for -p GATEWAY:PORT:5000 in the docker run line)",
        "c": "the name is right: GATEWAY:PORT/hello-world:latest names this registry, as "
        "127.0.0.1:PORT/... did",
    }
    if choice not in ("a", "b", "c"):
        return _verdict(False, "", 'answer with one letter, for example answer = "a"')
    return _verdict(
        choice == "b",
        "outside 127.0.0.0/8 Docker speaks HTTPS unless the registry is listed in "
        '"insecure-registries" (daemon.json, then a Docker restart). The real fix is TLS: '
        "notebook 03.",
        hints.get(choice, ""),
    )


def pushed(registry: Registry, repository: str, tag: str, like: str = "hello-world") -> bool:
    """01, typed in a terminal: ``repository:tag`` is in the registry, the same image as
    ``like`` (the check asks the registry, so a push from any terminal counts)."""
    try:
        with registry.client() as api:
            want = api.manifest_digest(like, "latest")
            got = api.manifest_digest(repository, tag)
    except ReglabError as exc:
        return _verdict(
            False,
            "",
            f"the registry does not serve {repository}:{tag} yet ({exc.problem}); in a terminal: "
            f"docker tag {like} {registry.ref(repository, tag)} && docker push "
            f"{registry.ref(repository, tag)}",
        )
    return _verdict(
        got == want,
        f"the registry serves {repository}:{tag} with {like}'s digest {got}",
        f"{repository}:{tag} has digest {got}, {like} has {want}: push {like} itself",
    )


# --- 02 -------------------------------------------------------------------------------------


def leftover_volumes(ws: Workshop, answer: int | None) -> bool:
    """02, predict then run: how many volumes ``docker rm -f`` (without ``-v``) leaves of a
    local-stage registry. The check runs it, shows what was left, and removes it."""
    if not isinstance(answer, int) or isinstance(answer, bool) or answer < 0:
        return _verdict(False, "", "answer with a number, for example answer = 0")
    name = f"{ws.name}-predict"
    try:
        left = _volumes_left_by_rm(ws, name)
    except ReglabError as exc:
        return _verdict(False, "", f"the experiment could not run: {exc}")
    return _verdict(
        answer == len(left),
        f"{len(left)}: registry:2 declares VOLUME /var/lib/registry, so without a bind mount "
        "the engine makes an anonymous volume, and docker rm keeps it unless you add -v",
        f"you said {answer}, the engine left {len(left)}. Look at the image: docker image "
        "inspect --format '{{.Config.Volumes}}' registry:2",
    )


def _volumes_left_by_rm(ws: Workshop, name: str) -> list[str]:
    """Run a local-stage registry, remove it without -v, return the volumes left (then remove
    them: the experiment leaves nothing behind)."""
    engine = ws.engine
    with docker_errors("the local-stage registry did not start"):
        for old in engine.containers.list(all=True, filters={"name": f"^{name}$"}):
            old.remove(force=True, v=True)
        ws.cli(f"docker run -d --name {name} {REGISTRY_IMAGE}")
        container = engine.containers.run(
            REGISTRY_IMAGE, detach=True, name=name, labels=owner_labels()
        )
        names_of_mounts = "'{{range .Mounts}}{{.Name}}{{end}}'"
        ws.cli(f"VOLUME=$(docker inspect --format {names_of_mounts} {name})")
        volumes = [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"]
    ws.cli(f"docker rm -f {name}")
    ws.cli('docker volume ls --quiet --filter "name=$VOLUME"')
    with docker_errors("the registry could not be removed"):
        container.remove(force=True)  # no v=True: what docker rm -f does
        left = [v for v in volumes if engine.volumes.list(filters={"name": v})]
    for volume in left:
        print(volume)
    if left:
        ws.cli('docker volume rm "$VOLUME"')
    for volume in left:
        with docker_errors(f"cannot remove volume {volume}"):
            engine.volumes.get(volume).remove()
    return left


# --- 03 -------------------------------------------------------------------------------------


def break_certificate(ws: Workshop, registry: Registry) -> None:
    """03, the setup of the diagnosis: the registry now serves a certificate from the workshop
    CA that lacks the gateway address (as a certificate made before the network would)."""
    paths = registry.config.paths
    names = RegistryConfig(stage=Stage.TLS).cert_names  # localhost, 127.0.0.1, ::1 only
    ca = paths.ca()
    container = registry.container
    if ca is None or container is None:
        raise ReglabError("the workshop CA or the registry is missing", "run the cells above")
    for command in paths.certificate_commands(names, ws.style):
        ws.cli(command)
    ws.cli(f"docker restart {container.name}")
    ca.issue_cert(*names).write(paths.server_cert, paths.server_key)
    ws.shown_certificate = None  # the next ws.up() shows how it is issued again
    with docker_errors("the registry could not restart"):
        container.restart(timeout=5)
    registry.wait_ready()
    print("the registry now serves a certificate without the gateway address")


def gateway_in_certificate(registry: Registry, gateway: str) -> bool:
    """03, diagnose and fix: a client that verifies with the workshop CA accepts the registry
    at ``https://GATEWAY:PORT`` (the certificate names the gateway as a SAN)."""
    url = f"https://{gateway}:{registry.config.port}/v2/"
    try:
        requests.get(url, verify=str(registry.config.paths.ca_cert), timeout=5)
    except requests.exceptions.SSLError as exc:
        reason = "the certificate does not name this address"
        if "doesn't match" not in str(exc) and "mismatch" not in str(exc):
            reason = str(exc)[:160]
        return _verdict(
            False,
            "",
            f"{url} fails verification: {reason}. Issue the certificate again with the gateway "
            "address (ws.up('tls', bind=('127.0.0.1', gateway)) does it) and run the check again",
        )
    except requests.exceptions.RequestException as exc:
        return _verdict(
            False,
            "",
            f"{url} does not answer ({exc.__class__.__name__}): is the "
            "registry published on the gateway address? bind=('127.0.0.1', gateway)",
        )
    names = _served_names(gateway, registry.config.port)
    return _verdict(
        True,
        f"the registry's certificate names {', '.join(names)}: verified at {url}",
        "",
    )


def _served_names(host: str, port: int) -> list[str]:
    """The subject alternative names of the certificate a TLS server presents."""
    pem = ssl.get_server_certificate((host, port))
    return Certificate.from_pem(pem.encode()).sans


# --- 04 -------------------------------------------------------------------------------------


def shared_credentials(ws: Workshop, registry: Registry, answer: Iterable[str]) -> bool:
    """04, predict then run: which of two names for the same registry a login covers. The
    check pushes to both and compares with the prediction."""
    names = {
        "127.0.0.1": registry.ref("team/app", "v1"),
        "localhost": registry.ref("team/app", "v1").replace("127.0.0.1:", "localhost:", 1),
    }
    predicted = {str(a).split(":")[0].strip() for a in answer}
    if not predicted <= set(names):
        return _verdict(False, "", 'answer with host names from the list, e.g. {"localhost"}')
    works = set()
    for host, ref in names.items():
        ws.tag("hello-world", ref)
        if ws.try_push(ref) is None:
            works.add(host)
    wanted = sorted(works) or ["none"]
    return _verdict(
        predicted == works,
        f"pushed only to {', '.join(wanted)}: credentials are stored under the exact host:port "
        "string, so the same registry under another name needs its own docker login",
        f"you predicted {sorted(predicted) or ['none']}, the pushes worked for {wanted}; read "
        "the refusal above",
    )


def md5_user(ws: Workshop, user: str = "carol") -> Credentials:
    """04, the setup of the diagnosis: ``user`` is in htpasswd with a right password, hashed
    with Apache's MD5 (``htpasswd -m``) instead of bcrypt."""
    credentials = Credentials.generate(user)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ReglabError("openssl is not installed", "install it (apt-get install openssl)")
    hashed = subprocess.run(
        [openssl, "passwd", "-apr1", "-stdin"],
        input=credentials.password, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    path = ws.config("auth").paths.htpasswd
    variable = password_variable(user)
    ws.cli(f"printf '%s\\n' \"${variable}\" | htpasswd -i -m {ws.style.show(path)} {user}")
    lines = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and line.split(":", 1)[0] != user
    ]
    path.write_text("\n".join([*lines, f"{user}:{hashed}"]) + "\n")
    print(f"{user} is in {path.name}, with the right password")
    return credentials


def user_can_log_in(registry: Registry, credentials: Credentials) -> bool:
    """04, diagnose and fix: the user's htpasswd line is bcrypt and the registry answers 200."""
    try:
        Htpasswd.load(registry.config.paths.htpasswd)
    except ReglabError as exc:
        return _verdict(
            False,
            "",
            f"{exc.problem}. Set the password again with bcrypt: ws.add_user({credentials.user})",
        )
    with registry.client(auth=credentials.as_tuple()) as api:
        try:
            status = api.status()
        except ReglabError as exc:
            return _verdict(False, "", f"the registry does not answer: {exc.problem}")
    return _verdict(
        status == 200,
        f"{credentials.user}'s line is bcrypt now, and GET /v2/ answers 200",
        f"GET /v2/ answers {status} for {credentials.user}: is it the same password?",
    )


__all__ = [
    "break_certificate", "gateway_in_certificate", "leftover_volumes", "md5_user", "pushed",
    "shared_credentials", "user_can_log_in", "why_refused",
]  # fmt: skip


# --- 05 -------------------------------------------------------------------------------------


def blobs_collected(registry: Registry, answer: int | None) -> bool:
    """05, predict: how many blobs garbage collection deletes now (a dry run tells)."""
    if not isinstance(answer, int):
        return _verdict(False, "", "answer with a number, for example answer = 1")
    done = gc.collect(registry, dry_run=True)
    print(f"the collector's dry run: {len(done.eligible)} blob(s) eligible for deletion")
    return _verdict(
        answer == len(done.eligible),
        "the deleted version's own layer, its config and its manifest (a manifest is stored "
        "as a blob too); the layer both versions share stays, because version 2 still uses it",
        "count what only version 1 used: look at its manifest (config, layers), remember that "
        "the manifest is a blob itself, and that a layer shared with version 2 is still in use",
    )


# --- 06 -------------------------------------------------------------------------------------


def served_without_upstream(mirror: Registry, upstream: Registry, answer: Iterable[str]) -> bool:
    """06, predict: with the upstream stopped, which repositories does the mirror serve?"""
    chosen = {str(a) for a in answer}
    container = upstream.container
    if container is not None and container.status == "running":
        return _verdict(False, "", "stop the upstream first (the cell above)")
    served = set()
    with mirror.client() as api:
        for repository in ("hello-world", "tools"):
            try:
                api.verify_image(repository)
                served.add(repository)
                print(f"{repository}: served by the mirror")
            except ReglabError as exc:
                print(f"{repository}: {exc.problem[:160]}")
    return _verdict(
        chosen == served,
        "the mirror serves what it has stored (hello-world, fetched through it) and nothing "
        "else: tools was never asked for, so it never came",
        "a mirror stores what passes through it, and only that; which repository did a "
        "client already fetch through the mirror?",
    )


# --- 07 -------------------------------------------------------------------------------------


def pull_events(ws: Workshop, registry: Registry, listener: Listener, answer: int | None) -> bool:
    """07, predict: how many blob events (layer or config downloads) one ``docker pull`` of
    an image the engine already has produces.

    The question is about blobs because that number is fixed: the engine asks for no part it
    has. Its manifest requests are not: a ``HEAD`` to resolve the tag, then a ``GET`` by digest
    only when it no longer keeps the manifest itself, so one or two manifest events.
    """
    if not isinstance(answer, int):
        return _verdict(False, "", "answer with a number, for example answer = 3")
    ref = registry.ref("hello-world")
    with registry.client() as api:
        listener.flush(api, "hello-world")
        before = len(listener.events)
        transfer.remove(ws.engine, ref)
        transfer.pull(ws.engine, ref)
        events = listener.flush(api, "hello-world")[before:]
    blobs = [e for e in events if e.what == "blob"]
    others = [e for e in events if e.what != "blob"]
    print(f"docker pull {ref}: {len(blobs)} blob event(s)")
    if all(e.action == "pull" and e.what == "manifest" for e in others):
        print("every other event was a request for the manifest")
    else:
        print(f"other events: {[(e.action, e.what, e.method) for e in others]}")
    return _verdict(
        answer == len(blobs),
        "none. The engine already has every layer and the config, so it asks only about the "
        "manifest: a HEAD to resolve the tag, and a GET when it no longer keeps the manifest "
        "itself. A registry's pull events count requests, not downloads",
        "the engine downloads only what it does not have; which parts of hello-world does it "
        "have already?",
    )


# --- 08 -------------------------------------------------------------------------------------

#: The four attempts of notebook 08's exercise: (who, action, repository).
ATTEMPTS = {
    "a": ("alice", "pull", "team/app"),
    "b": ("alice", "push", "team/app"),
    "c": (None, "pull", "public/hello"),
    "d": (None, "pull", "team/app"),
}


def token_access(registry: Registry, users: dict[str, Credentials], answer: Iterable[str]) -> bool:
    """08, predict: which of the four attempts does the access list allow? The check makes
    each one through the token flow and shows what the registry said."""
    chosen = {str(a).strip().lower() for a in answer}
    if not chosen <= set(ATTEMPTS):
        return _verdict(False, "", 'answer with letters, for example answer = {"a", "d"}')
    allowed = set()
    for letter, (user, action, repository) in ATTEMPTS.items():
        ok = access.can(registry, users[user] if user else None, action, repository)
        said = "allowed" if ok else "refused"
        print(f"({letter}) {user or 'anonymous'} {action} {repository}: {said}")
        if ok:
            allowed.add(letter)
    return _verdict(
        chosen == allowed,
        "alice's rule for team/* allows pull only; the anonymous rule matches public/* only, "
        "and for team/app no rule matches the empty account: nothing is allowed",
        "for each attempt, find the FIRST rule whose account and name match; only its actions "
        'count (the anonymous account is "")',
    )


# --- 09 -------------------------------------------------------------------------------------

#: Notebook 09's choices: what happens to an upload whose chunk goes to the odd replica.
ODD_SECRET_CHOICES = {
    "a": "it commits as usual: every replica reads the same store",
    "b": "the odd replica refuses the chunk with the registry's own error",
    "c": "the front sees the error and retries on another replica, where it commits",
    "d": "the front answers 502 Bad Gateway",
}


def odd_secret(
    swarm: SwarmRegistry, credentials: Credentials, answer: str, repository: str = "team/odd"
) -> bool:
    """09, predict: an upload started on replica1 sends its chunk to a registry with another
    ``http.secret``. The check makes that upload (into ``repository``, which the access list
    must let ``credentials`` push) and shows each request."""
    choice = str(answer).strip().lower().strip("()")
    if choice not in ODD_SECRET_CHOICES:
        return _verdict(False, "", 'answer with one letter, for example answer = "a"')
    data = b"one chunk for the odd replica\n" * 1024
    _, steps = split_upload(
        swarm, credentials.as_tuple(), repository, data, ("replica1", "odd", "replica1")
    )
    for step in steps:
        said = f" {step.error}" if step.error else ""
        print(f"{step.request:<6} on {step.replica:<9} -> {step.status}{said}")
    refused = len(steps) == 2 and "BLOB_UPLOAD_INVALID" in steps[1].error
    happened = "b" if refused else ("a" if steps[-1].status == 201 else "?")
    return _verdict(
        choice == happened,
        "the upload's state travels in its Location URL, signed with http.secret; a replica "
        "with another secret cannot verify it and answers BLOB_UPLOAD_INVALID. The front does "
        "not retry: the replica answered, and a PATCH is not idempotent",
        "the upload's state (where it is, how far it got) travels in its URL, signed: who can "
        "check that signature?",
    )
