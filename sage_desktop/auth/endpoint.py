"""Sage's token endpoint: code exchange, refresh and revoke.

Every request is a form post with ``Content-Type:
application/x-www-form-urlencoded`` and ``Accept: application/json`` (Sage
lists missing headers as a cause of failure), the client id and secret in
the body (RFC 6749 section 2.3.1) and a timeout.

Answers are checked before anything is returned: a response without the
expected fields, with the wrong types, or HTML instead of JSON raises
:class:`~sage_desktop.errors.BadTokenResponse`, so nothing half-valid is
ever stored. OAuth errors become the typed errors of
:mod:`sage_desktop.errors`. No token, code or secret ever reaches an
exception message or a log line.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import requests

from sage_desktop.config import Settings
from sage_desktop.errors import (
    AuthError,
    BadTokenResponse,
    CodeExpired,
    InvalidClient,
    MissingHeaders,
    RateLimited,
    SageUnavailable,
    SignInRequired,
)
from sage_desktop.tokens import TokenSet

log = logging.getLogger(__name__)

FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}

# Sage's documented lifetime, used only when an answer omits it.
DEFAULT_REFRESH_LIFETIME = 2_678_400.0

# OAuth error codes are short ASCII words (RFC 6749 section 5.2); anything
# else is not repeated to the user, in case it echoes something secret.
_ERROR_CODE = re.compile(r"^[A-Za-z_ ]{1,40}$")


class TokenEndpoint:
    """Calls to ``token_url`` and ``revoke_url`` for one app registration.

    ``session`` may be shared (connection reuse); the endpoint never closes
    a session it was given.
    """

    def __init__(
        self,
        settings: Settings,
        client_secret: str,
        session: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._client_secret = client_secret
        self._session = session or requests.Session()
        self._owns_session = session is None

    def __repr__(self) -> str:
        return f"TokenEndpoint({self._settings.token_url!r})"

    def close(self) -> None:
        """Close the HTTP session if this endpoint created it."""
        if self._owns_session:
            self._session.close()

    # --- grants -----------------------------------------------------------

    def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        """Trade the callback's code for tokens (RFC 6749 section 4.1.3).

        Sage's code is single-use and lives 60 seconds, so this is called
        as soon as the callback arrives. ``invalid_grant`` here means the
        code expired or was used: :class:`CodeExpired`.
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        return self._grant(form, "exchange")

    def refresh(self, refresh_token: str) -> TokenSet:
        """Use the refresh token once (RFC 6749 section 6).

        Sage answers with a new refresh token every time and rejects the old
        one afterwards; the caller must store the result before anything
        else. ``invalid_grant`` means the grant is dead:
        :class:`SignInRequired`. The result has generation 0.
        """
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._grant(form, "refresh")

    def revoke(self, refresh_token: str) -> None:
        """Revoke the grant at Sage (``POST /revoke`` with ``token``).

        A token Sage no longer knows (``invalid_grant``, or any 2xx per
        RFC 7009 section 2.2) counts as revoked: the goal is reached.
        """
        started = time.monotonic()
        response = self._post(
            self._settings.revoke_url, {"token": refresh_token}, "revoke"
        )
        if 200 <= response.status_code < 300:
            log.info("revoked a grant in %.0f ms", _ms(started))
            return
        self._raise_for_status(response, "revoke")
        payload = _json_or_none(response)
        error = _error_code(payload)
        if error == "invalid_grant":
            log.info("revoke: Sage no longer knows the grant; treated as revoked")
            return
        self._raise_oauth_error(response.status_code, error, "revoke")

    # --- internals --------------------------------------------------------

    def _grant(self, form: dict[str, str], kind: str) -> TokenSet:
        sent_at = time.time()
        started = time.monotonic()
        response = self._post(self._settings.token_url, form, kind)
        self._raise_for_status(response, kind)
        payload = _json_or_none(response)

        if response.status_code != 200:
            self._raise_oauth_error(response.status_code, _error_code(payload), kind)
        if payload is None:
            raise BadTokenResponse(
                "Sage's token endpoint answered with something other than "
                f"JSON (HTTP {response.status_code}, "
                f"{_content_type(response) or 'no content type'})."
            )
        tokens = _parse_tokens(payload, sent_at)
        log.info("token %s succeeded in %.0f ms", kind, _ms(started))
        return tokens

    def _post(self, url: str, form: dict[str, str], kind: str) -> requests.Response:
        body = dict(form)
        body["client_id"] = self._settings.client_id
        body["client_secret"] = self._client_secret
        try:
            return self._session.post(
                url,
                data=body,
                headers=FORM_HEADERS,
                timeout=self._settings.http_timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            log.warning("token %s: no answer within %ss", kind, self._timeout)
            raise SageUnavailable(
                f"Sage's sign-in service did not answer within "
                f"{self._timeout:g} seconds."
            ) from exc
        except requests.RequestException as exc:
            log.warning("token %s: %s", kind, type(exc).__name__)
            raise SageUnavailable(
                f"Sage's sign-in service could not be reached ({type(exc).__name__})."
            ) from exc

    @property
    def _timeout(self) -> float:
        return self._settings.http_timeout

    def _raise_for_status(self, response: requests.Response, kind: str) -> None:
        """Transient failures: 429 and 5xx never end a grant."""
        status = response.status_code
        if status == 429:
            log.warning("token %s: rate limited (429)", kind)
            raise RateLimited()
        if status >= 500:
            log.warning("token %s: Sage answered %d", kind, status)
            raise SageUnavailable(
                f"Sage's sign-in service had a temporary problem (HTTP {status})."
            )

    def _raise_oauth_error(self, status: int, error: str | None, kind: str) -> None:
        log.warning("token %s: HTTP %d, error %s", kind, status, error or "none")
        if error == "invalid_client" or error == "unauthorized_client":
            raise InvalidClient()
        if error == "invalid_grant":
            if kind == "exchange":
                raise CodeExpired()
            raise SignInRequired()
        if error == "invalid_request":
            raise MissingHeaders()
        if error is None:
            raise BadTokenResponse(
                f"Sage's token endpoint refused the request (HTTP {status}) "
                "without an OAuth error."
            )
        raise AuthError(
            f"Sage's token endpoint refused the request ({error}, HTTP {status}).",
            remedy="Try signing in again; if it repeats, run 'sage-desktop doctor'.",
        )


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    """The JSON object of the answer, or None for HTML, garbage or a list."""
    content_type = _content_type(response)
    if content_type and "json" not in content_type:
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _error_code(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return None
    error = payload.get("error")
    if isinstance(error, str) and _ERROR_CODE.match(error):
        return error
    return None


def _number(payload: dict[str, Any], name: str, default: float | None) -> float:
    value = payload.get(name, default)
    if value is None:
        raise BadTokenResponse(f"Sage's token answer lacks {name}.")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadTokenResponse(f"Sage's token answer has a malformed {name}.")
    if value <= 0:
        raise BadTokenResponse(f"Sage's token answer has a non-positive {name}.")
    return float(value)


def _text(payload: dict[str, Any], name: str, *, required: bool) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and not required:
        return str(value)
    if not isinstance(value, str) or (required and not value.strip()):
        what = "lacks" if value is None else "has a malformed"
        raise BadTokenResponse(f"Sage's token answer {what} {name}.")
    return value


def _parse_tokens(payload: dict[str, Any], sent_at: float) -> TokenSet:
    """Validate a token answer (RFC 6749 section 5.1) into a :class:`TokenSet`.

    Expiry times are absolute and counted from when the request was sent,
    so clock time spent on the network shortens, never lengthens, them.
    """
    access = _text(payload, "access_token", required=True)
    refresh = _text(payload, "refresh_token", required=True)
    token_type = payload.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise BadTokenResponse("Sage's token answer is not a bearer token.")
    expires_in = _number(payload, "expires_in", None)
    refresh_in = _number(payload, "refresh_token_expires_in", DEFAULT_REFRESH_LIFETIME)
    return TokenSet(
        access_token=access,
        access_expires_at=sent_at + expires_in,
        refresh_token=refresh,
        refresh_expires_at=sent_at + refresh_in,
        scope=_text(payload, "scope", required=False),
        requested_by_id=_text(payload, "requested_by_id", required=False),
        generation=0,
        obtained_at=sent_at,
    )
