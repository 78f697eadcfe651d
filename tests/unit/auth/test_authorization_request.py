"""The authorization URL: Sage's parameters, fresh state, PKCE S256."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

from sage_desktop.auth import AuthorizationRequest
from sage_desktop.auth.request import code_challenge
from sage_desktop.config import Settings

SETTINGS = Settings(client_id="abc/def")
CALLBACK = "http://localhost:8765/callback"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_url_keeps_sages_filter_and_carries_every_parameter() -> None:
    request = AuthorizationRequest.create(
        SETTINGS.with_(locale="en-GB"), CALLBACK, country="GB"
    )

    parts = urlsplit(request.url)
    query = _query(request.url)

    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://www.sageone.com/oauth2/auth/central"
    )
    assert query["filter"] == ["apiv3.1"]
    assert query["client_id"] == ["abc/def"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["scope"] == ["full_access"]
    assert query["state"] == [request.state]
    assert query["country"] == ["gb"]
    assert query["locale"] == ["en-GB"]
    assert query["code_challenge"] == [request.code_challenge]
    assert query["code_challenge_method"] == ["S256"]


def test_country_and_locale_are_left_out_when_unset() -> None:
    query = _query(AuthorizationRequest.create(SETTINGS, CALLBACK).url)

    assert "country" not in query
    assert "locale" not in query


def test_scope_can_be_readonly() -> None:
    request = AuthorizationRequest.create(SETTINGS, CALLBACK, scope="readonly")

    assert _query(request.url)["scope"] == ["readonly"]


def test_state_is_at_least_256_bits_and_fresh_each_time() -> None:
    states = {AuthorizationRequest.create(SETTINGS, CALLBACK).state for _ in range(50)}

    assert len(states) == 50
    for state in states:
        assert len(base64.urlsafe_b64decode(state + "=")) == 32


def test_verifier_matches_rfc_7636_section_4_1() -> None:
    verifier = AuthorizationRequest.create(SETTINGS, CALLBACK).code_verifier

    assert 43 <= len(verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)


def test_challenge_is_s256_of_the_verifier_per_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == (
        code_challenge(verifier)
    )


def test_repr_shows_neither_state_nor_verifier() -> None:
    request = AuthorizationRequest.create(SETTINGS, CALLBACK)

    assert request.state not in repr(request)
    assert request.code_verifier not in repr(request)
