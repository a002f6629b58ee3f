"""Start, stop and restart only the Docker engines this project started itself.

An engine started here is recorded in ``/run/reglab/engines/NAME.json``: its pid, its exact
command line, its PATH and its socket. Stopping or restarting needs that record AND a live
process at that pid whose command line is exactly the recorded one. Anything else (a dockerd
run by systemd, by Docker Desktop, or started by hand with options of its own, even when its pid
is in /var/run/docker.pid) is never touched: the caller gets one line saying why.

    python3 scripts/engine_control.py start NAME --socket PATH [--path DIR]... -- dockerd ARGS
    python3 scripts/engine_control.py stop NAME
    python3 scripts/engine_control.py restart NAME
    python3 scripts/engine_control.py resume NAME         start it again after stop
    python3 scripts/engine_control.py owned NAME          exit 0 when NAME is ours and running

Standard library only: scripts/setup.sh runs it before the Python environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_DIR = Path(os.environ.get("REGLAB_RUN_DIR", "/run/reglab")) / "engines"
#: The engines this process started (see start()).
_STARTED: list[subprocess.Popen[bytes]] = []
DEFAULT_SOCKET = "/var/run/docker.sock"


class NotOurs(Exception):
    """The engine was not started by this project (or is no longer the process it started)."""


@dataclass(frozen=True)
class Engine:
    """A dockerd this project started: enough to recognise it, and to start it the same way."""

    name: str
    pid: int
    argv: list[str]
    path: str
    socket: str
    log: str

    @property
    def record(self) -> Path:
        return RUN_DIR / f"{self.name}.json"

    def running(self) -> bool:
        """The recorded pid is alive (not a zombie) and runs exactly the recorded command."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return cmdline.rstrip(b"\0").split(b"\0") == [a.encode() for a in self.argv]


def socket_answers(path: str, timeout: float = 2.0) -> bool:
    """True when an engine answers ``GET /_ping`` on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


def load(name: str) -> Engine | None:
    """The record of NAME, if there is one (whether or not it still runs)."""
    try:
        return Engine(**json.loads((RUN_DIR / f"{name}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def ours(name: str) -> Engine:
    """The engine NAME, when this project started it and it runs; else NotOurs."""
    engine = load(name)
    if engine is None:
        raise NotOurs(f"engine {name!r} was not started by this project (no record in {RUN_DIR})")
    if not engine.running():
        raise NotOurs(
            f"engine {name!r} (pid {engine.pid}) is not running the command this project "
            "started, so it is left alone"
        )
    return engine


def for_socket(path: str) -> Engine:
    """The engine of ours that serves the unix socket ``path``; else NotOurs."""
    for record in sorted(RUN_DIR.glob("*.json")) if RUN_DIR.is_dir() else []:
        engine = load(record.stem)
        if engine is not None and engine.socket == path:
            return ours(engine.name)
    raise NotOurs(f"the engine at {path} was not started by this project, so it is left alone")


def current_socket() -> str:
    """The unix socket the Docker clients here use (``DOCKER_HOST``, else the default)."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        raise NotOurs(f"DOCKER_HOST={host} is not a local unix socket, so it is left alone")
    return host.removeprefix("unix://") or DEFAULT_SOCKET


def start(
    name: str, argv: list[str], sock: str, path_dirs: list[str], timeout: float = 60.0
) -> Engine:
    """Start ``argv`` (a dockerd) in its own session, record it, and wait until it answers."""
    if socket_answers(sock):
        raise NotOurs(f"an engine already answers at {sock}; not starting another there")
    path = os.pathsep.join([*path_dirs, os.environ.get("PATH", "")])
    log = f"/var/log/reglab-dockerd-{name}.log"
    try:
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PATH": path},
            )
    except OSError as exc:
        raise NotOurs(f"cannot start {argv[0]}: {exc.strerror}") from None
    # The engine outlives this call on purpose; kept referenced so that Python never collects
    # the Popen of a child still running (a ResourceWarning, an error under the test suite).
    _STARTED.append(process)
    engine = Engine(name, process.pid, argv, path, sock, log)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    tmp = engine.record.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(engine)))
    tmp.replace(engine.record)
    deadline = time.monotonic() + timeout
    while not socket_answers(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            raise NotOurs(f"dockerd {name!r} did not answer at {sock}; read {log}")
        time.sleep(0.1)  # polling the socket, not a fixed wait
    return engine


def stop(name: str, timeout: float = 60.0) -> Engine:
    """SIGTERM the engine NAME (only when it is ours) and wait until it has exited."""
    engine = ours(name)
    os.kill(engine.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while engine.running():
        if time.monotonic() > deadline:
            raise NotOurs(f"dockerd {name!r} (pid {engine.pid}) did not stop in {timeout:g} s")
        time.sleep(0.1)
    return engine


def restart(name: str) -> Engine:
    """Stop the engine NAME and start it again with exactly the same command line and PATH."""
    stop(name)
    return resume(name)


def resume(name: str) -> Engine:
    """Start the engine NAME again from its record, after :func:`stop`."""
    old = load(name)
    if old is None:
        raise NotOurs(f"engine {name!r} was not started by this project (no record in {RUN_DIR})")
    if old.running():
        return old
    dirs = old.path.split(os.pathsep)
    return start(name, old.argv, old.socket, [d for d in dirs if d])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("name")
    p.add_argument("--socket", default=DEFAULT_SOCKET)
    p.add_argument("--path", action="append", default=[], help="put DIR first on PATH")
    for command in ("stop", "restart", "resume", "owned"):
        sub.add_parser(command).add_argument("name")
    words = sys.argv[1:] if argv is None else argv
    split = words.index("--") if "--" in words else len(words)
    args = parser.parse_args(words[:split])
    try:
        if args.command == "start":
            dockerd = words[split + 1 :]
            if not dockerd:
                parser.error("start needs the engine's command line after --")
            engine = start(args.name, dockerd, args.socket, args.path)
            print(f"started dockerd {engine.name!r} (pid {engine.pid}) at {engine.socket}")
        elif args.command == "stop":
            print(f"stopped dockerd {stop(args.name).name!r}")
        elif args.command == "restart":
            print(f"restarted dockerd {restart(args.name).name!r}")
        elif args.command == "resume":
            print(f"started dockerd {resume(args.name).name!r} again")
        else:
            ours(args.name)
    except NotOurs as exc:
        print(f"engine_control: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
