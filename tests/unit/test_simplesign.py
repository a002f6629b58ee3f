"""GnuPG simple signing's files, as skopeo reads them: a policy that rejects what it does not
name, the lookaside store's place per registry, and the layout of the store itself (the
layout containers/image writes: REPOSITORY@ALG=HEX/signature-N)."""

from __future__ import annotations

import json

import pytest
import yaml

from reglab.registry.simplesign import REJECT, lookaside_path, policy, registries_d, signed_by

DIGEST = "sha256:" + "0f" * 32


def test_the_policy_requires_a_trusted_key_for_the_registry_and_rejects_the_rest() -> None:
    document = json.loads(policy("127.0.0.1:5000", "/keys/trusted.gpg"))
    assert document["default"] == REJECT == [{"type": "reject"}]
    # One requirement: every requirement of a scope must be met, so keys share one file.
    assert document["transports"] == {
        "docker": {"127.0.0.1:5000": [signed_by("/keys/trusted.gpg")]}
    }
    assert signed_by("/k.gpg") == {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}


def test_registries_d_names_the_lookaside_store_for_reading_and_writing() -> None:
    document = yaml.safe_load(registries_d("127.0.0.1:5000", "file:///srv/sigstore"))
    assert document == {
        "docker": {
            "127.0.0.1:5000": {
                "lookaside": "file:///srv/sigstore",
                "lookaside-staging": "file:///srv/sigstore",
            }
        }
    }


def test_signatures_are_laid_out_by_repository_and_digest_from_one() -> None:
    assert lookaside_path("team/app", DIGEST) == f"team/app@sha256={'0f' * 32}/signature-1"
    assert lookaside_path("/team/app/", DIGEST, 2).endswith("/signature-2")
    for bad in (("team/app", "latest", 1), ("team/app", DIGEST, 0)):
        with pytest.raises(ValueError, match="not a digest"):
            lookaside_path(*bad)
