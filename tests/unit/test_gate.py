"""The signature gate's decisions, with real GnuPG: signatures made by ``gpg --sign`` as
skopeo makes them, checked with ``gpgv`` against a keyring; then its HTTP plumbing in front of
a stand-in upstream (the real registry and Docker engine: tests/integration)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from common import Signer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from reglab.auth.gate import (
    BUNDLE_TYPE,
    COSIGN_PREDICATE,
    Policy,
    bundle_problem,
    handler,
    lookaside_path,
    pae,
    payload_problem,
    repository_of,
)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Signer, Signer]]:
    root = tmp_path_factory.mktemp("gnupg")
    made = (Signer(root / "trusted", "release"), Signer(root / "stranger", "stranger"))
    yield made
    for signer in made:
        signer.close()


def store(lookaside: Path, repository: str, digest: str, *signatures: bytes) -> None:
    for index, signature in enumerate(signatures, start=1):
        path = lookaside / lookaside_path(repository, digest, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(signature)


def policy(tmp_path: Path, *keys: bytes, immutable: tuple[str, ...] = ()) -> Policy:
    keyring = tmp_path / "trusted.gpg"
    keyring.write_bytes(b"".join(keys))
    return Policy(tmp_path / "lookaside", keyring, immutable)


def test_a_signature_by_a_trusted_key_for_that_digest_lets_it_through(
    signers: tuple[Signer, Signer], tmp_path: Path
) -> None:
    trusted, _ = signers
    gate = policy(tmp_path, trusted.public_key())
    assert gate.unsigned("team/app", DIGEST) == (
        f"team/app@{DIGEST} is not signed (no signature in the lookaside store)"
    )
    store(gate.lookaside, "team/app", DIGEST, trusted.sign("127.0.0.1:5000/team/app:1", DIGEST))
    assert gate.unsigned("team/app", DIGEST) is None


def test_unsigned_wrong_key_other_digest_other_repository_and_rotated_out_are_refused(
    signers: tuple[Signer, Signer], tmp_path: Path
) -> None:
    trusted, stranger = signers
    gate = policy(tmp_path, trusted.public_key())
    store(gate.lookaside, "team/app", DIGEST, stranger.sign("r:1/team/app:1", DIGEST))
    assert "no trusted key made it" in str(gate.unsigned("team/app", DIGEST))
    # a tag moved to another manifest: a signature of the old digest stored under the new one
    store(gate.lookaside, "team/app", OTHER, trusted.sign("r:1/team/app:1", DIGEST))
    assert f"it signs {DIGEST}, not {OTHER}" in str(gate.unsigned("team/app", OTHER))
    store(gate.lookaside, "other/app", DIGEST, trusted.sign("r:1/team/app:1", DIGEST))
    assert "not the repository other/app" in str(gate.unsigned("other/app", DIGEST))
    # a second, good signature beside a bad one is enough
    store(gate.lookaside, "team/app", DIGEST, stranger.sign("r:1/team/app:1", DIGEST),
          trusted.sign("r:1/team/app:1", DIGEST))  # fmt: skip
    assert gate.unsigned("team/app", DIGEST) is None
    # asked for by tag, the signed name must be that tag (matchRepoDigestOrExact)
    assert gate.unsigned("team/app", DIGEST, tag="1") is None
    assert "not team/app:2" in str(gate.unsigned("team/app", DIGEST, tag="2"))
    keyring = tmp_path / "rotated.gpg"  # the release key taken out of the keyring
    keyring.write_bytes(b"")
    rotated = Policy(gate.lookaside, keyring)
    assert "no valid signature by a trusted key" in str(rotated.unsigned("team/app", DIGEST))


def test_a_payload_names_its_repository_wherever_the_signer_pushed_it() -> None:
    assert repository_of("127.0.0.1:5000/team/app:1") == "team/app"
    assert repository_of("registry.example/team/app@" + DIGEST) == "team/app"
    assert repository_of("localhost/app") == "app"
    assert repository_of("team/app") == "team/app"
    assert payload_problem(b"not json", "app", DIGEST) == (
        "its payload is not a simple-signing document"
    )


def test_immutable_patterns_are_over_repository_and_tag(tmp_path: Path) -> None:
    gate = Policy(tmp_path, tmp_path / "k", ("prod/*:v*", "base:stable"))
    assert gate.is_immutable("prod/web", "v1.2")
    assert gate.is_immutable("base", "stable")
    assert not gate.is_immutable("prod/web", "latest")
    assert not gate.is_immutable("dev/web", "v1")


class Upstream(BaseHTTPRequestHandler):
    """A stand-in registry: one manifest, one blob, tags; remembers what was PUT."""

    protocol_version = "HTTP/1.1"
    manifest = json.dumps({"schemaVersion": 2, "layers": []}).encode()
    blob = os.urandom(3 << 20)
    puts: list[str] = []

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/v2/team/app/manifests/"):
            digest = f"sha256:{hashlib.sha256(self.manifest).hexdigest()}"
            return self._send(200, self.manifest, {"Docker-Content-Digest": digest})
        if self.path.startswith("/v2/team/app/blobs/"):
            return self._send(200, self.blob)
        if self.path == "/v2/team/app/tags/list":
            return self._send(200, json.dumps({"tags": ["v1", "dev"]}).encode())
        self._send(404, b"{}")

    do_HEAD = do_GET  # noqa: N815

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.puts.append(self.path)
        self._send(201, b"")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def serve(handler_class: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ask(server: ThreadingHTTPServer, method: str, path: str, body: bytes | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_gate_denies_unsigned_manifests_passes_signed_ones_and_blobs_and_holds_tags(
    signers: tuple[Signer, Signer], tmp_path: Path
) -> None:
    trusted, _ = signers
    upstream = serve(Upstream)
    gate_policy = policy(tmp_path, trusted.public_key(), immutable=("team/*:v*",))
    gate = serve(handler(gate_policy, f"http://127.0.0.1:{upstream.server_address[1]}"))
    try:
        status, body = ask(gate, "GET", "/v2/team/app/manifests/v1")
        assert status == 403 and json.loads(body)["errors"][0]["code"] == "DENIED"
        digest = f"sha256:{hashlib.sha256(Upstream.manifest).hexdigest()}"
        store(gate_policy.lookaside, "team/app", digest, trusted.sign("r:1/team/app:v1", digest))
        assert ask(gate, "GET", "/v2/team/app/manifests/v1") == (200, Upstream.manifest)
        assert ask(gate, "HEAD", "/v2/team/app/manifests/v1")[0] == 200
        assert ask(gate, "GET", f"/v2/team/app/manifests/{digest}")[0] == 200  # by digest
        other_tag = ask(gate, "GET", "/v2/team/app/manifests/dev")  # same bytes, other name
        assert other_tag[0] == 403 and b"not team/app:dev" in other_tag[1]
        # what the registry would decode or clean is refused, not passed on unchecked
        for path in ("/v2/team/app/manifests/%64ev", "/v2/team//app/manifests/dev",
                     "/v2/team/app/../app/manifests/dev"):  # fmt: skip
            refused = ask(gate, "GET", path)
            assert refused[0] == 403 and b"unclean paths" in refused[1], path
        blob = ask(gate, "DELETE", f"/v2/team/app/blobs/{OTHER}")
        assert blob[0] == 403 and b"garbage collection" in blob[1]
        assert ask(gate, "GET", f"/v2/team/app/blobs/{OTHER}") == (200, Upstream.blob)
        moved = ask(gate, "PUT", "/v2/team/app/manifests/v1", b'{"moved": true}')
        assert moved[0] == 403 and b"is immutable" in moved[1]
        assert ask(gate, "PUT", "/v2/team/app/manifests/v1", Upstream.manifest)[0] == 201  # same
        assert ask(gate, "PUT", "/v2/team/app/manifests/dev", b"{}")[0] == 201  # not immutable
        assert ask(gate, "DELETE", f"/v2/team/app/manifests/{digest}")[0] == 403  # v1 holds it
        assert Upstream.puts == ["/v2/team/app/manifests/v1", "/v2/team/app/manifests/dev"]
    finally:
        for server in (gate, upstream):
            server.shutdown()
            server.server_close()


def cosign_bundle(key: ec.EllipticCurvePrivateKey, digest: str, predicate: str) -> bytes:
    """A bundle as cosign 3 writes one: a DSSE envelope over an in-toto statement."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate,
        "predicate": {},
    }
    payload = json.dumps(statement).encode()
    kind = "application/vnd.in-toto+json"
    signature = key.sign(pae(kind, payload), ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": kind,
        "signatures": [{"sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps({"mediaType": BUNDLE_TYPE, "dsseEnvelope": envelope}).encode()


def test_a_cosign_bundle_vouches_for_its_digest_by_a_trusted_key_only() -> None:
    signer, stranger = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    trusted = [signer.public_key()]
    good = cosign_bundle(signer, DIGEST, COSIGN_PREDICATE)
    assert bundle_problem(good, DIGEST, trusted) is None
    # the same bundle offered for another image: tampered
    assert bundle_problem(good, OTHER, trusted) == f"it signs {DIGEST}, not {OTHER}"
    assert bundle_problem(good, DIGEST, [stranger.public_key()]) == "no trusted key made it"
    attestation = cosign_bundle(signer, DIGEST, "https://slsa.dev/provenance/v1")
    assert "not a cosign signature" in str(bundle_problem(attestation, DIGEST, trusted))
    assert (
        bundle_problem(b"{}", DIGEST, trusted) == "it is not a cosign bundle with a DSSE envelope"
    )
    # the envelope's payload changed after signing: the signature no longer holds
    forged = json.loads(good)
    statement = json.loads(base64.b64decode(forged["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = OTHER.removeprefix("sha256:")
    forged["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    assert bundle_problem(json.dumps(forged).encode(), OTHER, trusted) == "no trusted key made it"
