"""Who vouches for an image, against the real registry on both versions: signatures made by
skopeo with GnuPG and checked by skopeo under a policy (reglab sign and verify, and the lines
they print, typed in bash), and reglab's signature gate in front of the registry, pulled from
by the Docker engine: signed images pass with their digest, unsigned, tampered, wrongly keyed
and rotated-out ones are denied, and an immutable tag neither moves nor goes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
from common import MakeRegistry, Signer, push, reglab_cli, terminal, typed
from docker import DockerClient

import reglab
from reglab.auth.gate import lookaside_path
from reglab.base.errors import ClientError, ConfigError
from reglab.engine import transfer
from reglab.registry import signing
from reglab.registry.gate import Gate
from reglab.registry.sbom import Target
from reglab.registry.simplesign import SignFiles

pytestmark = pytest.mark.docker


@pytest.fixture(params=["3", "2"], ids=["v3", "v2.8"])
def registry_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Key files as people keep them: release.key (secret, armored), release.pub (public,
    armored), stranger.key / stranger.pub, both.gpg (the two public keys, binary)."""
    root = tmp_path_factory.mktemp("keys")
    signers = [Signer(root / "home-release", "release"), Signer(root / "home-stranger", "stranger")]
    files: dict[str, Path] = {}
    for signer, name in zip(signers, ("release", "stranger"), strict=True):
        files[f"{name}.key"] = root / f"{name}.key"
        files[f"{name}.key"].write_bytes(signer.secret_key())
        files[f"{name}.pub"] = root / f"{name}.pub"
        files[f"{name}.pub"].write_bytes(signer.public_key(armor=True))
    files["both.gpg"] = root / "both.gpg"
    files["both.gpg"].write_bytes(b"".join(s.public_key() for s in signers))
    yield files
    for signer in signers:
        signer.close()


def sign(registry: reglab.Registry, ref: str, key: Path) -> str:
    files = SignFiles.of(registry.config.workdir)
    target = Target.parse(registry, ref)
    return signing.sign_step(target, signing.read_key(key, secret=True), files).run()


def test_sign_and_verify_with_skopeo_and_their_typed_lines_do_the_same(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, keys: dict[str, Path]
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    signed = push(engine, registry, "hello-world", "app:1")
    push(engine, registry, "reglab-tools:1", "app:2")
    env = terminal(registry)
    folder = ["--workdir", "workdir"]
    homes = set(Path("/tmp").glob("reglab-gpg-*"))
    made = reglab_cli("sign", "app:1", "--key", str(keys["release.key"]), *folder, env=env,
                      cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"({signed})" in made.stdout.splitlines()[-1]
    lookaside = tmp_path / "workdir" / "sign" / "lookaside"
    assert (lookaside / lookaside_path("app", signed)).is_file()
    ok = reglab_cli("verify", "app:1", "--key", str(keys["release.pub"]), *folder, env=env,
                    cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0 and "signed by a trusted key" in ok.stdout, ok.stderr
    unsigned = reglab_cli("verify", "app:2", "--key", str(keys["release.pub"]), *folder,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert unsigned.returncode == 1
    assert "A signature was required, but no signature exists" in unsigned.stdout
    stranger = reglab_cli("verify", "app:1", "--key", str(keys["stranger.pub"]), *folder,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert stranger.returncode == 1 and "refused: " in stranger.stdout
    # The lines sign printed, typed for the other image, sign it; verify's then pass it.
    script = typed(made.stdout).replace("/app:1", "/app:2")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, script + done.stderr
    script = typed(unsigned.stdout)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, script + done.stderr  # now signed: skopeo accepts it
    assert '"workdir/sign/policy.json"' in script  # relative, as a terminal types it
    assert set(Path("/tmp").glob("reglab-gpg-*")) <= homes  # each step's GnuPG home went


def test_bad_keys_and_references_are_one_line_and_nothing_is_written(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, keys: dict[str, Path]
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    push(engine, registry, "hello-world", "app:1")
    env = terminal(registry)
    folder = ["--workdir", "workdir"]
    cases = {
        ("sign", "app:1", str(tmp_path / "missing.key")): "no key file at",
        ("sign", "app:1", str(keys["release.pub"])): "holds a public key, and signing needs",
        ("verify", "app:1", str(keys["release.key"])): "holds a secret key",
        ("verify", "app:1", "/etc/hostname"): "is not an OpenPGP key",
        ("sign", "nothing:1", str(keys["release.key"])): "manifest unknown",
        ("verify", "app@sha256:00", str(keys["release.pub"])): "is not an image name",
    }
    for (command, ref, key), said in cases.items():
        done = reglab_cli(command, ref, "--key", key, *folder, env=env, cwd=tmp_path)
        assert done.returncode == 1, (command, ref, done.stdout)
        assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr
        assert done.stdout == ""  # no typed line printed for what is not done
    assert not (tmp_path / "workdir" / "sign").exists()
    with pytest.raises(ConfigError, match="the gate fronts a plain-HTTP registry"):
        Gate(make_registry("tls", start=False).config, engine)
    with pytest.raises(ConfigError, match="names no tag"):
        Gate(registry.config, engine, immutable=("prod/*",))


def test_the_gate_lets_the_engine_pull_signed_images_only(
    engine: DockerClient,
    make_registry: MakeRegistry,
    tmp_path: Path,
    keys: dict[str, Path],
    cleanup_images: list[str],
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    signed = push(engine, registry, "hello-world", "app:1")
    other = push(engine, registry, "reglab-tools:1", "app:2")
    push(engine, registry, "hello-world", "app:moved")
    push(engine, registry, "reglab-tools:1", "other:1")  # a repository of its own: its
    sign(registry, "app:1", keys["release.key"])  # signature says nothing of app's
    sign(registry, "other:1", keys["stranger.key"])
    files = SignFiles.of(registry.config.workdir)
    signing.trust_step([signing.read_key(keys["release.pub"], secret=False)], files).run()
    gate = Gate(registry.config, engine, immutable=("app:1",)).start()
    try:
        pulled = f"{gate.address}/app:1"
        # by digest too: once the name moves to another image, the pulled one keeps its digest
        cleanup_images += [pulled, f"{gate.address}/app@{signed}"]
        image = engine.images.pull(pulled)
        assert f"{gate.address}/app@{signed}" in image.attrs["RepoDigests"]  # that digest

        def refused(tag: str, repository: str = "app") -> str:
            cleanup_images.append(f"{gate.address}/{repository}:{tag}")
            with pytest.raises(docker.errors.APIError) as denied:
                engine.images.pull(f"{gate.address}/{repository}:{tag}")
            return str(denied.value.explanation)

        assert "denied:" in refused("2") and f"app@{other} is not signed" in refused("2")
        assert "no trusted key made it" in refused("1", "other")
        # The tag moved to an unsigned manifest behind the gate's back: its name vouches for
        # nothing. Then a signature of the signed digest copied beside the other: tampered.
        push(engine, registry, "reglab-tools:1", "app:moved")
        assert f"app@{other} is not signed" in refused("moved")
        copied = files.lookaside / lookaside_path("app", other)
        copied.parent.mkdir(parents=True)
        shutil.copy(files.lookaside / lookaside_path("app", signed), copied)
        assert f"it signs {signed}, not {other}" in refused("moved")
        assert any("is not signed" in line for line in gate.denials())  # the gate's log says
        # Rotation: the release key out, the stranger's in; then both.
        signing.trust_step([signing.read_key(keys["stranger.pub"], secret=False)], files).run()
        assert "no trusted key made it" in refused("1")
        cleanup_images.append(f"{gate.address}/other:1")
        engine.images.pull(f"{gate.address}/other:1")
        signing.trust_step([signing.read_key(keys["both.gpg"], secret=False)], files).run()
        assert engine.images.pull(pulled).id == image.id
        # Immutable: no push moves app:1, no delete removes it (by tag or by digest).
        transfer.tag(engine, "reglab-tools:1", pulled)
        with pytest.raises(Exception, match="app:1 is immutable"):
            transfer.push(engine, pulled)
        with registry.client() as direct, reglab.RegistryClient(gate.url) as through:
            for reference in ("1", signed):
                with pytest.raises(ClientError) as kept:
                    through.request("DELETE", f"/v2/app/manifests/{reference}")
                assert kept.value.status == 403 and "immutable" in str(kept.value)
            assert direct.manifest_digest("app", "1") == signed  # still there, unchanged
            # A tag not marked immutable moves as before, through the gate too.
            assert through.request("GET", "/v2/app/tags/list").json()["tags"]
    finally:
        gate.remove()
    assert gate.container is None


def test_reglab_up_require_signed_prints_the_lines_that_start_the_same_gate(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, keys: dict[str, Path]
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir", start=False)
    env = {**terminal(registry), "REGLAB_PORT": str(registry.config.port),
           "REGLAB_REGISTRY": registry.config.version.major}  # fmt: skip
    folder = ["--workdir", "workdir"]
    wrong = reglab_cli("up", "persistent", "--require-signed", str(keys["release.key"]), *folder,
                       env=env, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 1 and "holds a secret key" in wrong.stderr
    assert registry.container is None  # refused before anything started
    alone = reglab_cli("up", "persistent", "--immutable", "app:1", *folder, env=env, cwd=tmp_path)
    assert alone.returncode == 1 and "--immutable needs --require-signed" in alone.stderr
    tls = reglab_cli("up", "tls", "--require-signed", str(keys["release.pub"]), *folder,
                     env=env, cwd=tmp_path)  # fmt: skip
    assert tls.returncode == 1 and len(tls.stderr.strip().splitlines()) == 1
    up = reglab_cli("up", "persistent", "--require-signed", str(keys["release.pub"]),
                    "--immutable", "app:*", *folder, env=env, cwd=tmp_path)  # fmt: skip
    assert up.returncode == 0, up.stderr
    gate = Gate(registry.config, engine, immutable=("app:*",))
    try:
        assert f"gate {gate.name} answers at {gate.url}" in up.stdout
        trusted = gate.files.trusted.read_bytes()
        assert not trusted.startswith(b"-----")  # binary, as gpgv reads it
        # The printed lines, typed once the gate is gone, start it again.
        gate.remove()
        gate.files.trusted.unlink()
        lines = up.stdout.split("equivalent commands:\n", 1)[1].split("\n")
        first = next(i for i, line in enumerate(lines) if line.startswith("mkdir -p") and
                     "trust" in line)  # fmt: skip
        script = "set -euo pipefail\n" + "\n".join(lines[first:]) + "\n"
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, script + done.stderr
        gate.wait_ready()
        assert gate.files.trusted.read_bytes() == trusted
        assert "--immutable 'app:*'" in script
    finally:
        registry.remove()
    assert gate.container is None  # removed with its registry
