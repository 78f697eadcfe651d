"""TokenEndpoint against a small real HTTP server with canned answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from sage_desktop.auth import TokenEndpoint
from sage_desktop.config import Settings
from sage_desktop.errors import (
    AuthError,
    BadTokenResponse,
    CodeExpired,
    InvalidClient,
    MissingHeaders,
    RateLimited,
    SageDesktopError,
    SageUnavailable,
    SignInRequired,
)

SECRET = "client-secret-that-must-not-leak"
ACCESS = "A" * 60 + "access"
REFRESH = "R" * 60 + "refresh"
GOOD = {
    "access_token": ACCESS,
    "expires_in": 300,
    "token_type": "bearer",
    "refresh_token": REFRESH,
    "refresh_token_expires_in": 2678400,
    "scope": "full_access",
    "requested_by_id": "user-1",
}


class Canned:
    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = json.dumps(GOOD).encode()
        self.content_type = "application/json"
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def canned() -> Iterator[tuple[Canned, Settings]]:
    answer = Canned()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode()
            answer.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "form": {k: v[0] for k, v in parse_qs(body).items()},
                }
            )
            time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(
        token_url=base + "/token",
        revoke_url=base + "/revoke",
        client_id="the-client",
        http_timeout=2.0,
    )
    yield answer, settings
    server.shutdown()
    server.server_close()


def _respond(answer: Canned, status: int, body: Any, ctype: str = "") -> None:
    answer.status = status
    answer.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer.content_type = ctype or "application/json"


def test_exchange_sends_sages_required_headers_and_form(canned) -> None:
    answer, settings = canned

    TokenEndpoint(settings, SECRET).exchange_code("GB/code+1", "http://x/cb", "ver")

    sent = answer.requests[0]
    assert sent["path"] == "/token"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["headers"]["Accept"] == "application/json"
    assert sent["form"] == {
        "grant_type": "authorization_code",
        "code": "GB/code+1",
        "redirect_uri": "http://x/cb",
        "code_verifier": "ver",
        "client_id": "the-client",
        "client_secret": SECRET,
    }


def test_token_answer_becomes_absolute_expiry_times(canned) -> None:
    _answer, settings = canned
    before = time.time()

    tokens = TokenEndpoint(settings, SECRET).refresh("old-refresh")

    assert tokens.access_token == ACCESS
    assert tokens.refresh_token == REFRESH
    assert before + 299 <= tokens.access_expires_at <= time.time() + 300
    assert before + 2678399 <= tokens.refresh_expires_at <= time.time() + 2678400
    assert tokens.scope == "full_access"
    assert tokens.requested_by_id == "user-1"
    assert tokens.generation == 0


def test_refresh_sends_the_refresh_grant(canned) -> None:
    answer, settings = canned

    TokenEndpoint(settings, SECRET).refresh("old-refresh")

    form = answer.requests[0]["form"]
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "old-refresh"


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in GOOD.items() if k != "access_token"},
        {k: v for k, v in GOOD.items() if k != "refresh_token"},
        {k: v for k, v in GOOD.items() if k != "expires_in"},
        {**GOOD, "access_token": 12345},
        {**GOOD, "access_token": ""},
        {**GOOD, "expires_in": "soon"},
        {**GOOD, "expires_in": True},
        {**GOOD, "expires_in": -5},
        {**GOOD, "refresh_token_expires_in": [1]},
        {**GOOD, "token_type": "mac"},
        [GOOD],
    ],
)
def test_missing_or_mistyped_fields_are_a_bad_token_response(canned, broken) -> None:
    answer, settings = canned
    _respond(answer, 200, broken)

    with pytest.raises(BadTokenResponse) as caught:
        TokenEndpoint(settings, SECRET).refresh("r")

    assert caught.value.transient


def test_html_instead_of_json_is_a_bad_token_response(canned) -> None:
    answer, settings = canned
    _respond(answer, 200, b"<html>Sign in</html>", "text/html")

    with pytest.raises(BadTokenResponse, match="other than JSON"):
        TokenEndpoint(settings, SECRET).exchange_code("c", "u", "v")


@pytest.mark.parametrize(
    ("status", "error", "kind", "expected"),
    [
        (401, "invalid_client", "refresh", InvalidClient),
        (400, "invalid_client", "exchange", InvalidClient),
        (400, "invalid_grant", "exchange", CodeExpired),
        (400, "invalid_grant", "refresh", SignInRequired),
        (400, "invalid_request", "refresh", MissingHeaders),
        (400, "unsupported_grant_type", "refresh", AuthError),
        (429, None, "refresh", RateLimited),
        (500, None, "refresh", SageUnavailable),
        (503, "temporarily_unavailable", "exchange", SageUnavailable),
        (404, None, "refresh", BadTokenResponse),
    ],
)
def test_errors_are_mapped(canned, status, error, kind, expected) -> None:
    answer, settings = canned
    body = {"error": error, "error_description": f"bad {REFRESH}"} if error else {}
    _respond(answer, status, body)
    endpoint = TokenEndpoint(settings, SECRET)
    call = (
        (lambda: endpoint.refresh(REFRESH))
        if kind == "refresh"
        else (lambda: endpoint.exchange_code("code", "uri", "verifier"))
    )

    with pytest.raises(expected) as caught:
        call()

    assert REFRESH not in caught.value.user_message()
    assert SECRET not in caught.value.user_message()


def test_a_slow_token_endpoint_times_out_as_unavailable(canned) -> None:
    answer, settings = canned
    answer.delay = 1.0

    with pytest.raises(SageUnavailable, match="did not answer"):
        TokenEndpoint(settings.with_(http_timeout=0.2), SECRET).refresh("r")


def test_an_unreachable_endpoint_is_unavailable() -> None:
    settings = Settings(token_url="http://127.0.0.1:9/token", client_id="c")

    with pytest.raises(SageUnavailable):
        TokenEndpoint(settings, SECRET).refresh("r")


def test_revoke_posts_the_refresh_token_with_client_credentials(canned) -> None:
    answer, settings = canned
    _respond(answer, 200, {"success": "ok"})

    TokenEndpoint(settings, SECRET).revoke(REFRESH)

    sent = answer.requests[0]
    assert sent["path"] == "/revoke"
    assert sent["form"]["token"] == REFRESH
    assert sent["form"]["client_secret"] == SECRET


def test_revoking_a_token_sage_no_longer_knows_counts_as_done(canned) -> None:
    answer, settings = canned
    _respond(answer, 400, {"error": "invalid_grant"})

    TokenEndpoint(settings, SECRET).revoke(REFRESH)


def test_revoke_failures_raise(canned) -> None:
    answer, settings = canned
    _respond(answer, 502, b"<html>bad gateway</html>", "text/html")

    with pytest.raises(SageUnavailable):
        TokenEndpoint(settings, SECRET).revoke(REFRESH)


def test_nothing_secret_reaches_the_logs(canned, caplog) -> None:
    answer, settings = canned
    caplog.set_level("DEBUG")
    endpoint = TokenEndpoint(settings, SECRET)

    endpoint.refresh(REFRESH)
    _respond(answer, 400, {"error": "invalid_grant"})
    with pytest.raises(SageDesktopError):
        endpoint.refresh(REFRESH)

    for secret in (SECRET, ACCESS, REFRESH):
        assert secret not in caplog.text
        assert secret not in repr(endpoint)
