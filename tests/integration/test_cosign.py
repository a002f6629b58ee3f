"""cosign's key pairs, no transparency log, against the real registry on both versions:
reglab sign and verify with cosign.key and cosign.pub (and their lines, typed in bash), the
signature stored in the registry as a referrer of the image, and the gate reading it: the
Docker engine pulls a cosign-signed image with its digest, and an unsigned or rotated-out
one is denied."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
from common import MakeRegistry, push, reglab_cli, terminal, typed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from docker import DockerClient

from reglab.auth.gate import BUNDLE_TYPE
from reglab.base.errors import ConfigError
from reglab.registry import attach, cosign, keys, signing
from reglab.registry.gate import Gate
from reglab.registry.sbom import Target
from reglab.registry.simplesign import SignFiles

pytestmark = pytest.mark.docker


@pytest.fixture(params=["3", "2"], ids=["v3", "v2.8"])
def registry_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two key pairs as ``cosign generate-key-pair`` writes them (empty password):
    release/cosign.key, release/cosign.pub, stranger/cosign.key, stranger/cosign.pub."""
    program = cosign.ensure_cosign()
    root = tmp_path_factory.mktemp("cosign")
    found: dict[str, Path] = {}
    for name in ("release", "stranger"):
        (root / name).mkdir()
        subprocess.run([program, "generate-key-pair"], cwd=root / name, check=True,
                       capture_output=True, env={**os.environ, "COSIGN_PASSWORD": ""})  # fmt: skip
        found[f"{name}.key"] = root / name / "cosign.key"
        found[f"{name}.pub"] = root / name / "cosign.pub"
    yield found


def test_cosign_signs_into_the_registry_and_verify_and_its_typed_line_agree(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path, pairs: dict[str, Path]
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    signed = push(engine, registry, "hello-world", "app:1")
    push(engine, registry, "reglab-tools:1", "app:2")
    env = {**terminal(registry), "COSIGN_PASSWORD": ""}
    folder = ["--workdir", "workdir"]
    made = reglab_cli("sign", "app:1", "--key", str(pairs["release.key"]), *folder, env=env,
                      cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"({signed})" in made.stdout.splitlines()[-1]
    assert 'app@"$SIGNED"' in made.stdout  # signed by digest (oras resolve), not by tag
    with registry.client() as api:  # in the registry, as a referrer of the image
        found = attach.referrers(api, "app", "1")
        assert [d["artifactType"] for d in found.descriptors] == [BUNDLE_TYPE]
    ok = reglab_cli("verify", "app:1", "--key", str(pairs["release.pub"]), *folder, env=env,
                    cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0 and "signed by a trusted cosign key" in ok.stdout, ok.stderr
    stranger = reglab_cli("verify", "app:1", "--key", str(pairs["stranger.pub"]), *folder,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert stranger.returncode == 1 and stranger.stdout.startswith("$ cosign verify")
    unsigned = reglab_cli("verify", "app:2", "--key", str(pairs["release.pub"]), *folder,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert unsigned.returncode == 1 and "refused: no signatures found" in unsigned.stdout
    # sign's typed line, for the other image, signs it; verify's typed line then accepts it.
    script = typed(made.stdout).replace("/app:1", "/app:2")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, script + done.stderr
    script = typed(unsigned.stdout)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, script + done.stderr


def test_the_gate_reads_cosign_signatures_from_the_registry(
    engine: DockerClient,
    make_registry: MakeRegistry,
    tmp_path: Path,
    pairs: dict[str, Path],
    cleanup_images: list[str],
) -> None:
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    signed = push(engine, registry, "hello-world", "app:1")
    other = push(engine, registry, "reglab-tools:1", "app:2")
    release = keys.read_key(pairs["release.key"], secret=True)
    cosign.sign_step(Target.parse(registry, "app:1"), release).run()
    files = SignFiles.of(registry.config.workdir)
    trusted = [keys.read_key(pairs["release.pub"], secret=False)]
    signing.trust_step(trusted, files).run()
    assert not files.trusted.exists() and files.cosign_keys.is_file()  # cosign's keys only
    gate = Gate(registry.config, engine).start()
    pulled = f"{gate.address}/app:1"
    cleanup_images += [pulled, f"{gate.address}/app@{signed}", f"{gate.address}/app:2"]
    try:
        image = engine.images.pull(pulled)
        assert f"{gate.address}/app@{signed}" in image.attrs["RepoDigests"]
        with pytest.raises(docker.errors.APIError) as denied:
            engine.images.pull(f"{gate.address}/app:2")
        assert f"app@{other} is not signed" in str(denied.value.explanation)
        assert "no cosign signature" in str(denied.value.explanation)
        # Rotation: the stranger's key in, the release key out: app:1 no longer passes.
        engine.images.remove(pulled)
        signing.trust_step([keys.read_key(pairs["stranger.pub"], secret=False)], files).run()
        with pytest.raises(docker.errors.APIError) as rotated:
            engine.images.pull(pulled)
        assert "no trusted key made it" in str(rotated.value.explanation)
    finally:
        gate.remove()


def test_cosign_keys_are_checked_in_one_line(tmp_path: Path, pairs: dict[str, Path]) -> None:
    rsa_key = tmp_path / "rsa.pub"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    cases = [
        (rsa_key, False, "is not an ECDSA key"),
        (pairs["release.pub"], True, "signing needs the secret key"),
        (pairs["release.key"], False, "holds cosign's secret key"),
    ]
    for path, secret, said in cases:
        with pytest.raises(ConfigError, match=said):
            keys.read_key(path, secret=secret)
    public = keys.read_key(pairs["release.pub"], secret=False)
    assert public.kind == keys.COSIGN and len(public.fingerprint) == 44  # cosign's hint
