"""CRI's image messages in protobuf's wire format, checked against the encodings protobuf's own
"Encoding" page spells out and against messages built by hand field by field (no protobuf
library, no containerd: the node's integration tests make the real calls)."""

from __future__ import annotations

import pytest

from reglab.node.cri import (
    NodeImage,
    decode,
    field,
    image_status_request,
    image_status_response,
    list_images_response,
    pull_image_request,
    pull_image_response,
    varint,
)


def test_varints_and_strings_encode_as_protobufs_documentation_shows() -> None:
    assert varint(1) == b"\x01" and varint(150) == b"\x96\x01" and varint(0) == b"\x00"
    assert varint(300) == b"\xac\x02"
    assert field(2, "testing") == bytes.fromhex("12 07 74 65 73 74 69 6e 67")  # the docs' example
    assert decode(b"\x08\x96\x01") == {1: [150]}  # field 1, varint 150: the docs' first example


def test_a_pull_request_carries_the_image_and_the_pull_secrets_login() -> None:
    image = "127.0.0.1:5000/team/app:1"
    plain = pull_image_request(image)
    assert (
        plain == b"\x0a" + bytes([len(image) + 2]) + b"\x0a" + bytes([len(image)]) + image.encode()
    )
    with_login = decode(pull_image_request(image, "bob", "pw"))
    assert decode(bytes(with_login[1][0])) == {1: [image.encode()]}  # ImageSpec.image
    assert decode(bytes(with_login[2][0])) == {1: [b"bob"], 2: [b"pw"]}  # AuthConfig
    assert 2 not in decode(plain)  # no login: no AuthConfig at all


def test_answers_are_read_back_field_by_field() -> None:
    digest = "sha256:" + "a" * 64
    assert pull_image_response(field(1, digest)) == digest
    image = (
        field(1, digest)
        + field(2, "docker.io/library/hello-world:latest")
        + field(3, f"docker.io/library/hello-world@{digest}")
        + field(3, f"127.0.0.1:5000/hello-world@{digest}")
        + varint(4 << 3)
        + varint(12_345)
    )
    found = NodeImage(
        digest,
        ("docker.io/library/hello-world:latest",),
        (f"docker.io/library/hello-world@{digest}", f"127.0.0.1:5000/hello-world@{digest}"),
        12_345,
    )
    assert image_status_response(field(1, image)) == found
    assert image_status_response(b"") is None  # containerd's answer for an image it lacks
    assert list_images_response(field(1, image) + field(1, image)) == [found, found]
    assert decode(image_status_request("x")) == {1: [field(1, "x")]}


@pytest.mark.parametrize("data", [b"\x0a\x05abc", b"\x08\x96", b"\x0b"])
def test_a_truncated_or_foreign_message_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode(data)
