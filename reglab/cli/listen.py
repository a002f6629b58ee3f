"""``reglab listen``: the registry's events in a terminal, one line each as they arrive.

The same listener as notebook 07's (reglab.registry.events.Listener), on the workshop network's
gateway and a fixed port (REGLAB_PORT + 5 unless ``--port`` says), so the ``notify`` URL a
notebook prints is the one this command answers. ``--json`` prints each event as the registry
sent it. ``--to FILE`` writes everything to FILE instead of the terminal, so the command can
run in the background (``&``) and be read later (``tail -f FILE``). It runs until stopped
(Ctrl-C, or ``kill``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path

from reglab.base.errors import ReglabError
from reglab.base.settings import Settings
from reglab.engine.connection import connect
from reglab.engine.network import project_network
from reglab.registry.events import Event, Listener, listener_port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        dest="listen_port",  # not the registry's: args.port is REGLAB_PORT's on the CLI
        type=int,
        default=None,
        help="the port to listen on (default: REGLAB_PORT + 5, as the notebooks plan)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print each event as the registry sent it"
    )
    parser.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="FILE",
        help="append to FILE (its folder made) instead of printing: to run in the background",
    )


def run(args: argparse.Namespace) -> int:
    settings: Settings = getattr(args, "settings", None) or Settings.from_env()
    port = args.listen_port if args.listen_port is not None else listener_port(settings.port)
    gateway = project_network(connect())  # made if missing: the registry joins it
    if args.to is not None:
        _write_to(args.to)

    def show(event: Event) -> None:
        print(json.dumps(event.raw, sort_keys=True) if args.json else event.line(), flush=True)

    listener = Listener(gateway, port)
    listener.callbacks.append(show)
    listener.start()
    print(f"listening for registry events at {listener.url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop as kill does
        stopped.wait()
    listener.stop()
    return 0


def _write_to(path: Path) -> None:
    """Point this process's stdout and stderr at ``path``: nothing it writes holds the
    terminal (or a caller's pipe) open once it runs in the background."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as file:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(file.fileno(), sys.stdout.fileno())
        os.dup2(file.fileno(), sys.stderr.fileno())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())
    os.close(devnull)


def main() -> int:
    """``python -m reglab.cli.listen``: the command without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="reglab listen", description=__doc__)
    add_arguments(parser)
    try:
        return run(parser.parse_args())
    except ReglabError as exc:
        print(f"reglab: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
