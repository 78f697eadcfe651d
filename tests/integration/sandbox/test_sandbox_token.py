"""The token and revoke endpoints follow Sage's rules (and RFC 6749/7636/
7009 where Sage does): header checks, client authentication, single-use
codes, PKCE, rotation with reuse rejection, expiry."""

from __future__ import annotations

import base64
import threading
import time
from urllib.parse import quote

import pytest
import requests
from sandbox_helpers import (
    api,
    assert_oauth_error,
    exchange,
    get_code,
    pkce_pair,
    refresh,
    token_call,
)

from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig

SAGE_FIELDS = {
    "access_token",
    "scope",
    "token_type",
    "expires_in",
    "refresh_token",
    "refresh_token_expires_in",
    "requested_by_id",
}


def signed_in(sb: Sandbox) -> dict[str, object]:
    response = exchange(sb, get_code(sb))
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- headers and client authentication -----------------------------------------


def test_missing_accept_header_is_invalid_request(sb: Sandbox) -> None:
    response = token_call(
        sb, {"grant_type": "refresh_token", "refresh_token": "x"}, headers={}
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_json_body_instead_of_a_form_is_invalid_request(sb: Sandbox) -> None:
    response = requests.post(
        sb.token_url,
        json={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Accept": "application/json"},
        timeout=5,
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_wrong_client_secret_is_invalid_client(sb: Sandbox) -> None:
    response = token_call(
        sb,
        {"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "no"},
    )

    assert_oauth_error(response, 401, "invalid_client")


def test_missing_client_is_invalid_client(sb: Sandbox) -> None:
    response = token_call(
        sb, {"grant_type": "refresh_token", "refresh_token": "x"}, client=False
    )

    assert_oauth_error(response, 401, "invalid_client")


def test_client_may_authenticate_with_http_basic(sb: Sandbox) -> None:
    user = f"{quote(DEMO.client_id, safe='')}:{quote(DEMO.client_secret, safe='')}"
    basic = base64.b64encode(user.encode()).decode()

    response = token_call(
        sb,
        {
            "grant_type": "authorization_code",
            "code": get_code(sb),
            "redirect_uri": DEMO.redirect_uris[0],
        },
        client=False,
        headers={"Accept": "application/json", "Authorization": f"Basic {basic}"},
    )

    assert response.status_code == 200, response.text


def test_basic_with_a_wrong_secret_is_invalid_client(sb: Sandbox) -> None:
    basic = base64.b64encode(f"{DEMO.client_id}:nope".encode()).decode()

    response = token_call(
        sb,
        {"grant_type": "refresh_token", "refresh_token": "x"},
        client=False,
        headers={"Accept": "application/json", "Authorization": f"Basic {basic}"},
    )

    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" in response.headers


def test_two_client_authentication_methods_at_once_are_refused(sb: Sandbox) -> None:
    basic = base64.b64encode(f"{DEMO.client_id}:{DEMO.client_secret}".encode()).decode()

    response = token_call(
        sb,
        {"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Accept": "application/json", "Authorization": f"Basic {basic}"},
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_unknown_grant_type_is_unsupported_grant_type(sb: Sandbox) -> None:
    response = token_call(sb, {"grant_type": "password"})

    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_missing_grant_type_is_invalid_request(sb: Sandbox) -> None:
    assert_oauth_error(token_call(sb, {}), 400, "invalid_request")


def test_get_on_the_token_endpoint_is_refused_as_json(sb: Sandbox) -> None:
    response = requests.get(sb.token_url, timeout=5)

    assert_oauth_error(response, 405, "invalid_request")


# --- authorization codes ----------------------------------------------------------


def test_code_exchange_answers_exactly_sages_fields(sb: Sandbox) -> None:
    response = exchange(sb, get_code(sb))

    body = response.json()
    assert response.status_code == 200
    assert set(body) == SAGE_FIELDS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["refresh_token_expires_in"] == 2678400
    assert body["scope"] == "full_access"
    assert body["requested_by_id"] == DEMO.user(DEMO.accountant).id
    assert response.headers["Cache-Control"] == "no-store"


def test_tokens_are_about_two_kilobytes_of_url_safe_text(sb: Sandbox) -> None:
    body = signed_in(sb)

    for name in ("access_token", "refresh_token"):
        token = str(body[name])
        assert 1900 <= len(token) <= 2048
        assert token.replace("-", "").replace("_", "").isalnum()


def test_readonly_scope_is_kept_with_the_grant(sb: Sandbox) -> None:
    response = exchange(sb, get_code(sb, scope="readonly"))

    assert response.json()["scope"] == "readonly"


def test_a_code_works_only_once(sb: Sandbox) -> None:
    code = get_code(sb)
    assert exchange(sb, code).status_code == 200

    assert_oauth_error(exchange(sb, code), 400, "invalid_grant")


def test_a_reused_code_revokes_the_grant_it_issued(sb: Sandbox) -> None:
    code = get_code(sb)
    tokens = exchange(sb, code).json()

    exchange(sb, code)

    assert_oauth_error(refresh(sb, tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(code_ttl=0.2)])
def test_a_code_expires(sb: Sandbox) -> None:
    code = get_code(sb)
    time.sleep(0.4)

    assert_oauth_error(exchange(sb, code), 400, "invalid_grant")


def test_the_code_ttl_is_sixty_seconds_by_default(sb: Sandbox) -> None:
    assert sb.config.code_ttl == 60.0


def test_redirect_uri_must_equal_the_authorized_one(sb: Sandbox) -> None:
    code = get_code(sb)

    response = exchange(sb, code, redirect_uri=DEMO.redirect_uris[3])

    assert_oauth_error(response, 400, "invalid_grant")


def test_a_made_up_code_is_invalid_grant(sb: Sandbox) -> None:
    assert_oauth_error(exchange(sb, "GB/made-up"), 400, "invalid_grant")


def test_pkce_verifier_is_checked_when_a_challenge_was_sent(sb: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    other, _ = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}

    wrong = exchange(sb, get_code(sb, **pkce), code_verifier=other)
    missing = exchange(sb, get_code(sb, **pkce))
    right = exchange(sb, get_code(sb, **pkce), code_verifier=verifier)

    assert_oauth_error(wrong, 400, "invalid_grant")
    assert_oauth_error(missing, 400, "invalid_grant")
    assert right.status_code == 200


def test_code_exchanges_are_counted(sb: Sandbox) -> None:
    signed_in(sb)
    exchange(sb, "GB/made-up")

    counters = sb.counters()
    assert counters["code_exchanges"] == 1
    assert counters["code_exchanges_rejected"] == 1


# --- refresh tokens ----------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(sb: Sandbox) -> None:
    first = signed_in(sb)

    second = refresh(sb, str(first["refresh_token"])).json()

    assert set(second) == SAGE_FIELDS
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]


def test_a_used_refresh_token_is_invalid_grant(sb: Sandbox) -> None:
    first = signed_in(sb)
    refresh(sb, str(first["refresh_token"]))

    response = refresh(sb, str(first["refresh_token"]))

    assert_oauth_error(response, 400, "invalid_grant")


def test_reuse_keeps_the_grant_alive_with_its_newest_token(sb: Sandbox) -> None:
    first = signed_in(sb)
    second = refresh(sb, str(first["refresh_token"])).json()
    refresh(sb, str(first["refresh_token"]))

    third = refresh(sb, second["refresh_token"])

    assert third.status_code == 200


def test_a_superseded_refresh_token_is_refused(sb: Sandbox) -> None:
    first = signed_in(sb)
    second = refresh(sb, str(first["refresh_token"])).json()
    refresh(sb, second["refresh_token"])

    assert_oauth_error(refresh(sb, second["refresh_token"]), 400, "invalid_grant")


def test_refreshes_are_counted(sb: Sandbox) -> None:
    first = signed_in(sb)
    refresh(sb, str(first["refresh_token"]))
    refresh(sb, str(first["refresh_token"]))

    counters = sb.counters()
    assert counters["refreshes_accepted"] == 1
    assert counters["refreshes_rejected"] == 1


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(refresh_ttl=0.2)])
def test_refresh_tokens_expire(sb: Sandbox) -> None:
    first = signed_in(sb)
    assert first["refresh_token_expires_in"] == 0
    time.sleep(0.4)

    assert_oauth_error(refresh(sb, str(first["refresh_token"])), 400, "invalid_grant")


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(token_latency=0.3)])
def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(
    sb: Sandbox,
) -> None:
    token = str(signed_in(sb)["refresh_token"])
    statuses: list[int] = []

    def attempt() -> None:
        statuses.append(refresh(sb, token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(statuses) == [200] + [400] * 7
    assert sb.counters()["max_refreshes_in_flight"] >= 2


def test_a_refresh_token_of_another_client_is_refused(sb: Sandbox) -> None:
    token = str(signed_in(sb)["refresh_token"])

    response = token_call(
        sb,
        {
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": "someone/else",
        },
    )

    assert_oauth_error(response, 401, "invalid_client")


# --- access tokens and revoke -----------------------------------------------------


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(access_ttl=0.2)])
def test_access_tokens_expire(sb: Sandbox) -> None:
    tokens = signed_in(sb)
    assert api(sb, "/user", str(tokens["access_token"])).status_code == 200
    time.sleep(0.4)

    assert api(sb, "/user", str(tokens["access_token"])).status_code == 401


def test_a_changed_access_ttl_applies_to_new_tokens(sb: Sandbox) -> None:
    sb.config.access_ttl = 42

    assert signed_in(sb)["expires_in"] == 42


def test_revoke_ends_the_grant(sb: Sandbox) -> None:
    tokens = signed_in(sb)

    response = token_call(sb, {"token": str(tokens["refresh_token"])}, url="revoke")

    assert response.status_code == 200
    assert response.json() == {"success": "ok"}
    assert_oauth_error(refresh(sb, str(tokens["refresh_token"])), 400, "invalid_grant")
    assert api(sb, "/user", str(tokens["access_token"])).status_code == 401


def test_revoke_needs_the_client(sb: Sandbox) -> None:
    response = token_call(sb, {"token": "x"}, client=False, url="revoke")

    assert_oauth_error(response, 401, "invalid_client")


def test_revoke_without_a_token_is_invalid_request(sb: Sandbox) -> None:
    assert_oauth_error(token_call(sb, {}, url="revoke"), 400, "invalid_request")


def test_revoking_an_unknown_token_still_answers_ok(sb: Sandbox) -> None:
    response = token_call(sb, {"token": "nothing-like-it"}, url="revoke")

    assert response.json() == {"success": "ok"}


def test_revoke_grants_ends_every_grant_of_a_user(sb: Sandbox) -> None:
    first, second = signed_in(sb), signed_in(sb)

    assert sb.revoke_grants(DEMO.accountant) == 2

    for tokens in (first, second):
        response = refresh(sb, str(tokens["refresh_token"]))
        assert_oauth_error(response, 400, "invalid_grant")


def test_issue_tokens_gives_a_working_grant_without_the_browser(
    sb: Sandbox,
) -> None:
    tokens = sb.issue_tokens(DEMO.sole_trader)

    assert set(tokens) == SAGE_FIELDS
    assert refresh(sb, tokens["refresh_token"]).status_code == 200
