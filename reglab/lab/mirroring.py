"""Notebook 06's mirror: started in front of a TLS + basic-auth upstream, its expiry schedule,
and what happens when it restarts while its upstream is down.

Like :mod:`reglab.lab.operate`, each function does the work through reglab's core
(:mod:`reglab.registry.mirror`) and prints the command lines that do the same (``$ ...``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

from reglab.base.labels import OWNER_LABEL
from reglab.base.ports import Ports
from reglab.base.wait import NotYet, poll
from reglab.engine import transfer
from reglab.engine.network import NETWORK
from reglab.lab.workshop import Workshop
from reglab.registry import mirror
from reglab.registry.client import probe_status
from reglab.registry.config import LOGIN_FILE, RegistryConfig
from reglab.registry.container import Registry
from reglab.registry.login import Credentials

#: Where the proxy's scheduler keeps what it will expire, in the mirror's storage root.
SCHEDULE = "scheduler-state.json"
#: The scheduler's entry kinds (registry/proxy/scheduler: entryTypeBlob, entryTypeManifest).
KINDS = {0: "blob", 1: "manifest"}


def start_mirror(
    ws: Workshop,
    upstream: Registry,
    login: Credentials | None = None,
    ttl: str | None = None,
    empty: bool = True,
) -> Registry:
    """A pull-through mirror of ``upstream`` on the workshop network; with ``empty``, its cache
    from an earlier run is deleted first, so every run starts the same."""
    name = f"{ws.name}-mirror"
    port = Ports(ws.port).mirror
    folder = ws.workdir / "mirror"
    data = folder / "registry-data"
    if empty:
        old = Registry(RegistryConfig(name=name, workdir=folder), ws.engine)
        if old.container is not None:
            ws.cli(f"docker rm -f -v {name}")
            old.remove()
        ws.cli(f"rm -rf {ws.style.show(data)}")
        shutil.rmtree(data, ignore_errors=True)
    ws.cli(  # (it may exist: another mirror, or an earlier run, made it)
        f"docker network inspect {NETWORK} >/dev/null 2>&1 || "
        f"docker network create --label {OWNER_LABEL}=true {NETWORK}"
    )
    ws.cli(
        f"docker network connect --alias {upstream.config.name} {NETWORK} {upstream.config.name}"
    )
    found = mirror.upstream_of(ws.engine, upstream.config.name, ws.workdir)
    # What the proxy asks first at start (it panics without an answer): 200, or 401 for a login.
    ca = f"--cacert {ws.style.show(found.ca)} " if found.ca else ""
    ws.cli(f"curl -s -o /dev/null -w '%{{http_code}}\\n' {ca}{found.probe}/v2/")
    verify: str | bool = str(found.ca) if found.ca else True
    print(f"GET /v2/ on the upstream: {probe_status(found.probe + '/v2/', verify, timeout=5)}")
    config = mirror.mirror_config(
        found, port, ws.workdir, name, version=ws.settings.version, login=login is not None,
        ttl=ttl,
    )  # fmt: skip
    if login is not None:
        ws.cli(f"mkdir -p {ws.style.show(folder)}")
        for line in mirror.login_step(login, folder, ws.style).lines:
            ws.cli(line)
    for command in config.folder_commands(ws.style):
        ws.cli(command)
    ws.cli(config.docker_run_command(ws.style))
    registry = mirror.start_mirror(
        ws.engine, upstream.config.name, port, ws.workdir, name, version=ws.settings.version,
        login=login, ttl=ttl,
    )  # fmt: skip
    print(f"mirror {name} of {registry.config.upstream} answers at {registry.url}")
    return registry


def schedule(ws: Workshop, registry: Registry, timeout: float = 30.0) -> dict[str, float]:
    """What the proxy's scheduler will delete, and in how many hours: its state file, which it
    writes at most every 5 s. Returns hours left by ``KIND REPOSITORY@DIGEST``."""
    path = registry.config.paths.data / SCHEDULE
    shown = ws.style.show(path)  # (typed at once, the file may not be written yet)
    ws.cli(f"for i in $(seq 30); do [ -s {shown} ] && break; sleep 1; done; cat {shown}")

    def entries() -> dict[str, float] | None:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NotYet(f"{path.name}: {exc.__class__.__name__}") from None
        now = dt.datetime.now(dt.UTC)
        found = {
            f"{KINDS.get(e['EntryType'], '?')} {e['Key']}": (
                dt.datetime.fromisoformat(e["ExpiryData"]) - now
            ).total_seconds()
            / 3600
            for e in state.values()
        }
        return found or None

    left = poll(f"the mirror's {SCHEDULE}", entries, timeout=timeout, interval=0.5)
    for key, hours in sorted(left.items()):
        print(f"{key}: deleted in {round(hours)} h")
    return left


def restart_while_down(ws: Workshop, registry: Registry, timeout: float = 30.0) -> str:
    """Restart the mirror while its upstream is down: its proxy asks the upstream at start,
    cannot reach it and panics. Show the container's state and its panic line."""
    name = registry.config.name
    ws.cli(f"docker restart {name}")
    container = registry.container
    if container is not None:
        container.restart(timeout=10)

    def exited() -> str | None:
        found = registry.container
        if found is None:
            return "absent"
        found.reload()
        return found.status if found.status in ("exited", "dead") else None

    state = poll(f"{name} to stop after its panic", exited, timeout=timeout, interval=0.3)
    ws.cli(f"docker wait {name}")  # (in a terminal: until it stops; it prints the exit code)
    found = registry.container
    if found is not None:
        state = f"{state} with code {found.attrs['State']['ExitCode']}"
    ws.cli(f"docker logs {name} 2>&1 | grep '^panic'")
    panic = next(
        (line for line in registry.logs(tail=200).splitlines() if line.startswith("panic")), ""
    )
    print(f"{name}: {state}")
    print(panic)
    return panic


def start_both(ws: Workshop, upstream: Registry, registry: Registry) -> None:
    """Start the upstream, wait until it answers, then the mirror (whose proxy asks the
    upstream at start, and panics without an answer): the order a terminal must keep too."""
    ca = upstream.config.paths.ca_cert if upstream.config.stage.tls else None
    cacert = f"--cacert {ws.style.show(ca)} " if ca else ""
    for step in (upstream, registry):
        name = step.config.name
        ws.cli(f"docker start {name}")
        if step is upstream:  # curl retries until it connects; any HTTP answer will do
            ws.cli(f"curl -s -o /dev/null --retry 10 --retry-all-errors {cacert}{step.url}/v2/")
        container = step.container
        if container is not None:
            container.start()
        step.wait_ready()
        print(f"{name} answers again")


def clean_up(
    ws: Workshop, upstream: Registry, registries: list[Registry], folders: list[str]
) -> None:
    """Notebook 06's clean-up, each step printed: the image name of Step 1's ``tools``, the
    other ``registries`` (the mirror, the copy), the mirror's login file (a password), the
    fetched ``folders``, then the upstream itself and the network. (A ``hello-world`` name
    that :meth:`Workshop.ensure_stored` made goes with the upstream, as in every notebook.)
    The data folders stay, as every stage's do."""
    tools = upstream.ref("tools")
    if transfer.exists(ws.engine, tools):
        ws.rmi(tools)
    for registry in registries:
        ws.cli(f"docker rm -f -v {registry.config.name}")
        registry.remove()
    login = ws.workdir / "mirror" / LOGIN_FILE
    paths = [login, *(ws.workdir / folder for folder in folders)]
    ws.cli(f"rm -rf {' '.join(ws.style.show(path) for path in paths)}")
    login.unlink(missing_ok=True)
    for path in paths[1:]:
        shutil.rmtree(path, ignore_errors=True)
    ws.cleanup()
    ws.remove_network()


__all__ = ["clean_up", "restart_while_down", "schedule", "start_both", "start_mirror"]
