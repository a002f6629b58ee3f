"""The ``reglab`` command."""

from reglab.cli.main import main

__all__ = ["main"]
