"""Notebook 12's exercises: where a plain registry keeps what is attached to an image, what a
key rotation does to old signatures, and an image the gate refuses though "it is signed"."""

from __future__ import annotations

from collections.abc import Callable

from reglab.engine import transfer
from reglab.images.context import BuildContext
from reglab.lab.exercises.verdict import letter, verdict
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry
from reglab.registry.gate import Gate

REFERRERS_CHOICES = {
    "a": "200, an index that lists the SBOM",
    "b": "404 Not Found",
    "c": "405 Method Not Allowed",
    "d": "401 Unauthorized",
}


def predicted_referrers(answer: object) -> bool:
    """Exercise 1: what does the registry answer to OCI 1.1's referrers API?"""
    return verdict(
        letter(answer) == "b",
        "neither distribution 2.8 nor 3.1 has the referrers API (the change adding it is "
        "still open), so a client falls back to the tag sha256-HEX, an index it keeps itself",
        "the attachment was accepted (201), and its subject is in its manifest. But does this "
        "registry know the path /v2/NAME/referrers/DIGEST at all?",
    )


ROTATION_CHOICES = {
    "a": "the pull works: app:1 was signed while the old key was trusted",
    "b": "the gate denies it: no key it trusts now made app:1's signature",
    "c": "the pull works: the gate remembers the images it already let through",
}


def predicted_rotation(answer: object) -> bool:
    """Exercise 3: after the rotation, what happens to an image only the old key signed?"""
    return verdict(
        letter(answer) == "b",
        "a signature is checked at every pull, against the keys trusted now: taking a key out "
        "withdraws everything it signed, which is what you want when it leaked. Sign what "
        "must stay pullable with the new key first, then take the old one out",
        "the gate keeps no memory of past pulls, and a signature does not record when it was "
        "accepted. What does the gate check at each pull?",
    )


#: The teammate's image: hello-world with a label of its own, so its digest is no other's.
TEAMMATE_DOCKERFILE = "FROM hello-world\nLABEL org.reglab.signed-by=teammate\n"


def teammate_image(
    ws: Workshop, registry: Registry, signer: Callable[[str], object], ref: str = "app:4"
) -> str:
    """Exercise 2's set-up: a teammate builds and pushes ``ref`` (an image of its own) and
    signs it with their own key. ``signer`` signs (``supply.sign``, given here so this module
    needs no notebook step)."""
    address = registry.ref(*ref.split(":"))
    shown = TEAMMATE_DOCKERFILE.replace("\n", "\\n")
    ws.cli(f"printf '{shown}' | docker build -q -t {address} -")
    BuildContext(TEAMMATE_DOCKERFILE.encode()).build(ws.engine, address)
    ws.track(address)
    digest = ws.push(address)
    signer(ref)
    return digest


def gate_serves(ws: Workshop, front: Gate, registry: Registry, ref: str = "app:4") -> bool:
    """Exercise 2: the gate lets the engine pull ``ref``, with the digest the registry serves."""
    repository, tag = ref.split(":")
    with registry.client() as api:
        served = api.manifest_digest(repository, tag)
    through = f"{front.address}/{ref}"
    transfer.remove(ws.engine, through)  # a pull that really asks the gate
    error = ws.try_pull(through)
    if error is not None:
        why = error.split("denied: ", 1)[-1]
        hint = "the gate still refuses it: " + why[:200]
        if "no trusted key made it" in why:
            hint += ". It found a signature: whose key made it, and does the gate trust that key?"
        return verdict(False, "", hint)
    pulled = ws.engine.images.get(through).attrs.get("RepoDigests") or []
    return verdict(
        f"{front.address}/{repository}@{served}" in pulled,
        f"the gate served {ref} ({served}): a signature by a key it trusts names that digest",
        "the engine has another image under that name: pull it again",
    )


__all__ = [
    "REFERRERS_CHOICES", "ROTATION_CHOICES", "gate_serves", "predicted_referrers",
    "predicted_rotation", "teammate_image",
]  # fmt: skip
