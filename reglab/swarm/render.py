"""The stack's files, rendered: pure functions of the names, the keys and the working folder's
files (no engine, no disk but reglab's own stack file), so a test compares them with golden
copies (tests/unit/golden/swarm).

- ``stack.yml``: reglab/assets/stack.yml as it is (its variables are set at deploy);
- ``registry.yml``: every replica's whole config (one ``http.secret``, the store's keys), in
  the shape its registry version reads (see :func:`registry_config`);
- ``s3.json``: the store's identities;
- ``haproxy.cfg``: the front; ``relay.cfg``: the relay on 127.0.0.1;
- the users, the access list, the certificates, copied as they are.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from importlib import resources

import yaml

from reglab.registry.config import TOKEN_ISSUER, TOKEN_SERVICE
from reglab.swarm.names import BUCKET, FRONT_PORT, MAX_REPLICAS, STATS_PORT, TOKEN_REPLICAS, Named

#: The files of ``workdir/swarm`` that become secrets or configs, in three groups, each
#: versioned by the hash of its files (a variable of the stack file): the store's identities
#: apart, so that adding a user does not restart the store; the replicas' config apart, so that
#: making them read-only for a garbage collection restarts only them.
VERSIONS = {
    "REGLAB_STORE": ("s3.json",),
    "REGLAB_CONFIG": ("registry.yml",),
    "REGLAB_SECRETS": (
        "htpasswd", "token.key", "front.pem", "acl.yml", "token.crt", "ca.crt", "haproxy.cfg",
    ),
}  # fmt: skip
#: The files only their owner may read (they hold keys).
SECRET_FILES = ("registry.yml", "s3.json", "token.key", "front.pem", "keys.json")
#: The working folder's files copied as they are (what :func:`render` asks for).
COPIED = ("htpasswd", "token.key", "acl.yml", "token.crt", "ca.crt", "front.pem")

HAPROXY_CFG = """\
# HAProxy in front of the registry replicas (written by reglab swarm up).
global
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request that found its replica gone (refused, reset, no answer) goes to another one.
    # Every reason past conn-failure replays a request that fit in one buffer, whatever its
    # method; HAProxy's manual calls that safe only with replay protection. A registry has it:
    # a replayed PATCH carries an offset its upload has passed and is refused ("upload resumed
    # at wrong offset"), a PUT stores content named by its digest again, a POST opens one more
    # upload (purged later); a replayed DELETE answers 404 for what the first one did.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

# Docker's DNS: tasks.SERVICE answers with the address of every running replica.
resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 1s
    hold obsolete 1s
    accepted_payload_size 8192

frontend registry
    bind :{front_port} ssl crt /run/secrets/front.pem
    http-request set-header X-Forwarded-Proto https
    # The token realm is this front's /auth: one address for the learner and the engine.
    use_backend tokens if {{ path /auth }}
    default_backend replicas

backend tokens
    balance roundrobin
    # A token server is up when it signs an anonymous token.
    option httpchk GET "/auth?service={token_service}"
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1 resolvers docker init-addr none
    server-template token {token_slots} tasks.{token}:5001

backend replicas
    balance roundrobin
    # A replica is up when /v2/ answers 401: the registry, with its auth on. The distribution
    # docs advise exactly this ("Load balancing considerations"): a replica that lost its auth
    # configuration answers 200, and must take no traffic.
    option httpchk GET /v2/
    http-check expect status 401
    # Which replica answered (its name here), for a client to see; and a client may pick one
    # (X-Reglab-Use: replica2): the workshop shows what each replica serves.
    http-response set-header X-Reglab-Replica %s
{use_server}
    default-server check inter 1s fall 2 rise 1 resolvers docker init-addr none
    server-template replica {slots} tasks.{service}:5000
    # A registry started beside the stack as {odd} (notebook 09: another http.secret);
    # a request that asks for it goes there, and, a backup, every request when no replica is up.
    server odd {odd}:5000 backup

frontend stats
    bind :{stats_port}
    stats enable
    stats uri /stats
    stats refresh 5s
    stats show-legends  # the CSV then has each replica's address
"""

RELAY_CFG = """\
# The relay: 127.0.0.1:PORT on this machine to the front, a service of the stack (written by
# reglab swarm up). TCP only: TLS ends at the front, and the relay holds no key.
global
    log stdout format raw local0 info

defaults
    mode tcp
    option splice-auto  # the kernel moves the bytes: no copy through the relay
    timeout connect 2s
    timeout client 60s
    timeout server 60s

resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 1s
    hold obsolete 1s

frontend registry
    bind :{front_port}
    default_backend front

# Two slots: while the front is updated, the new one runs beside the old one for a moment.
backend front
    default-server check inter 1s resolvers docker init-addr none
    retries 3
    option redispatch 1
    server-template front 2 tasks.{front}:{front_port}

frontend stats
    bind :{stats_port}
    default_backend stats

backend stats
    balance first
    default-server check inter 1s resolvers docker init-addr none
    server-template front 2 tasks.{front}:{stats_port}
"""


def stack_file() -> bytes:
    """The stack file shipped with reglab (reglab/assets/stack.yml)."""
    return resources.files("reglab").joinpath("assets/stack.yml").read_bytes()


def new_keys() -> dict[str, str]:
    """``http.secret`` and the store's keys: made once per working folder, then kept (every
    replica, and every later deployment, must share them)."""
    return {
        "http_secret": secrets.token_hex(32),
        "access_key": "reglab" + secrets.token_hex(6),
        "secret_key": secrets.token_hex(20),
    }


#: Where every replica serves its metrics (Prometheus text), on the stack's network only.
DEBUG_PORT = 5001


def registry_config(
    names: Named, keys: dict[str, str], read_only: bool = False
) -> dict[str, object]:
    """Every replica's config: the shared store, cache and ``http.secret``; tokens from the
    front's ``/auth``, signed by a key the workshop CA certified. ``read_only``: pulls only,
    while garbage is collected (:mod:`reglab.swarm.gc`).

    Two keys differ between the versions, and both fail quietly (a registry ignores keys it
    does not know): registry 3 reads Redis through go-redis's options (``addrs``, a list; the
    pool's keys flat beside it), and its S3 driver (aws-sdk) asks for virtual-host requests
    (``bucket.s3``, a name no DNS here knows) unless ``forcepathstyle`` is on. Registry 2.8
    takes one ``addr`` and makes path-style requests to any ``regionendpoint``.
    """
    s3: dict[str, object] = {
        "accesskey": keys["access_key"],
        "secretkey": keys["secret_key"],
        "region": "us-east-1",
        "regionendpoint": "http://s3:8333",  # SeaweedFS, not Amazon
        "bucket": BUCKET,
        "secure": False,  # inside the stack's own network
        "v4auth": True,
        "rootdirectory": "/",
    }
    redis: dict[str, object] = {"dialtimeout": "1s", "readtimeout": "1s"}
    if names.version.v3:
        s3["forcepathstyle"] = True  # http://s3:8333/registry/..., not http://registry.s3:8333/
        # connections kept open between requests (go-redis: flat, beside the address)
        redis = {"addrs": ["redis:6379"], **redis, "maxidleconns": 16, "connmaxidletime": "300s"}
    else:
        redis = {"addr": "redis:6379", **redis, "pool": {"maxidle": 16, "idletimeout": "300s"}}
    storage: dict[str, object] = {
        "s3": s3,
        # one cache for every replica: a descriptor one replica looked up, the others read
        "cache": {"blobdescriptor": "redis"},
        "delete": {"enabled": True},
        "redirect": {"disable": True},  # clients never talk to the store
    }
    if read_only:
        storage["maintenance"] = {"readonly": {"enabled": True}}
    return {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": storage,
        "redis": redis,
        "http": {
            "addr": ":5000",
            # On SIGTERM (a rolling update stops the old replica), finish the requests in
            # flight, up to 5 s, before exiting; Swarm kills after 10 s (stop_grace_period).
            "draintimeout": "5s",
            "secret": keys["http_secret"],
            "headers": {"X-Content-Type-Options": ["nosniff"]},
            # the replica's own counters (the cache's hits among them), never through the front
            "debug": {
                "addr": f":{DEBUG_PORT}",
                "prometheus": {"enabled": True, "path": "/metrics"},
            },
        },
        "auth": {
            "token": {
                "realm": names.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": "/etc/reglab/ca.crt",
            }
        },
        "health": {"storagedriver": {"enabled": True, "interval": "5s", "threshold": 3}},
    }


def store_identities(keys: dict[str, str]) -> dict[str, object]:
    """The store's one identity: the registry's keys."""
    credentials = [{"accessKey": keys["access_key"], "secretKey": keys["secret_key"]}]
    return {
        "identities": [
            {
                "name": "registry",
                "credentials": credentials,
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def haproxy_cfg(names: Named) -> str:
    """The front: a ``use-server`` line per slot (and the odd registry) lets a client pick."""
    use_server = "\n".join(
        f"    use-server {name} if {{ req.hdr(x-reglab-use) -m str {name} }}"
        for name in [*(f"replica{i}" for i in range(1, MAX_REPLICAS + 1)), "odd"]
    )
    return HAPROXY_CFG.format(
        front_port=FRONT_PORT,
        stats_port=STATS_PORT,
        slots=MAX_REPLICAS,
        service=names.service,
        use_server=use_server,
        odd=names.odd,
        token=names.token_service,
        token_slots=TOKEN_REPLICAS,
        token_service=TOKEN_SERVICE,
    )


def relay_cfg(names: Named) -> str:
    return RELAY_CFG.format(front_port=FRONT_PORT, stats_port=STATS_PORT, front=names.front)


def render(
    names: Named, keys: dict[str, str], copied: dict[str, bytes], read_only: bool = False
) -> dict[str, bytes]:
    """Every file of ``workdir/swarm`` (but ``keys.json``), by name; ``copied`` holds the
    working folder's files named in :data:`COPIED`; ``read_only``: the replicas' config says
    so (see :func:`registry_config`)."""
    missing = sorted(set(COPIED) - set(copied))
    if missing:
        raise ValueError(f"render needs {', '.join(missing)}")
    files = {
        "stack.yml": stack_file(),
        "registry.yml": yaml.safe_dump(
            registry_config(names, keys, read_only), sort_keys=False
        ).encode(),
        "s3.json": json.dumps(store_identities(keys), indent=1).encode(),
        "haproxy.cfg": haproxy_cfg(names).encode(),
        "relay.cfg": relay_cfg(names).encode(),
    }
    files.update({name: copied[name] for name in COPIED})
    return files


def versions(files: dict[str, bytes]) -> dict[str, str]:
    """Each group's version: the first 12 hex digits of the sha256 of its files, in order
    (what ``cat FILES | sha256sum | cut -c1-12`` prints, as :func:`deploy_command` shows)."""
    found = {}
    for variable, group in VERSIONS.items():
        digest = hashlib.sha256()
        for name in group:
            digest.update(files[name])
        found[variable] = digest.hexdigest()[:12]
    return found
