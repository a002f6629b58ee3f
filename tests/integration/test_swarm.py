"""Registry replicas on Docker Swarm, through the reglab command as a user types it: the stack,
its shared store, cache and http.secret, its token servers, the front, scaling, failover, and
the engine left as it was found."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from common import free_port, remove_test_stack
from conftest import REPORT
from docker import DockerClient

import reglab
from reglab import swarm
from reglab.auth.htpasswd import Htpasswd
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.versions import V2, V3
from reglab.base.wait import NotYet, poll
from reglab.engine import transfer
from reglab.engine.oneoff import one_off
from reglab.engine.spec import Mount
from reglab.lab import exercises, replicas
from reglab.lab.measure import (
    PullStream,
    cache_count,
    digest_from_each,
    front_name,
    pull_via,
    slot_container,
    split_upload,
)
from reglab.registry import conformance
from reglab.registry.client import fetch_text
from reglab.swarm import SwarmRegistry, cluster, gc
from reglab.swarm.odd import odd_spec
from reglab.swarm.render import registry_config
from reglab.swarm.store import BLOBS, bucket_bytes

pytestmark = pytest.mark.docker

USER = ("moby", "swarm-test-pw")
READER = ("reader", "reader-test-pw")
#: What the conformance suite finds wrong with a single registry 3 (tests/integration/
#: test_conformance.py explains each): the front adds nothing to it.
SINGLE_REGISTRY_CAUSES = {
    "sha512", "referrers", "non-distributable", "post-only", "cancel", "anonymous-mount"
}  # fmt: skip
#: The access list given with --acl: moby may do anything, reader only pull.
ACL = """\
- match: {account: moby}
  actions: ["*"]
- match: {account: reader}
  actions: [pull]
"""

#: What the deployed fixture gives: the stack, its working folder, the digest pushed to it.
Deployed = tuple[SwarmRegistry, Path, str]


def run(
    *args: str, workdir: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``reglab swarm ARGS`` as typed in a terminal: with REGLAB_WORKDIR set to ``workdir``,
    or (None) with no REGLAB_WORKDIR at all, in the folder ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "REGLAB_WORKDIR"}
    if workdir is not None:
        env["REGLAB_WORKDIR"] = str(workdir)
    return subprocess.run(
        [sys.executable, "-m", "reglab", "swarm", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "fix:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def gateway_bridge(engine: DockerClient) -> bool:
    return any(n.name == swarm.GWBRIDGE for n in engine.networks.list(names=[swarm.GWBRIDGE]))


@pytest.fixture(scope="module")
def deployed(
    engine: DockerClient,
    workshop_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    """``reglab swarm up --replicas 2 --workdir DIR`` in a fresh folder with two users; removed
    afterwards."""
    assert swarm.swarm_state(engine) == "inactive", "these tests start from no swarm"
    had_gwbridge = gateway_bridge(engine)
    workdir = tmp_path_factory.mktemp("swarm") / "workdir"
    users = Htpasswd.load(reglab.Workdir(workdir).htpasswd)
    users.set(*USER, cost=5)
    users.set(*READER, cost=5)
    users.save()
    acl = workdir.parent / "acl.yml"
    acl.write_text(ACL)
    name, port = f"reglab-test-swarm-{uuid.uuid4().hex[:6]}", free_port()
    try:
        result = run("up", "--replicas", "2", "--port", str(port), "--name", name,
                     "--acl", str(acl), "--workdir", str(workdir), cwd=workdir.parent)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "now a swarm manager" in result.stdout
        assert reglab.Workdir(workdir).acl.read_text() == ACL  # the given list, copied
        registry = SwarmRegistry.attach(engine, name, workdir, port)
        before = bucket_bytes(engine, registry)
        transfer.tag(engine, "hello-world", f"{registry.address}/hello-world:latest")
        auth = {"username": USER[0], "password": USER[1]}
        digest = transfer.push(engine, f"{registry.address}/hello-world:latest", auth=auth)
        assert bucket_bytes(engine, registry) > before
        yield registry, workdir, digest
    finally:
        transfer.remove(engine, f"127.0.0.1:{port}/hello-world:latest")
        remove_test_stack(engine, name)
        try:
            swarm.leave_swarm(engine)  # when a test failed after its stack was removed
            stale = False
        except swarm.StaleBridge:  # the engine's stale count of the bridge: conftest ends it
            stale = True
        assert swarm.swarm_state(engine) == "inactive"
        assert gateway_bridge(engine) == had_gwbridge or stale


def test_status_scale_and_every_replica_serving_one_store(
    deployed: Deployed, tmp_path: Path
) -> None:
    """Typed from another folder, with only the name: the port and the working folder (its
    CA, for TLS) are read from what runs."""
    registry, workdir, digest = deployed
    status = run("status", "--name", registry.name, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"{registry.name}_registry': '2/2'" in status.stdout
    assert registry.url in status.stdout  # the port read back from the running front
    assert f"working folder: {workdir}" in status.stdout

    one = run("scale", "1", "--name", registry.name, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "1 replica(s), all up at the front" in one.stdout
    status = run("status", "--name", registry.name, cwd=tmp_path)
    assert f"{registry.name}_registry': '1/1'" in status.stdout, status.stdout + status.stderr

    scaled = run("scale", "3", "--name", registry.name, cwd=tmp_path)
    assert scaled.returncode == 0, scaled.stderr
    assert len(registry.up_replicas()) == 3
    registry.replicas = 3
    found = digest_from_each(registry, USER, "hello-world")
    assert sorted(found.values()) == [digest] * 3, found


def test_every_replica_takes_the_token_servers_tokens_and_their_limits(
    deployed: Deployed,
) -> None:
    registry, workdir, digest = deployed
    assert registry.token_servers_up() == swarm.TOKEN_REPLICAS
    # the realm is the front's own /auth, which the front sends to the token servers
    with registry.client() as anonymous:
        assert anonymous.status() == 200  # a token for nobody still opens /v2/
        challenge = anonymous.session.get(f"{registry.url}/v2/", verify=anonymous.verify)
    assert f'realm="{registry.realm}"' in challenge.headers["WWW-Authenticate"]
    assert sorted(digest_from_each(registry, READER, "hello-world").values()) == [digest] * len(
        registry.up_replicas()
    )
    for replica in registry.up_replicas():  # the reader may pull, never push, on every replica
        with registry.client(auth=READER) as api, pytest.raises(reglab.ClientError) as refused:
            api.request("POST", "/v2/hello-world/blobs/uploads/", headers={
                "X-Reglab-Use": replica.name})  # fmt: skip
        assert refused.value.status == 401 and "does not grant" in refused.value.problem
    with registry.client(auth=(READER[0], "wrong")) as api, pytest.raises(reglab.ReglabError) as no:
        api.manifest_digest("hello-world")
    assert "token server refused" in no.value.problem


def test_an_upload_across_replicas_needs_one_http_secret(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = deployed[0]
    names = [r.name for r in registry.up_replicas()]
    data = os.urandom(30_000)
    digest, steps = split_upload(registry, USER, "split", data, (names[0], names[1], names[-1]))
    assert [(s.request, s.replica, s.status) for s in steps] == [
        ("POST", names[0], 202),
        ("PATCH", names[1], 202),
        ("PUT", names[-1], 201),
    ]
    with registry.client(auth=USER) as api:
        assert api.blob_status("split", digest) == 200

    registry.start_odd()
    try:
        _, steps = split_upload(registry, USER, "split", data, (names[0], "odd", names[0]))
        assert len(steps) == 2 and "BLOB_UPLOAD_INVALID" in steps[1].error
        assert not exercises.odd_secret(registry, reglab.Credentials(*USER), "a")
        assert "✘ Not yet" in capsys.readouterr().out
        assert exercises.odd_secret(registry, reglab.Credentials(*USER), "b")
        assert "✔ Correct" in capsys.readouterr().out
        # Exercise 2: made a true replica from a terminal, as the solution types it.
        assert not exercises.odd_fixed(registry, reglab.Credentials(*USER))
        assert "✘ Not yet" in capsys.readouterr().out
        folder = registry.folder
        typed = subprocess.run(
            ["bash", "-c", f"cp {folder}/registry.yml {folder}/odd.yml && "
             f"docker restart {registry.odd}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert typed.returncode == 0, typed.stderr
        assert exercises.odd_fixed(registry, reglab.Credentials(*USER))
        assert "✔ Correct" in capsys.readouterr().out
    finally:
        assert registry.remove_odd()


def test_the_front_counts_a_replica_up_only_when_it_asks_for_auth(deployed: Deployed) -> None:
    """A registry that lost its ``auth`` section answers ``/v2/`` with 200 and would take
    anyone's push: the front's health check (401 only, as the distribution docs advise) keeps
    it out. It runs as the odd registry, where the front checks it like a replica."""
    registry = deployed[0]
    config = yaml.safe_load((registry.folder / "registry.yml").read_text())
    del config["auth"]
    (registry.folder / "odd.yml").write_text(yaml.safe_dump(config))
    registry.engine.containers.run(**odd_spec(registry, registry.folder.resolve()).run_kwargs())

    def checked() -> dict[str, str] | None:
        rows = (fetch_text(registry.stats_url) or "").lstrip("# ").splitlines()
        header = rows[0].split(",") if rows else []
        for row in rows[1:]:
            values = dict(zip(header, row.split(","), strict=False))
            if values.get("pxname") == "replicas" and values.get("svname") == "odd":
                if values.get("check_status") == "L7STS":  # checked, and a wrong status
                    return values
                raise NotYet(f"odd: {values.get('status')} {values.get('check_status')}")
        raise NotYet("no odd server on the front's page")

    try:
        seen = poll("the front to check the registry without auth", checked, timeout=30)
        assert seen["status"].startswith("DOWN") and seen["check_code"] == "200"
        assert "odd" not in [r.name for r in registry.up_replicas()]
    finally:
        assert registry.remove_odd()


def test_no_request_fails_while_a_replica_dies_or_all_are_replaced(deployed: Deployed) -> None:
    registry = SwarmRegistry.attach(deployed[0].engine, deployed[0].name, deployed[1], 0)
    with PullStream(registry, USER, "hello-world") as stream:
        stream.wait_for(50)
        registry.kill_replica()
        registry.wait_ready(registry.replicas)
        stream.wait_for(stream.requests + 100)
        registry.rolling_update()
        stream.wait_for(stream.requests + 50)
    assert stream.requests >= 200 and stream.failed == [], stream.failed[:3]


def test_the_replicas_share_one_cache_as_their_metrics_show(
    engine: DockerClient, deployed: Deployed
) -> None:
    """Each replica's own counters (registry 3's debug server): with the cache just emptied,
    the first replica to serve an image misses; the next finds every descriptor in Redis."""
    registry = SwarmRegistry.attach(engine, deployed[0].name, deployed[1], 0)
    gc.flush_step(engine, registry).run()
    counts = []
    for slot in (1, 2):
        container = slot_container(registry, slot)
        before = cache_count(registry, container)
        assert pull_via(registry, USER, "hello-world", front_name(registry, container)) == 2
        counts.append(cache_count(registry, container) - before)
    first, second = counts
    assert first.lookups > first.hits and second.lookups == second.hits > 0, counts
    replicas.cache_shared(counts)  # the notebook's checkpoint agrees


def test_garbage_is_collected_with_every_replica_read_only_then_the_cache_flushed(
    engine: DockerClient, deployed: Deployed
) -> None:
    """Two tags, one deleted (by its digest); ``gc`` (a dry run first) sweeps exactly its
    blobs from S3, the cache no longer answers for them, the other tag still pulls from every
    replica, and the replicas take pushes again."""
    registry = SwarmRegistry.attach(engine, deployed[0].name, deployed[1], 0)
    keep_ref, gone_ref = registry.ref("gc", "keep"), registry.ref("gc", "gone")
    auth = {"username": USER[0], "password": USER[1]}
    try:
        transfer.tag(engine, "hello-world", keep_ref)
        transfer.tag(engine, TOOLS_IMAGE, gone_ref)
        keep = transfer.push(engine, keep_ref, auth=auth)
        gone = transfer.push(engine, gone_ref, auth=auth)
        with registry.client(auth=USER) as api:
            layers = [layer["digest"] for layer in api.manifest("gc", gone)["layers"]]
            assert all(api.blob_status("gc", layer) == 200 for layer in layers)  # cached now
            api.delete_manifest("gc", gone)
        dry = gc.collect(registry, dry_run=True)
        assert set(layers) <= set(dry.eligible) and dry.after == dry.before

        done = gc.collect(registry)
        assert set(layers) <= set(done.eligible)
        assert done.before - done.after >= 1_000_000, done  # busybox's layer, about 2 MB
        assert bucket_bytes(engine, registry, BLOBS) == done.after
        with registry.client(auth=USER) as api:
            for replica in registry.up_replicas():
                header = {"X-Reglab-Use": replica.name}
                for layer in layers:
                    with pytest.raises(reglab.ClientError) as missing:
                        api.request("HEAD", f"/v2/gc/blobs/{layer}", headers=header)
                    assert missing.value.status == 404, (replica.name, layer)
        assert set(digest_from_each(registry, USER, "gc", "keep").values()) == {keep}
        config = yaml.safe_load((registry.folder / "registry.yml").read_text())
        assert "maintenance" not in config["storage"]  # read-write again: a push lands
        transfer.tag(engine, "hello-world", registry.ref("gc", "after"))
        assert transfer.push(engine, registry.ref("gc", "after"), auth=auth) == keep
    finally:
        for ref in (keep_ref, gone_ref, registry.ref("gc", "after")):
            transfer.remove(engine, ref)


def says(container: Any, text: str) -> Callable[[], bool | None]:
    """A probe: True once the container's log holds ``text``."""
    return lambda: text in bytes(container.logs()).decode(errors="replace") or None


def test_a_2_8_redis_addr_leaves_registry_3_without_redis(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    """On 2.8: ``redis.addr``. Registry 3 ignores that key (go-redis reads ``addrs``), so the
    replicas' 2.8 config, given to registry 3, panics at start on ``blobdescriptor: redis``;
    registry 2.8 starts with it."""
    names = swarm.StackNames("reglab-test-v2", 5000, V2)
    keys = {"http_secret": "h" * 64, "access_key": "a" * 12, "secret_key": "s" * 40}
    settings = registry_config(names, keys)
    del settings["auth"]  # no token CA here: only the cache is in question
    config = tmp_path / "v2.yml"
    config.write_text(yaml.safe_dump(settings))
    config.chmod(0o644)
    for version, starts in ((V3, False), (V2, True)):
        spec = one_off(
            version.image,
            entrypoint=("/bin/registry",),
            command=("serve", version.config_path),
            mounts=(Mount(config, version.config_path, read_only=True),),
        )
        kwargs = {**spec.run_kwargs(), "detach": True, "remove": False}
        kwargs["name"] = f"reglab-test-redis-{version.major}-{uuid.uuid4().hex[:6]}"
        container = engine.containers.run(**kwargs)
        try:
            if starts:
                poll(f"{version.image} to listen", says(container, "listening on"), timeout=20)
                container.reload()
                assert container.status == "running"
            else:
                status = container.wait(timeout=20)
                logs = bytes(container.logs()).decode(errors="replace")
                assert status["StatusCode"] != 0, logs
                assert "redis configuration required" in logs, logs
        finally:
            container.remove(force=True, v=True)


def test_the_front_passes_the_conformance_suite_as_one_registry_does(
    deployed: Deployed, tmp_path: Path
) -> None:
    """The OCI conformance suite through the front (TLS, tokens, replicas on S3): the same
    verdict as a single registry 3, every failure and skip explained."""
    registry, _, _ = deployed
    report = conformance.run(registry, auth=USER, results=tmp_path / "results")
    REPORT.append(f"the swarm's front, registry 3, as moby:\n{report.table()}")
    assert report.unexplained() == []
    found = {k for w in conformance.WORKFLOWS for s in ("failed", "skipped")
             for k in report.causes(w, s)}  # fmt: skip
    assert found == SINGLE_REGISTRY_CAUSES


def test_reglab_gc_given_a_stack_collects_through_it(deployed: Deployed) -> None:
    """``reglab gc --name STACK``, typed as for a single registry: the stack's collection."""
    registry, _, _ = deployed
    typed = subprocess.run(
        [sys.executable, "-m", "reglab", "gc", "--name", registry.name, "--dry-run"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    assert "blob(s) would be deleted" in typed.stdout and "a dry run" in typed.stdout


def test_bad_input_is_one_line_and_changes_nothing(
    engine: DockerClient, deployed: Deployed, tmp_path: Path
) -> None:
    registry, workdir, _ = deployed
    assert_one_line_error(run("scale", "0", "--name", registry.name, workdir=workdir), "1 to 9")
    other = f"reglab-test-other-{uuid.uuid4().hex[:6]}"
    taken = run("up", "--port", str(registry.port), "--name", other, workdir=workdir)
    assert_one_line_error(taken, f"port {registry.port}", "in use")
    assert not SwarmRegistry(engine, other, 0, workdir).deployed()
    assert_one_line_error(run("down", "--name", other, workdir=workdir), "nothing deployed")
    no_users = run("up", "--name", other, workdir=tmp_path / "empty")
    assert_one_line_error(no_users, "no users", "reglab user add")
    acl = reglab.Workdir(workdir).acl
    before = acl.read_bytes()
    bad = tmp_path / "bad.yml"
    bad.write_text("- match: {account: moby, ip: 10.0.0.1}\n  actions: [pull]\n")
    refused = run("up", "--name", other, "--port", str(free_port()), "--acl", str(bad),
                  workdir=workdir)  # fmt: skip
    assert_one_line_error(refused, "ip")
    assert acl.read_bytes() == before  # the access list in use is untouched
    assert not SwarmRegistry(engine, other, 0, workdir).deployed()


def test_users_and_rules_added_later_count_after_swarm_up_again(
    engine: DockerClient, deployed: Deployed, tmp_path: Path
) -> None:
    registry, workdir, digest = deployed
    newcomer = ("newcomer", "newcomer-test-pw")
    users = Htpasswd.load(reglab.Workdir(workdir).htpasswd)
    users.set(*newcomer, cost=5)
    users.save()
    late = registry.client(auth=newcomer)  # the deployed users are a secret: not yet
    with late as api, pytest.raises(reglab.ReglabError, match="token server refused"):
        api.manifest_digest("hello-world")
    acl = tmp_path / "acl.yml"
    acl.write_text(ACL + "- match: {account: newcomer}\n  actions: [pull]\n")
    running = SwarmRegistry.attach(engine, registry.name, workdir, 0)
    again = run("up", "--replicas", str(running.replicas), "--port", str(running.port),
                "--name", registry.name, "--acl", str(acl), workdir=workdir)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "now a swarm manager" not in again.stdout  # the same swarm, the stack updated
    found = digest_from_each(running, newcomer, "hello-world")
    assert sorted(found.values()) == [digest] * running.replicas


def test_down_keeps_the_store_unless_purged_then_leaves_the_swarm(
    engine: DockerClient, deployed: Deployed
) -> None:
    registry, workdir, _ = deployed
    kept = run("down", "--name", registry.name, workdir=workdir)
    assert kept.returncode == 0, kept.stderr
    assert "left the swarm reglab created" in kept.stdout
    assert swarm.swarm_state(engine) == "inactive"
    assert [v.name for v in engine.volumes.list(filters={"name": registry.volume})] == [
        registry.volume
    ]
    again = run("up", "--replicas", "1", "--port", str(registry.port), "--name", registry.name,
                workdir=workdir)  # fmt: skip
    assert again.returncode == 0, again.stderr
    registry.replicas = 1
    with registry.client(auth=USER) as api:
        assert "hello-world" in api.catalog()  # the store outlived the stack and the swarm
    # A container joined to the stack's network by hand holds it (and docker_gwbridge):
    # down names it, in one line, and removes nothing.
    holder = engine.containers.run(
        V3.image, name=f"{registry.name}-holder", detach=True, network=registry.network
    )
    try:
        held = run("down", "--purge", "--name", registry.name)
        assert_one_line_error(held, holder.name, registry.network, "docker rm -f")
        assert registry.deployed() and registry.relay_container() is not None
    finally:
        holder.remove(force=True, v=True)
    # As a learner types it, from another folder: what held docker_gwbridge is waited for,
    # then the swarm is left and the bridge removed.
    purged = run("down", "--purge", "--name", registry.name, cwd=workdir.parent.parent)
    assert purged.returncode == 0, purged.stderr
    assert "left the swarm reglab created" in purged.stdout
    assert engine.volumes.list(filters={"name": registry.volume}) == []
    assert swarm.swarm_state(engine) == "inactive"
    assert cluster.gwbridge_holders(engine) == []
    assert_one_line_error(run("down", "--name", registry.name, workdir=workdir), "nothing")


def test_a_swarm_reglab_did_not_make_is_used_and_never_left(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    assert swarm.swarm_state(engine) == "inactive"
    had_gwbridge = gateway_bridge(engine)
    engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    name, port = f"reglab-test-theirs-{uuid.uuid4().hex[:6]}", free_port()
    try:
        users = Htpasswd.load(reglab.Workdir(tmp_path / "w").htpasswd)
        users.set(*USER, cost=5)
        users.save()
        up = run("up", "--replicas", "1", "--port", str(port), "--name", name,
                 workdir=tmp_path / "w")  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert "now a swarm manager" not in up.stdout
        down = run("down", "--purge", "--name", name, workdir=tmp_path / "w")
        assert down.returncode == 0, down.stderr
        assert "left as it was" in down.stdout
        assert swarm.swarm_state(engine) == "active"  # still their swarm
    finally:
        remove_test_stack(engine, name)
        engine.swarm.leave(force=True)
        if not had_gwbridge:
            with contextlib.suppress(cluster.StaleBridge):  # the engine's count: conftest ends it
                cluster.remove_gwbridge(engine, timeout=30)


def test_a_port_in_use_by_another_program_is_refused_before_any_swarm(
    engine: DockerClient, tmp_path: Path
) -> None:
    users = Htpasswd.load(reglab.Workdir(tmp_path / "w").htpasswd)
    users.set(*USER, cost=5)
    users.save()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("up", "--port", str(port), "--name", "reglab-test-busy",
                     workdir=tmp_path / "w")  # fmt: skip
    assert_one_line_error(result, f"port {port}", "--port")
    assert swarm.swarm_state(engine) == "inactive"  # checked first: nothing was changed
