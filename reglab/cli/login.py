"""How the commands that talk to a registry get a login: ``--user NAME`` and the password from
standard input (``--password-stdin``) or typed at a prompt, never echoed and never an option
(an option would land in the shell's history and in ``ps``)."""

from __future__ import annotations

import argparse
import getpass
import sys

from reglab.base.errors import ConfigError, HtpasswdError
from reglab.registry.config import RegistryConfig


def add_login_options(
    parser: argparse.ArgumentParser, what: str = "(auth and token stages)"
) -> None:
    parser.add_argument("--user", help=f"{what} the user to log in as")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"{what} read the password from standard input",
    )


def read_password(args: argparse.Namespace) -> str:
    """The password of ``--user``: standard input with ``--password-stdin``, else a prompt."""
    if args.password_stdin:
        return str(sys.stdin.readline()).rstrip("\r\n")
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.user}: ")
    raise HtpasswdError("no password given for --user", "pipe it in with --password-stdin")


def login_for(config: RegistryConfig, args: argparse.Namespace) -> tuple[str, str] | None:
    """The login a registry of this stage asks for (None when it asks for none); one line
    naming the options when it asks and none was given."""
    if not (config.stage.auth or config.stage.token):
        return None
    if not args.user:
        raise ConfigError(
            f"registry {config.name} asks for a login", "add --user NAME --password-stdin"
        )
    return (args.user, read_password(args))


__all__ = ["add_login_options", "login_for", "read_password"]
