"""Notebooks 03 and 04: who may talk to the registry (TLS, basic auth)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterable

from reglab.auth.certs import Certificate
from reglab.auth.htpasswd import Htpasswd, password_variable
from reglab.base.errors import ClientError, ReglabError, TLSVerificationFailed, docker_errors
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry.client import RegistryClient
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.login import Credentials

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
    base = f"https://{gateway}:{registry.config.port}"
    url = f"{base}/v2/"
    try:
        with RegistryClient(base, ca=registry.config.paths.ca_cert, timeout=5) as api:
            api.status()  # any answer will do: the question is whether TLS verifies
    except TLSVerificationFailed as exc:
        said = exc.problem.split(": ", 1)[-1]  # what the TLS library said, after the URL
        reason = "the certificate does not name this address"
        if "doesn't match" not in said and "mismatch" not in said:
            reason = said[:160]
        return verdict(
            False,
            "",
            f"{url} fails verification: {reason}. Issue the certificate again with the gateway "
            "address (ws.up('tls', bind=('127.0.0.1', gateway)) does it) and run the check again",
        )
    except ClientError as exc:
        return verdict(
            False,
            "",
            f"{url} does not answer ({exc.problem}): is the "
            "registry published on the gateway address? bind=('127.0.0.1', gateway)",
        )
    names = _served_names(gateway, registry.config.port)
    return verdict(
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
        return verdict(False, "", 'answer with host names from the list, e.g. {"localhost"}')
    works = set()
    for host, ref in names.items():
        ws.tag("hello-world", ref)
        if ws.try_push(ref) is None:
            works.add(host)
    wanted = sorted(works) or ["none"]
    return verdict(
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


def remove_user(ws: Workshop, user: str = "carol") -> None:
    """04's clean-up: the exercise's user goes, fixed or not (a later notebook's users are
    written to the same file, which refuses a line that is not bcrypt)."""
    path = ws.config("auth").paths.htpasswd
    ws.cli(f"htpasswd -D {ws.style.show(path)} {user}")
    users = Htpasswd.load(path, replacing=user)
    if user in users.users:
        users.remove(user)
    users.save()
    print(f"{user} removed from {path.name}")


def user_can_log_in(registry: Registry, credentials: Credentials) -> bool:
    """04, diagnose and fix: the user's htpasswd line is bcrypt and the registry answers 200."""
    path = registry.config.paths.htpasswd
    try:
        Htpasswd.load(path)
    except ReglabError as exc:
        said = exc.problem.replace(str(path), "auth/htpasswd")  # as the notebook names it
        return verdict(
            False,
            "",
            f"{said}. Set the password again with bcrypt: ws.add_user({credentials.user})",
        )
    with registry.client(auth=credentials.as_tuple()) as api:
        try:
            status = api.status()
        except ReglabError as exc:
            return verdict(False, "", f"the registry does not answer: {exc.problem}")
    return verdict(
        status == 200,
        f"{credentials.user}'s line is bcrypt now, and GET /v2/ answers 200",
        f"GET /v2/ answers {status} for {credentials.user}: is it the same password?",
    )
