"""Helpers that walk the sandbox's pages and endpoints over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from sage_desktop.sandbox import DEMO, Sandbox

REDIRECT = DEMO.redirect_uris[0]
JSON_FORM = {"Accept": "application/json"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(**overrides: Any) -> dict[str, str]:
    params = {
        "client_id": DEMO.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "full_access",
        "state": "state-123",
        "country": "GB",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's form."""
    from sage_desktop.sandbox.autobrowser import _FormReader

    reader = _FormReader()
    reader.feed(page)
    assert reader.step not in (None, "error"), page
    return reader.action, dict(reader.fields)


def sign_in(
    sb: Sandbox,
    *,
    email: str = DEMO.accountant,
    password: str = DEMO.password,
    consent: str = "allow",
    region: str | None = None,
    **params: Any,
) -> requests.Response:
    """Walk the authorize pages; return the final (unfollowed) response."""
    session = requests.Session()
    response = session.get(
        sb.auth_url + "&" + urlencode(authorize_params(**params)),
        allow_redirects=False,
        timeout=5,
    )
    for _ in range(5):
        if response.status_code != 200:
            return response
        action, fields = form_of(response.text)
        if 'data-step="region"' in response.text:
            fields["country"] = region or DEMO.user(email).region
        elif 'data-step="sign_in"' in response.text:
            fields.update(email=email, password=password)
        else:
            fields["decision"] = consent
        response = session.post(
            sb.base_url + action, data=fields, allow_redirects=False, timeout=5
        )
    return response


def callback_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def get_code(sb: Sandbox, **kwargs: Any) -> str:
    return callback_params(sign_in(sb, **kwargs))["code"]


def token_call(
    sb: Sandbox,
    data: dict[str, str],
    *,
    client: bool = True,
    url: str = "token",
    **kwargs: Any,
) -> requests.Response:
    body = dict(data)
    if client:
        body.setdefault("client_id", DEMO.client_id)
        body.setdefault("client_secret", DEMO.client_secret)
    kwargs.setdefault("headers", JSON_FORM)
    target = sb.token_url if url == "token" else sb.revoke_url
    return requests.post(target, data=body, timeout=10, **kwargs)


def exchange(sb: Sandbox, code: str, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code}
    data["redirect_uri"] = REDIRECT
    data.update(extra)
    return token_call(sb, data)


def refresh(sb: Sandbox, token: str) -> requests.Response:
    return token_call(sb, {"grant_type": "refresh_token", "refresh_token": token})


def api(
    sb: Sandbox, path: str, token: str, *, business: str | None = None, **params: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if business is not None:
        headers["X-Business"] = business
    return requests.get(sb.api_url + path, headers=headers, params=params, timeout=10)


def assert_sage_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list)
    assert set(body[0]) == {"$severity", "$dataCode", "$message", "$source"}
    assert body[0]["$dataCode"] == code


def assert_oauth_error(response: requests.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
