"""A real receiver for push notifications: a loopback HTTP server that keeps what Apprise's ``json://`` POSTs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A token inside the receiver's URL: tests check that it never shows up where it must not.
SECRET = "s3cr3t-t0ken-7f3a"


class Receiver:
    """A loopback HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        got: list[dict[str, Any]] = []
        self.got = got

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                got.append({"path": self.path, **json.loads(self.rfile.read(n) or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook/{SECRET}"

    def titles(self) -> list[str]:
        return [str(m.get("title")) for m in self.got]
