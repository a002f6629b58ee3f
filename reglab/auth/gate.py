"""reglab's signature gate: in front of a registry, a manifest is served only when a trusted
key signed it, and a tag marked immutable cannot be moved or deleted. Small enough to read in
one sitting, like the token server.

The Docker engine reads no ``policy.json`` (skopeo, podman and CRI-O do): whatever it is told
to pull, it pulls. The check then has to sit where every client passes, in front of the
registry. For each ``GET`` or ``HEAD`` of ``/v2/NAME/manifests/REFERENCE`` the gate asks the
registry, takes the digest it answers (``Docker-Content-Digest``) and looks for a signature of
``NAME@DIGEST`` in the lookaside store, laid out as skopeo writes it
(``NAME@sha256=HEX/signature-N``, containers-signature(5)). A signature counts when ``gpgv``
finds it made by a key of the trusted keyring **and** the JSON it signs names that digest and
that repository (and, for a pull by tag, that tag: skopeo's default, ``matchRepoDigestOrExact``).
Otherwise the answer is ``403`` with the registry API's ``DENIED`` code, which ``docker pull``
shows as ``denied: MESSAGE``. Blobs pass through unchecked: the engine asks for them by the
digests a manifest that passed lists. Each manifest is checked by its own digest, so a
multi-platform index and each platform manifest need a signature each (``cosign sign
--recursive`` makes them).

A path the registry would read otherwise than the gate (percent-encoded, ``//``, ``.`` or
``..`` segments) is refused, not passed on: the registry's router decodes ``%72elease`` to
``release``, which the gate's own match would not see.

cosign's key pairs count too (``--cosign-keys``, a file of PEM public keys): cosign 3 stores a
signature as an OCI 1.1 referrer of the image, a Sigstore bundle whose DSSE envelope signs an
in-toto statement naming the image's digest; on a registry without the referrers API (2.8 and
3.1) it is listed by the fall-back tag ``sha256-HEX``. The gate reads that index, each bundle,
and checks the ECDSA signature over the envelope (DSSE's pre-authentication encoding) with
``cryptography``. No transparency log is consulted: the keys are the trust, as with GnuPG.

Key rotation is the keyring: a key taken out of it no longer vouches for anything, old
signatures included, at the next request. Immutable tags (``--immutable 'prod/*:v*'``,
patterns over ``REPOSITORY:TAG``) refuse a ``PUT`` that would point the tag at another
manifest (the same manifest again is allowed) and a ``DELETE`` of the tag or of the manifest
it names. No blob is deleted through the gate (a layer of an immutable tag would go with it):
garbage collection removes what no manifest uses.

Limits: the gate reads at most :data:`MAX_BUNDLES` cosign bundles of an image (anyone who may
push can add referrers, and so make an image's check slower or, past that many, refused: a
denial of service, never a pass), and :data:`MAX_SIGNATURES` GnuPG signatures.

Only the standard library, ``gpgv`` and (for cosign keys) ``cryptography``, Debian's
packages: its container runs this file as it is (``python3 -m reglab.auth.gate --help``).
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import http.client
import json
import posixpath
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

#: ``/v2/NAME/manifests/REFERENCE`` (distribution's name grammar, a tag or a digest).
MANIFEST_PATH = re.compile(
    r"^/v2/(?P<name>[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*)"
    r"/manifests/(?P<reference>[A-Za-z0-9_][A-Za-z0-9._:=+-]*)$"
)
#: ``/v2/NAME/blobs/DIGEST``: a layer or a config (``blobs/uploads/...`` is an upload).
BLOB_PATH = re.compile(r"^/v2/.+/blobs/(?!uploads/)[^/]+$")
DIGEST = re.compile(r"^(?P<alg>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")
#: What a simple-signing payload says it is.
SIGNATURE_TYPE = "atomic container signature"
#: How many signatures of one image are read at most (signature-1 ... signature-N).
MAX_SIGNATURES = 16
#: What the gate asks for when it looks a tag up itself: every manifest type an image may be.
#: (Without it a 2.8 registry answers a schema 1 conversion: another manifest, another digest.)
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])  # fmt: skip
#: What a cosign 3 signature is, as an artifact, and what its statement says it is.
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
#: How many referrers of one image are read at most when looking for a cosign bundle.
MAX_BUNDLES = 16
#: The biggest manifest the gate reads to check (the registry's own limit is 4 MiB).
MANIFEST_LIMIT = 4 << 20


def lookaside_path(repository: str, digest: str, index: int = 1) -> str:
    """Where signature number ``index`` (from 1) of ``repository@digest`` sits in a lookaside
    store: ``REPOSITORY@ALG=HEX/signature-N`` (the registry's host is not part of it; the store
    is per registry)."""
    match = DIGEST.match(digest)
    if match is None or index < 1:
        raise ValueError(f"not a digest and a signature number from 1: {digest!r}, {index}")
    path = PurePosixPath(repository.strip("/"))
    return f"{path}@{match['alg']}={match['hex']}/signature-{index}"


def verify(signature: bytes, keyring: Path, gpgv: str = "gpgv") -> bytes | None:
    """The payload a signature signs, when a key of ``keyring`` made it; None otherwise (a
    bad signature, an unknown key, not a signature at all)."""
    with tempfile.NamedTemporaryFile(prefix="reglab-sig-") as file:
        file.write(signature)
        file.flush()
        done = subprocess.run(
            [gpgv, "--keyring", str(keyring), "--output", "-", file.name],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
    return done.stdout if done.returncode == 0 else None


def identity_of(reference: str) -> tuple[str, str | None]:
    """The repository and tag (None for none) a signed ``docker-reference`` names, without its
    registry host or digest (a gate may sit at another address than the one the signer used)."""
    name = reference.split("@", 1)[0]
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    head, colon, tag = name.rpartition(":")
    return (head, tag) if colon and "/" not in tag else (name, None)


def repository_of(reference: str) -> str:
    """The repository a signed ``docker-reference`` names (:func:`identity_of`)."""
    return identity_of(reference)[0]


def payload_problem(
    payload: bytes, repository: str, digest: str, tag: str | None = None
) -> str | None:
    """Why a (good) signature's payload does not vouch for ``repository@digest``, asked for
    as ``tag`` (None: by digest); None when it does. The digest is what ties a signature to
    bytes: a tag moved to another manifest keeps its name and loses its signature. As
    containers-policy.json(5)'s default ``matchRepoDigestOrExact``: asked for by digest, the
    repository must match; asked for by tag, the signed name must be that very tag (a
    signature of ``app:debug`` does not vouch for the same bytes tagged ``app:prod``)."""
    try:
        critical = json.loads(payload)["critical"]
        kind = critical["type"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        reference = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return "its payload is not a simple-signing document"
    if kind != SIGNATURE_TYPE:
        return f"its payload is a {kind!r}, not an {SIGNATURE_TYPE!r}"
    if signed_digest != digest:
        return f"it signs {signed_digest}, not {digest}"
    signed_repository, signed_tag = identity_of(str(reference))
    if signed_repository != repository:
        return f"it names {reference}, not the repository {repository}"
    if tag is not None and signed_tag != tag:
        return f"it names {reference}, not {repository}:{tag}"
    return None


#: A GET of a path of the registry: its status and body (the gate's own questions).
Fetch = Callable[[str], tuple[int, bytes]]


def fallback_tag(digest: str) -> str:
    """OCI 1.1's referrers fall-back tag of ``digest``: ``sha256-HEX``."""
    match = DIGEST.match(digest)
    if match is None:
        raise ValueError(f"not a digest: {digest!r}")
    return f"{match['alg'][:32]}-{match['hex'][:64]}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what an envelope's signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def cosign_keys(path: Path) -> list[Any]:
    """The ECDSA public keys of a PEM file (one or more ``PUBLIC KEY`` blocks)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = path.read_bytes() if path.is_file() else b""
    blocks = re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", text, re.S)
    return [load_pem_public_key(block) for block in blocks]


def bundle_problem(bundle: bytes, digest: str, keys: list[Any]) -> str | None:
    """Why a cosign bundle does not vouch for ``digest``; None when a key of ``keys`` signed
    a statement naming it."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        envelope = json.loads(bundle)["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"])
        signed = pae(str(envelope["payloadType"]), payload)
        signatures = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
        statement = json.loads(payload)
    except (ValueError, KeyError, TypeError):
        return "it is not a cosign bundle with a DSSE envelope"
    trusted = False
    for signature in signatures:
        for key in keys:
            try:
                key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
                trusted = True
            except (InvalidSignature, TypeError, ValueError):
                continue
    if not trusted:
        return "no trusted key made it"
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject") or []]
    if f"sha256:{subjects[0] if subjects else ''}" != digest:
        return f"it signs sha256:{subjects[0] if subjects else '?'}, not {digest}"
    if statement.get("predicateType") != COSIGN_PREDICATE:
        return f"it is a {statement.get('predicateType')!r} statement, not a cosign signature"
    return None


@dataclass(frozen=True)
class Policy:
    """What the gate enforces: signatures by the keys of ``keyring`` found in ``lookaside``,
    and tags matching ``immutable`` (``REPOSITORY:TAG`` patterns)."""

    lookaside: Path
    keyring: Path
    immutable: tuple[str, ...] = ()
    gpgv: str = "gpgv"
    #: A PEM file of trusted cosign public keys (absent: no cosign key is trusted).
    cosign: Path | None = None

    def unsigned(
        self, repository: str, digest: str, fetch: Fetch | None = None, tag: str | None = None
    ) -> str | None:
        """Why ``repository@digest`` (asked for as ``tag``, or by digest) may not be served;
        None when a trusted key signed it: GnuPG in the lookaside store (for that tag, as
        :func:`payload_problem` says), or cosign in the registry, asked through ``fetch``
        (cosign signs the digest alone: any tag of the repository with it passes)."""
        problem = self.gpg_problem(repository, digest, tag)
        if problem is None or self.cosign is None or fetch is None:
            return problem
        keys = cosign_keys(self.cosign)
        if not keys:
            return problem
        also = self.cosign_problem(repository, digest, fetch, keys)
        return None if also is None else f"{problem}; {also}"

    def cosign_problem(
        self, repository: str, digest: str, fetch: Fetch, keys: list[Any]
    ) -> str | None:
        """Why no cosign bundle among the image's referrers vouches for it; None when one does."""
        status, body = fetch(f"/v2/{repository}/manifests/{fallback_tag(digest)}")
        if status != 200:
            return "no cosign signature (no referrers)"
        try:
            entries = json.loads(body).get("manifests") or []
        except ValueError:
            return "its referrers index is not JSON"
        seen: list[str] = []
        bundles = [e for e in entries if e.get("artifactType") == BUNDLE_TYPE][:MAX_BUNDLES]
        for entry in bundles:
            status, body = fetch(f"/v2/{repository}/manifests/{entry.get('digest')}")
            layers = (json.loads(body).get("layers") or []) if status == 200 else []
            layer = next((x for x in layers if x.get("mediaType") == BUNDLE_TYPE), None)
            if layer is None:
                continue
            status, bundle = fetch(f"/v2/{repository}/blobs/{layer['digest']}")
            if status != 200 or f"sha256:{hashlib.sha256(bundle).hexdigest()}" != layer["digest"]:
                continue
            problem = bundle_problem(bundle, digest, keys)
            if problem is None:
                return None
            seen.append(f"cosign {entry.get('digest', '?')[:19]}: {problem}")
        return "; ".join(seen) if seen else "no cosign signature among its referrers"

    def gpg_problem(self, repository: str, digest: str, tag: str | None = None) -> str | None:
        """Why no GnuPG signature in the lookaside store vouches for it; None when one does."""
        seen: list[str] = []
        for index in range(1, MAX_SIGNATURES + 1):
            path = self.lookaside / lookaside_path(repository, digest, index)
            if not path.is_file():
                break
            payload = verify(path.read_bytes(), self.keyring, self.gpgv)
            problem = "no trusted key made it" if payload is None else None
            problem = problem or payload_problem(payload or b"", repository, digest, tag)
            if problem is None:
                return None
            seen.append(f"signature-{index}: {problem}")
        if not seen:
            return f"{repository}@{digest} is not signed (no signature in the lookaside store)"
        return f"{repository}@{digest} has no valid signature by a trusted key ({'; '.join(seen)})"

    def is_immutable(self, repository: str, tag: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{repository}:{tag}", p) for p in self.immutable)


def denied(message: str) -> tuple[int, bytes]:
    """The registry API's refusal: ``403`` and ``DENIED``, which the Docker engine prints."""
    body = {"errors": [{"code": "DENIED", "message": message}]}
    return 403, json.dumps(body).encode()


def handler(policy: Policy, upstream: str) -> type[BaseHTTPRequestHandler]:
    target = urlparse(upstream)
    if target.scheme != "http" or not target.hostname:
        raise ValueError(f"the upstream must be an http:// URL, got {upstream!r}")
    host, port = target.hostname, target.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        _connections: list[http.client.HTTPConnection]

        def handle_one_request(self) -> None:
            """One request; the connections it opened to the registry are closed after it."""
            self._connections = []
            try:
                super().handle_one_request()
            finally:
                for connection in self._connections:
                    connection.close()

        def _ask(
            self, method: str, path: str, body: bytes | None = None, lookup: bool = False
        ) -> Any:
            """The same request, sent to the registry; its response (not yet read). A
            ``lookup`` is the gate's own question about a tag: every manifest type accepted."""
            connection = http.client.HTTPConnection(host, port, timeout=300)
            self._connections.append(connection)
            skip = {"host", "content-length", "connection", "transfer-encoding"}
            # A header sent several times (the Docker engine sends one Accept per manifest
            # type) is passed on whole, joined as HTTP allows: with only the last type, a
            # 2.8 registry answers a schema 1 conversion, another manifest, another digest.
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                if key.lower() not in skip:
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
            headers["Host"] = self.headers.get("Host", f"{host}:{port}")
            if lookup:
                drop = ("content-type", "accept")
                headers = {k: v for k, v in headers.items() if k.lower() not in drop}
                headers["Accept"] = MANIFEST_TYPES
            if body is not None:
                headers["Content-Length"] = str(len(body))
            connection.request(method, path, body=body, headers=headers)
            return connection.getresponse()

        def _fetch(self, path: str) -> tuple[int, bytes]:
            """A GET of the gate's own (a cosign bundle), with the client's credentials."""
            response = self._ask("GET", path, lookup=True)
            return response.status, response.read(MANIFEST_LIMIT)

        def _body(self) -> bytes | None:
            length = self.headers.get("Content-Length")
            if length is not None:
                return self.rfile.read(int(length))
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._chunked()
            return None

        def _chunked(self) -> bytes:
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()

        def _relay(self, response: Any, body: bytes | None = None) -> None:
            """Send the registry's response on: its status, headers and body (streamed)."""
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(key, value)
            chunked = body is None and response.getheader("Content-Length") is None
            if chunked and self.command != "HEAD":
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            if body is not None:
                self.wfile.write(body)
                return
            while chunk := response.read(1 << 20):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

        def _refuse(self, message: str) -> None:
            status, body = denied(message)
            self.log_message("denied: %s", message)
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self) -> None:
            self._relay(self._ask(self.command, self.path, self._body()))

        def _unclean(self) -> bool:
            """Refuse a path the registry would read otherwise than the gate: percent-encoded
            (the registry decodes ``%72elease`` to ``release``), or with ``//``, ``.`` or
            ``..`` segments. No client of the workshop sends one."""
            path = urlparse(self.path).path
            trimmed = path.rstrip("/") or "/"
            if "%" not in path and posixpath.normpath(trimmed) == trimmed:
                return False
            self._refuse(f"the gate takes no encoded or unclean paths: {path[:120]}")
            return True

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self._unclean():
                return None
            match = MANIFEST_PATH.match(urlparse(self.path).path)
            if match is None:
                return self._forward()
            response = self._ask(self.command, self.path)
            if response.status != 200:
                return self._relay(response)
            body = response.read(MANIFEST_LIMIT) if self.command == "GET" else b""
            digest = response.getheader("Docker-Content-Digest") or (
                f"sha256:{hashlib.sha256(body).hexdigest()}"
            )
            reference = match["reference"]
            tag = None if DIGEST.match(reference) else reference
            problem = policy.unsigned(match["name"], digest, self._fetch, tag)
            if problem is not None:
                return self._refuse(problem)
            self._relay(response, body if self.command == "GET" else None)

        do_HEAD = do_GET  # noqa: N815

        def do_PUT(self) -> None:  # noqa: N802
            if self._unclean():
                return None
            match = MANIFEST_PATH.match(urlparse(self.path).path)
            body = self._body()
            if match is not None and policy.is_immutable(match["name"], match["reference"]):
                current = self._ask("HEAD", self.path, lookup=True)
                current.read()
                now = current.getheader("Docker-Content-Digest")
                new = f"sha256:{hashlib.sha256(body or b'').hexdigest()}"
                if current.status == 200 and now != new:
                    tag = f"{match['name']}:{match['reference']}"
                    return self._refuse(f"{tag} is immutable: it stays on {now}")
            self._relay(self._ask("PUT", self.path, body))

        def do_DELETE(self) -> None:  # noqa: N802
            if self._unclean():
                return None
            if BLOB_PATH.match(urlparse(self.path).path):  # a layer of an immutable tag, too
                return self._refuse("blobs are not deleted through the gate: garbage collection "
                                    "removes what no manifest uses")  # fmt: skip
            match = MANIFEST_PATH.match(urlparse(self.path).path)
            if match is not None:
                name, reference = match["name"], match["reference"]
                held = self._immutable_tags(name, reference)
                if held:
                    return self._refuse(f"{name}:{held[0]} is immutable: it cannot be deleted")
            self._forward()

        def _immutable_tags(self, name: str, reference: str) -> list[str]:
            """The immutable tags a DELETE of ``reference`` (a tag, or a digest) would remove."""
            if DIGEST.match(reference) is None:
                return [reference] if policy.is_immutable(name, reference) else []
            listed = self._ask("GET", f"/v2/{name}/tags/list")
            tags = json.loads(listed.read() or b"{}").get("tags") or []
            held = []
            for tag in (t for t in tags if policy.is_immutable(name, t)):
                answer = self._ask("HEAD", f"/v2/{name}/manifests/{tag}", lookup=True)
                answer.read()
                if answer.getheader("Docker-Content-Digest") == reference:
                    held.append(tag)
            return held

        def _upload(self) -> None:
            if not self._unclean():
                self._forward()

        do_POST = do_PATCH = _upload  # noqa: N815 (uploads pass through)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="reglab's signature gate in front of a registry")
    parser.add_argument("--listen", default="0.0.0.0:5000", help="address:port (%(default)s)")
    parser.add_argument("--upstream", required=True, help="the registry, http://HOST:PORT")
    parser.add_argument("--lookaside", required=True, type=Path, help="the signatures' store")
    parser.add_argument("--keyring", required=True, type=Path, help="trusted keys (gpg --export)")
    parser.add_argument("--cosign-keys", type=Path, help="trusted cosign public keys (PEM)")
    parser.add_argument("--immutable", action="append", default=[], metavar="REPO:TAG-PATTERN",
                        help="tags that may not move, e.g. 'prod/*:v*' (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    policy = Policy(args.lookaside, args.keyring, tuple(args.immutable), cosign=args.cosign_keys)
    address, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((address or "0.0.0.0", int(port)), handler(policy, args.upstream))
    print(f"gate: {args.listen} -> {args.upstream}, keys {args.keyring}", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
