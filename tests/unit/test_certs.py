"""Certificates: SANs, key files, inspection, and the checks that refuse bad ones."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest

from reglab.auth.certs import CA, Certificate
from reglab.base.errors import CertificateError
from reglab.base.shell import PathStyle
from reglab.engine.trust import docker_ca_path, install_ca_for_docker, uninstall_ca_for_docker
from reglab.registry.workdir import Workdir


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA.create()


def test_server_certificate_has_the_sans_and_is_signed_by_the_ca(ca: CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1", "registry.example")
    assert sorted(cert.sans) == sorted(["localhost", "127.0.0.1", "::1", "registry.example"])
    assert cert.issuer == ca.certificate.subject
    # A real TLS library must accept the chain: load both into an ssl context.
    ca_file, cert_file, key_file = tmp_path / "ca.crt", tmp_path / "d.crt", tmp_path / "d.key"
    ca.certificate.write(ca_file)
    cert.write(cert_file, key_file)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(ca_file))
    assert client.cert_store_stats()["x509_ca"] == 1


def test_key_file_is_private_and_cert_is_readable(ca: CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("localhost")
    cert.write(tmp_path / "domain.crt", tmp_path / "domain.key")
    assert stat.S_IMODE((tmp_path / "domain.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "domain.crt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_load_round_trip_and_describe(ca: CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.write(tmp_path / "c.crt", tmp_path / "c.key")
    loaded = Certificate.load(tmp_path / "c.crt", tmp_path / "c.key")
    info = loaded.describe()
    assert info["sans"] == ["localhost", "127.0.0.1"]
    assert info["fingerprint_sha256"] == cert.fingerprint
    assert len(cert.fingerprint.split(":")) == 32
    loaded.check(["localhost", "127.0.0.1"])  # valid: no exception


def test_covers_compares_ips_and_names_exactly(ca: CA) -> None:
    cert = ca.issue_cert("localhost", "::1")
    assert cert.covers("localhost")
    assert cert.covers("0:0:0:0:0:0:0:1")  # the same IPv6 address, written out
    assert not cert.covers("127.0.0.1")
    assert not cert.covers("localhost.localdomain")


def test_expired_certificate_is_refused(ca: CA) -> None:
    old = ca.issue_cert(
        "localhost", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    with pytest.raises(CertificateError, match="expired"):
        old.check(["localhost"])


def test_certificate_without_the_host_is_refused(ca: CA) -> None:
    with pytest.raises(CertificateError, match="does not cover 127.0.0.1"):
        ca.issue_cert("localhost").check(["localhost", "127.0.0.1"])


def test_key_that_does_not_match_is_refused(ca: CA) -> None:
    one, other = ca.issue_cert("localhost"), ca.issue_cert("localhost")
    with pytest.raises(CertificateError, match="key does not match"):
        Certificate(one.cert, other.key).check()


def test_garbage_files_give_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate")
    with pytest.raises(CertificateError, match="is not a PEM certificate") as err:
        Certificate.load(tmp_path / "bad.crt")
    assert "\n" not in str(err.value) and "fix:" in str(err.value)
    with pytest.raises(CertificateError, match="does not exist"):
        Certificate.load(tmp_path / "missing.crt")


def test_ca_round_trip_issues_from_loaded_key(ca: CA, tmp_path: Path) -> None:
    ca.write(tmp_path / "ca.crt", tmp_path / "ca.key")
    again = CA.load(tmp_path / "ca.crt", tmp_path / "ca.key")
    assert again.issue_cert("localhost").issuer == ca.certificate.subject
    with pytest.raises(CertificateError, match="needs its private key"):
        CA(Certificate.load(tmp_path / "ca.crt"))


def test_docker_ca_path_uses_exact_host_port() -> None:
    assert str(docker_ca_path("127.0.0.1", 5000, "/d")) == "/d/127.0.0.1:5000/ca.crt"
    assert str(docker_ca_path("::1", 5000, "/d")) == "/d/[::1]:5000/ca.crt"


def test_install_and_uninstall_ca_for_docker(ca: CA, tmp_path: Path) -> None:
    ca.certificate.write(tmp_path / "ca.crt")
    target = install_ca_for_docker(tmp_path / "ca.crt", "10.0.0.1", 5443, tmp_path / "certs.d")
    assert target.read_bytes() == ca.cert_pem
    assert uninstall_ca_for_docker("10.0.0.1", 5443, tmp_path / "certs.d")
    assert not target.parent.exists()
    assert not uninstall_ca_for_docker("10.0.0.1", 5443, tmp_path / "certs.d")


def test_install_ca_not_writable_says_the_exact_command(
    ca: CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca.certificate.write(tmp_path / "ca.crt")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("reglab.engine.trust.write_atomic", refuse)
    with pytest.raises(CertificateError, match=r"sudo mkdir -p .*5443.* && sudo cp"):
        install_ca_for_docker(tmp_path / "ca.crt", "10.0.0.1", 5443, tmp_path / "certs.d")


def test_the_certificate_step_issues_what_its_openssl_lines_issue(tmp_path: Path) -> None:
    """Typed, the lines always issue a certificate for exactly the stage's names: so does the
    step (a certificate with more names, such as notebook 06's, is replaced, by the same CA)."""
    paths = Workdir(tmp_path / "w")
    wider = paths.server_certificate(("localhost", "127.0.0.1", "reglab-registry"))
    assert wider.covers("reglab-registry")
    style = PathStyle.here(paths.root)
    cert = paths.certificate_step(("localhost", "127.0.0.1"), style).run()
    assert not cert.covers("reglab-registry") and cert.covers("127.0.0.1")
    assert Certificate.load(paths.server_cert).covers("127.0.0.1")
    assert cert.issuer == CA.load(paths.ca_cert, paths.ca_key).certificate.subject  # same CA
    assert paths.server_certificate(("localhost", "127.0.0.1")).fingerprint == cert.fingerprint
