"""A faithful local Sage Business Cloud Accounting, for demos and tests.

The sandbox serves Sage's paths on loopback: the authorize pages
(``/oauth2/auth/central``), the token and revoke endpoints and the v3.1 API
endpoints the app uses, with Sage's rules and error shapes. It is an
independent implementation of Sage's side: it imports nothing from the
client layers, so a misreading of the protocol in one is caught by the
other.

    with Sandbox(SandboxConfig(access_ttl=2)) as sb:
        os.environ.update(sb.env())
        ...

Choices where Sage's behaviour is not documented, made strict so client
bugs show: a code exchanged twice is refused *and* revokes the grant it
issued (RFC 6749 section 4.1.2); client authentication in the body and by
HTTP Basic at once is ``invalid_request`` (section 2.3); repeated form
fields are ``invalid_request`` (section 3.2); refresh token lifetimes slide
(each refresh gets a new ``refresh_ttl``); old access tokens stay valid
until they expire after a refresh; a user with no business gets 404
``RecordNotFound`` for ``/businesses/lead`` and business-scoped paths.

Control plane for other processes (JSON; loopback only, like the rest):
``GET /_sandbox/counters|config|health``, ``GET /_sandbox/businesses?email=``,
``POST /_sandbox/config`` (live knobs), ``/_sandbox/counters/reset``,
``/_sandbox/faults`` ``{"target": "token"|"api", "faults": [...]}``,
``/_sandbox/faults/clear``, ``/_sandbox/businesses/grant|revoke``
``{"email", "business_id"}``, ``/_sandbox/grants/revoke`` ``{"email"}`` and
``/_sandbox/tokens`` ``{"email", "scope"}``.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from sage_desktop.sandbox._demo import DEMO, DemoRegistration, DemoUser
from sage_desktop.sandbox._server import AUTHORIZE_PATH, SandboxServer
from sage_desktop.sandbox._state import (
    COUNTER_NAMES,
    FAULT_KINDS,
    FAULT_TARGETS,
    SageState,
    SandboxConfig,
)

log = logging.getLogger(__name__)

__all__ = [
    "COUNTER_NAMES",
    "DEMO",
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "DemoRegistration",
    "DemoUser",
    "Sandbox",
    "SandboxConfig",
]


class Sandbox:
    """A running local Sage. ``start()`` binds and serves on a daemon
    thread; ``stop()`` (or leaving the ``with`` block) ends every thread,
    hanging fault handlers included."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self._state = SageState(self.config)
        self._stopping = threading.Event()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._server else "stopped"
        return f"Sandbox({where})"

    # --- life cycle -----------------------------------------------------

    def start(self) -> Sandbox:
        """Bind ``config.host:config.port`` (0: a free port) and serve."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping.clear()
        server = SandboxServer(
            (self.config.host, self.config.port), self._state, self._stopping
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-server",
            daemon=True,
        )
        self._thread.start()
        log.info("sandbox: serving on %s", self.base_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, end open connections and wait for their threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections(timeout)
        if thread is not None:
            thread.join(timeout)
        self._server = None
        self._thread = None
        log.info("sandbox: stopped")

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- where it is ----------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}{AUTHORIZE_PATH}?filter=apiv3.1"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/revoke"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3.1"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_sandbox"

    def env(self) -> dict[str, str]:
        """The ``SAGE_DESKTOP_*`` variables that point the app here, with
        the demo registration."""
        return {
            "SAGE_DESKTOP_AUTH_URL": self.auth_url,
            "SAGE_DESKTOP_TOKEN_URL": self.token_url,
            "SAGE_DESKTOP_REVOKE_URL": self.revoke_url,
            "SAGE_DESKTOP_API_URL": self.api_url,
            "SAGE_DESKTOP_CLIENT_ID": DEMO.client_id,
            "SAGE_DESKTOP_CLIENT_SECRET": DEMO.client_secret,
            "SAGE_DESKTOP_REDIRECT_URIS": ",".join(DEMO.redirect_uris),
        }

    # --- knobs ----------------------------------------------------------

    def add_faults(self, target: str, faults: list[str]) -> None:
        """The next ``len(faults)`` calls to ``target`` ("token" or "api")
        fail in these ways, in order: "500", "502_html", "hang" (30 s or
        until stop, then the connection closes), "malformed_json", "429",
        "reset" (connection closed without an answer)."""
        self._state.add_faults(target, list(faults))

    def clear_faults(self) -> None:
        self._state.clear_faults()

    def counters(self) -> dict[str, int]:
        """A snapshot of the counters (see ``COUNTER_NAMES``)."""
        return self._state.snapshot()

    def reset_counters(self) -> None:
        self._state.reset_counters()

    def business_ids(self, email: str) -> list[str]:
        """The ids of the businesses a demo user reaches; the first is the
        lead business."""
        return self._state.business_ids(email)

    def business(self, business_id: str) -> dict[str, Any]:
        """A business as ``GET /v3.1/businesses/{id}`` shows it."""
        return dict(self._state.businesses[business_id])

    def grant_business(self, email: str, business_id: str) -> None:
        """Add the user to a business (any demo business id)."""
        self._state.grant_business(email, business_id)

    def revoke_business(self, email: str, business_id: str) -> None:
        """Remove the user from a business; removing the lead business
        makes the next one the lead, as on Sage."""
        self._state.revoke_business(email, business_id)

    def revoke_grants(self, email: str) -> int:
        """Revoke every grant of a user (Sage's "revoke access")."""
        return self._state.revoke_grants(email)

    def issue_tokens(self, email: str, scope: str = "full_access") -> dict[str, Any]:
        """A token response as if the user had signed in and consented."""
        return self._state.issue_tokens(email, scope, DEMO.client_id)
