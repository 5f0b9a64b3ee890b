"""A Litmos-style upsert endpoint for tests: records every POST (path, query
parameters, JSON body) and answers RESPOND_STATUS (default 200).

It keeps learners as Litmos does: a POST whose body carries the platform's own `id`
updates that learner (its username included); otherwise the learner with the body's
`username` is updated, or a new one is created. A 2xx answer is the learner,
`{"Id": ..., "UserName": ..., "Active": ...}`.

GET /received: every request as JSON [{"path", "query": {name: value}, "body"}].
GET /learners: every learner as JSON [{"id", "body"}].
Prints `READY <port>` once listening on 127.0.0.1 (any free port).
"""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

STATUS = int(os.environ.get("RESPOND_STATUS", "200"))
received = []
learners = []
lock = threading.Lock()


def upsert(body):
    """The learner a POST body lands on, created when none matches."""
    for learner in learners:
        if body.get("id") and learner["id"] == body["id"]:
            break
    else:
        for learner in learners:
            if learner["body"].get("username") == body.get("username"):
                break
        else:
            learner = {"id": "L-%d" % (len(learners) + 1000), "body": {}}
            learners.append(learner)
    learner["body"] = body
    return learner


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path not in ("/received", "/learners"):
            self.send_response(404)
            self.end_headers()
            return
        with lock:
            body = json.dumps(received if self.path == "/received" else learners).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        url = urlsplit(self.path)
        body = json.loads(raw) if raw else None
        answer = b""
        with lock:
            received.append(
                {
                    "path": url.path,
                    "query": dict(parse_qsl(url.query)),
                    "body": body,
                }
            )
            if 200 <= STATUS < 300 and isinstance(body, dict):
                learner = upsert(body)
                answer = json.dumps(
                    {
                        "Id": learner["id"],
                        "UserName": body.get("username"),
                        "Active": body.get("active"),
                    }
                ).encode()
        self.send_response(STATUS)
        if answer:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
