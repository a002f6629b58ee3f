"""Registry replicas on Docker Swarm: shared object storage, a shared Redis cache, one
``http.secret``, and a front that health-checks the replicas.

What the distribution docs ask of a load-balanced registry, built from real parts:

- the stack file ``reglab/assets/stack.yml`` (``docker stack deploy`` format): SeaweedFS's S3
  gateway, Redis and N registry replicas, every one with ``endpoint_mode: dnsrr``;
- token authentication: the token server of notebook 08 (:mod:`reglab.auth.tokenserver`) as a
  service with two replicas, reading the working folder's users and access list; every registry
  replica trusts tokens signed by a key the workshop CA certified;
- the registry's whole config as a Docker secret (it holds ``http.secret`` and the store's keys),
  the users' htpasswd file, the token-signing key and the store's identities as secrets too;
  what is not secret (the access list, certificates) as Docker configs;
- HAProxy in front, a service of the stack too (its TLS key a secret): it finds the replicas
  through Docker's DNS (``tasks.SERVICE``), checks ``/v2/`` on each, and retries a request that
  found a replica gone on another one; ``/auth`` goes to the token servers, so the token realm
  is the front's own address;
- a relay, the one plain container: it holds 127.0.0.1:PORT and passes the connections (TLS
  still encrypted) to the front. Swarm publishes a service's port on every address of every
  node; a workshop keeps its registry on 127.0.0.1. On a cluster, publish the front instead.

The swarm itself: reglab runs ``docker swarm init`` only when the engine is in no swarm, marks
the node as its own, and :meth:`SwarmRegistry.down` leaves only such a swarm. An engine already
in a swarm is used as it is and never left.

The modules, read in this order: ``names`` (what every part is called), ``render`` (the files,
pure), ``cluster`` (the swarm, and leaving it cleanly), ``deploy`` (stack deploy and rm),
``front`` (the front's view, readiness, the relay), ``store`` (what the bucket holds), ``odd``
(a registry with another secret), ``registry`` (:class:`SwarmRegistry`, which ties them
together), ``gc`` (garbage collection with every replica read-only, then the cache flushed).
What notebook 09 measures (pull streams during failover, uploads across replicas, each
replica's cache counters) is the notebook layer's: :mod:`reglab.lab.measure`.
"""

from __future__ import annotations

from reglab.swarm.cluster import (
    StaleBridge,
    ensure_swarm,
    gwbridge_holders,
    init_step,
    leave_swarm,
    swarm_owned,
    swarm_state,
)
from reglab.swarm.front import Replica, replica_header, served_by
from reglab.swarm.names import (
    BUCKET,
    FRONT_PORT,
    GWBRIDGE,
    GWBRIDGE_LABEL,
    MAX_REPLICAS,
    STATS_PORT,
    SWARM_LABEL,
    TOKEN_REPLICAS,
    StackNames,
)
from reglab.swarm.registry import SwarmRegistry
from reglab.swarm.render import HAPROXY_CFG, RELAY_CFG, VERSIONS, stack_file

__all__ = [
    "BUCKET", "FRONT_PORT", "GWBRIDGE", "GWBRIDGE_LABEL", "HAPROXY_CFG", "MAX_REPLICAS",
    "RELAY_CFG", "STATS_PORT", "SWARM_LABEL", "TOKEN_REPLICAS", "VERSIONS", "Replica",
    "StackNames", "SwarmRegistry", "ensure_swarm", "gwbridge_holders", "init_step",
    "StaleBridge", "leave_swarm", "replica_header", "served_by", "stack_file", "swarm_owned",
    "swarm_state",
]  # fmt: skip
