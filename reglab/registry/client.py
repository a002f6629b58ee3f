"""A small client for the registry's HTTP API v2, used to *prove* each workshop step worked.

Unlike Docker on 127.0.0.0/8 (which never verifies TLS there), this client verifies the
registry's certificate against the CA file you give it, so a TLS check here is a real check.
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from pathlib import Path
from typing import Any

import requests
import requests.auth
import urllib3

from reglab.base.errors import AuthenticationRequired, ClientError, TLSVerificationFailed
from reglab.registry.answers import (
    MANIFEST_TYPES,
    ImageSummary,
    platform_of,
    registry_errors,
    ssl_reason,
)

#: An answer as the client returns it (the one HTTP library is named only in this package).
Answer = requests.Response

#: Catalog page size: 2.8's maximum (a larger n is refused).
CATALOG_PAGE = 1000


class RegistryClient:
    """Talk to one registry.

    ``url`` is ``http://HOST:PORT`` or ``https://HOST:PORT``; ``ca`` the CA file that must have
    signed the registry's certificate (None: system trust store); ``auth`` a (user, password) pair.
    """

    def __init__(
        self, url: str, *, ca: str | Path | None = None, auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.session = requests.Session()
        # Passed with every request: a session-wide verify is overridden by REQUESTS_CA_BUNDLE.
        self.verify: str | bool = str(ca) if ca else True
        self.session.auth = auth
        self.timeout = timeout
        # Tokens by (realm, service, scope), with when they stop being used: like the Docker
        # engine, one token serves many requests (each new one costs a password check).
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._repositories: dict[str, tuple[str, ...]] = {}  # repository -> its last token's key

    @property
    def user(self) -> str | None:
        auth = self.session.auth
        return auth[0] if isinstance(auth, tuple) else None

    def __repr__(self) -> str:  # never shows the password
        return f"RegistryClient({self.url!r}, user={self.user!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request; raise ClientError (or a subclass) with the fix on failure.

        A registry with token authentication answers 401 with a ``Bearer`` challenge: the
        client then asks the challenge's realm for a token (with its user and password, or
        anonymously), for the challenge's service and scope, and sends the request again with
        ``Authorization: Bearer TOKEN``, as the Docker engine does. Like the engine, it then
        sends that token with the next requests for the same repository: an upload's ``PATCH``
        carries its data once, not first to a 401 (which a registry may answer before it
        read the data, and then close the connection)."""
        url = f"{self.url}{path}"
        repository = _repository(path)
        known = self._token_of(repository)
        response = self._send(method, url, **kwargs, **({"auth": _Bearer(known)} if known else {}))
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("bearer "):
            asked = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            token = self._token_for(asked)
            if repository:
                self._repositories[repository] = self._token_key(asked)
            response.close()  # (a streamed answer is not read: its connection is let go)
            response = self._send(method, url, auth=_Bearer(token), **kwargs)
            if response.status_code == 401:  # the token server granted less than asked
                raise AuthenticationRequired(
                    f"{method} {path.split('?', 1)[0]} was refused: the token for "
                    f"{self.user or 'anonymous'} does not grant {asked.get('scope', 'access')}",
                    "the access list (auth/acl.yml) decides: the first rule that matches the "
                    "user and the repository must allow it",
                    status=401,
                )
        if response.status_code == 401:
            raise AuthenticationRequired(
                f"{method} {path} was refused: 401 Unauthorized "
                f"({'wrong user or password' if self.session.auth else 'no credentials sent'})",
                "give the right user and password",
                status=401,
            )
        if response.status_code >= 400:
            raise ClientError(
                f"{method} {path.split('?', 1)[0]} answered {response.status_code}: "
                + registry_errors(response),
                status=response.status_code,
            )
        return response

    @staticmethod
    def _token_key(challenge: dict[str, str]) -> tuple[str, ...]:
        return tuple(challenge.get(k, "") for k in ("realm", "service", "scope"))

    def _token_of(self, repository: str) -> str:
        """The token last used for ``repository``, while it is good ("" otherwise)."""
        key = self._repositories.get(repository)
        token, until = self._tokens.get(key, ("", 0.0)) if key else ("", 0.0)
        return token if token and time.monotonic() < until else ""

    def _token_for(self, challenge: dict[str, str]) -> str:
        """A token for the challenge: the one fetched before for the same realm, service and
        scope while it is good for 10 s more, else a new one."""
        key = self._token_key(challenge)
        token, until = self._tokens.get(key, ("", 0.0))
        if not token or time.monotonic() > until:
            token, lifetime = self._fetch_token(challenge)
            self._tokens[key] = (token, time.monotonic() + lifetime - 10)
        return token

    def token(self, challenge: dict[str, str]) -> str:
        """A new token from ``challenge["realm"]`` for its service and scope (the token server
        verifies TLS against the same CA as the registry)."""
        return self._fetch_token(challenge)[0]

    def _fetch_token(self, challenge: dict[str, str]) -> tuple[str, float]:
        """A token and how many seconds it is good for (``expires_in``; 60 when not said, the
        minimum the token specification allows)."""
        realm = challenge.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise ClientError(f"the registry's token realm {realm!r} is not an absolute URL")
        params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
        answer = self._send("GET", realm, params=params, auth=self.session.auth)
        if answer.status_code == 401:
            who = self.user or "an anonymous request"
            raise AuthenticationRequired(
                f"the token server refused {who}: 401 Unauthorized (wrong user or password)",
                "give the right user and password",
                status=401,
            )
        if answer.status_code != 200:
            raise ClientError(
                f"the token server answered {answer.status_code}", status=answer.status_code
            )
        body = answer.json()
        return str(body["token"]), float(body.get("expires_in") or 60)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, verify=self.verify, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            reason = ssl_reason(exc)
            raise TLSVerificationFailed(
                f"TLS verification of {self.url} failed: {reason}",
                "pass the CA that signed the registry's certificate (ca=.../ca.crt) and make sure "
                "the certificate lists this host name or IP as a SAN",
            ) from None
        except requests.exceptions.ConnectionError:
            raise ClientError(
                f"cannot connect to {self.url}",
                "start the registry (reglab up STAGE) and check the port",
            ) from None
        except requests.exceptions.Timeout:
            raise ClientError(
                f"{self.url} did not answer in {self.timeout:g} s",
                "check the registry's logs (reglab status)",
            ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise ClientError(
                f"the answer of {self.url} broke off before its end",
                "the registry stopped while it answered: ask again",
            ) from None
        return response

    def ping(self) -> int:
        """``GET /v2/``: 200 when the registry answers (raises on 401 / TLS / connection)."""
        return self.request("GET", "/v2/").status_code

    def status(self) -> int:
        """The status of ``GET /v2/``, whatever it is (401 too): a refusal shown, not raised."""
        return self._answer("GET", "/v2/")

    def answer(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer to exactly this request, as it is: no token flow, a refusal returned, not
        raised (a step shows a 401 and its challenge, or sends a token of its own)."""
        return self._send(method, f"{self.url}{path}", **kwargs)

    def _answer(self, method: str, path: str) -> int:  # raises only when nothing answered
        try:
            return self.request(method, path).status_code
        except ClientError as exc:
            if exc.status is None:
                raise
            return exc.status

    def catalog(self, page_size: int = CATALOG_PAGE) -> list[str]:
        """Repository names the registry holds, every page of them.

        CLI: ``curl HOST:PORT/v2/_catalog?n=1000``. The registry answers at most ``n`` names
        a page (2.8 refuses ``n`` above 1000 with PAGINATION_NUMBER_INVALID) and names the next
        page in a ``Link`` header, which this follows.
        """
        names: list[str] = []
        path: str | None = f"/v2/_catalog?n={page_size}"
        while path is not None:
            response = self.request("GET", path)
            names += [str(r) for r in response.json().get("repositories") or []]
            following = response.links.get("next", {}).get("url")
            path = str(following) if following else None
        return names

    def tags(self, repository: str) -> list[str]:
        """Tags of ``repository``.  CLI: ``curl HOST:PORT/v2/REPO/tags/list``."""
        answer = self.request("GET", f"/v2/{repository}/tags/list").json()
        return [str(t) for t in answer.get("tags") or []]

    def manifest(self, repository: str, reference: str = "latest") -> dict[str, Any]:
        """The manifest of ``repository:reference`` (a tag or a digest)."""
        response = self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
        )
        manifest: dict[str, Any] = response.json()
        return manifest

    def image_summary(self, repository: str, reference: str = "latest") -> ImageSummary:
        """Digest, total size and layers of ``repository:reference``, from its manifest."""
        digest = self.manifest_digest(repository, reference)
        manifest = self.manifest(repository, digest)
        layers = tuple(
            (str(layer["digest"]), int(layer["size"])) for layer in manifest.get("layers", [])
        )
        config = manifest.get("config", {})
        children = manifest.get("manifests", [])  # an index: one manifest per platform
        platforms = tuple((platform_of(child), str(child["digest"])) for child in children)
        size = sum(size for _, size in layers) + int(config.get("size", 0))
        size += sum(int(child.get("size", 0)) for child in children)
        media_type = str(manifest.get("mediaType", ""))
        return ImageSummary(repository, reference, digest, size, layers, media_type, platforms)

    def verify_image(self, repository: str, reference: str = "latest") -> int:
        """Download the manifest and every blob it names, checking each blob's SHA-256.

        Returns the bytes downloaded. Raises ClientError when any blob does not match its
        digest: what a pulling client must refuse.
        """
        manifest = self.manifest(repository, reference)
        total = 0
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            digest = blob["digest"]
            sha = hashlib.sha256()
            response = self.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True)
            try:
                with response:
                    for chunk in response.iter_content(1 << 20):
                        sha.update(chunk)
                        total += len(chunk)
            except requests.RequestException as exc:  # the answer broke off: one line
                raise ClientError(
                    f"blob {digest} of {repository}: the answer broke off ({exc})",
                    "read the registry's log (docker logs); a stale cache answers for a blob "
                    "that is gone: restart the registry",
                ) from exc
            if f"sha256:{sha.hexdigest()}" != digest:
                raise ClientError(
                    f"blob {digest} of {repository} does not match its digest",
                    "the registry's storage is damaged; push the image again",
                )
        return total

    def blob_status(self, repository: str, digest: str) -> int:
        """The status of ``HEAD /v2/REPO/blobs/DIGEST``: 200 when the registry says it has the
        blob, 404 when not (what it says, which after garbage collection may be its cache)."""
        return self._answer("HEAD", f"/v2/{repository}/blobs/{digest}")

    def upload_blob(
        self, repository: str, data: bytes, headers: dict[str, str] | None = None
    ) -> str:
        """Upload ``data`` as one blob (monolithic: POST, then PUT with the digest); return
        the digest. No manifest refers to it, so garbage collection removes it. ``headers``
        go with both requests."""
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        extra = headers or {}
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/", headers=extra)
        location = started.headers["Location"]
        path = location.split(self.url, 1)[-1] if location.startswith("http") else location
        separator = "&" if "?" in path else "?"
        headers = {"Content-Type": "application/octet-stream", **extra}
        self.request("PUT", f"{path}{separator}digest={digest}", data=data, headers=headers)
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        """``DELETE /v2/REPO/manifests/REFERENCE``, with deletes enabled: a digest deletes the
        image and every tag that points to it; a tag (registry 3 only: 2.8 answers 400) removes
        that tag alone. The blobs stay on disk until garbage collection.
        """
        self.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}
        )

    def manifest_digest(self, repository: str, reference: str = "latest") -> str:
        """The digest (``sha256:...``) the registry serves for ``repository:reference``.

        It equals the digest ``docker push`` printed, so comparing them proves a round trip.
        """
        response = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
        )
        return str(response.headers["Docker-Content-Digest"])


def read_all(response: requests.Response, into: bytearray) -> None:
    """Read a streamed answer to its end into ``into``. Raises ClientError when it breaks off
    (a replica killed while it answered); ``into`` keeps what arrived, so a ``Range`` request
    can ask for the rest."""
    try:
        with response:
            for chunk in response.iter_content(1 << 16):
                into += chunk
    except requests.RequestException as exc:
        raise ClientError(f"the answer broke off: {exc}", "ask for the rest (Range)") from exc


def fetch_text(url: str, timeout: float = 5.0) -> str | None:
    """The body of ``GET url`` (a page that is not a registry's, such as HAProxy's statistics),
    or None when nothing answers."""
    try:
        with requests.Session() as session:
            return session.get(url, timeout=timeout).text
    except requests.RequestException:
        return None


def probe_status(
    url: str,
    verify: str | bool = True,
    params: dict[str, str] | None = None,
    timeout: float = 1.0,
    auth: tuple[str, str] | None = None,
) -> int | str:
    """The status of one ``GET url``, or the name of what went wrong (``ConnectionError``):
    a readiness probe's answer, never raised. ``verify=False`` only asks "does it answer?"."""
    try:
        with warnings.catch_warnings(), requests.Session() as session:
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            answer = session.get(url, params=params, timeout=timeout, verify=verify, auth=auth)
            return answer.status_code
    except requests.exceptions.RequestException as exc:
        return exc.__class__.__name__


def _repository(path: str) -> str:
    """The repository a ``/v2/NAME/(blobs|manifests|tags)/...`` path names ("" for others)."""
    match = re.match(r"/v2/(.+?)/(?:blobs|manifests|tags)/", path)
    return match.group(1) if match else ""


class _Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer TOKEN`` (it replaces the session's basic auth for one request)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request
