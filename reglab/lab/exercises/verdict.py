"""How every exercise answers: ``✔ Correct: ...`` or ``✘ Not yet: ...`` with a hint.

One place for that line and for reading a one-letter answer, so all exercises read alike.
"""

from __future__ import annotations


def verdict(ok: bool, good: str, hint: str) -> bool:
    """Print the verdict and return ``ok`` (an exercise never raises: it may be run again)."""
    print(f"✔ Correct: {good}" if ok else f"✘ Not yet: {hint}")
    return ok


def letter(answer: object) -> str:
    """A multiple-choice answer as one lower-case letter: ``"(B) "`` reads as ``"b"``."""
    return str(answer).strip().lower().strip("()")
