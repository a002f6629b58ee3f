"""Upgrading a 2.8 registry to 3: what its configuration means to registry 3, and the
configuration that keeps it doing what it did.

Registry 3 starts on a 2.8 configuration, and that is the trap: it reads YAML non-strictly, so a
key that moved (``redis.addr`` became ``redis.addrs``) or went away is dropped in silence and the
registry runs differently. :func:`check` lists each such difference as a :class:`Finding`, one
line with its fix; :func:`translate` rewrites what can be rewritten, and
:func:`write_translation` writes the result only when its own check passes.

A configuration comes from a YAML file or from a container's ``REGISTRY_*`` environment on top
of its image's own file (reglab.registry.v2config). Everything here is pure but the one write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reglab.base.errors import ConfigError, Problem
from reglab.base.files import write_atomic
from reglab.base.versions import V2, V3
from reglab.registry.v2config import Source
from reglab.registry.v3keys import SIGNING_ALGORITHMS, unknown_keys

#: 2.8's keys that registry 3 reads under another name (go-redis's options, flat under redis).
MOVED = {
    "redis.addr": "redis.addrs",
    "redis.pool.maxidle": "redis.maxidleconns",
    "redis.pool.maxactive": "redis.poolsize",
    "redis.pool.idletimeout": "redis.connmaxidletime",
}
#: 2.8's sections with no successor: what the operator loses, and what to do.
GONE = {
    "compatibility": (
        "schema-1 manifests are gone in v3: such pushes and pulls are refused",
        "remove it, and push schema-1 images again as schema 2 or OCI",
    ),
    "reporting": (
        "v3 has no bugsnag or newrelic reporting",
        "remove it; v3 exports traces through OpenTelemetry (OTEL_* variables)",
    ),
    "storage.swift": (
        "v3 has no swift storage driver: it does not start",
        "copy the data to s3, gcs, azure or filesystem storage first",
    ),
    "storage.oss": (
        "v3 has no oss storage driver: it does not start",
        "copy the data to s3, gcs, azure or filesystem storage first",
    ),
}
#: Storage drivers v3 lacks: no rewriting helps, the data has to move.
GONE_DRIVERS = ("storage.swift", "storage.oss")
#: What 2.8 did for a proxy without being told, and v3 reads from ``proxy.ttl``.
PROXY_TTL = "168h"


@dataclass(frozen=True)
class Finding:
    """One thing registry 3 reads differently. ``blocking``: v3 would run differently (or not
    at all) than the 2.8 registry did; otherwise a note, worth knowing, nothing to change."""

    key: str
    what: str
    fix: str
    blocking: bool = True

    def __str__(self) -> str:
        line = str(Problem(f"{self.key}: {self.what}", self.fix))
        return line if self.blocking else f"note: {line}"


@dataclass(frozen=True)
class Translation:
    config: dict[str, Any]
    #: What changed, one line each (``redis.addr -> redis.addrs``).
    changes: tuple[str, ...]


def _get(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def check(source: Source) -> list[Finding]:
    """What registry 3 would read differently from ``source``: the blocking findings first."""
    config = source.config
    found = [_unknown(config, key) for key in unknown_keys(config)]
    if "version" not in config:
        found.append(Finding("version", "missing: no registry starts", "version: 0.1"))
    s3 = _get(config, "storage.s3")
    if isinstance(s3, Mapping) and s3.get("regionendpoint") and "forcepathstyle" not in s3:
        found.append(Finding(
            "storage.s3.forcepathstyle",
            "2.8 sent path-style requests to regionendpoint; v3 asks BUCKET.HOST instead, "
            "which an S3 server of your own does not answer",
            "storage.s3.forcepathstyle: true",
        ))  # fmt: skip
    redis_cache = _get(config, "storage.cache.blobdescriptor") == "redis"
    if redis_cache and not _get(config, "redis.addrs") and not _get(config, "redis.addr"):
        found.append(Finding(
            "redis.addrs", "missing, with blobdescriptor: redis: v3 panics at start",
            "redis.addrs: [HOST:6379]",
        ))  # fmt: skip
    found += _token(config) + _mounts(source) + _defaults(source)
    if redis_cache and _get(config, "storage.delete.enabled"):
        found.append(Finding(
            "storage.cache.blobdescriptor",
            "2.8 and 3.0 keep serving a deleted blob from the Redis cache (CVE-2026-35172)",
            "run 3.1 or later; until then FLUSHDB after deleting", blocking=False,
        ))  # fmt: skip
    found += _proxy(config)
    return sorted(found, key=lambda f: not f.blocking)


def _unknown(config: Mapping[str, Any], key: str) -> Finding:
    if key in MOVED:
        new = MOVED[key]
        what = f"v3 ignores it in silence; it reads {new}"
        if key == "redis.addr":
            what += " (a list)"
            if _get(config, "storage.cache.blobdescriptor") == "redis":
                what += ", and with blobdescriptor: redis panics at start without it"
            return Finding(key, what, f"redis.addrs: [{_get(config, key)}]")
        return Finding(key, what, f"{new}: {_get(config, key)}")
    if key == "redis.pool":  # its keys, one by one
        pool = _get(config, key)
        moved = [f"{MOVED[f'redis.pool.{k}']}" for k in pool or {} if f"redis.pool.{k}" in MOVED]
        fix = f"move them flat under redis: {', '.join(moved)}" if moved else "remove it"
        return Finding(key, "v3 ignores 2.8's pool in silence (go-redis options)", fix)
    for gone, (what, fix) in GONE.items():
        if key == gone or key.startswith(gone + "."):
            return Finding(key, what, fix)
    return Finding(key, "v3 ignores it in silence (no such key)", "remove it, or correct its name")


def _token(config: Mapping[str, Any]) -> list[Finding]:
    token = _get(config, "auth.token")
    if not isinstance(token, Mapping):
        return []
    found = []
    algorithms = token.get("signingalgorithms")
    if algorithms is not None:
        wrong = [a for a in (algorithms if isinstance(algorithms, list) else [algorithms])
                 if a not in SIGNING_ALGORITHMS]  # fmt: skip
        if wrong or not isinstance(algorithms, list):
            found.append(Finding(
                "auth.token.signingalgorithms", f"v3 does not start with {wrong or algorithms}",
                f"a list of: {', '.join(SIGNING_ALGORITHMS)}",
            ))  # fmt: skip
    found.append(Finding(
        "auth.token",
        "v3 trusts a token's bare kid only as the RFC 7638 thumbprint of a rootcertbundle key "
        "or a key of jwks (2.8: the libtrust fingerprint); an x5c chain verifies as before",
        "have the token server send x5c, or a kid v3 computes the same way", blocking=False,
    ))  # fmt: skip
    return found


def _mounts(source: Source) -> list[Finding]:
    if V2.config_path in source.mounts or "/etc/docker/registry" in source.mounts:
        return [Finding(
            V2.config_path, f"registry:3 reads {V3.config_path}: a file mounted at 2.8's path "
            "is ignored and v3 runs its image's own configuration",
            f"mount it at {V3.config_path}",
        )]  # fmt: skip
    if source.image_defaults is None and not source.mounts:
        return [Finding(
            "config file", f"registry:3 reads {V3.config_path} ({V2.image}: {V2.config_path})",
            f"-v FILE:{V3.config_path}:ro", blocking=False,
        )]  # fmt: skip
    return []


def _defaults(source: Source) -> list[Finding]:
    """An image's own file under the variables: registry:3's differs from registry:2's."""
    if source.image_defaults != "2" or _get(source.config, "storage.delete.enabled") is not None:
        return []
    return [Finding(
        "storage.delete.enabled", "unset: registry:2's own configuration refuses deletes, "
        "registry:3's accepts them",
        "REGISTRY_STORAGE_DELETE_ENABLED=false keeps them refused (true: accepted)",
    )]  # fmt: skip


def _proxy(config: Mapping[str, Any]) -> list[Finding]:
    proxy = _get(config, "proxy")
    if not isinstance(proxy, Mapping) or not proxy.get("remoteurl"):
        return []
    found = []
    if "ttl" not in proxy:
        found.append(Finding(
            "proxy.ttl", f"2.8 deleted cached content after a fixed 7 days; v3 reads proxy.ttl "
            f"(default {PROXY_TTL}, 0: never)", f"proxy.ttl: {PROXY_TTL} says so", blocking=False,
        ))  # fmt: skip
    if proxy.get("username") or proxy.get("password"):
        found.append(Finding(
            "proxy.password", "before 3.1.0 a forged bearer realm gets these upstream "
            "credentials (CVE-2026-33540)", "run 3.1.2; rotate them if the upstream was not "
            "yours", blocking=False,
        ))  # fmt: skip
    return found


def translate(source: Source) -> Translation:
    """``source`` rewritten for registry 3: moved keys moved, keys it would ignore removed,
    and what 2.8 did without being told said outright. A whole file, for
    ``/etc/distribution/config.yml``."""
    config = copy.deepcopy(source.config)
    changes: list[str] = []
    redis = config.get("redis")
    if isinstance(redis, dict):
        if "addr" in redis:
            redis["addrs"] = [redis.pop("addr")]
            changes.append("redis.addr -> redis.addrs (a list)")
        pool = redis.pop("pool", None)
        for key, value in (pool or {}).items() if isinstance(pool, dict) else ():
            new = MOVED.get(f"redis.pool.{key}")
            if new:
                redis[new.split(".", 1)[1]] = value
                changes.append(f"redis.pool.{key} -> {new}")
    for key in unknown_keys(config):
        if key not in GONE_DRIVERS:  # the data must move first: the check says so
            _remove(config, key)
            changes.append(f"{key}: removed (v3 has no such key)")
    s3 = _get(config, "storage.s3")
    if isinstance(s3, dict) and s3.get("regionendpoint") and "forcepathstyle" not in s3:
        s3["forcepathstyle"] = True
        changes.append("storage.s3.forcepathstyle: true (2.8's path-style requests)")
    storage = config.get("storage")
    if isinstance(storage, dict) and _get(config, "storage.delete.enabled") is None:
        storage["delete"] = {"enabled": False}
        changes.append("storage.delete.enabled: false (2.8's default)")
    proxy = config.get("proxy")
    if isinstance(proxy, dict) and proxy.get("remoteurl") and "ttl" not in proxy:
        proxy["ttl"] = PROXY_TTL
        changes.append(f"proxy.ttl: {PROXY_TTL} (2.8's fixed expiry)")
    return Translation(config, tuple(changes))


def _remove(config: dict[str, Any], key: str) -> None:
    """Remove a dotted key; a key inside a list's items (``notifications.endpoints.x``) is
    removed from every item."""
    nodes: list[Any] = [config]
    parts = key.split(".")
    for part in parts[:-1]:
        nodes = [n.get(part) for n in _items(nodes) if isinstance(n, dict)]
    for node in _items(nodes):
        if isinstance(node, dict):
            node.pop(parts[-1], None)


def _items(nodes: Iterable[Any]) -> list[Any]:
    return [i for n in nodes for i in (n if isinstance(n, list) else [n])]


def write_translation(source: Source, path: Path) -> Translation:
    """Translate ``source`` and write the result to ``path`` (atomically), only when the check of
    the result finds nothing blocking; otherwise nothing is written."""
    done = translate(source)
    left = [f for f in check(Source(str(path), done.config)) if f.blocking]
    if left:
        raise ConfigError(
            f"{source.label} cannot be translated for registry 3: {left[0]} "
            f"({len(left)} problem(s) left); nothing written",
            "change that in the 2.8 configuration by hand, then translate again",
        )
    write_atomic(path, yaml.safe_dump(done.config, sort_keys=False).encode())
    return done


def report(label: str, findings: list[Finding]) -> list[str]:
    """The lines ``reglab upgrade --check`` prints for one configuration."""
    if not any(f.blocking for f in findings):
        return [f"{label}: registry 3 reads it as 2.8 did", *(f"{label}: {f}" for f in findings)]
    return [f"{label}: {f}" for f in findings]


__all__ = ["Finding", "Source", "Translation", "check", "report", "translate", "write_translation"]
