"""The benchmark's swarm rows: a pull through the front of 3 replicas against the same pull
from one registry, failover, throughput; and (``--only swarm_paths``) where the front's extra
time goes, path by path.

Both sides are TLS + token auth with the same users and access list. The replicas keep their
blobs in the stack's S3 store (SeaweedFS), the single registry on its disk.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
from common import free_port
from timing import alternate, timed

import reglab
from reglab.auth.htpasswd import DEFAULT_COST
from reglab.base.labels import owner_labels
from reglab.base.settings import FRONT_IMAGE, PYTHON_IMAGE
from reglab.base.wait import NotYet, poll
from reglab.engine import transfer
from reglab.lab.measure import PullStream
from reglab.registry.config import TOKEN_SERVICE
from reglab.swarm import FRONT_PORT, SwarmRegistry, render

if TYPE_CHECKING:
    from bench import Bench

#: The client that times blob GETs from inside the stack's network (one per path and round):
#: the manifest, then every layer, 3 at a time as the Docker engine downloads them.
GET_BLOBS = r"""
import concurrent.futures, http.client, json, ssl, sys, time
base, repo, token = sys.argv[1], sys.argv[2], sys.argv[3]
scheme, host = base.split("://")
context = ssl._create_unverified_context()
def connect():
    if scheme == "https":
        return http.client.HTTPSConnection(host, timeout=60, context=context)
    return http.client.HTTPConnection(host, timeout=60)
headers = {"Authorization": "Bearer " + token}
def get(path, accept=None):
    connection = connect()
    connection.request("GET", path, headers={**headers, **({"Accept": accept} if accept else {})})
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    if answer.status != 200:
        raise SystemExit(f"{path}: {answer.status}")
    return body
manifest = json.loads(get(f"/v2/{repo}/manifests/latest",
                          "application/vnd.docker.distribution.manifest.v2+json"))
started = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(3) as pool:
    sizes = list(pool.map(lambda layer: len(get(f"/v2/{repo}/blobs/{layer['digest']}")),
                          manifest["layers"]))
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": sum(sizes)}))
"""


@dataclass
class Pair:
    """The two sides of the comparison, up and holding the same image."""

    direct: reglab.Registry
    stack: SwarmRegistry
    creds: reglab.Credentials

    @property
    def through_ref(self) -> str:
        return self.stack.ref("bench/data")

    @property
    def direct_ref(self) -> str:
        return self.direct.ref("bench/data")


#: The two paths of lb_pull_ratio, as the in-network client takes them.
DEPLOYED = "relay + front (TLS) + replica + S3"
DISK = "one registry on its disk (TLS)"
#: Fronts tried beside the deployed one: its haproxy.cfg with one change (plain containers on
#: the stack's network, the same certificate). What a setting buys, on the same path.
FRONT_TRIALS: dict[str, Callable[[str], str]] = {
    "front copy (as deployed)": lambda cfg: cfg,
    "front copy, no TLS": lambda cfg: cfg.replace(" ssl crt /run/secrets/front.pem", ""),
    "front copy, tune.bufsize 64k": lambda cfg: cfg.replace(
        "global\n", "global\n    tune.bufsize 65536\n", 1
    ),
    "front copy, nbthread 1": lambda cfg: cfg.replace("global\n", "global\n    nbthread 1\n", 1),
    "front copy, http-server-close": lambda cfg: cfg.replace(
        "    option httplog\n", "    option httplog\n    option http-server-close\n"
    ),
    "front copy, no logs": lambda cfg: cfg.replace("    option httplog\n", "").replace(
        "    log global\n", ""
    ),
}
#: Relays tried in front of the deployed front, likewise.
RELAY_TRIALS: dict[str, Callable[[str], str]] = {
    "relay copy (as deployed) + front": lambda cfg: cfg,
    "relay copy, no splice + front": lambda cfg: cfg.replace("    option splice-auto", "    #"),
    "relay copy, tune.bufsize 64k + front": lambda cfg: cfg.replace(
        "global\n", "global\n    tune.bufsize 65536\n", 1
    ),
    "relay copy, splice always + front": lambda cfg: cfg.replace(
        "option splice-auto", "option splice-request\n    option splice-response"
    ),
}


@dataclass
class Trials:
    """The trial fronts and relays: HAProxy containers beside the stack, each with its file."""

    engine: Any
    stack: SwarmRegistry
    folder: Path

    def names(self) -> list[str]:
        return [f"{self.stack.name}-try-{n}" for n in range(len(FRONT_TRIALS) + len(RELAY_TRIALS))]

    def start(self) -> dict[str, str]:
        """Start every trial; return {what: its URL on the stack's network}."""
        self.folder.mkdir(parents=True, exist_ok=True)
        front_cfg, relay_cfg = render.haproxy_cfg(self.stack), render.relay_cfg(self.stack)
        made = [(what, change(front_cfg)) for what, change in FRONT_TRIALS.items()]
        made += [(what, change(relay_cfg)) for what, change in RELAY_TRIALS.items()]
        targets = {}
        for name, (what, cfg) in zip(self.names(), made, strict=True):
            (self.folder / f"{name}.cfg").write_text(cfg)
            self.engine.containers.run(
                FRONT_IMAGE,
                ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
                name=name,
                detach=True,
                network=self.stack.network,
                labels=owner_labels(),
                volumes={
                    str(self.folder / f"{name}.cfg"): {
                        "bind": "/etc/haproxy/haproxy.cfg", "mode": "ro"},
                    str(self.stack.folder.resolve() / "front.pem"): {
                        "bind": "/run/secrets/front.pem", "mode": "ro"},
                },
            )  # fmt: skip
            scheme = "http" if "no TLS" in what else "https"
            targets[what] = f"{scheme}://{name}:{FRONT_PORT}"
        return targets

    def remove(self) -> None:
        for name in self.names():
            with suppress(docker.errors.NotFound):
                self.engine.containers.get(name).remove(force=True)


class SwarmBench:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.failover = (0, 0)
        self.resumed = 0
        self.throughput: dict[int, float] = {}

    @contextmanager
    def pair(self) -> Iterator[Pair]:
        """One TLS + token-auth registry on its disk and a stack of 3 replicas, both holding the
        benchmark's image; everything removed afterwards."""
        bench = self.bench
        basic, creds = bench.auth_registry(DEFAULT_COST)
        token_config = dataclasses.replace(
            basic.config, stage=reglab.Stage.TOKEN, token_port=free_port()
        )
        token_config.paths.acl.write_text(f"- match: {{account: {creds.user}}}\n  actions: ['*']\n")
        direct = reglab.Registry(token_config, bench.engine)
        direct.start()
        stack = SwarmRegistry(
            bench.engine, f"{bench.name}-swarm", free_port(), bench.tmp / "w", 3, bench.version
        )
        reglab.install_ca_for_docker(direct.config.paths.ca_cert, "127.0.0.1", stack.port)
        pair = Pair(direct, stack, creds)
        try:
            stack.up()
            for ref in (pair.direct_ref, pair.through_ref):
                transfer.tag(bench.engine, bench.source, ref)
                transfer.push(bench.engine, ref, auth=creds.auth_config())
            transfer.remove(bench.engine, bench.source)
            yield pair
        finally:
            transfer.remove(bench.engine, pair.through_ref)
            stack.down(purge=True)
            reglab.uninstall_ca_for_docker("127.0.0.1", stack.port)
            direct.remove()

    def forget(self, pair: Pair) -> None:
        for name in (pair.through_ref, pair.direct_ref):
            transfer.remove(self.bench.engine, name)

    def engine_pull(self, ref: str, pair: Pair) -> None:
        transfer.pull(self.bench.engine, ref, auth=pair.creds.auth_config())

    def front_pull(self) -> float:
        """A pull through the front of 3 replicas / the same pull straight from one registry
        (every layer moved each time); then failed requests among a stream of pulls while a
        replica is killed and during a rolling update; then concurrent pull throughput with 1
        and 3 replicas."""
        bench = self.bench
        with self.pair() as pair:
            r, c = alternate(
                bench.rounds,
                lambda: self.forget(pair),
                lambda: self.engine_pull(pair.through_ref, pair),
                lambda: self.engine_pull(pair.direct_ref, pair),
            )
            transfer.tag(bench.engine, pair.direct_ref, bench.source)
            ratio = bench.row(f"pull {bench.image_mb:.0f} MiB: front of 3 / one registry", r, c)
            self.failures(pair)
        return ratio

    def failures(self, pair: Pair) -> None:
        stack, auth = pair.stack, pair.creds.as_tuple()
        with PullStream(stack, auth, "bench/data") as stream:
            stream.wait_for(100)
            stack.kill_replica()
            stack.wait_ready(3)
            stream.wait_for(stream.requests + 100)
            stack.rolling_update()
            stream.wait_for(stream.requests + 100)
        self.failover = (len(stream.failed), stream.requests)
        self.resumed = stream.resumed
        self.bench.rows.append(
            ("failed requests: kill + rolling update", str(len(stream.failed)),
             f"of {stream.requests}", f"{stream.resumed} resumed")
        )  # fmt: skip
        for replicas in (1, 3):
            stack.scale(replicas)
            with PullStream(stack, auth, "bench/data", workers=8) as load:
                time.sleep(3.0)  # warm up, then count a fixed window
                start, started = time.perf_counter(), load.ok
                time.sleep(10.0 if not self.bench.quick else 5.0)
                rate = (load.ok - started) / (time.perf_counter() - start)
            self.throughput[replicas] = rate
            self.bench.rows.append((f"requests/s, 8 pullers, {replicas} replica(s)",
                                    f"{rate:.0f}", "-", "-"))  # fmt: skip

    def bench_keys(self) -> str:
        """The swarm's part of the BENCH line, after lb_pull_ratio."""
        return (
            f" failover_errors={self.failover[0]} failover_requests={self.failover[1]}"
            f" failover_resumed={self.resumed}"
            + "".join(f" lb_rps_{n}={rate:.0f}" for n, rate in self.throughput.items())
        )

    # --- where the front's extra time goes ---------------------------------------------
    def paths(self) -> float:
        """The same 64 MiB of blobs fetched along each path, from a client inside the stack's
        network (no engine: its hashing and unpacking are the same on both sides), beside
        fronts and relays with one setting changed (:data:`FRONT_TRIALS`,
        :data:`RELAY_TRIALS`); then the CPU seconds each part spends on one engine pull,
        through the front and direct. Return the deployed path's time over the disk
        registry's, for the in-network client."""
        bench = self.bench
        with self.pair() as pair:
            stack, direct = pair.stack, pair.direct
            network = bench.engine.networks.get(stack.network)
            network.connect(direct.config.name, aliases=["disk"])
            trials = Trials(bench.engine, stack, bench.tmp / "trials")
            try:
                targets = {
                    DEPLOYED: f"https://{stack.relay}:{FRONT_PORT}",
                    "front (TLS) + replica + S3": f"https://tasks.{stack.front}:{FRONT_PORT}",
                    "replica + S3 (plain HTTP)": f"http://tasks.{stack.service}:5000",
                    DISK: "https://disk:5000",
                    **trials.start(),
                }
                for url in targets.values():  # every trial front sees its replicas first
                    poll(f"blobs from {url}", partial(self.try_blobs, pair, url), timeout=60)
                seconds = self.rotate(
                    bench.rounds,
                    {what: partial(self.get_blobs, pair, url) for what, url in targets.items()},
                )
                for what, value in seconds.items():
                    bench.rows.append((f"blob GETs in the network: {what}", f"{value:.3f} s",
                                       "-", "-"))  # fmt: skip
                    print(f"measured: blob GETs, {what}: {value:.3f} s", flush=True)
                trials.remove()
                self.cpu_by_part(pair)
            finally:
                trials.remove()
                network.disconnect(direct.config.name, force=True)
        return seconds[DEPLOYED] / seconds[DISK]

    def token(self, pair: Pair) -> str:
        """A pull token for bench/data from the front's /auth (the same key signs for both)."""
        with pair.stack.client(auth=pair.creds.as_tuple()) as api:
            answer = api.request(
                "GET",
                "/auth",
                params={"service": TOKEN_SERVICE, "scope": "repository:bench/data:pull"},
            )
        return str(answer.json()["token"])

    def try_blobs(self, pair: Pair, url: str) -> float | None:
        try:
            return self.get_blobs(pair, url)
        except subprocess.CalledProcessError as error:
            raise NotYet(" ".join(str(error.stderr).split()[-12:])) from None

    def get_blobs(self, pair: Pair, url: str) -> float:
        """Seconds the client took for every layer from ``url`` (its start not counted)."""
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", pair.stack.network, PYTHON_IMAGE,
             "python3", "-c", GET_BLOBS, url, "bench/data", self.token(pair)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])

    @staticmethod
    def rotate(rounds: int, actions: dict[str, Callable[[], float]]) -> dict[str, float]:
        """Median seconds of each action (which returns its own seconds), the order rotated
        each round so that none always goes first."""
        names = list(actions)
        times: dict[str, list[float]] = {name: [] for name in names}
        for n in range(rounds):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                times[name].append(actions[name]())
        return {name: statistics.median(values) for name, values in times.items()}

    def cpu_by_part(self, pair: Pair) -> None:
        """CPU seconds each container (and the engine) spends on one engine pull, each way."""
        bench = self.bench
        for label, ref in (("front", pair.through_ref), ("direct", pair.direct_ref)):
            samples: list[dict[str, float]] = []
            walls = []
            for _ in range(bench.rounds):
                self.forget(pair)
                before = cpu_seconds(bench.engine)
                walls.append(timed(partial(self.engine_pull, ref, pair)))
                after = cpu_seconds(bench.engine)
                samples.append({k: after[k] - before.get(k, 0.0) for k in after})
            parts = {k: statistics.median(s.get(k, 0.0) for s in samples) for k in samples[0]}
            shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda i: -i[1])
                              if v >= 0.01)  # fmt: skip
            print(f"measured: CPU s per pull, {label} (wall {statistics.median(walls):.2f} s, "
                  f"total {sum(parts.values()):.2f}): {shown}", flush=True)  # fmt: skip
            bench.rows.append((f"CPU s per engine pull, {label}", f"{sum(parts.values()):.2f}",
                               f"{statistics.median(walls):.2f} s", "-"))  # fmt: skip
        transfer.tag(bench.engine, pair.direct_ref, bench.source)


def cpu_seconds(engine: Any) -> dict[str, float]:
    """CPU seconds used so far by each running container (by name, a replica's task suffix
    cut) and by the engine's own processes (dockerd, containerd, docker-proxy), from cgroup v1
    accounting and /proc."""
    found: dict[str, float] = {}
    for container in engine.containers.list():
        usage = Path(f"/sys/fs/cgroup/cpuacct/docker/{container.id}/cpuacct.usage")
        if usage.exists():
            name = container.name.split(".")[0] + (
                "." + container.name.split(".")[1] if container.name.count(".") else ""
            )
            found[name] = found.get(name, 0.0) + int(usage.read_text()) / 1e9
    tick = 100.0  # USER_HZ
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            if comm in ("dockerd", "containerd", "docker-proxy"):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                found[comm] = found.get(comm, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return found
