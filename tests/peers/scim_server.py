"""The SCIM 2.0 peer: the real `scim2-server` (PyPI), served from memory.

It builds the same application as the `scim2-server` command (RFC 7643 schemas, the
User resource type with the enterprise extension, Group, every feature announced
including ETags) and guards it with a static bearer token, but binds port 0 so tests
never race for a port, then prints `READY <port>`.

Environment: SCIM_BEARER_TOKEN (required; the only token accepted). Optional
SCIM_RACE_USERNAME: the first POST /Users is preceded by the creation of an account
holding that userName, as a concurrent provisioner (SSO just-in-time provisioning, an
admin) would do between a client's lookup and its create; scim2-server itself then
answers that POST with its 409 uniqueness error.
Endpoints live under http://127.0.0.1:<port>/v2 (the /v2 prefix is optional).
"""

import io
import json
import logging
import os
import secrets
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import (
    BEARER_TOKEN_SCHEME,
    BearerTokenApplication,
)
from scim2_server.testserver.cli import ThreadingWSGIServer
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

TOKEN = os.environ["SCIM_BEARER_TOKEN"]
RACE_USERNAME = os.environ.get("SCIM_RACE_USERNAME")


class QuietHandler(WSGIRequestHandler):
    # Access lines would go to the peer log on every request; errors still do.
    def log_message(self, *args):
        pass


class ConcurrentCreator:
    """WSGI middleware that lets another provisioner win the race for a userName once."""

    def __init__(self, app, user_name):
        self.app = app
        self.user_name = user_name
        self.done = False

    def __call__(self, environ, start_response):
        is_create = environ["REQUEST_METHOD"] == "POST" and environ.get(
            "PATH_INFO", ""
        ).rstrip("/").endswith("/Users")
        if is_create and not self.done:
            self.done = True
            body = json.dumps(
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": self.user_name,
                    "displayName": "Provisioned elsewhere",
                }
            ).encode()
            other = dict(environ)
            other["wsgi.input"] = io.BytesIO(body)
            other["CONTENT_LENGTH"] = str(len(body))
            other["CONTENT_TYPE"] = "application/scim+json"
            b"".join(self.app(other, lambda *a, **k: None))
        return self.app(environ, start_response)


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = load_default_service_provider_config()
    config.authentication_schemes = [
        *(config.authentication_schemes or []),
        BEARER_TOKEN_SCHEME,
    ]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
    )
    service = ScimService(provider, secret=secrets.token_urlsafe(32))
    app = BearerTokenApplication(
        InMemoryStorage(), provider, service=service, bearer_tokens=[TOKEN]
    )
    if RACE_USERNAME:
        app = ConcurrentCreator(app, RACE_USERNAME)
    with make_server(
        "127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    ) as server:
        print(f"READY {server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
