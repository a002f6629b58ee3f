"""reglab measured against the plain docker CLI doing the same work, on the real engine.

    python benchmarks/bench.py                # full run on registry 3 (about 10 minutes)
    python benchmarks/bench.py --quick        # fewer rounds, smaller image, fewer bcrypt costs
    python benchmarks/bench.py --registry 2   # the same on registry 2.8

Each pair is measured in the same run, alternating which goes first, over several rounds; the
median is reported. The last line is machine-readable:

    BENCH push_ratio=R pull_ratio=R ready_overhead_ms=N auth_push_ratio=R notebooks_ratio=R
          gc_s_per_1000_blobs=S mirror_pull_ratio=R event_p99_ms=N event_outage_lost=N
          token_push_ratio=R tokens_per_s=N lb_pull_ratio=R failover_errors=N
          failover_requests=N failover_resumed=N lb_rps_1=N lb_rps_3=N node_pull_ratio=R
          gate_pull_ratio=R

(ratios = reglab / CLI). On registry 3 (the default), the push and pull rows are measured on
2.8 too, in the same run: ``push_ratio_v2``, ``pull_ratio_v2``, ``auth_push_ratio_v2`` and
``token_push_ratio_v2`` (one version's overhead must not hide behind the other's). It also
writes the bcrypt cost curve to benchmarks/out/. Traffic goes only to registries on
127.0.0.1 started here. The swarm's rows, and where its pull's extra time goes: swarm_bench.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import cast

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing, swarm_bench: beside this

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' helpers: random images, free ports

import day_two
import node_bench
import supply_bench
from common import (
    build_random_image,
    free_port,
    nbval_command,
    shell_script,
    typed_commands,
)  # noqa: E402
from swarm_bench import SwarmBench
from timing import alternate, alternate_prepared, docker, timed

import reglab
from reglab.auth.htpasswd import DEFAULT_COST, Htpasswd
from reglab.base.versions import V2, RegistryVersion, registry_version
from reglab.engine import transfer
from reglab.images import build as images

NAME = "reglab-registry-bench"
#: Where a run writes its results (the plot of the cost curve, the BENCH line): never a
#: tracked file. The figure notebook 04 shows is replaced only with --update-figure.
OUT = ROOT / "benchmarks" / "out"
FIGURE = ROOT / "notebooks" / "images" / "bcrypt-cost.png"


#: The whole workshop of the notebooks_ratio: the preflight and the four stages (00-04). The
#: day-two notebooks have measurements of their own (gc, mirror, events), and their `$` lines
#: include a push docker retries for a minute on purpose (05) and ports beyond REGLAB_PORT.
STAGE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[0-4]*.ipynb"))

BENCH_PASSWORDS = {"PASSWORD_MOBY": "bench-moby-pw", "PASSWORD_CAROL": "bench-carol-pw"}


def workshop_cli_script(port: int, state: Path) -> str:
    """The workshop done by hand: every `$` line the committed notebooks show, in order, for
    the benchmark's registry (its port and name) in the current folder. The same lines the
    terminal-track test proves; nothing written twice."""
    import json

    commands = []
    for path in STAGE_NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            for typed in typed_commands(cell.get("outputs", [])):
                command = re.sub(
                    r"(127\.0\.0\.1|localhost|\$GATEWAY):5000\b", rf"\1:{port}", typed.command
                )
                command = re.sub(r"\breglab-registry\b", NAME, command)
                commands.append(dataclasses.replace(typed, command=command))
    return shell_script(commands, port, state)


#: The steps measured on 2.8 beside registry 3, in the same run: "push" -> push_ratio_v2.
COMPARED = ("push", "pull", "auth_push", "token_push")


class Bench:
    def __init__(self, quick: bool, out: Path, version: RegistryVersion) -> None:
        self.quick = quick
        self.out = out
        #: The registry every step runs (the workshop's, 3, unless --registry 2).
        self.version = version
        self.rounds = 3 if quick else 7
        self.engine = reglab.connect()
        images.ensure_images(  # every comparison, up to the swarm's
            self.engine, "swarm", offline=reglab.Settings.from_env().offline
        )
        self.tmp = Path(tempfile.mkdtemp(prefix="reglab-bench-"))
        self.port = free_port()
        layers, size = (4, 4 << 20) if quick else (8, 8 << 20)
        self.source = build_random_image(
            self.engine, f"reglab-bench-src:{os.getpid()}", layers=layers, layer_bytes=size
        )
        self.image_mb = layers * size / 2**20
        self.rows: list[tuple[str, str, str, str]] = []
        self.lost = 0
        self.tokens_per_s = 0.0
        self.name = NAME
        self.swarm_bench = SwarmBench(self)

    def registry(
        self,
        stage: str = "local",
        *,
        notify: str | None = None,
        network: str | None = None,
        version: RegistryVersion | None = None,
    ) -> reglab.Registry:
        config = reglab.RegistryConfig(
            stage=reglab.Stage.parse(stage),
            port=self.port,
            workdir=self.tmp / "w",
            name=NAME,
            notify=notify,
            network=network,
            version=version or self.version,
        )
        return reglab.Registry(config, self.engine)

    def fresh(
        self, stage: str = "local", version: RegistryVersion | None = None
    ) -> reglab.Registry:
        """A registry with empty storage (the local stage keeps data in the container)."""
        return self.registry(stage, version=version).start()

    def on(self, what: str, version: RegistryVersion | None) -> str:
        """A row's name, with the registry it ran on when that is not the run's own."""
        return what if version in (None, self.version) else f"{what} (registry {version.label})"

    def row(self, what: str, reglab_s: float, cli_s: float, unit: str = "ratio") -> float:
        value = reglab_s / cli_s if unit == "ratio" else (reglab_s - cli_s) * 1000
        shown = f"{value:.3f}" if unit == "ratio" else f"{value:+.0f} ms"
        self.rows.append((what, f"{reglab_s:.3f} s", f"{cli_s:.3f} s", shown))
        print(
            f"measured: {what}: reglab {reglab_s:.3f} s, CLI {cli_s:.3f} s -> {shown}", flush=True
        )  # as it goes, so a long run that fails late still shows its numbers
        return value

    # --- the measurements ---
    def push(self, version: RegistryVersion | None = None) -> float:
        ref = f"127.0.0.1:{self.port}/bench/data:latest"
        transfer.tag(self.engine, self.source, ref)
        r, c = alternate(
            self.rounds,
            lambda: self.fresh(version=version),
            lambda: transfer.push(self.engine, ref),
            lambda: docker("push", ref),
        )
        return self.row(self.on(f"push {self.image_mb:.0f} MiB", version), r, c)

    def pull(self, version: RegistryVersion | None = None) -> float:
        ref = f"127.0.0.1:{self.port}/bench/data:latest"
        self.fresh(version=version)
        transfer.push(self.engine, ref)
        transfer.remove(self.engine, self.source)  # only the registry's name is left

        def forget() -> None:  # remove the image and its layers, so a pull moves every byte
            transfer.remove(self.engine, ref)

        r, c = alternate(
            self.rounds,
            forget,
            lambda: transfer.pull(self.engine, ref),
            lambda: docker("pull", ref),
        )
        transfer.tag(self.engine, ref, self.source)
        return self.row(self.on(f"pull {self.image_mb:.0f} MiB", version), r, c)

    def ready(self) -> float:
        url = f"http://127.0.0.1:{self.port}/v2/"

        def remove() -> None:
            self.registry().remove()

        def cli_run_and_poll() -> None:
            docker(
                "run",
                "-d",
                "--name",
                NAME,
                "-p",
                f"127.0.0.1:{self.port}:5000",
                "--label",
                "org.reglab.owned=true",
                self.version.image,
            )
            with requests.Session() as session:
                while True:
                    try:
                        if session.get(url, timeout=1).status_code in (200, 401):
                            return
                    except requests.ConnectionError:
                        pass
                    time.sleep(0.01)

        r, c = alternate(self.rounds * 2, remove, lambda: self.registry().start(), cli_run_and_poll)
        return self.row("start to first answer", r, c, unit="ms")

    def auth_registry(
        self, cost: int, version: RegistryVersion | None = None
    ) -> tuple[reglab.Registry, reglab.Credentials]:
        creds = reglab.Credentials.generate("bench")
        users = Htpasswd(self.tmp / "w" / "auth" / "htpasswd")
        users.set(creds.user, creds.password, cost)
        users.save()
        return self.registry("auth", version=version), creds

    def auth_push(self, version: RegistryVersion | None = None) -> float:
        ref = f"127.0.0.1:{self.port}/bench/data:latest"
        transfer.tag(self.engine, self.source, ref)
        registry, creds = self.auth_registry(DEFAULT_COST, version)

        def fresh_auth() -> None:
            shutil.rmtree(self.tmp / "w" / "registry-data", ignore_errors=True)
            registry.start()

        times_auth: list[float] = []
        times_plain: list[float] = []
        for n in range(self.rounds):
            pair = [("auth", times_auth), ("plain", times_plain)]
            for kind, sink in pair if n % 2 == 0 else pair[::-1]:
                if kind == "auth":
                    fresh_auth()
                    sink.append(
                        timed(lambda: transfer.push(self.engine, ref, auth=creds.auth_config()))
                    )
                else:
                    self.fresh(version=version)
                    sink.append(timed(lambda: transfer.push(self.engine, ref)))
        return self.row(
            self.on(f"TLS+auth push (cost {DEFAULT_COST}) / plain push", version),
            statistics.median(times_auth),
            statistics.median(times_plain),
        )

    def token_push(self, version: RegistryVersion | None = None) -> float:
        """A push with token auth (TLS, a token server, bob's token per scope) / the same push
        without auth; then tokens issued per second by the token server (on the run's own
        registry only: the token server is the same for both)."""
        ref = f"127.0.0.1:{self.port}/team/data:latest"
        transfer.tag(self.engine, self.source, ref)
        registry, creds = self.auth_registry(DEFAULT_COST, version)
        token_config = dataclasses.replace(
            registry.config, stage=reglab.Stage.TOKEN, token_port=free_port()
        )
        acl = token_config.paths.acl
        acl.write_text(f"- match: {{account: {creds.user}}}\n  actions: [pull, push]\n")
        token_registry = reglab.Registry(token_config, self.engine)

        def fresh_token() -> None:
            shutil.rmtree(self.tmp / "w" / "registry-data", ignore_errors=True)
            token_registry.start()

        try:
            r, c = alternate_prepared(
                self.rounds,
                (fresh_token, lambda: transfer.push(self.engine, ref, auth=creds.auth_config())),
                (partial(self.fresh, version=version), lambda: transfer.push(self.engine, ref)),
            )
            value = self.row(self.on("token auth push / plain push", version), r, c)
            if version not in (None, self.version):
                return value
            count = 50 if self.quick else 200
            fresh_token()
            with requests.Session() as session:
                params = {"service": "reglab-registry", "scope": "repository:team/data:pull,push"}
                started = time.perf_counter()
                ca = str(token_config.paths.ca_cert)
                for _ in range(count):
                    answer = session.get(
                        token_config.realm, params=params, timeout=10, auth=creds.as_tuple(),
                        verify=ca,
                    )  # fmt: skip
                    answer.raise_for_status()
                self.tokens_per_s = count / (time.perf_counter() - started)
            print(
                f"measured: {count} tokens in a row: {self.tokens_per_s:.0f} tokens/s", flush=True
            )
            self.rows.append(("tokens issued per second (bcrypt cost 5 + RS256)",
                              f"{self.tokens_per_s:.0f}/s", "-", "-"))  # fmt: skip
        finally:
            token_registry.remove()
            transfer.remove(self.engine, ref)
        return value

    def cost_curve(self) -> list[tuple[int, float]]:
        ref = f"127.0.0.1:{self.port}/bench/data:latest"
        transfer.tag(self.engine, self.source, ref)  # a step of its own (--only cost_curve)
        costs = [4, 6, 8, 10, 12] if self.quick else list(range(4, 13))
        curve: list[tuple[int, float]] = []
        for cost in costs:
            registry, creds = self.auth_registry(cost)
            samples: list[float] = []
            for _ in range(1 if self.quick else 3):
                shutil.rmtree(self.tmp / "w" / "registry-data", ignore_errors=True)
                registry.start()
                auth = creds.auth_config()
                samples.append(timed(partial(transfer.push, self.engine, ref, auth=auth)))
            curve.append((cost, statistics.median(samples)))
        self.fresh()
        plain = timed(lambda: transfer.push(self.engine, ref))
        self.plot(curve, plain)
        return curve

    def plot(self, curve: list[tuple[int, float]], plain: float) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
        ax.plot([c for c, _ in curve], [t for _, t in curve], "o-", label="TLS + basic auth")
        ax.axhline(plain, color="grey", linestyle="--", label="plain registry")
        ax.axvline(
            DEFAULT_COST,
            color="tab:green",
            linestyle=":",
            label=f"reglab default (cost {DEFAULT_COST})",
        )
        ax.set_xlabel("bcrypt cost factor")
        ax.set_ylabel(f"push time of {self.image_mb:.0f} MiB (s)")
        ax.set_title("The registry checks bcrypt on every request")
        ax.legend()
        fig.tight_layout()
        self.out.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.out / FIGURE.name)

    def notebooks(self) -> float:
        cell_seconds: list[float] = []

        def nbval() -> None:
            env = {
                **os.environ,
                "REGLAB_PORT": str(self.port),
                "REGLAB_NAME": NAME,
                "REGLAB_WORKDIR": str(self.tmp / f"nb-{uuid.uuid4().hex[:6]}" / "workdir"),
            }
            out = subprocess.run(
                nbval_command(*STAGE_NOTEBOOKS, options=("--durations=0",)),
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:  # which cell, and what it said: the end of pytest's report
                sys.exit("the notebooks failed under nbval:\n" + out.stdout[-3000:])
            # "0.25s call  notebooks/...::Cell 3": the time the cells' own code took
            cell_seconds.append(
                sum(
                    float(line.split("s", 1)[0])
                    for line in out.stdout.splitlines()
                    if " call " in line
                )
            )

        def cli() -> None:
            folder = self.tmp / f"cli-{uuid.uuid4().hex[:6]}"
            folder.mkdir()
            script = folder / "workshop-cli.sh"
            script.write_text(workshop_cli_script(self.port, folder / "terminal-state.sh"))
            env = {**os.environ, **BENCH_PASSWORDS, "DOCKER_CONFIG": str(folder / "docker")}
            env["REGLAB_WORKDIR"] = str(folder / "workdir")  # the lines say "$REGLAB_WORKDIR/..."
            subprocess.run(
                ["bash", str(script)], check=True, cwd=folder, env=env, stdout=subprocess.DEVNULL
            )

        r, c = alternate(max(2, self.rounds // 2), lambda: self.registry().remove(), nbval, cli)
        ratio = self.row("whole workshop: notebooks / CLI script", r, c)
        self.row("  of which notebook cells (no Jupyter)", statistics.median(cell_seconds), c)
        return ratio

    def gc(self) -> float:
        return day_two.gc(self)

    def mirror(self) -> float:
        return day_two.mirror(self)

    def events(self) -> float:
        return day_two.events(self)

    def swarm(self) -> float:
        return self.swarm_bench.front_pull()

    def node(self) -> float:
        return node_bench.node(self)

    def gate(self) -> float:
        return supply_bench.gate(self)

    def swarm_paths(self) -> float:
        return self.swarm_bench.paths()

    def close(self) -> None:
        self.registry().remove()
        for ref in (self.source, f"127.0.0.1:{self.port}/bench/data:latest"):
            transfer.remove(self.engine, ref)
        shutil.rmtree(self.tmp, ignore_errors=True)


STEPS = (
    "push", "pull", "ready", "auth_push", "token_push", "cost_curve", "notebooks", "gc",
    "mirror", "events", "swarm", "node", "gate",
)  # fmt: skip
#: Steps run only when named with --only: what the swarm's extra time is made of.
EXTRA_STEPS = ("swarm_paths",)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument(
        "--only",
        default=",".join(STEPS),
        metavar="STEP[,STEP]",
        help=f"run only these of: {', '.join(STEPS + EXTRA_STEPS)}",
    )
    parser.add_argument(
        "--registry",
        default="3",
        metavar="3|2",
        help="the registry every step runs (default 3; on 3 the push and pull rows run on 2.8 "
        "too, beside them)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="folder for the results (default benchmarks/out, git-ignored)",
    )
    parser.add_argument(
        "--update-figure",
        action="store_true",
        help="copy the cost curve's plot over notebook 04's figure (full run only)",
    )
    args = parser.parse_args()
    if args.update_figure and (args.quick or "cost_curve" not in args.only):
        parser.error("--update-figure needs a full run of cost_curve (no --quick)")
    chosen = [s.strip() for s in args.only.split(",")]
    unknown = set(chosen) - set(STEPS + EXTRA_STEPS)
    if unknown:
        parser.error(
            f"unknown step(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(STEPS + EXTRA_STEPS)}"
        )
    version = registry_version(args.registry)
    bench = Bench(args.quick, args.out, version)
    results: dict[str, object] = {}
    started = time.perf_counter()
    try:
        for step in chosen:
            results[step] = getattr(bench, step)()
            if step in COMPARED and version != V2:  # the same row on 2.8, right after
                results[f"{step}_v2"] = getattr(bench, step)(version=V2)
    finally:
        bench.close()
    curve = cast(list[tuple[int, float]], results.get("cost_curve", []))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Docker engine {bench.engine.version()['Version']}; "
        f"registry {version.label}; {bench.rounds} rounds, medians; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print(f"{'measurement':44} {'reglab':>10} {'CLI':>10} {'result':>10}")
    for row in bench.rows:
        print(f"{row[0]:44} {row[1]:>10} {row[2]:>10} {row[3]:>10}")
    if curve:
        print(
            "bcrypt cost -> TLS+auth push time: "
            + ", ".join(f"{cost}: {t:.2f} s" for cost, t in curve)
            + f"  (plot: {args.out / FIGURE.name})"
        )
        if args.update_figure:
            shutil.copyfile(args.out / FIGURE.name, FIGURE)
            print(f"updated {FIGURE.relative_to(ROOT)}")
    names = {
        "push": "push_ratio",
        "pull": "pull_ratio",
        "ready": "ready_overhead_ms",
        "auth_push": "auth_push_ratio",
        "notebooks": "notebooks_ratio",
        "gc": "gc_s_per_1000_blobs",
        "token_push": "token_push_ratio",
        "mirror": "mirror_pull_ratio",
        "events": "event_p99_ms",
        "swarm": "lb_pull_ratio",
        "swarm_paths": "lb_paths_ratio",
        "node": "node_pull_ratio",
        "gate": "gate_pull_ratio",
    }
    names = {  # each 2.8 key right after its own
        key: value
        for step, name in names.items()
        for key, value in ((step, name), (f"{step}_v2", f"{name}_v2"))
        if step in COMPARED or key == step
    }
    line = "BENCH " + " ".join(
        f"{names[s]}={results[s]:.0f}" if s == "ready" else f"{names[s]}={results[s]:.3f}"
        for s in names
        if s in results
    )
    if "token_push" in results:
        line += f" tokens_per_s={bench.tokens_per_s:.0f}"
    if "events" in results:
        line += f" event_outage_lost={bench.lost}"
    if "swarm" in results:
        line += bench.swarm_bench.bench_keys()
    print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.txt").write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
