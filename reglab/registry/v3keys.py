"""Every configuration key registry 3 reads, as a tree: what ``reglab upgrade --check`` compares
a 2.8 configuration with.

Registry 3 parses its YAML non-strictly (``gopkg.in/yaml.v2``'s ``Unmarshal``): a key it does not
know is dropped without a word, so a 2.8 key that moved or went away changes what the registry
does and nothing says so. This table is distribution's ``configuration/configuration.go`` at
v3.1.1, with the parameters its storage drivers, auth and middlewares read (they take free maps,
and each reads its own keys: ``registry/storage/driver/*``, ``registry/auth/*``).

A node is :data:`LEAF` (a value), a dict (a struct: only these keys), :data:`ANY` (a map whose
keys are the operator's: ``log.fields``, ``http.headers``) or a one-element list (a list of
such structs: ``notifications.endpoints``).
"""

from __future__ import annotations

from typing import Union

#: A value: a string, number, duration or list of those.
LEAF = None
#: A map with keys of the operator's choosing (header names, log fields, middleware options).
ANY = "any"

Node = Union[None, str, "Tree", list["Tree"]]
Tree = dict[str, Node]


def _keys(*names: str) -> Tree:
    return dict.fromkeys(names, LEAF)


_TLS = {
    **_keys("certificate", "key", "clientcas", "clientauth", "minimumtls", "ciphersuites"),
    "letsencrypt": _keys("cachefile", "email", "hosts", "directoryurl"),
}
_HTTP: Tree = {
    **_keys("addr", "net", "host", "prefix", "secret", "relativeurls", "draintimeout"),
    "tls": _TLS,
    "headers": ANY,
    "debug": {"addr": LEAF, "prometheus": _keys("enabled", "path")},
    "http2": _keys("disabled"),
    "h2c": _keys("enabled"),
}
_LOG: Tree = {
    "accesslog": _keys("disabled"),
    **_keys("level", "formatter", "reportcaller"),
    "fields": ANY,
    "hooks": [
        {
            **_keys("disabled", "type", "levels"),
            "options": {
                "smtp": _keys("addr", "username", "password", "insecure"),
                **_keys("from", "to"),
            },
        }
    ],
}
_S3 = _keys(
    "accelerate", "accesskey", "bucket", "chunksize", "encrypt", "forcepathstyle", "keyid",
    "loglevel", "multipartcopychunksize", "multipartcopymaxconcurrency",
    "multipartcopythresholdsize", "objectacl", "region", "regionendpoint", "rootdirectory",
    "secretkey", "secure", "skipverify", "storageclass", "usedualstack", "usefipsendpoint",
    "useragent", "v4auth",
)  # fmt: skip
#: The drivers registry 3 has (2.8's ``swift`` and ``oss`` are gone: v3 does not start).
DRIVERS: Tree = {
    "filesystem": _keys("rootdirectory", "maxthreads"),
    "inmemory": {},
    "s3": _S3,
    "gcs": _keys(
        "bucket",
        "keyfile",
        "credentials",
        "rootdirectory",
        "chunksize",
        "maxconcurrency",
        "useragent",
    ),  # fmt: skip
    "azure": _keys(
        "accountname",
        "accountkey",
        "container",
        "realm",
        "rootdirectory",
        "credentials",
        "serviceurl",
        "maxretries",
        "retrytrydelay",
        "skipverify",
        "copystatuspollmaxretry",
        "copystatuspolldelay",
    ),  # fmt: skip
}
_STORAGE: Tree = {
    **DRIVERS,
    "maintenance": {
        "uploadpurging": _keys("enabled", "age", "interval", "dryrun"),
        "readonly": _keys("enabled"),
    },
    "cache": _keys("blobdescriptor", "blobdescriptorsize"),
    "delete": _keys("enabled"),
    "redirect": _keys("disable"),
    "tag": _keys("concurrencylimit"),
}
_AUTH: Tree = {
    "htpasswd": _keys("realm", "path"),
    "token": _keys(
        "realm",
        "service",
        "issuer",
        "rootcertbundle",
        "jwks",
        "autoredirect",
        "autoredirectpath",
        "signingalgorithms",
    ),  # fmt: skip
    "silly": _keys("realm", "service"),
}
_ENDPOINT: Tree = {
    **_keys("name", "disabled", "url", "timeout", "threshold", "backoff", "ignoredmediatypes"),
    "headers": ANY,
    "ignore": _keys("mediatypes", "actions"),
}
_CHECK = _keys("interval", "threshold", "timeout")
_HEALTH: Tree = {
    "file": [{**_CHECK, "file": LEAF}],
    "http": [{**_CHECK, "uri": LEAF, "statuscode": LEAF, "headers": ANY}],
    "tcp": [{**_CHECK, "addr": LEAF}],
    "storagedriver": _keys("enabled", "interval", "threshold"),
}
#: go-redis's UniversalOptions, inline under ``redis`` (2.8 had ``addr`` and a ``pool``).
_REDIS: Tree = {
    **_keys(
        "addrs",
        "clientname",
        "db",
        "protocol",
        "username",
        "password",
        "sentinelusername",
        "sentinelpassword",
        "maxretries",
        "minretrybackoff",
        "maxretrybackoff",
        "dialtimeout",
        "readtimeout",
        "writetimeout",
        "contexttimeoutenabled",
        "poolfifo",
        "poolsize",
        "pooltimeout",
        "minidleconns",
        "maxidleconns",
        "maxactiveconns",
        "connmaxidletime",
        "connmaxlifetime",
        "maxredirects",
        "readonly",
        "routebylatency",
        "routerandomly",
        "mastername",
        "disableidentity",
        "identitysuffix",
        "unstableresp3",
    ),  # fmt: skip
    "tls": _keys("certificate", "key", "rootcas"),
}
_MIDDLEWARE: list[Tree] = [{"name": LEAF, "disabled": LEAF, "options": ANY}]

V3_KEYS: Tree = {
    "version": LEAF,
    "loglevel": LEAF,  # deprecated, still read (log.level wins)
    "log": _LOG,
    "storage": _STORAGE,
    "auth": _AUTH,
    "middleware": {"registry": _MIDDLEWARE, "repository": _MIDDLEWARE, "storage": _MIDDLEWARE},
    "http": _HTTP,
    "notifications": {"events": _keys("includereferences"), "endpoints": [_ENDPOINT]},
    "redis": _REDIS,
    "health": _HEALTH,
    "catalog": _keys("maxentries"),
    "tags": _keys("maxtags"),
    "proxy": {
        **_keys("remoteurl", "username", "password", "ttl", "cachewritetimeout"),
        "exec": _keys("command", "lifetime"),
    },
    "validation": {
        **_keys("enabled", "disabled"),
        "manifests": {
            "urls": _keys("allow", "deny"),
            "indexes": {"platforms": LEAF, "platformlist": [_keys("architecture", "os")]},
        },
    },
    "policy": {"repository": _keys("classes")},
}

#: Environment names follow the Go field, not the YAML key, where the two differ
#: (``REGISTRY_NOTIFICATIONS_EVENTCONFIG_...`` sets ``notifications.events``).
ENV_ALIASES = {
    "notifications.eventconfig": "notifications.events",
    "health.filecheckers": "health.file",
    "health.httpcheckers": "health.http",
    "health.tcpcheckers": "health.tcp",
    "redis.options": "redis",
}

#: Token signing algorithms registry 3 accepts in ``auth.token.signingalgorithms``.
SIGNING_ALGORITHMS = (
    "EdDSA", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
    "PS256", "PS384", "PS512",
)  # fmt: skip


def unknown_keys(config: object) -> list[str]:
    """The dotted keys of ``config`` that registry 3 does not know (matched exactly: YAML keys
    are case-sensitive)."""
    return _unknown(config, V3_KEYS, "")


def _unknown(config: object, node: Node, prefix: str) -> list[str]:
    if node is ANY or node is LEAF:
        return []
    if isinstance(node, list):
        items = config if isinstance(config, list) else []
        return sorted({k for item in items for k in _unknown(item, node[0], prefix)})
    if not isinstance(config, dict) or not isinstance(node, dict):
        return []
    found: list[str] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key in node:
            found += _unknown(value, node[key], f"{name}.")
        else:
            found.append(name)
    return found


__all__ = ["ANY", "DRIVERS", "ENV_ALIASES", "LEAF", "SIGNING_ALGORITHMS", "V3_KEYS", "unknown_keys"]
