"""A local stand-in for the three calls of GitHub's REST API a PR comment takes (list, create,
update): github.com is not reachable here. It answers as GitHub documents, over a list kept in
memory, and refuses a request without the bearer token."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

REPOSITORY, PR, TOKEN = "acme/databases", 7, "test-token"


@dataclass
class FakeGitHub:
    url: str
    comments: list[dict[str, Any]] = field(default_factory=list)


def _handler(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    base = f"/repos/{REPOSITORY}/issues"

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._reply(401, {"message": "Bad credentials"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self._authorized() and self.path.startswith(f"{base}/{PR}/comments"):
                self._reply(200, github.comments if "page=1" in self.path else [])

        def do_POST(self) -> None:  # noqa: N802
            if self._authorized() and self.path == f"{base}/{PR}/comments":
                number = len(github.comments) + 1
                comment = {"id": number, "body": self._body()["body"], "html_url": f"{github.url}/comment/{number}"}
                github.comments.append(comment)
                self._reply(201, comment)

        def do_PATCH(self) -> None:  # noqa: N802
            if self._authorized():
                comment = next(c for c in github.comments if self.path == f"{base}/comments/{c['id']}")
                comment["body"] = self._body()["body"]
                self._reply(200, comment)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_github(comments: list[dict[str, Any]] | None = None) -> Iterator[FakeGitHub]:
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    github = FakeGitHub(f"http://127.0.0.1:{server.server_port}", list(comments or []))
    server.RequestHandlerClass = _handler(github)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield github
    finally:
        server.shutdown()
        server.server_close()
