"""The terminal track: every `$` line a notebook prints, typed into a terminal, does what the
cell did.

Each notebook runs as a learner runs it; its printed lines are then run as a shell script
against a fresh working folder and the same port, and the facts the checkpoints check are
checked again on what the script made: digests through the HTTP API, the certificate against
the CA with openssl, the users with Apache's htpasswd, 401s and 200s. Then the clean-up cell's
lines run, and nothing of the run may be left.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import requests
import yaml
from common import Typed, free_port, remove_test_stack, shell_script, typed_commands
from docker import DockerClient
from notebook_runner import NOTEBOOKS, execute, remove_port_tags

import reglab
from reglab.auth.gate import BUNDLE_TYPE, lookaside_path
from reglab.base.ports import Ports
from reglab.base.versions import V2
from reglab.base.wait import poll
from reglab.engine.network import NETWORK, remove_project_network
from reglab.engine.trust import DOCKER_CERTS_D
from reglab.lab import checks, measure
from reglab.node.container import REGISTRY_HOST, Node
from reglab.registry import attach, gc
from reglab.registry.client import read_all

pytestmark = pytest.mark.docker

NAME = "reglab-test-typed"
PASSWORDS = {
    f"PASSWORD_{user.upper()}": f"{user}-typed-pw"
    for user in ("moby", "carol", "alice", "bob", "admin")
}


def run_as_learner(
    notebook: str, workdir: Path, port: int
) -> tuple[list[tuple[str, list[Typed]]], str | None]:
    """Run the notebook; return each code cell's source and printed commands, and the digest of
    the hello-world its checkpoints saw (None if it has none)."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    execute(nb, {"REGLAB_WORKDIR": str(workdir), "REGLAB_PORT": str(port), "REGLAB_NAME": NAME},
            timeout=180)  # fmt: skip
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join("".join(o.get("text", "")) for c in code for o in c.get("outputs", []))
    digest = re.search(r"/hello-world:latest: digest (sha256:[0-9a-f]{64})", text)
    cells = [(c.source, typed_commands(c.get("outputs", []))) for c in code]
    return cells, digest.group(1) if digest else None


def type_in_terminal(commands: list[Typed], port: int, env: dict[str, str], tmp_path: Path) -> None:
    if not commands:
        return
    script = tmp_path / "typed.sh"
    script.write_text(shell_script(commands, port, tmp_path / "terminal-state.sh"))
    result = subprocess.run(
        ["bash", str(script)], cwd=NOTEBOOKS, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script.read_text()}\n--- stderr:\n{result.stderr[-3000:]}"


def digest_of(
    url: str, repository: str, ca: Path | None = None, auth: tuple[str, str] | None = None
) -> str:
    with reglab.RegistryClient(url, ca=ca, auth=auth) as api:
        return api.manifest_digest(repository)


def facts_01(port: int, workdir: Path, hello_digest: str | None) -> None:
    assert digest_of(f"http://127.0.0.1:{port}", "hello-world") == hello_digest


def facts_02(port: int, workdir: Path, hello_digest: str | None) -> None:
    link = reglab.Workdir(workdir).tag_link("hello-world", "latest")
    assert link.read_text().strip() == hello_digest  # on disk, in the typed working folder
    assert digest_of(f"http://127.0.0.1:{port}", "hello-world") == hello_digest


def facts_03(port: int, workdir: Path, hello_digest: str | None) -> None:
    paths = reglab.Workdir(workdir)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", paths.ca_cert, paths.server_cert],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with pytest.raises(requests.exceptions.SSLError):  # no CA: refused
        requests.get(f"https://127.0.0.1:{port}/v2/", timeout=5)
    assert digest_of(f"https://127.0.0.1:{port}", "hello-world", paths.ca_cert) == hello_digest
    gateway = reglab.engine.network.project_network(reglab.connect())
    assert reglab.Certificate.load(paths.server_cert).covers(gateway)  # before the exercise
    trusted = DOCKER_CERTS_D / f"{gateway}:{port}" / "ca.crt"
    assert trusted.read_bytes() == paths.ca_cert.read_bytes()  # written through the engine


def facts_04(port: int, workdir: Path, hello_digest: str | None) -> None:
    paths = reglab.Workdir(workdir)
    for user in ("moby", "carol"):
        check = subprocess.run(
            ["htpasswd", "-vb", paths.htpasswd, user, PASSWORDS[f"PASSWORD_{user.upper()}"]],
            capture_output=True, text=True,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
    url = f"https://127.0.0.1:{port}"
    assert reglab.RegistryClient(url, ca=paths.ca_cert).status() == 401
    auth = ("moby", PASSWORDS["PASSWORD_MOBY"])
    assert digest_of(url, "hello-world", paths.ca_cert, auth) == hello_digest
    # The exercise's carol: her password is right, but MD5; the registry ignores her line
    # until the learner fixes it (the solution is theirs to type), and the clean-up removes her.
    assert reglab.RegistryClient(url, ca=paths.ca_cert, auth=("carol", PASSWORDS[
        "PASSWORD_CAROL"])).status() == 401  # fmt: skip


def facts_05(port: int, workdir: Path, hello_digest: str | None) -> None:
    registry = reglab.Registry.attach(reglab.connect(), NAME, workdir)
    assert registry.config.data_volume == f"{NAME}-disk"  # on the small disk
    with registry.client() as api:
        for deleted in ("1", "old", "2"):  # deleted by digest, every tag with it (2: Exercise 2)
            with pytest.raises(reglab.ClientError) as gone:
                api.manifest_digest("reglab-app", deleted)
            assert gone.value.status == 404
        manifest = api.manifest("reglab-app", "3")  # pushed back after the live collection...
        for blob in [manifest["config"], *manifest["layers"]]:
            assert api.blob_status("reglab-app", blob["digest"]) == 200  # ...on a stale cache
            with pytest.raises(reglab.ClientError, match="broke off"):  # and no byte is sent
                read_all(api.request("GET", f"/v2/reglab-app/blobs/{blob['digest']}",
                                     stream=True), bytearray())  # fmt: skip
    restarted = reglab.Registry.attach(reglab.connect(), NAME, workdir)
    container = restarted.container
    assert container is not None
    container.restart(timeout=5)  # the first half of the fix, typed: docker restart
    restarted.wait_ready()
    with restarted.client() as api:
        assert api.blob_status("reglab-app", manifest["layers"][-1]["digest"]) == 404


def facts_06(port: int, workdir: Path, hello_digest: str | None) -> None:
    engine = reglab.connect()
    mirror = reglab.Registry.attach(engine, f"{NAME}-mirror", workdir / "mirror")
    assert mirror.config.upstream == f"https://{NAME}:5000"  # by name, trusting the CA
    login = mirror.config.upstream_login  # read back from the typed docker run
    assert login is not None and login.stat().st_mode & 0o777 == 0o600
    mirrored = f"http://127.0.0.1:{Ports(port).mirror}"
    assert digest_of(mirrored, "hello-world") == hello_digest
    upstream = f"https://127.0.0.1:{port}"
    moby = ("moby", PASSWORDS["PASSWORD_MOBY"])
    tools = digest_of(upstream, "tools", workdir / "certs" / "ca.crt", moby)
    assert digest_of(mirrored, "tools") == tools  # the mirror logs in with the typed login
    assert gc.blob_bytes(reglab.Workdir(workdir / "mirror")) > 0  # filled by the pulls
    assert (
        digest_of(f"http://127.0.0.1:{Ports(port).copy}", "hello-world") == hello_digest
    )  # synced
    assert (workdir / "pulled" / "manifest.json").is_file()  # skopeo's copy into a folder


def facts_07(port: int, workdir: Path, hello_digest: str | None) -> None:
    """What ``reglab listen --to`` wrote, typed: each typed push and the delete once, the
    outage's events late, none of the lost push, the filtered push's manifest alone."""
    engine = reglab.connect()
    registry = reglab.Registry.attach(engine, NAME, workdir)
    gateway = reglab.engine.network.project_network(engine)
    assert registry.config.network == NETWORK
    assert registry.config.notify == f"http://{gateway}:{Ports(port).listener}/events"
    log = workdir / "events.log"

    def filtered_arrived() -> list[str] | None:
        lines = log.read_text().splitlines() if log.is_file() else []
        return lines if any("manifest filtered/hello-world:" in line for line in lines) else None

    lines = poll("the filtered push's line in events.log", filtered_arrived, timeout=30)
    events = [line.split() for line in lines if not line.startswith("listening for")]
    starts = [i for i, line in enumerate(lines) if line.startswith("listening for")]
    assert len(starts) == 3  # started, then again after each kill
    assert all(e[1] != "blob" and e[0] != "pull" for e in events if "filtered/" in e[2])
    for repository in ("hello-world", "outage/hello-world", "after-restart/hello-world",
                       "filtered/hello-world"):  # fmt: skip
        pushes = [e for e in events if e[:3] == ["push", "manifest", f"{repository}:latest"]]
        assert [e[3] for e in pushes] == [hello_digest], (repository, lines)
    assert events.count(["delete", "manifest", "hello-world", str(hello_digest)]) == 1
    assert events.count(["delete", "tag", "hello-world:latest"]) == 1
    outage = [i for i, line in enumerate(lines) if "outage/hello-world" in line]
    assert outage and starts[1] < min(outage) and max(outage) < starts[2]  # late, to the 2nd
    assert not [line for line in lines if "lost/" in line]  # queued in the removed registry


def facts_08(port: int, workdir: Path, hello_digest: str | None) -> None:
    registry = reglab.Registry.attach(reglab.connect(), NAME, workdir)
    assert registry.config.stage.token and registry.config.token_port == Ports(port).token_server
    users = {u: reglab.Credentials(u, f"{u}-typed-pw") for u in ("admin", "alice", "bob")}
    checks.access_as_written(registry, users)  # typed users, typed access list, typed key
    with registry.client(auth=users["alice"].as_tuple()) as api:
        team = api.manifest_digest("team/app")
    with registry.client() as anonymous:  # the same hello-world, pushed by bob and by admin
        assert anonymous.manifest_digest("public/hello") == team


def facts_09(port: int, workdir: Path, hello_digest: str | None) -> None:
    registry = reglab.SwarmRegistry.attach(reglab.connect(), NAME, workdir, port)
    assert registry.port == port and registry.replicas == 3
    registry.wait_ready(3)  # the typed lines waited for one replica; the facts ask all three
    assert registry.token_servers_up() == reglab.swarm.TOKEN_REPLICAS
    found = measure.digest_from_each(registry, ("bob", "bob-typed-pw"), "team/hello-world")
    assert sorted(found.values()) == [hello_digest] * 3  # the typed push, in the typed stack
    # The typed split upload (POST, PATCH, PUT with curl, each to another replica) committed
    # the file the typed line wrote, under its digest.
    upload = hashlib.sha256((workdir / "upload.bin").read_bytes()).hexdigest()
    with registry.client(auth=("bob", "bob-typed-pw")) as api:
        assert api.blob_status("team/split", f"sha256:{upload}") == 200
    wrong = registry.client(auth=("bob", "wrong"))  # the typed user's password decides
    with wrong as api, pytest.raises(reglab.ReglabError, match="token server refused"):
        api.manifest_digest("team/hello-world")


def facts_10(port: int, workdir: Path, hello_digest: str | None) -> None:
    """The typed upgrade: the v3 file written, the lists of what 2.8 served, and registry 3
    back on 2.8 (the rollback), serving every listed manifest."""
    assert "redis" not in yaml.safe_load((workdir / "upgrade" / "config-v3.yml").read_text())
    manifests = (workdir / "upgrade" / "manifests.txt").read_text().split()
    assert manifests and any(ref.startswith("hello-world@sha256:") for ref in manifests)
    registry = reglab.Registry.attach(reglab.connect(), NAME, workdir)
    assert registry.config.version == V2  # rolled back
    with registry.client() as api:
        for ref in manifests:
            repository, digest = ref.split("@")
            assert api.manifest_digest(repository, digest) == digest


def facts_11(port: int, workdir: Path, hello_digest: str | None) -> None:
    """The typed node: its hosts.toml files as typed (HTTPS with the copied CA for the
    registry's name; docker.io and registry.k8s.io sent to it), and the image the typed
    crictl pull fetched with alice's typed login through the token server, by the registry's
    digest."""
    engine = reglab.connect()
    node = Node(engine, f"{NAME}-node", workdir / "node")
    container = node.container
    assert container is not None and container.status == "running"
    named = f"{REGISTRY_HOST}:{port}"
    folder = workdir / "node" / "certs.d"
    tls = tomllib.loads((folder / named / "hosts.toml").read_text())
    assert tls["server"] == f"https://{named}"
    assert tls["ca"] == tls["host"][f"https://{named}"]["ca"] == "ca.crt"  # beside the file
    assert (folder / named / "ca.crt").read_bytes() == (workdir / "certs" / "ca.crt").read_bytes()
    for upstream in ("docker.io", "registry.k8s.io"):  # no fallback: the registry is the server
        assert tomllib.loads((folder / upstream / "hosts.toml").read_text())["server"] == (
            f"http://{named}"
        )
    alice = ("alice", PASSWORDS["PASSWORD_ALICE"])  # the token stage: alice may pull team/*
    team = digest_of(f"https://127.0.0.1:{port}", "team/hello", workdir / "certs" / "ca.crt", alice)
    held = node.image(f"{named}/team/hello:latest")
    assert held is not None and held.digest == team  # pulled with the typed login, by token
    assert node.image("docker.io/library/hello-world:latest") is None  # the typed crictl rmi


def facts_12(port: int, workdir: Path, hello_digest: str | None) -> None:
    """The typed supply chain: syft's SBOM, oras's attachments and cosign's signature listed
    on app:1, app:2's orphan gone, the typed signatures in the lookaside store, and the typed
    gate serving app:1 (re-signed by the new key) while it trusts the new key only."""
    document = json.loads((workdir / "sbom" / "app-1.spdx.json").read_text())
    assert "busybox" in [p["name"] for p in document["packages"]]
    registry = reglab.Registry.attach(reglab.connect(), NAME, workdir)
    with registry.client() as api:
        app = api.manifest_digest("app", "1")
        found = attach.referrers(api, "app", "1")
        assert sorted(d["artifactType"] for d in found.descriptors) == [
            attach.SPDX_JSON,
            BUNDLE_TYPE,
            "text/plain",
        ]
        assert "2" not in api.tags("app")  # deleted, its note collected
    store = workdir / "sign" / "lookaside"
    # signed three times: as app:1 and app:release by the release key, then by release-2027
    assert (store / lookaside_path("app", app, 3)).is_file()
    trust = workdir / "sign" / "trust"
    assert not (trust / "cosign.pub").exists()  # rotated out
    new_key = subprocess.run(["gpg", "--dearmor"], input=(workdir / "keys" / "release-2027.pub")
                             .read_bytes(), capture_output=True, check=True).stdout  # fmt: skip
    assert (trust / "trusted.gpg").read_bytes() == new_key
    with reglab.RegistryClient(f"http://127.0.0.1:{Ports(port).gate}") as through:
        assert through.manifest_digest("app", "1") == app  # the gate lets it through


#: The facts to check, and the checkpoint cell after which they hold (None: the last cell
#: before the clean-up; later cells, such as an exercise, may change them on purpose).
#: (Each takes the port, the typed working folder and the digest the notebook's checks saw.)
Facts = Callable[[int, Path, str | None], None]
FACTS: dict[str, tuple[Facts, str | None]] = {
    "01-local-registry.ipynb": (facts_01, "checks.image_present(ws.engine, ref, digest)"),
    "02-persistent-storage.ipynb": (facts_02, 'checks.registry_serves(reg, "hello-world", digest)'),
    "03-tls.ipynb": (facts_03, "checks.same(remote_digest"),  # the exercise then breaks it
    "04-basic-auth.ipynb": (facts_04, None),
    "05-delete-and-gc.ipynb": (facts_05, None),
    "06-pull-through-mirror.ipynb": (facts_06, None),
    "07-registry-events.ipynb": (facts_07, "checks.events_exactly_once"),
    "08-token-auth.ipynb": (facts_08, None),
    "09-swarm-replicas.ipynb": (facts_09, None),
    "10-upgrade-to-v3.ipynb": (facts_10, None),
    "11-kubernetes-nodes.ipynb": (facts_11, None),
    "12-supply-chain.ipynb": (facts_12, None),
}


@pytest.mark.parametrize("notebook", list(FACTS))
def test_printed_commands_typed_in_a_terminal_do_what_the_cells_did(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, notebook: str
) -> None:
    port = free_port()
    cells, hello_digest = run_as_learner(notebook, tmp_path / "notebook" / "workdir", port)
    facts, after = FACTS[notebook]
    last = max(i for i, (_, typed) in enumerate(cells) if typed)  # the clean-up cell
    split = last if after is None else max(
        i + 1 for i, (source, _) in enumerate(cells) if after in source
    )  # fmt: skip
    before = [t for _, typed in cells[:split] for t in typed]
    rest = [t for _, typed in cells[split:last] for t in typed]
    cleanup = cells[last][1]
    assert any("docker run -d" in t.command for t in before)

    workdir = tmp_path / "typed" / "workdir"  # a fresh working folder
    env = {**os.environ, **PASSWORDS, "REGLAB_WORKDIR": str(workdir),
           "DOCKER_CONFIG": str(tmp_path / "docker-config"),
           # the reglab command, as scripts/workshop puts it on a terminal's PATH
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # fmt: skip
    try:
        type_in_terminal(before, port, env, tmp_path)
        if notebook != "09-swarm-replicas.ipynb":  # 09's registry is a stack, not a container
            hello = reglab.Registry(reglab.RegistryConfig(name=NAME, port=port), engine)
            assert hello.container is not None and hello.container.status == "running"
        facts(port, workdir, hello_digest)
        type_in_terminal(rest, port, env, tmp_path)
        type_in_terminal(cleanup, port, env, tmp_path)
        assert engine.containers.list(all=True, filters={"name": NAME}) == []
        names = [t for image in engine.images.list() for t in image.tags if f":{port}/" in t]
        assert names == [], "the typed clean-up left these image names"
        assert not any(n.name == NETWORK for n in engine.networks.list())
        assert reglab.swarm.swarm_state(engine) == "inactive"  # 09 left the swarm it made
        assert not any(p.name.endswith(f":{port}") for p in DOCKER_CERTS_D.glob("*"))
    finally:
        state = tmp_path / "terminal-state.sh"  # 07's typed listener, if a line failed first
        if state.exists():
            subprocess.run(["bash", "-c", f'source "{state}"; kill "${{LISTENER:-}}" || true'],
                           capture_output=True, check=False)  # fmt: skip
        remove_test_stack(engine, NAME)  # 09's stack, if a typed line failed
        for container in engine.containers.list(all=True, filters={"name": f"^{NAME}"}):
            container.remove(force=True, v=True)  # made by the typed docker run: the test's
        for volume in engine.volumes.list(filters={"name": NAME}):
            volume.remove(force=True)  # notebook 05's small disk
        for version in (1, 2, 3):  # notebook 05's local images
            reglab.engine.transfer.remove(engine, f"reglab-app:{version}")
        remove_port_tags(engine, str(port))
        remove_project_network(engine)
        for entry in DOCKER_CERTS_D.glob(f"*:{port}"):
            reglab.uninstall_ca_for_docker(entry.name.rsplit(":", 1)[0].strip("[]"), port)
        reglab.ensure_images(engine, offline=True)  # hello-world, if a failure left it removed
