"""What the stack's parts are called, and the numbers every part agrees on.

Pure: no engine. :class:`Named` gives every name from two facts, the stack's name and the
port of its front on 127.0.0.1, so the rendered files, the commands shown to a learner and the
calls to the engine can never disagree on one.
"""

from __future__ import annotations

from dataclasses import dataclass

from reglab.base.ports import Ports
from reglab.base.versions import V3, RegistryVersion

#: Marks a swarm reglab created (a label of the engine's node): only such a swarm is left.
SWARM_LABEL = "org.reglab.swarm"
#: Says whether docker_gwbridge (made by the engine for containers on overlay networks) was
#: there before reglab's swarm: if not, leaving the swarm removes it too.
GWBRIDGE_LABEL = "org.reglab.gwbridge"
GWBRIDGE = "docker_gwbridge"
#: The label every container, network, secret and config of a stack carries (docker stack
#: deploy puts it there).
STACK_LABEL = "com.docker.stack.namespace"
#: The front's ports inside its containers (the relay's too): the registry (TLS) and
#: HAProxy's statistics.
FRONT_PORT = 5443
STATS_PORT = 8404
#: Where the relay reads its config: the file's folder on the host is the working folder's
#: ``swarm``, which is how a command run later finds the working folder (see
#: :func:`reglab.swarm.front.read_relay`).
RELAY_CFG_TARGET = "/etc/haproxy/relay.cfg"
#: The bucket the registry stores in (the store makes it at start).
BUCKET = "registry"
#: How many replicas the front can know at once (HAProxy's server-template slots).
MAX_REPLICAS = 9
#: The token service's replicas (stack.yml) and the front's slots for them.
TOKEN_REPLICAS = 2


class Named:
    """The names of the stack ``name`` whose front is on 127.0.0.1:``port``, whose replicas
    run the registry ``version``."""

    name: str
    port: int
    version: RegistryVersion

    @property
    def service(self) -> str:
        """The registry replicas' service."""
        return f"{self.name}_registry"

    @property
    def token_service(self) -> str:
        return f"{self.name}_token"

    @property
    def store_service(self) -> str:
        return f"{self.name}_s3"

    @property
    def cache_service(self) -> str:
        return f"{self.name}_redis"

    @property
    def front(self) -> str:
        """The front's service (HAProxy: TLS, health checks, retries)."""
        return f"{self.name}_front"

    @property
    def network(self) -> str:
        return f"{self.name}_default"

    @property
    def relay(self) -> str:
        """The plain container that holds 127.0.0.1:port and passes connections to the front."""
        return f"{self.name}-relay"

    @property
    def odd(self) -> str:
        """The name of a registry started beside the stack with another ``http.secret``."""
        return f"{self.name}-odd"

    @property
    def volume(self) -> str:
        return f"{self.name}_s3-data"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def realm(self) -> str:
        """Where clients get tokens: the front sends /auth to the token servers."""
        return f"{self.url}/auth"

    @property
    def stats_port(self) -> int:
        """Where the relay publishes the front's statistics page (planned in reglab.base.ports,
        so it never takes a companion's port, such as a token server's)."""
        return Ports(self.port).swarm_stats

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/stats;csv"

    @property
    def namespace(self) -> dict[str, str]:
        """The engine's filter for everything of this stack."""
        return {"label": f"{STACK_LABEL}={self.name}"}


@dataclass(frozen=True)
class StackNames(Named):
    """Just the names (what the pure rendering needs)."""

    name: str
    port: int
    version: RegistryVersion = V3
