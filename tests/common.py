"""Helpers shared by the tests (fixtures live in conftest.py and use these)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from reglab.base import ports
from reglab.base.settings import GATE_IMAGE, NODE_IMAGE, TOKEN_IMAGE
from reglab.base.versions import VERSIONS
from reglab.engine import transfer
from reglab.images.context import BuildContext
from reglab.registry.container import Container, Registry

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"

#: The make_registry fixture: a started registry of the given stage (tests/conftest.py).
MakeRegistry = Callable[..., Registry]


def nbval_command(*paths: str | Path, options: tuple[str, ...] = ()) -> list[str]:
    """The command line that runs notebooks under nbval, as the README's test command does."""
    return [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options,
        "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
        *(str(p) for p in paths),
    ]  # fmt: skip


sys.path.insert(0, str(ROOT / "scripts"))
import engine_control as engine_control  # noqa: E402  (scripts/: what the set-up scripts run)


def restart_our_engine() -> engine_control.Engine:
    """Restart the engine the clients here use, only if this project started it.

    Raises engine_control.NotOurs (one line: why not) for any other engine.
    """
    engine = engine_control.for_socket(engine_control.current_socket())
    return engine_control.restart(engine.name)


def container_of(registry: Registry) -> Container:
    """The container of a registry that has one (a started registry): ``registry.container``,
    which is None only when there is none."""
    container = registry.container
    assert container is not None, f"registry {registry.config.name} has no container"
    return container


def push_as(
    engine: docker.DockerClient,
    registry: Registry,
    source: str,
    repository: str,
    tag: str,
    cleanup: list[str],
) -> str:
    """Push image ``source`` to ``registry`` as ``repository:tag``; return the digest. The
    name goes in ``cleanup`` (the cleanup_images fixture's list)."""
    from reglab.engine import transfer

    ref = registry.ref(repository, tag)
    cleanup.append(ref)
    transfer.tag(engine, source, ref)
    return transfer.push(engine, ref)


def strict() -> bool:
    """True in CI (or with REGLAB_REQUIRE_DOCKER=1): a missing engine or a skip is a failure."""
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"}
        for v in ("CI", "REGLAB_REQUIRE_DOCKER")
    )


def free_port() -> int:
    """A port nothing listens on, never a learner's 5000, with every companion port that
    reglab.base.ports plans from it free too (token server, mirror, copy, swarm statistics).

    Below the kernel's ephemeral range: a port from that range, free when it was picked, can
    be taken a moment later by any outgoing connection or by a Jupyter kernel's own sockets
    (they bind port 0) before the registry binds it."""
    low = _ephemeral_low()
    offsets = sorted(set(ports.OFFSETS.values()))
    while True:
        port = random.randrange(20000, low - offsets[-1] - 1)
        if all(_free(port + n) for n in offsets):
            return port


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return max(low, 25000)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def build_random_image(
    client: docker.DockerClient,
    ref: str,
    layers: int = 8,
    layer_bytes: int = 8 << 20,
    seed: int | None = None,
) -> str:
    """Build an image of ``layers`` layers of random data (for load tests and benchmarks).

    Random data does not compress, so pushes move every byte. Distinct seeds give distinct
    images; no seed gives a fresh random image each time.
    """
    rng = random.Random(seed)
    steps = ["FROM scratch"] + [f"COPY layer{n}.bin /data/layer{n}.bin" for n in range(layers)]
    context = BuildContext(("\n".join(steps) + "\n").encode())
    for n in range(layers):
        context.add_bytes(rng.randbytes(layer_bytes), f"layer{n}.bin")
    return context.build(client, ref)


# --- the terminal track: the `$` lines a notebook printed, as a shell script ------------------


@dataclass(frozen=True)
class Typed:
    """One command a notebook printed, and whether the cell showed the engine refusing it."""

    command: str
    refused: bool = False


def typed_commands(outputs: list[dict[str, Any]]) -> list[Typed]:
    """The ``$`` lines in one cell's outputs (continuation lines joined), in order."""
    text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            command = [lines[i][2:]]
            while command[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            refused = i + 1 < len(lines) and lines[i + 1].startswith("refused:")
            found.append(Typed("\n".join(command), refused))
        i += 1
    return found


def _wait_after(command: str, following: str = "") -> list[str]:
    """What a learner waits for after ``command``, as the cell did: a registry started with
    ``docker run -d`` answers on the port it publishes (the notebook's when it names none); a
    container started again answers on its own, unless the next line waits for it to exit
    (a start that is meant to fail, such as a mirror whose upstream is down)."""
    if command.startswith("docker run -d") and any(
        re.search(rf"\s{re.escape(v.image)}(\s|$)", command) for v in VERSIONS.values()
    ):
        published = re.search(r"-p [\d.]+:(\d+):5000\b", command)
        return [f"ready {published.group(1)}" if published else "ready"]
    token = re.search(
        rf"-p [\d.]+:(\d+):5001\b.*\s{re.escape(TOKEN_IMAGE)}(\s|$)", command, re.DOTALL
    )
    if command.startswith("docker run -d") and token:  # a login right after needs it up
        return [f"ready {token.group(1)}"]
    gate = re.search(rf"\s{re.escape(GATE_IMAGE)} .*--listen 127\.0\.0\.1:(\d+)", command, re.S)
    if command.startswith("docker run -d") and gate:  # a pull through it comes next
        return [f"ready {gate.group(1)}"]
    node = re.search(rf"--name (\S+) .*\s{re.escape(NODE_IMAGE)}$", command)
    if command.startswith("docker run -d") and node:
        return [f"ready_node {node.group(1)}"]
    started = re.match(r"docker (?:re)?start (\S+)$", command.strip())
    if started is None or following.strip() == f"docker wait {started.group(1)}":
        return []
    return [f"ready_container {started.group(1)}"]


def shell_script(commands: list[Typed], port: int, state: Path) -> str:
    """A bash script that types ``commands`` as a learner would, stopping at the first one
    that fails (or that succeeds where the cell showed a refusal). After ``docker run -d`` it
    waits until the registry answers, as the cell did (polling, never a fixed sleep).

    Variables the commands set (``GATEWAY=...``) are kept in ``state`` for the next script,
    as one terminal session keeps them."""
    lines = [
        "set -euo pipefail",
        f"[ -f {shlex.quote(str(state))} ] && source {shlex.quote(str(state))}",
        "ready() {  # poll GET /v2/ on port ${1:-the notebook's}, HTTPS then HTTP, up to 30 s",
        f"  local p=${{1:-{port}}}",
        "  for _ in $(seq 600); do",
        '    curl -sko /dev/null "https://127.0.0.1:$p/v2/" && return 0',
        '    curl -so /dev/null "http://127.0.0.1:$p/v2/" && return 0',
        "    sleep 0.05",
        "  done",
        '  echo "the registry on port $p never answered" >&2; return 1',
        "}",
        "ready_node() {  # a node answers once its CRI does (crictl info), up to 30 s",
        "  for _ in $(seq 300); do",
        '    docker exec "$1" crictl info >/dev/null 2>&1 && return 0',
        "    sleep 0.1",
        "  done",
        '  echo "the node $1 never answered" >&2; return 1',
        "}",
        "ready_container() {  # the port a (re)started container publishes, if it publishes one",
        "  local p",
        "  p=$(docker port \"$1\" 5000/tcp 2>/dev/null | head -1 | sed 's/.*://') || true",
        '  [ -z "$p" ] || ready "$p"',
        "}",
    ]
    for i, typed in enumerate(commands):
        if typed.refused:
            lines += [
                f"if {typed.command}; then",
                f"  echo {shlex.quote('expected a refusal: ' + typed.command)} >&2; exit 1",
                "fi",
            ]
        else:
            lines.append(typed.command)
        following = commands[i + 1].command if i + 1 < len(commands) else ""
        lines += _wait_after(typed.command, following)
    assigned = sorted({m.group(1) for t in commands if (m := re.match(r"(\w+)=", t.command))})
    if assigned:  # (NAME=value command ... sets NAME for that command only: not kept)
        lines.append(
            f"for v in {' '.join(assigned)}; do declare -p $v 2>/dev/null >> "
            f"{shlex.quote(str(state))} || true; done"
        )
    return "\n".join(lines) + "\n"


def remove_test_stack(engine: docker.DockerClient, name: str) -> None:
    """Remove a stack a test (or a notebook a test ran) left, its front, odd registry and
    volume; then, if it was there, leave the swarm if reglab made it. Nothing when there is
    none."""
    from reglab.base.errors import ConfigError
    from reglab.swarm import StaleBridge, SwarmRegistry

    registry = SwarmRegistry(engine, name, 0, ROOT / "no-workdir")
    # The swarm is left only after a stack of this name was removed: a name that is not there
    # (notebook_runner's reglab-test-broken) never ends a swarm another test is using.
    found = registry.deployed() or registry.relay_container() is not None
    # (StaleBridge: left, the engine keeping an empty docker_gwbridge; conftest ends that)
    with contextlib.suppress(ConfigError, StaleBridge):  # nothing deployed, no swarm of reglab's
        registry.down(purge=True, leave=found)


class Signer:
    """A GnuPG home with one signing key (no passphrase), as a CI signer would have."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True)
        self.gpg("--quick-gen-key", f"{name} <{name}@reglab.test>", "ed25519", "sign", "never")
        listed = self.gpg("--with-colons", "--list-keys").decode()
        self.fingerprint = next(
            line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")
        )

    def gpg(self, *args: str, data: bytes | None = None) -> bytes:
        done = subprocess.run(
            ["gpg", "--batch", "--yes", "--passphrase", "", "--pinentry-mode", "loopback", *args],
            input=data, capture_output=True, check=True,
            env={**os.environ, "GNUPGHOME": str(self.home)},
        )  # fmt: skip
        return done.stdout

    def sign(self, reference: str, digest: str) -> bytes:
        """A simple-signing signature of ``reference`` at ``digest``, as skopeo makes it."""
        payload = {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "atomic container signature",
            },
            "optional": {"creator": "test"},
        }
        return self.gpg("--sign", data=json.dumps(payload).encode())

    def public_key(self, armor: bool = False) -> bytes:
        return self.gpg("--export", *(["--armor"] if armor else []))

    def secret_key(self) -> bytes:
        return self.gpg("--export-secret-keys", "--armor")

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False,
                       env={**os.environ, "GNUPGHOME": str(self.home)})  # fmt: skip


# --- supply chain: images pushed, commands typed -----------------------------------------------
def push(engine: docker.DockerClient, registry: Registry, source: str, ref: str) -> str:
    """``source`` pushed as ``repository:tag`` of the registry; its digest."""
    full = registry.ref(*ref.split(":"))
    transfer.tag(engine, source, full)
    try:
        return transfer.push(engine, full)
    finally:
        transfer.remove(engine, full)


def terminal(registry: Registry) -> dict[str, str]:
    """A terminal's environment: no REGLAB_ settings but the registry's name and folder."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGLAB_")}
    return {**clean, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "REGLAB_NAME": registry.config.name}  # fmt: skip


def reglab_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reglab", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def typed(output: str) -> str:
    lines = [line[2:] for line in output.splitlines() if line.startswith("$ ")]
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"
