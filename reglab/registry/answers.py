"""What the registry's answers say, read without sending anything: the media types asked for,
one tag's summary, the registry's own error words, an index entry's platform, a TLS refusal's
reason. Pure functions, kept apart from the client that sends the requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

#: Manifest media types we accept, so the registry answers with the digest ``docker push`` showed.
MANIFEST_TYPES = ", ".join(
    f"application/vnd.{kind}+json"
    for kind in (
        "docker.distribution.manifest.v2", "docker.distribution.manifest.list.v2",
        "oci.image.manifest.v1", "oci.image.index.v1",
    )
)  # fmt: skip


@dataclass(frozen=True)
class ImageSummary:
    """What the registry browser shows of one tag."""

    repository: str
    tag: str
    digest: str
    size: int
    layers: tuple[tuple[str, int], ...]
    media_type: str
    #: For an image index (multi-platform): each platform ("linux/arm64") and its manifest.
    platforms: tuple[tuple[str, str], ...] = ()


def registry_errors(response: requests.Response) -> str:
    """The registry's own words for a failed request: ``CODE: message (detail)`` for each error
    in its JSON body (the body as text when it has none)."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    said = []
    for error in errors if isinstance(errors, list) else []:
        detail = error.get("detail")
        shown = f"{error.get('code')}: {error.get('message')}"
        if isinstance(detail, str) and detail:
            shown += f" ({detail})"
        said.append(shown)
    return "; ".join(said) or response.text.strip()[:300] or response.reason


def platform_of(entry: dict[str, Any]) -> str:
    """``os/architecture[/variant]`` of an index entry (``unknown`` when it names none)."""
    platform = entry.get("platform") or {}
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p) or "unknown"


def ssl_reason(exc: Exception) -> str:
    text = str(exc)
    for needle in ("certificate verify failed: ", "SSLError("):
        if needle in text:
            text = text.split(needle, 1)[1]
            break
    return text.split("(_ssl.c")[0].strip(" ('\")") or "certificate not trusted"
