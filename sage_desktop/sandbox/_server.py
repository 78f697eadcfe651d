"""The sandbox's HTTP side: Sage's paths, status codes and error shapes.

One :class:`SandboxHandler` serves every connection on its own daemon
thread. Each connection has a socket timeout, request lines, headers and
bodies are bounded, and every failure a request can provoke is answered
with the error shape Sage uses on that path:

* authorize pages: an HTML error page (never a redirect to an unverified
  ``redirect_uri``, RFC 6749 section 4.1.2.1);
* ``/token`` and ``/revoke``: JSON ``{"error", "error_description"}``
  (RFC 6749 section 5.2);
* ``/v3.1``: Sage's error array of ``{$severity, $dataCode, $message,
  $source}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from sage_desktop import __version__
from sage_desktop.sandbox import _pages
from sage_desktop.sandbox._demo import CURRENCIES, DEMO, REGIONS
from sage_desktop.sandbox._state import (
    FAULT_TARGETS,
    OAuthError,
    SageState,
)

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/oauth2/auth/central"
MAX_BODY = 64 * 1024
MAX_FIELD = 16 * 1024
MAX_FIELDS = 64
SOCKET_TIMEOUT = 15.0
HANG_SECONDS = 30.0
# Rendered list entries kept; a client sending ever new attribute lists
# cannot grow the cache without bound.
RENDERED_BUSINESSES_LIMIT = 50_000
CLIENT_NAME = "sage-desktop (sandbox demo app)"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class _AnsweredSignal(Exception):
    """Raised once a response has been sent, to unwind the handler."""


class _BadInputError(Exception):
    """Malformed input; each path turns it into its own error shape."""


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that can end every connection on stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], state: SageState, stop: threading.Event
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.stopping = stop
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        self.rendered_businesses: dict[tuple[str, frozenset[str] | None], str] = {}
        super().__init__(address, SandboxHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="sandbox-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address[0])

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection and wait for its thread to end."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _thread in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _sock, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class SandboxHandler(BaseHTTPRequestHandler):
    """Routes one request to the authorize, token, API or control paths."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = f"SageSandbox/{__version__}"
    sys_version = ""
    timeout = SOCKET_TIMEOUT

    def setup(self) -> None:
        # Every connection gets a socket timeout: a slow client cannot pin
        # a thread.
        super().setup()
        timeout = self.server.state.config.socket_timeout or SOCKET_TIMEOUT
        self.connection.settimeout(timeout)
        # Headers and body go out in separate writes: without TCP_NODELAY,
        # Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- plumbing -----------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines can carry codes and tokens: log the path only.
        log.debug("%s %s", self.command, urlsplit(self.path or "").path)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    @property
    def state(self) -> SageState:
        return self.server.state

    def parse_request(self) -> bool:
        # A request that fails to parse must not inherit the previous
        # request's path on a kept-alive connection.
        self.path = ""
        return super().parse_request()

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        """Protocol-level errors (bad request line, framing, huge bodies):
        the shape of the path asked for (JSON on the token endpoints, the
        error array on the API, else an HTML page); the connection closes."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # An unparsable request line: answer with a status line anyway,
            # as real front ends do, rather than a bare HTTP/0.9 body.
            self.request_version = "HTTP/1.1"
        reason = self.responses.get(code, ("Error",))[0]
        text = message or reason
        path = self._path()
        if path in ("/token", "/revoke"):
            body = json.dumps(_oauth_error("invalid_request", text)).encode()
            content_type = "application/json; charset=utf-8"
        elif path.startswith("/v3.1"):
            body = json.dumps(_sage_error("BadRequest", text)).encode()
            content_type = "application/json; charset=utf-8"
        else:
            body = _pages.error_page(f"{code} {reason}", text).encode("utf-8")
            content_type = "text/html; charset=utf-8"
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> NoReturn:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        raise _AnsweredSignal

    def _json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> NoReturn:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _json_page(self, envelope: dict[str, Any], items: list[str]) -> NoReturn:
        """A list envelope whose ``$items`` are already JSON text."""
        head = json.dumps(envelope, separators=(",", ":"))
        body = f'{head[:-1]},"$items":[{",".join(items)}]}}'.encode()
        self._send(200, body, "application/json; charset=utf-8")

    def _html(self, status: int, page: str) -> NoReturn:
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> NoReturn:
        page = _pages.error_page("Redirecting", "Returning you to the app.")
        self._send(
            302,
            page.encode("utf-8"),
            "text/html; charset=utf-8",
            {"Location": location},
        )

    def _read_body(self) -> bytes:
        """The request body, bounded. Chunked bodies are refused (411)."""
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Length Required")
            raise _AnsweredSignal
        raw_length = self.headers.get_all("Content-Length") or []
        if not raw_length:
            return b""
        if len(raw_length) > 1 or not raw_length[0].strip().isdigit():
            self.send_error(400, "Bad Content-Length")
            raise _AnsweredSignal
        length = int(raw_length[0])
        if length > MAX_BODY:
            self.send_error(413, "Request body too large")
            raise _AnsweredSignal
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise _AnsweredSignal
        return body

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            url = urlsplit(self.path)
            path = url.path
            if path.startswith("/_sandbox/"):
                self._control(path, url.query, body)
            elif path == AUTHORIZE_PATH or path.startswith(AUTHORIZE_PATH + "/"):
                self._authorize(path, url.query, body)
            elif path == "/token":
                self._token(body)
            elif path == "/revoke":
                self._revoke(body)
            elif path == "/v3.1" or path.startswith("/v3.1/"):
                self._api(path[len("/v3.1") :], url.query)
            elif path == "/" and self.command in ("GET", "HEAD"):
                self._html(200, _pages.index_page(self._base_url()))
            else:
                self._html(404, _pages.error_page("Not found", "No such page."))
        except _AnsweredSignal:
            return
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, self._path())
            with contextlib.suppress(OSError):
                self.send_error(500, "Internal server error")

    def _path(self) -> str:
        return urlsplit(getattr(self, "path", "") or "").path

    def _base_url(self) -> str:
        address = self.server.server_address
        host, port = str(address[0]), int(address[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stopping.wait(seconds)

    # --- faults -------------------------------------------------------------

    def _serve_fault(self, target: str) -> None:
        fault = self.state.next_fault(target)
        if fault is None:
            return
        log.info("sandbox: scripted fault %s on %s", fault, target)
        if fault == "hang":
            # Longer than any client timeout; ends at once when stopping.
            self.server.stopping.wait(HANG_SECONDS)
            self.close_connection = True
            raise _AnsweredSignal
        if fault == "reset":
            self.close_connection = True
            raise _AnsweredSignal
        if fault == "502_html":
            page = "<html><head><title>502 Bad Gateway</title></head><body>"
            page += "<center><h1>502 Bad Gateway</h1></center></body></html>"
            self._send(502, page.encode(), "text/html")
        if fault == "malformed_json":
            self._send(
                200, b'{"access_token": "trunc', "application/json; charset=utf-8"
            )
        if fault == "429":
            if target == "token":
                self._json(
                    429,
                    _oauth_error("too_many_requests", "Too many requests"),
                    {"Retry-After": "1"},
                )
            self._json(
                429,
                _sage_error("TooManyRequests", "Too many requests"),
                {"Retry-After": "1"},
            )
        if target == "token":
            self._json(500, _oauth_error("server_error", "Internal server error"))
        self._json(500, _sage_error("InternalServerError", "Internal server error"))

    # --- authorize pages ------------------------------------------------------

    def _authorize(self, path: str, query: str, body: bytes) -> None:
        if path == AUTHORIZE_PATH:
            if self.command not in ("GET", "HEAD"):
                self._html(405, _pages.error_page("Not allowed", "Use GET."))
            self.state.count("authorize_calls")
            try:
                params = _parse_params(query, strict=False)
            except _BadInputError as exc:
                self._html(400, _pages.error_page("Invalid request", str(exc)))
            self._start_authorization(params)
        if self.command != "POST":
            self._html(405, _pages.error_page("Not allowed", "Use POST."))
        try:
            if not _is_form(self.headers.get("Content-Type")):
                raise _BadInputError("The form must be sent as a web form.")
            form = _parse_params(body.decode("ascii"), strict=True)
        except (_BadInputError, UnicodeDecodeError) as exc:
            self._html(400, _pages.error_page("Invalid request", _reason(exc)))
        session = self.state.find_session(form.get("session", ""))
        if session is None:
            self._html(
                400,
                _pages.error_page(
                    "Sign-in expired",
                    "This sign-in page has expired. Start again from the app.",
                ),
            )
        step = path[len(AUTHORIZE_PATH) + 1 :]
        if step == "region":
            country = form.get("country", "").upper()
            if country not in REGIONS:
                self._html(200, _pages.region_page(session.id, _action("region")))
            session.country = country
            self._html(200, _pages.sign_in_page(session.id, _action("sign_in")))
        if step == "sign_in":
            self._sign_in(session, form)
        if step == "consent":
            self._consent(session, form)
        self._html(404, _pages.error_page("Not found", "No such page."))

    def _start_authorization(self, params: dict[str, str]) -> NoReturn:
        """Sage's checks, in order: client, then the exact redirect URI; only
        once the redirect URI is known good may an error go back to it."""
        client_id = params.get("client_id", "")
        if client_id != DEMO.client_id:
            self._html(
                400,
                _pages.error_page(
                    "Invalid request", "The client_id is missing or not known."
                ),
            )
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in DEMO.redirect_uris:
            self._html(
                400,
                _pages.error_page(
                    "Invalid redirect URI",
                    "The redirect_uri does not match any callback URL "
                    "registered for this app (matching is exact and "
                    f"case-sensitive): {redirect_uri}",
                ),
            )
        state = params.get("state")
        back = _Redirector(self, redirect_uri, state)
        if params.get("response_type") != "code":
            back.error("unsupported_response_type")
        scope = params.get("scope", "")
        if scope not in ("full_access", "readonly"):
            back.error("invalid_scope")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        pkce = challenge is not None or method is not None
        if pkce and (method != "S256" or not _CHALLENGE.match(challenge or "")):
            back.error("invalid_request")
        country = (params.get("country") or "").upper() or None
        if country not in REGIONS:
            country = None
        session = self.state.open_session(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            country=country,
            code_challenge=challenge,
        )
        if country is None:
            self._html(200, _pages.region_page(session.id, _action("region")))
        self._html(200, _pages.sign_in_page(session.id, _action("sign_in")))

    def _sign_in(self, session: Any, form: dict[str, str]) -> NoReturn:
        email = form.get("email", "").strip().lower()
        password = form.get("password", "")
        try:
            user = self.state.user(email)
        except KeyError:
            user = None
        if user is None or not secrets.compare_digest(
            password.encode(), DEMO.password.encode()
        ):
            self._html(
                200,
                _pages.sign_in_page(
                    session.id,
                    _action("sign_in"),
                    email=email,
                    error="The email or password is incorrect.",
                ),
            )
        self.state.count("sign_ins")
        back = _Redirector(self, session.redirect_uri, session.state)
        if session.country != user.region:
            # Sage's answer when the chosen region is not the login's own.
            self.state.close_session(session.id)
            back.send({"error": "Invalid request", "reason": "Email already in use"})
        session.email = user.email
        self._html(
            200,
            _pages.consent_page(
                session.id,
                _action("consent"),
                user_name=user.displayed_as,
                scope=session.scope,
                client_name=CLIENT_NAME,
            ),
        )

    def _consent(self, session: Any, form: dict[str, str]) -> NoReturn:
        if session.email is None:
            self._html(400, _pages.error_page("Invalid request", "Sign in first."))
        back = _Redirector(self, session.redirect_uri, session.state)
        if form.get("decision") != "allow":
            self.state.close_session(session.id)
            back.error("access_denied")
        region = session.country or "GB"
        code = self.state.issue_code(session, region)
        back.send({"code": code, "country": region})

    # --- token endpoint -------------------------------------------------------

    def _token(self, body: bytes) -> None:
        self.state.count("token_requests")
        if not self.state.enter_request():
            self._json(
                429,
                _oauth_error("too_many_requests", "Too many concurrent requests"),
                {"Retry-After": "1"},
            )
        refreshing = False
        try:
            self._serve_fault("token")
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "Use POST")
            form = self._oauth_form(body)
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                refreshing = True
                self.state.refresh_started()
            self._wait(self.state.config.token_latency)
            client_id = self._client_auth(form)
            if grant_type is None:
                raise OAuthError(400, "invalid_request", "grant_type is missing")
            if grant_type == "authorization_code":
                code = form.get("code")
                if not code:
                    raise OAuthError(400, "invalid_request", "code is missing")
                try:
                    answer = self.state.exchange_code(
                        client_id,
                        code,
                        form.get("redirect_uri"),
                        form.get("code_verifier"),
                    )
                except OAuthError:
                    self.state.count("code_exchanges_rejected")
                    raise
            elif grant_type == "refresh_token":
                token = form.get("refresh_token")
                if not token:
                    self.state.count("refreshes_rejected")
                    raise OAuthError(400, "invalid_request", "refresh_token is missing")
                answer = self.state.refresh(client_id, token)
            else:
                raise OAuthError(
                    400, "unsupported_grant_type", "The grant_type is not supported"
                )
            self._json(200, answer, {"Pragma": "no-cache"})
        except OAuthError as exc:
            headers = {"Pragma": "no-cache"}
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Sage"'
            self._json(exc.status, _oauth_error(exc.error, exc.description), headers)
        finally:
            if refreshing:
                self.state.refresh_finished()
            self.state.leave_request()

    def _oauth_form(self, body: bytes) -> dict[str, str]:
        """Sage's documented header rules, then a strict form parse."""
        if not _is_form(self.headers.get("Content-Type")):
            raise OAuthError(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            )
        if "application/json" not in (self.headers.get("Accept") or ""):
            raise OAuthError(400, "invalid_request", "Accept must be application/json")
        try:
            return _parse_params(body.decode("ascii"), strict=True)
        except UnicodeDecodeError as exc:
            raise OAuthError(
                400, "invalid_request", "The form body is not URL-encoded"
            ) from exc
        except _BadInputError as exc:
            raise OAuthError(400, "invalid_request", str(exc)) from exc

    def _client_auth(self, form: dict[str, str]) -> str:
        """RFC 6749 section 2.3.1: body or HTTP Basic, never both."""
        authorization = self.headers.get("Authorization") or ""
        if authorization[:6].lower() == "basic ":
            if "client_secret" in form:
                raise OAuthError(
                    400,
                    "invalid_request",
                    "Use one client authentication method only",
                )
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True)
                user, _, password = decoded.decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
                raise OAuthError(
                    401, "invalid_client", "Client authentication failed"
                ) from exc
            client_id, secret = unquote(user), unquote(password)
            if form.get("client_id", client_id) != client_id:
                raise OAuthError(400, "invalid_request", "client_id mismatch")
        else:
            client_id = form.get("client_id", "")
            secret = form.get("client_secret", "")
        if client_id != DEMO.client_id or not secrets.compare_digest(
            secret.encode("utf-8"), DEMO.client_secret.encode("utf-8")
        ):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        return client_id

    def _revoke(self, body: bytes) -> None:
        try:
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "Use POST")
            form = self._oauth_form(body)
            client_id = self._client_auth(form)
            token = form.get("token")
            if not token:
                raise OAuthError(400, "invalid_request", "token is missing")
            self.state.revoke_token(client_id, token)
            self._json(200, {"success": "ok"})
        except OAuthError as exc:
            self._json(exc.status, _oauth_error(exc.error, exc.description))

    # --- API ----------------------------------------------------------------

    def _api(self, path: str, query: str) -> None:
        self.state.count("api_requests")
        if not self.state.enter_request():
            self._json(
                429,
                _sage_error("TooManyRequests", "Too many concurrent requests"),
                {"Retry-After": "1"},
            )
        try:
            self._serve_fault("api")
            self._wait(self.state.config.api_latency)
            email = self._bearer()
            if self.command not in ("GET", "HEAD"):
                self._json(
                    405, _sage_error("MethodNotAllowed", "Only GET is available")
                )
            try:
                params = _parse_params(query, strict=False)
            except _BadInputError as exc:
                self._json(400, _sage_error("InvalidParameter", str(exc)))
            self._route_api(path.rstrip("/") or "/", params, email)
        finally:
            self.state.leave_request()

    def _bearer(self) -> str:
        authorization = self.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        email = None
        if scheme.lower() == "bearer" and token.strip():
            email = self.state.authenticate(token.strip())
        if email is None:
            self._json(
                401,
                _sage_error(
                    "AuthorizationFailure",
                    "You are not authorised to access this resource",
                ),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return email

    def _route_api(self, path: str, params: dict[str, str], email: str) -> NoReturn:
        user = self.state.user(email)
        if path == "/user":
            self._json(200, _user_json(user))
        if path == "/businesses":
            ids = self.state.business_ids(email)
            fields = _attributes(params.get("attributes"))
            page = self._paged(ids, params, "/businesses", lambda bid: bid)
            items = [self._business_json(bid, fields) for bid in page.pop("$items")]
            self._json_page(page, items)
        if path.startswith("/businesses/"):
            wanted = path[len("/businesses/") :]
            ids = self.state.business_ids(email)
            if wanted == "lead":
                if not ids:
                    self._json(404, _sage_error("RecordNotFound", "No lead business"))
                wanted = ids[0]
            if wanted not in self.state.businesses:
                self._json(404, _sage_error("RecordNotFound", "Business not found"))
            if wanted not in ids:
                self._denied()
            self._json(200, dict(self.state.businesses[wanted]))
        if path in ("/contacts", "/financial_settings"):
            business_id = self._x_business(email)
            echo = {"X-Business": business_id}
            if path == "/contacts":
                page = self._paged(
                    _contacts(business_id), params, "/contacts", lambda c: c
                )
                self._json(200, page, echo)
            self._json(200, self._financial_settings(business_id), echo)
        self._json(404, _sage_error("RouteNotFound", "No route matches the path"))

    def _x_business(self, email: str) -> str:
        """Sage's rule: ``X-Business`` selects; without it, the lead."""
        ids = self.state.business_ids(email)
        header = self.headers.get_all("X-Business") or []
        if len(header) > 1:
            self._json(400, _sage_error("InvalidParameter", "X-Business repeated"))
        if not header:
            if not ids:
                self._json(404, _sage_error("RecordNotFound", "No lead business"))
            return ids[0]
        business_id = header[0].strip()
        if business_id not in ids:
            self._denied()
        return business_id

    def _denied(self) -> NoReturn:
        self._json(
            403,
            _sage_error(
                "MultiUserAccessDenied",
                "You do not have access to this business",
            ),
        )

    def _business_json(self, business_id: str, fields: set[str] | None) -> str:
        """One business as it appears in a list, rendered once per field set.

        Businesses never change while the sandbox runs, and rendering 200
        of them per page would otherwise keep its one process busy for
        milliseconds that a real, scaled-out Sage does not spend in series.
        """
        key = (business_id, None if fields is None else frozenset(fields))
        rendered = self.server.rendered_businesses
        text = rendered.get(key)
        if text is None:
            item = self._business_item(business_id, fields)
            text = json.dumps(item, separators=(",", ":"))
            if len(rendered) >= RENDERED_BUSINESSES_LIMIT:
                rendered.clear()
            rendered[key] = text
        return text

    def _business_item(self, business_id: str, fields: set[str] | None) -> Any:
        business = self.state.businesses[business_id]
        item = {k: business[k] for k in ("id", "displayed_as", "$path")}
        if fields is None:
            return item
        for key, value in business.items():
            if "all" in fields or key in fields:
                item[key] = value
        return item

    def _financial_settings(self, business_id: str) -> Any:
        region = self.state.businesses[business_id]["country"]["id"]
        currency = CURRENCIES.get(region, "GBP")
        return {
            "$path": "/financial_settings",
            "year_end_date": "2026-03-31" if region == "GB" else "2026-12-31",
            "accounting_type": "accrual",
            "base_currency": {
                "id": currency,
                "displayed_as": currency,
                "$path": f"/currencies/{currency}",
            },
            "multi_currency_enabled": False,
            "use_live_exchange_rates": False,
            "tax_number": "",
            "updated_at": "2025-01-01T00:00:00Z",
        }

    def _paged(
        self,
        items: list[Any],
        params: dict[str, str],
        path: str,
        render: Callable[[Any], Any],
    ) -> dict[str, Any]:
        """Sage's list envelope; ``items_per_page`` 1-200, default 20. Only
        the page's own items are rendered."""
        try:
            page = int(params.get("page", "1"))
            per_page = int(params.get("items_per_page", "20"))
        except ValueError:
            self._json(
                400, _sage_error("InvalidParameter", "page must be a number", "page")
            )
        if page < 1:
            self._json(
                400, _sage_error("InvalidParameter", "page must be 1 or more", "page")
            )
        if not 1 <= per_page <= 200:
            self._json(
                400,
                _sage_error(
                    "InvalidParameter",
                    "items_per_page must be between 1 and 200",
                    "items_per_page",
                ),
            )
        start = (page - 1) * per_page
        extra = {"items_per_page": str(per_page)}
        if "attributes" in params:
            extra["attributes"] = params["attributes"]

        def link(number: int) -> str:
            return f"{path}?" + urlencode({"page": str(number), **extra})

        return {
            "$total": len(items),
            "$page": page,
            "$next": link(page + 1) if start + per_page < len(items) else None,
            "$back": link(page - 1) if page > 1 else None,
            "$items_per_page": per_page,
            "$items": [render(item) for item in items[start : start + per_page]],
        }

    # --- control plane ------------------------------------------------------

    def _control(self, path: str, query: str, body: bytes) -> None:
        """``/_sandbox/``: knobs for tests and demos in other processes."""
        name = path[len("/_sandbox/") :].rstrip("/")
        state = self.state
        if self.command in ("GET", "HEAD"):
            if name == "counters":
                self._json(200, state.snapshot())
            if name == "config":
                self._json(200, state.config.as_dict())
            if name == "health":
                self._json(200, {"status": "ok", "version": __version__})
            if name == "businesses":
                try:
                    email = _parse_params(query, strict=False).get("email", "")
                    self._json(
                        200, {"email": email, "business_ids": state.business_ids(email)}
                    )
                except (KeyError, _BadInputError):
                    self._json(404, {"error": "unknown user"})
            self._json(404, {"error": "unknown control endpoint"})
        if self.command != "POST":
            self._json(405, {"error": "use GET or POST"})
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            self._json(200, self._control_post(name, data))
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": _reason(exc)})

    def _control_post(self, name: str, data: dict[str, Any]) -> Any:
        state = self.state
        if name == "config":
            state.config.update(data)
            return state.config.as_dict()
        if name == "counters/reset":
            state.reset_counters()
            return state.snapshot()
        if name == "faults":
            target = data.get("target", "token")
            faults = data.get("faults", [])
            if not isinstance(faults, list) or target not in FAULT_TARGETS:
                raise ValueError("faults must be a list, target token or api")
            state.add_faults(target, [str(f) for f in faults])
            return {"queued": {t: list(q) for t, q in state.faults.items()}}
        if name == "faults/clear":
            state.clear_faults()
            return {"queued": {t: [] for t in FAULT_TARGETS}}
        if name == "businesses/grant":
            state.grant_business(str(data["email"]), str(data["business_id"]))
            return {"business_ids": state.business_ids(str(data["email"]))}
        if name == "businesses/revoke":
            state.revoke_business(str(data["email"]), str(data["business_id"]))
            return {"business_ids": state.business_ids(str(data["email"]))}
        if name == "grants/revoke":
            return {"revoked": state.revoke_grants(str(data["email"]))}
        if name == "tokens":
            return state.issue_tokens(
                str(data["email"]),
                str(data.get("scope", "full_access")),
                DEMO.client_id,
            )
        raise KeyError(name)


class _Redirector:
    """Builds the 302 back to a verified redirect URI, Sage's way: values
    percent-encoded with ``%20`` and ``%2F`` (``code=GB%2F...``)."""

    def __init__(
        self, handler: SandboxHandler, redirect_uri: str, state: str | None
    ) -> None:
        self.handler = handler
        self.redirect_uri = redirect_uri
        self.state = state

    def error(self, error: str) -> NoReturn:
        self.send({"error": error})

    def send(self, params: dict[str, str]) -> NoReturn:
        if self.state is not None:
            params = {**params, "state": self.state}
        query = urlencode(params, quote_via=quote, safe="")
        separator = "&" if "?" in self.redirect_uri else "?"
        self.handler._redirect(f"{self.redirect_uri}{separator}{query}")


def _action(step: str) -> str:
    return f"{AUTHORIZE_PATH}/{step}"


def _is_form(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def _parse_params(text: str, *, strict: bool) -> dict[str, str]:
    """Parse a query or form; repeated, oversized or non-UTF-8 fields are
    refused (RFC 6749 section 3.1: parameters MUST NOT repeat)."""
    if _BAD_ESCAPE.search(text):
        raise _BadInputError("A parameter has a broken %-escape")
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=strict and bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise _BadInputError("A parameter is not valid UTF-8") from exc
    except ValueError as exc:
        raise _BadInputError("The parameters are malformed") from exc
    result: dict[str, str] = {}
    for key, value in pairs:
        if not key:
            raise _BadInputError("A parameter has no name")
        if key in result:
            raise _BadInputError(f"Parameter {key[:40]!r} is repeated")
        if len(value) > MAX_FIELD or len(key) > 256:
            raise _BadInputError(f"Parameter {key[:40]!r} is too long")
        result[key] = value
    return result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "The request is not valid text"
    if isinstance(exc, KeyError):
        return f"missing or unknown: {exc.args[0]!s:.60}"
    return str(exc)[:200]


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def _sage_error(code: str, message: str, source: str = "") -> list[dict[str, str]]:
    """Sage's API error body: an array of ``$severity/$dataCode/...``."""
    return [
        {
            "$severity": "error",
            "$dataCode": code,
            "$message": message,
            "$source": source,
        }
    ]


def _attributes(raw: str | None) -> set[str] | None:
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _user_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "displayed_as": user.displayed_as,
        "$path": "/user",
        "first_name": user.first_name,
        "last_name": user.last_name,
        "initials": user.first_name[:1] + user.last_name[:1],
        "email": user.email,
        "locale": user.locale,
        "created_at": "2019-04-01T09:00:00Z",
        "updated_at": "2025-01-01T09:00:00Z",
    }


_FIRST = ("Ava", "Liam", "Noah", "Isla", "Ella", "Jack", "Mia", "Leo", "Zoe", "Finn")
_LAST = ("Price", "Ward", "Hughes", "Kelly", "Lloyd", "Shaw", "Moss", "Rowe", "Dale")


@functools.lru_cache(maxsize=256)
def _contacts(business_id: str) -> list[dict[str, Any]]:
    """A business's contacts, generated from its id (stable across runs)."""
    rng = random.Random(business_id)
    contacts = []
    for index in range(3 + rng.randrange(30)):
        contact_id = f"{rng.getrandbits(128):032x}"
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        kind = rng.choice(("CUSTOMER", "VENDOR"))
        contacts.append(
            {
                "id": contact_id,
                "displayed_as": f"{name} ({kind[:3]}{index:03d})",
                "$path": f"/contacts/{contact_id}",
                "name": name,
                "reference": f"{kind[:3]}{index:03d}",
                "contact_types": [{"id": kind, "displayed_as": kind.title()}],
            }
        )
    return contacts


__all__ = ["SandboxHandler", "SandboxServer"]
