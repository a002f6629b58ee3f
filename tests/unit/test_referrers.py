"""The referrers fall-back of OCI distribution 1.1 (an index tagged ``ALG-HEX``), its rules
without a registry: the tag, the descriptors, adding and removing, the same bytes each time."""

from __future__ import annotations

import hashlib
import json

import pytest

from reglab.base.errors import ConfigError
from reglab.registry.referrers import (
    INDEX_TYPE,
    descriptor,
    fallback_tag,
    index_bytes,
    read_index,
    with_referrer,
    without,
)

SUBJECT = "sha256:" + "ab" * 32
SBOM = b'{"schemaVersion":2,"artifactType":"application/spdx+json"}'
SIGNATURE = b'{"schemaVersion":2,"artifactType":"application/vnd.reglab.signature"}'


def test_the_tag_is_the_subjects_digest_with_a_dash() -> None:
    assert fallback_tag(SUBJECT) == "sha256-" + "ab" * 32
    long = "sha512:" + "c" * 128
    assert fallback_tag(long) == "sha512-" + "c" * 64  # cut to 64, as the tag schema says
    odd = (  # the spec's own example: both parts cut, and what a tag may not hold replaced
        "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall"
        "+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOf"
        "CharactersToExcerciseEncodedTruncation"
    )
    assert fallback_tag(odd) == (
        "test-algorithm-using-algorithm-s-"
        "alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"
    )
    for bad in ("latest", "sha256", "sha256:", "SHA256:ab"):
        with pytest.raises(ConfigError, match="not a digest") as error:
            fallback_tag(bad)
        assert "\n" not in str(error.value)


def test_a_descriptor_says_what_the_referrer_is_without_fetching_it() -> None:
    found = descriptor(SBOM, "application/spdx+json", {"org.example.b": "2", "org.example.a": "1"})
    assert found["digest"] == f"sha256:{hashlib.sha256(SBOM).hexdigest()}"
    assert found["size"] == len(SBOM) and found["artifactType"] == "application/spdx+json"
    assert list(found["annotations"]) == ["org.example.a", "org.example.b"]
    assert "annotations" not in descriptor(SBOM, "application/spdx+json")


def test_referrers_are_listed_once_in_the_order_they_came_and_removed_by_digest() -> None:
    sbom, signature = descriptor(SBOM, "application/spdx+json"), descriptor(SIGNATURE, "sig")
    index = with_referrer(with_referrer(read_index(None), sbom), signature)
    assert index["mediaType"] == INDEX_TYPE and index["schemaVersion"] == 2
    assert [m["digest"] for m in index["manifests"]] == [sbom["digest"], signature["digest"]]
    assert with_referrer(index, signature) == index  # attaching again changes nothing
    assert without(index, {sbom["digest"]})["manifests"] == [signature]


def test_the_same_list_is_the_same_bytes_whoever_writes_it() -> None:
    index = with_referrer(read_index(None), descriptor(SBOM, "application/spdx+json"))
    data = index_bytes(index)
    assert read_index(data) == index  # round trip
    reordered = json.dumps(dict(reversed(list(index.items())))).encode()
    assert index_bytes(read_index(reordered)) == data


def test_a_tag_holding_something_else_is_one_line() -> None:
    for data in (b"not json", b'{"schemaVersion": 2}', b"[1, 2]"):
        with pytest.raises(ConfigError, match="not an image index") as error:
            read_index(data)
        assert "\n" not in str(error.value)
