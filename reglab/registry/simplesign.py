"""Who vouches for an image, as skopeo, podman and CRI-O read it: GnuPG "simple signing".

A signature here is a GnuPG signature over a small JSON document naming the image (its
reference and its manifest's digest). It is not stored in the registry: it sits in a
*lookaside* store, a folder or web server laid out by repository and digest, which
``registries.d`` names for each registry. ``policy.json`` then says, per registry, what a pull
requires: ``signedBy`` a key, or ``reject``. (containers-policy.json(5), containers-registries.d(5),
containers-signature(5).) The Docker engine reads none of these files: the workshop's gate
(:mod:`reglab.auth.gate`, which owns the store's layout, :func:`lookaside_path`) does the same
check in front of the registry.

Debian's skopeo signs and verifies this way (its sigstore support is disabled by a Debian
patch). These functions write what skopeo reads, and :class:`SignFiles` says where in the
working folder; pure, no GnuPG here (that is :mod:`.signing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reglab.auth.gate import lookaside_path

#: What a policy says for anything it does not name: nothing is trusted by default.
REJECT = [{"type": "reject"}]


def signed_by(key_path: str) -> dict[str, str]:
    """A requirement: a valid signature by a key in the GnuPG keyring file ``key_path``."""
    return {"type": "signedBy", "keyType": "GPGKeys", "keyPath": key_path}


def policy(registry: str, key_path: str) -> str:
    """``policy.json``: images of ``registry`` (``host:port``, or ``host:port/repository``)
    need a signature by a key of the file ``key_path``; every other image is rejected (the
    safe default: a policy that trusts what it does not name would pass an image from a
    typo'd registry). One requirement, one key file: the requirements of a scope must *all*
    be met (containers-policy.json(5)), so several trusted keys (one being rotated in) are
    several keys in that file, any of which signs."""
    document: dict[str, Any] = {
        "default": REJECT,
        "transports": {"docker": {registry: [signed_by(key_path)]}},
    }
    return json.dumps(document, indent=2) + "\n"


def registries_d(registry: str, lookaside: str) -> str:
    """A ``registries.d`` file: signatures of ``registry``'s images are read from, and written
    to, the lookaside store at ``lookaside`` (a ``file://`` or ``http(s)://`` URL)."""
    entry = {"lookaside": lookaside, "lookaside-staging": lookaside}
    return yaml.safe_dump({"docker": {registry: entry}}, sort_keys=False)


@dataclass(frozen=True)
class SignFiles:
    """The signing files of one working folder (``WORKDIR/sign``)."""

    root: Path

    @classmethod
    def of(cls, workdir: Path) -> SignFiles:
        return cls(Path(workdir) / "sign")

    @property
    def lookaside(self) -> Path:
        return self.root / "lookaside"

    @property
    def registries_d(self) -> Path:
        return self.root / "registries.d"

    @property
    def policy(self) -> Path:
        return self.root / "policy.json"

    @property
    def checked(self) -> Path:
        return self.root / "checked"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def trust(self) -> Path:
        return self.root / "trust"

    @property
    def trusted(self) -> Path:
        return self.trust / "trusted.gpg"

    @property
    def cosign_keys(self) -> Path:
        return self.trust / "cosign.pub"


__all__ = ["REJECT", "SignFiles", "lookaside_path", "policy", "registries_d", "signed_by"]
