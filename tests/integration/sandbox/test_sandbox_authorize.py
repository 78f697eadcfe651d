"""The authorize pages behave as Sage's: exact redirect URIs, region
picker, sign-in, consent and the redirect back with a region-prefixed code."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sandbox_helpers import (
    REDIRECT,
    authorize_params,
    callback_params,
    form_of,
    pkce_pair,
    sign_in,
)

from sage_desktop.sandbox import DEMO, Sandbox
from sage_desktop.sandbox.autobrowser import AutobrowserError, play


def open_authorize(sb: Sandbox, **params: str | None) -> requests.Response:
    query = urlencode(authorize_params(**params))
    return requests.get(f"{sb.auth_url}&{query}", allow_redirects=False, timeout=5)


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    sb: Sandbox,
) -> None:
    response = open_authorize(sb, redirect_uri="http://localhost:9999/callback")

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "redirect_uri" in response.text


def test_redirect_uri_differing_only_in_case_is_refused(sb: Sandbox) -> None:
    response = open_authorize(sb, redirect_uri="http://LOCALHOST:8765/callback")

    assert response.status_code == 400
    assert "Location" not in response.headers


def test_redirect_uri_with_a_trailing_slash_is_refused(sb: Sandbox) -> None:
    response = open_authorize(sb, redirect_uri=REDIRECT + "/")

    assert response.status_code == 400


def test_every_registered_redirect_uri_is_accepted(sb: Sandbox) -> None:
    for uri in DEMO.redirect_uris:
        response = open_authorize(sb, redirect_uri=uri)
        assert response.status_code == 200, uri


def test_unknown_client_id_gets_an_error_page(sb: Sandbox) -> None:
    response = open_authorize(sb, client_id="not/registered")

    assert response.status_code == 400
    assert "Location" not in response.headers


def test_wrong_response_type_goes_back_as_unsupported_response_type(
    sb: Sandbox,
) -> None:
    response = open_authorize(sb, response_type="token")

    params = callback_params(response)
    assert params == {"error": "unsupported_response_type", "state": "state-123"}


def test_unknown_scope_goes_back_as_invalid_scope(sb: Sandbox) -> None:
    assert callback_params(open_authorize(sb, scope="admin"))["error"] == (
        "invalid_scope"
    )


def test_plain_pkce_method_goes_back_as_invalid_request(sb: Sandbox) -> None:
    _verifier, challenge = pkce_pair()
    response = open_authorize(
        sb, code_challenge=challenge, code_challenge_method="plain"
    )

    assert callback_params(response)["error"] == "invalid_request"


def test_region_picker_shows_when_no_country_is_passed(sb: Sandbox) -> None:
    response = open_authorize(sb, country=None)

    assert 'data-step="region"' in response.text
    for region in ("GB", "IE", "CA", "US"):
        assert f'value="{region}"' in response.text


def test_sign_in_page_shows_the_demo_logins(sb: Sandbox) -> None:
    response = open_authorize(sb)

    assert 'data-step="sign_in"' in response.text
    for user in DEMO.users:
        assert user.email in response.text


def test_successful_sign_in_redirects_with_a_url_encoded_region_code(
    sb: Sandbox,
) -> None:
    response = sign_in(sb, country=None)

    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?code=GB%2F")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["country"] == "GB"
    assert params["state"] == "state-123"
    assert params["code"].startswith("GB/")


def test_state_is_left_out_when_none_was_sent(sb: Sandbox) -> None:
    params = callback_params(sign_in(sb, state=None))

    assert "state" not in params
    assert "code" in params


def test_wrong_password_shows_the_sign_in_page_again(sb: Sandbox) -> None:
    first = open_authorize(sb)
    action, fields = form_of(first.text)
    fields.update(email=DEMO.accountant, password="wrong")

    again = requests.post(sb.base_url + action, data=fields, timeout=5)

    assert again.status_code == 200
    assert 'data-step="sign_in"' in again.text
    assert "incorrect" in again.text
    assert sb.counters()["sign_ins"] == 0


def test_country_not_the_users_region_goes_back_as_email_already_in_use(
    sb: Sandbox,
) -> None:
    response = sign_in(sb, email=DEMO.us_user, country="GB")

    assert "error=Invalid%20request" in response.headers["Location"]
    params = callback_params(response)
    assert params == {
        "error": "Invalid request",
        "reason": "Email already in use",
        "state": "state-123",
    }


def test_region_picked_on_the_picker_is_checked_too(sb: Sandbox) -> None:
    response = sign_in(sb, email=DEMO.us_user, country=None, region="CA")

    assert callback_params(response)["reason"] == "Email already in use"


def test_us_user_in_the_us_region_gets_a_us_code(sb: Sandbox) -> None:
    params = callback_params(sign_in(sb, email=DEMO.us_user, country="US"))

    assert params["code"].startswith("US/")
    assert params["country"] == "US"


def test_refused_consent_goes_back_as_access_denied(sb: Sandbox) -> None:
    params = callback_params(sign_in(sb, consent="deny"))

    assert params == {"error": "access_denied", "state": "state-123"}


def test_everything_echoed_on_pages_is_html_escaped(sb: Sandbox) -> None:
    evil = "http://localhost:8765/callback<script>alert(1)</script>"

    response = open_authorize(sb, redirect_uri=evil)

    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;" in response.text


def test_a_re_shown_sign_in_form_escapes_the_typed_email(sb: Sandbox) -> None:
    action, fields = form_of(open_authorize(sb).text)
    fields.update(email='x"><script>alert(1)</script>', password="wrong")

    again = requests.post(sb.base_url + action, data=fields, timeout=5)

    assert "<script>alert(1)" not in again.text
    assert "&quot;&gt;&lt;script&gt;" in again.text


def test_a_stale_sign_in_form_gets_an_error_page(sb: Sandbox) -> None:
    response = requests.post(
        sb.base_url + "/oauth2/auth/central/sign_in",
        data={"session": "made-up", "email": DEMO.accountant, "password": "x"},
        timeout=5,
    )

    assert response.status_code == 400
    assert 'data-step="error"' in response.text


def test_a_sign_in_session_cannot_be_used_for_a_second_code(sb: Sandbox) -> None:
    first = open_authorize(sb)
    action, fields = form_of(first.text)
    fields.update(email=DEMO.accountant, password=DEMO.password)
    consent = requests.post(sb.base_url + action, data=fields, timeout=5)
    action, fields = form_of(consent.text)
    fields["decision"] = "allow"
    once = requests.post(
        sb.base_url + action, data=fields, allow_redirects=False, timeout=5
    )

    twice = requests.post(
        sb.base_url + action, data=fields, allow_redirects=False, timeout=5
    )

    assert once.status_code == 302
    assert twice.status_code == 400


def test_authorize_calls_are_counted(sb: Sandbox) -> None:
    open_authorize(sb)
    open_authorize(sb, redirect_uri="http://evil.example/")

    assert sb.counters()["authorize_calls"] == 2


# --- the autobrowser ---------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b"you can close this tab"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A loopback callback receiver on the first free registered port."""
    for uri in DEMO.redirect_uris:
        parts = urlsplit(uri)
        if parts.hostname != "127.0.0.1":
            continue
        try:
            server = http.server.ThreadingHTTPServer(
                ("127.0.0.1", parts.port or 0), _Receiver
            )
        except OSError:
            continue
        hits: list[str] = []
        _Receiver.hits = hits
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield uri, hits
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
        return
    pytest.skip("every registered callback port is busy")


def test_autobrowser_delivers_the_callback_to_the_receiver(
    sb: Sandbox, receiver: tuple[str, list[str]]
) -> None:
    uri, hits = receiver
    url = f"{sb.auth_url}&" + urlencode(
        authorize_params(redirect_uri=uri, country=None)
    )

    delivered = play(url, email=DEMO.sole_trader)

    assert len(hits) == 1
    assert hits[0].startswith("/callback?code=GB%2F")
    assert delivered.startswith(uri)


def test_autobrowser_reports_a_refused_sign_in(sb: Sandbox) -> None:
    url = f"{sb.auth_url}&" + urlencode(authorize_params())

    with pytest.raises(AutobrowserError, match="refused"):
        play(url, password="wrong")


def test_autobrowser_works_as_the_browser_command_of_webbrowser(
    sb: Sandbox, receiver: tuple[str, list[str]]
) -> None:
    uri, hits = receiver
    url = f"{sb.auth_url}&" + urlencode(authorize_params(redirect_uri=uri))
    script = (
        "import webbrowser, sys; "
        "sys.exit(0 if webbrowser.get().open(sys.argv[1]) else 1)"
    )
    env = dict(
        os.environ,
        BROWSER=f"{sys.executable} -m sage_desktop.sandbox.autobrowser %s",
        SANDBOX_LOGIN_EMAIL=DEMO.accountant,
    )

    done = subprocess.run(
        [sys.executable, "-c", script, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert len(hits) == 1
    assert "code" not in done.stderr
