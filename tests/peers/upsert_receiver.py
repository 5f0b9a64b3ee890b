"""A Litmos-style upsert endpoint for tests: records every POST (path, query
parameters, JSON body) and answers RESPOND_STATUS (default 200).

GET /received: every request as JSON [{"path", "query": {name: value}, "body"}].
Prints `READY <port>` once listening on 127.0.0.1 (any free port).
"""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

STATUS = int(os.environ.get("RESPOND_STATUS", "200"))
received = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/received":
            self.send_response(404)
            self.end_headers()
            return
        with lock:
            body = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        url = urlsplit(self.path)
        with lock:
            received.append(
                {
                    "path": url.path,
                    "query": dict(parse_qsl(url.query)),
                    "body": json.loads(raw) if raw else None,
                }
            )
        self.send_response(STATUS)
        self.send_header("content-length", "0")
        self.end_headers()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
