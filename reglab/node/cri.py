"""The kubelet's image calls to containerd, as bytes: CRI's ``runtime.v1.ImageService``.

The kubelet pulls an image with one gRPC call, ``PullImage``, carrying the image reference
and, from a pod's ``imagePullSecrets``, a login (``AuthConfig``); containerd answers with the
image's reference by digest. The workshop makes the same call, so a node's view of the
registry is tested with what a node really sends.

Only a handful of fields of a handful of messages are needed, so they are written and read
here with protobuf's wire format directly (field number and wire type, varints, lengths: the
"Encoding" page of protobuf's docs) rather than code generated from the whole CRI proto. The
field numbers are those of ``k8s.io/cri-api/pkg/apis/runtime/v1/api.proto``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The gRPC methods, as a channel names them.
SERVICE = "/runtime.v1.ImageService"
PULL_IMAGE = f"{SERVICE}/PullImage"
IMAGE_STATUS = f"{SERVICE}/ImageStatus"
REMOVE_IMAGE = f"{SERVICE}/RemoveImage"
LIST_IMAGES = f"{SERVICE}/ListImages"

VARINT, LENGTH = 0, 2  # the two wire types these messages use

Fields = dict[int, list[bytes | int]]


def varint(value: int) -> bytes:
    """An unsigned integer, seven bits a byte, low bits first."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, data: bytes | str) -> bytes:
    """A length-delimited field (a string, or an embedded message)."""
    raw = data.encode() if isinstance(data, str) else data
    return varint(number << 3 | LENGTH) + varint(len(raw)) + raw


def decode(data: bytes) -> Fields:
    """A message's fields by number: bytes for length-delimited ones, ints for varints. A
    field that repeats lists every value, in order. Truncated data raises ValueError."""
    fields: Fields = {}
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, at = _read_varint(data, at)
            fields.setdefault(number, []).append(value)
        elif wire == LENGTH:
            size, at = _read_varint(data, at)
            if at + size > len(data):
                raise ValueError("a field runs past the end of the message")
            fields.setdefault(number, []).append(data[at : at + size])
            at += size
        else:
            raise ValueError(f"wire type {wire} is not one these messages use")
    return fields


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("a varint runs past the end of the message")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def image_spec(image: str) -> bytes:
    """``ImageSpec{image = 1}``."""
    return field(1, image)


def pull_image_request(
    image: str, username: str | None = None, password: str | None = None
) -> bytes:
    """``PullImageRequest{image = 1, auth = 2}``: with a login, ``AuthConfig{username = 1,
    password = 2}``, as the kubelet fills it from a pull secret."""
    request = field(1, image_spec(image))
    if username is not None:
        request += field(2, field(1, username) + field(2, password or ""))
    return request


def pull_image_response(data: bytes) -> str:
    """``PullImageResponse{image_ref = 1}``: the image containerd now holds."""
    return _text(decode(data), 1)


def image_status_request(image: str) -> bytes:
    """``ImageStatusRequest{image = 1}``."""
    return field(1, image_spec(image))


def remove_image_request(image: str) -> bytes:
    """``RemoveImageRequest{image = 1}``."""
    return field(1, image_spec(image))


@dataclass(frozen=True)
class NodeImage:
    """``Image``: what containerd knows of one image (its id is its config's digest)."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int


def image_status_response(data: bytes) -> NodeImage | None:
    """``ImageStatusResponse{image = 1}``; None when the node has no such image (an empty
    message, as containerd answers)."""
    images = _embedded(decode(data), 1)
    return _image(images[0]) if images else None


def list_images_response(data: bytes) -> list[NodeImage]:
    """``ListImagesResponse{images = 1}``."""
    return [_image(raw) for raw in _embedded(decode(data), 1)]


def _image(data: bytes) -> NodeImage:
    fields = decode(data)
    size = [v for v in fields.get(4, []) if isinstance(v, int)]
    return NodeImage(
        _text(fields, 1),
        tuple(v.decode() for v in _embedded(fields, 2)),
        tuple(v.decode() for v in _embedded(fields, 3)),
        size[0] if size else 0,
    )


def _embedded(fields: Fields, number: int) -> list[bytes]:
    return [v for v in fields.get(number, []) if isinstance(v, bytes)]


def _text(fields: Fields, number: int) -> str:
    values = _embedded(fields, number)
    return values[0].decode() if values else ""


__all__ = [
    "IMAGE_STATUS", "LIST_IMAGES", "NodeImage", "PULL_IMAGE", "REMOVE_IMAGE", "decode",
    "field", "image_spec", "image_status_request", "image_status_response",
    "list_images_response", "pull_image_request", "pull_image_response",
    "remove_image_request", "varint",
]  # fmt: skip
