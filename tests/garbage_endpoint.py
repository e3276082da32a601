"""AWS endpoints that fail the way real ones can, on 127.0.0.1: one answering HTML, one refusing connections.

`garbage_endpoint()` answers every request with an HTML page, as moto does for a call it lacks (a
Werkzeug error page), so botocore cannot parse the answer; `closed_endpoint()` names a port nothing
listens on; `broken_endpoint(kind)` gives either by name (`BROKEN`), for parametrized tests. Point
boto3 at one with `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_<SERVICE>`), and set `NO_RETRIES` in the
environment too, so that botocore gives up at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

BROKEN = ("html-200", "html-500", "closed-port")
NO_RETRIES = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
PAGE = ("<!doctype html>\n<html lang=en>\n<title>{status} Not An AWS Answer</title>\n<h1>Not An AWS Answer</h1>\n"
        "<p>This server answers every request with this page.</p>\n")


@contextlib.contextmanager
def garbage_endpoint(status: int = 200) -> Iterator[str]:
    """The URL of a server answering every request with `status` and an HTML page; stopped on exit."""
    body = PAGE.format(status=status).encode()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_endpoint() -> str:
    """The URL of a loopback port that was free a moment ago and that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def broken_endpoint(kind: str) -> Iterator[str]:
    """The URL of a `kind` endpoint (one of `BROKEN`): HTML with status 200 or 500, or a closed port."""
    if kind == "closed-port":
        yield closed_endpoint()
        return
    with garbage_endpoint(int(kind.removeprefix("html-"))) as url:
        yield url
