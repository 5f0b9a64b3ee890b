"""A receiving app for signed deliveries, verified by the official Standard Webhooks
library (not by our own code).

POST any path: verify the webhook-* headers with `standardwebhooks.Webhook`; a valid
delivery is recorded and answered 204, an invalid one 401.
GET /deliveries: every delivery as JSON [{"id", "type", "version", "objectId", "verified",
"data", "body"}] (data: the delivered object, so a test can read the state the app ended
with; body: the verified payload as sent, e.g. a WorkOS-format event).

Environment: WEBHOOK_SECRET (whsec_...), optional RESPOND_STATUS to force a status.
Prints `READY <port>` once listening on 127.0.0.1 (port 0 = any free port).
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
FORCED = int(os.environ.get("RESPOND_STATUS", "0"))
deliveries = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/deliveries":
            self.send_response(404)
            self.end_headers()
            return
        with lock:
            body = json.dumps(deliveries).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload = None
            verified = False
        if FORCED:
            self.send_response(FORCED)
            self.end_headers()
            return
        if not verified:
            self.send_response(401)
            self.end_headers()
            return
        with lock:
            deliveries.append(
                {
                    "webhookId": headers.get("webhook-id"),
                    "id": payload.get("id"),
                    "type": payload.get("type"),
                    "version": payload.get("version"),
                    "objectId": payload.get("objectId"),
                    "directoryId": payload.get("directoryId"),
                    "data": payload.get("data"),
                    "verified": True,
                    "body": payload,
                }
            )
        self.send_response(204)
        self.end_headers()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
