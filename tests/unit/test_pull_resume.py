"""A blob download that breaks off is resumed with a Range request (as the Docker engine does),
and counted; one that keeps breaking off, or comes back with other bytes, is a failure.

The server is a real HTTP server on 127.0.0.1 that cuts its answers short on purpose (what a
replica killed mid-answer does), not a mock of the client."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reglab.lab.measure import RESUMES, _fetch_blob
from reglab.registry.client import RegistryClient

BLOB = bytes(range(256)) * 4096  # 1 MiB
DIGEST = f"sha256:{hashlib.sha256(BLOB).hexdigest()}"


def serve(cut_every_answer: bool, corrupt: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        answers = 0

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            Handler.answers += 1
            start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
            body = (b"x" * len(BLOB) if corrupt else BLOB)[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut_every_answer or Handler.answers == 1:
                self.wfile.write(body[: len(body) // 3])  # then the "replica" dies
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    """The servers a test starts, stopped after it."""
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def at(server: ThreadingHTTPServer) -> RegistryClient:
    return RegistryClient(f"http://127.0.0.1:{server.server_address[1]}")


def test_a_download_cut_once_is_resumed_where_it_stopped(
    servers: list[ThreadingHTTPServer],
) -> None:
    server = serve(cut_every_answer=False)
    servers.append(server)
    with at(server) as api:
        assert _fetch_blob(api, "team/app", DIGEST) == (None, 1)


def test_a_download_cut_every_time_fails_after_the_resumes(
    servers: list[ThreadingHTTPServer],
) -> None:
    server = serve(cut_every_answer=True)
    servers.append(server)
    with at(server) as api:
        error, resumed = _fetch_blob(api, "team/app", DIGEST)
    assert resumed == RESUMES and error is not None and "broke off" in error


def test_other_bytes_are_a_failure_even_when_complete(servers: list[ThreadingHTTPServer]) -> None:
    server = serve(cut_every_answer=False, corrupt=True)
    servers.append(server)
    with at(server) as api:
        error, _ = _fetch_blob(api, "team/app", DIGEST)
    assert error is not None and "other bytes" in error
