"""The benchmark's day-two rows: garbage collection, a pull-through mirror, registry events.
Each takes the :class:`bench.Bench` it measures for and returns its BENCH value."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from common import free_port
from timing import alternate

from reglab.engine import transfer
from reglab.engine.network import NETWORK, project_network, remove_project_network
from reglab.registry import gc as reglab_gc
from reglab.registry import mirror as reglab_mirror
from reglab.registry.events import Event, Listener

if TYPE_CHECKING:
    from bench import Bench


def gc(bench: Bench) -> float:
    """Seconds per 1000 blobs collected: 1000 small blobs no manifest refers to, uploaded
    through the API, then reglab gc (read-only restart, collector, restart)."""
    registry = bench.registry("persistent").start()
    with registry.client() as api:
        for n in range(1000):
            api.upload_blob("bench/garbage", os.urandom(1024) + n.to_bytes(4, "big"))
    store = reglab_gc.blob_bytes(registry.config.paths)
    started = time.perf_counter()
    done = reglab_gc.collect(registry)
    seconds = time.perf_counter() - started
    assert len(done.eligible) >= 1000 and done.after < store, done
    print(
        f"measured: gc of 1000 blobs ({store:,} bytes in the store): {seconds:.2f} s",
        flush=True,
    )
    bench.rows.append(("gc, 1000 unreferenced blobs (s)", f"{seconds:.3f} s", "-", "-"))
    registry.remove()
    return seconds


def mirror(bench: Bench) -> float:
    """A warm pull through a pull-through mirror / the same pull straight from its
    upstream (every layer moved each time: the engine forgets the image in between)."""
    upstream = bench.registry("persistent").start()
    ref = upstream.ref("bench/data")
    transfer.tag(bench.engine, bench.source, ref)
    transfer.push(bench.engine, ref)
    transfer.remove(bench.engine, ref)
    mirror_name = f"{bench.name}-mirror"
    proxy = reglab_mirror.start_mirror(
        bench.engine, bench.name, free_port(), bench.tmp / "m", mirror_name
    )
    through = proxy.ref("bench/data")
    transfer.remove(bench.engine, bench.source)  # no other name keeps the layers
    try:
        transfer.pull(bench.engine, through)  # warm: the mirror now stores every layer

        def forget() -> None:
            for name in (through, ref):
                transfer.remove(bench.engine, name)

        r, c = alternate(
            bench.rounds,
            forget,
            lambda: transfer.pull(bench.engine, through),
            lambda: transfer.pull(bench.engine, ref),
        )
        transfer.pull(bench.engine, ref)
        transfer.tag(bench.engine, ref, bench.source)  # the source image, for later steps
        forget()
    finally:
        proxy.remove()
        upstream.remove()
        remove_project_network(bench.engine)
    return bench.row(f"warm pull {bench.image_mb:.0f} MiB: mirror / upstream", r, c)


def events(bench: Bench) -> float:
    """Manifest pushed -> its event received (the registry's timestamp to the listener's
    clock; one machine, one clock), over many pushes: p99 in ms. Then a 5 s listener
    outage with pushes during it: how many of their events never arrive (target 0)."""
    listener = Listener(project_network(bench.engine)).start()
    registry = bench.registry("local", notify=listener.url, network=NETWORK).start()
    ref: Callable[[int], str] = lambda n: registry.ref(f"bench/events-{n}")  # noqa: E731
    latencies: list[float] = []
    try:
        for n in range(20 if bench.quick else 60):
            transfer.tag(bench.engine, "hello-world", ref(n))
            transfer.push(bench.engine, ref(n))
            repository = f"bench/events-{n}"

            def pushed(events: list[Event], repo: str = repository) -> bool:
                return any(e.repository == repo and e.is_manifest for e in events)

            listener.wait_for(pushed, timeout=30)
            arrived, event = next(
                (t, e)
                for t, e in listener.deliveries
                if e.repository == repository and e.is_manifest
            )
            latencies.append((arrived - event.sent) * 1000)
        listener.stop()
        outage = time.monotonic()
        during: list[str] = []
        while time.monotonic() - outage < 5.0:  # the outage lasts 5 s; pushes go on
            n = 1000 + len(during)
            transfer.tag(bench.engine, "hello-world", ref(n))
            transfer.push(bench.engine, ref(n))
            during.append(f"bench/events-{n}")
        listener.start()
        with registry.client() as api:
            events = listener.flush(api, during[-1])
        received = {e.repository for e in events if e.is_manifest and e.action == "push"}
        bench.lost = len(set(during) - received)
    finally:
        for name in {t for i in bench.engine.images.list() for t in i.tags}:
            if name.startswith(f"127.0.0.1:{bench.port}/bench/events-"):
                transfer.remove(bench.engine, name)
        registry.remove()
        listener.stop()
        remove_project_network(bench.engine)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(
        f"measured: event latency over {len(latencies)} pushes: median "
        f"{statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms; {len(during)} pushes "
        f"during a 5 s outage, {bench.lost} event(s) lost",
        flush=True,
    )
    bench.rows.append(("event latency p99 (ms)", f"{p99:.1f} ms", "-", "-"))
    bench.rows.append(("events lost in a 5 s listener outage", str(bench.lost), "-", "-"))
    return p99
