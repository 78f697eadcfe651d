"""The authorization request: the URL the browser opens, with state and PKCE.

``state`` is 32 random bytes from :mod:`secrets` (RFC 6749 section 10.12
asks for an unguessable value; 256 bits is well above the 128 the issue
requires). PKCE uses S256 with a 43-character verifier drawn from the
unreserved alphabet (RFC 7636 sections 4.1 and 4.2).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sage_desktop.config import Settings


def new_state() -> str:
    """32 random bytes, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """RFC 7636 section 4.1: 32 random octets, base64url without padding."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def add_query(url: str, params: list[tuple[str, str]]) -> str:
    """Append parameters to ``url``, keeping any query it already has.

    Sage's authorize endpoint is ``...?filter=apiv3.1``; dropping that
    filter sends the user to the old API's consent.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in attempt: its secrets stay in memory and out of ``repr``."""

    settings: Settings = field(repr=False)
    redirect_uri: str
    scope: str
    country: str | None = None
    locale: str | None = None
    state: str = field(default_factory=new_state, repr=False)
    code_verifier: str = field(default_factory=new_code_verifier, repr=False)

    @classmethod
    def create(
        cls,
        settings: Settings,
        redirect_uri: str,
        *,
        scope: str | None = None,
        country: str | None = None,
        locale: str | None = None,
    ) -> AuthorizationRequest:
        """A fresh request; unset choices fall back to the settings."""
        return cls(
            settings=settings,
            redirect_uri=redirect_uri,
            scope=scope or settings.scope,
            country=(country or settings.country or None),
            locale=locale or settings.locale,
        )

    @property
    def code_challenge(self) -> str:
        return code_challenge(self.code_verifier)

    def params(self) -> list[tuple[str, str]]:
        """Sage's authorize parameters, in a stable order."""
        params = [
            ("client_id", self.settings.client_id),
            ("response_type", "code"),
            ("redirect_uri", self.redirect_uri),
            ("scope", self.scope),
            ("state", self.state),
        ]
        if self.country:
            params.append(("country", self.country.lower()))
        if self.locale:
            params.append(("locale", self.locale))
        params.append(("code_challenge", self.code_challenge))
        params.append(("code_challenge_method", "S256"))
        return params

    @property
    def url(self) -> str:
        """The URL to open in the browser."""
        return add_query(self.settings.auth_url, self.params())
