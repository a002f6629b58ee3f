"""The event listener, fed by hand over loopback HTTP (the registry's side is tested in
tests/integration/test_events.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from reglab.base.errors import ConfigError, RegistryError
from reglab.registry.config import (
    RegistryConfig,
    Stage,
    check_notify_url,
    notification_endpoints,
    notify_url_of,
)
from reglab.registry.events import ENVELOPE_TYPE, Event, Listener


def raw_event(id_: str, action: str = "push", **target: str) -> dict[str, Any]:
    target.setdefault("mediaType", "application/vnd.docker.distribution.manifest.v2+json")
    target.setdefault("repository", "hello-world")
    target.setdefault("digest", "sha256:" + "a" * 64)
    request = {"useragent": "docker/test", "method": "HEAD" if action == "pull" else "PUT"}
    return {"id": id_, "action": action, "target": target, "actor": {"name": "moby"},
            "request": request, "timestamp": "2026-11-27T00:00:00Z"}  # fmt: skip


def post(listener: Listener, body: bytes) -> int:
    return requests.post(
        listener.url, data=body, headers={"Content-Type": ENVELOPE_TYPE}, timeout=5
    ).status_code


def test_events_are_kept_once_each_and_every_delivery_counted() -> None:
    with Listener("127.0.0.1") as listener:
        envelope = json.dumps({"events": [raw_event("1"), raw_event("2", "pull")]}).encode()
        assert post(listener, envelope) == 200
        assert post(listener, envelope) == 200  # a retry of the same envelope
        events = listener.wait_for(lambda e: len(e) == 2, timeout=5)
    assert [e.id for e in events] == ["1", "2"]
    assert len(listener.deliveries) == 4
    assert events[0].user == "moby" and events[0].is_manifest and events[0].what == "manifest"
    assert (events[0].method, events[1].method) == ("PUT", "HEAD")


def test_what_is_not_an_envelope_is_refused_and_the_listener_keeps_going() -> None:
    with Listener("127.0.0.1") as listener:
        assert post(listener, b"not json") == 400
        assert post(listener, b"[1, 2]") == 400
        assert post(listener, json.dumps({"events": [{"action": "push"}]}).encode()) == 400
        assert post(listener, json.dumps({"events": [raw_event("3")]}).encode()) == 200
    assert [e.id for e in listener.events] == ["3"]


def test_a_restarted_listener_keeps_its_port() -> None:
    listener = Listener("127.0.0.1").start()
    url = listener.url
    listener.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url, data=b"{}", timeout=2)
    listener.start()
    try:
        assert listener.url == url
        assert post(listener, json.dumps({"events": []}).encode()) == 200
    finally:
        listener.stop()


def test_waiting_for_events_that_never_come_is_one_line() -> None:
    with Listener("127.0.0.1") as listener:
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            listener.wait_for(lambda e: bool(e), timeout=0.2, what="the push's events")
    assert time.monotonic() - start < 2
    assert "the push's events did not arrive within 0.2 s" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_address_that_is_not_this_machines_is_one_line() -> None:
    with pytest.raises(ConfigError, match="cannot listen for events on 192.0.2.1"):
        Listener("192.0.2.1").start()


def test_a_delete_names_a_manifest_or_a_tag() -> None:
    manifest = Event.parse(raw_event("4", "delete", mediaType="", digest="sha256:" + "b" * 64))
    tag = Event.parse(raw_event("5", "delete", mediaType="", digest="", tag="latest"))
    assert (manifest.what, tag.what) == ("manifest", "tag")


@pytest.mark.parametrize(
    "url", ["ftp://host/events", "http://", "host:5000/events", "http://h/it's", "http://a b/"]
)
def test_a_notify_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ConfigError, match="is not an http"):
        check_notify_url(url)


def test_the_endpoint_value_round_trips_and_types_into_a_shell() -> None:
    url = "http://172.20.0.1:40123/events"
    value = notification_endpoints(url)
    assert notify_url_of(value) == url
    assert "threshold: 3" in value and "backoff: 1s" in value
    command = RegistryConfig(stage=Stage.LOCAL, notify=url).docker_run_command()
    assert f"-e \"REGISTRY_NOTIFICATIONS_ENDPOINTS=[{{name: reglab, url: '{url}'" in command
