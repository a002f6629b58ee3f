"""What every checkpoint shares: the exception it raises and the line it prints."""

from __future__ import annotations

from reglab.base.errors import ReglabError


class CheckFailed(ReglabError):
    """A checkpoint found that a step did not do what it should."""


def ok(message: str) -> None:
    """The line a checkpoint prints when its step worked."""
    print(f"✔ {message}")
