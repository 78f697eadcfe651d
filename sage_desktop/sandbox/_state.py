"""Sage's side of OAuth and the API, as data: codes, grants, tokens.

The HTTP layer (``_server``) turns requests into calls on :class:`SageState`
and its answers back into Sage-shaped responses. Every method takes the one
lock, so concurrent refreshes of one grant are decided in a single order:
exactly one wins, the rest get ``invalid_grant``, as on Sage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sage_desktop.sandbox._demo import DEMO, DemoUser, build_catalogue

log = logging.getLogger(__name__)

FAULT_KINDS = ("500", "502_html", "hang", "malformed_json", "429", "reset")
FAULT_TARGETS = ("token", "api")
COUNTER_NAMES = (
    "authorize_calls",
    "sign_ins",
    "code_exchanges",
    "code_exchanges_rejected",
    "refreshes_accepted",
    "refreshes_rejected",
    "max_refreshes_in_flight",
    "token_requests",
    "api_requests",
    "revocations",
    "too_many_requests",
    "faults_served",
)


@dataclass
class SandboxConfig:
    """Knobs of the sandbox. Mutable at run time: new values apply to the
    tokens and requests that come after the change."""

    host: str = "127.0.0.1"
    port: int = 0
    access_ttl: float = 300.0
    refresh_ttl: float = 2678400.0
    code_ttl: float = 60.0
    token_latency: float = 0.0
    api_latency: float = 0.0
    max_concurrent: int = 150
    token_size: int = 2048
    # Seconds a connection may sit idle or half-sent before it is closed,
    # so slow or stuck clients cannot hold the server's threads.
    socket_timeout: float = 15.0

    # The knobs another process may change over the control plane.
    LIVE_FIELDS = (
        "access_ttl",
        "refresh_ttl",
        "code_ttl",
        "token_latency",
        "api_latency",
        "max_concurrent",
        "token_size",
        "socket_timeout",
    )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (live fields only); ValueError on bad input."""
        types = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in self.LIVE_FIELDS:
                raise ValueError(f"unknown or fixed setting: {name}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            if types[name] in (int, "int"):
                value = int(value)
            setattr(self, name, type(getattr(self, name))(value))


class OAuthError(Exception):
    """An OAuth error answer: RFC 6749 section 5.2 ``error`` + description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def random_token(length: int) -> str:
    """A URL-safe random string of exactly ``length`` characters."""
    length = max(16, length)
    return secrets.token_urlsafe(length)[:length]


def s256(verifier: str) -> str:
    """RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class AuthorizeSession:
    """One pass through the authorize pages (region, sign-in, consent)."""

    id: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    country: str | None
    code_challenge: str | None
    expires_at: float
    email: str | None = None


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    email: str
    scope: str
    code_challenge: str | None
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class Grant:
    """What one consent created: the chain of rotating refresh tokens."""

    id: str
    email: str
    client_id: str
    scope: str
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False
    # Every refresh token this grant ever had (for revoke and diagnostics).
    history: set[str] = field(default_factory=set)


@dataclass
class AccessToken:
    grant_id: str
    email: str
    expires_at: float


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    return build_catalogue()


class SageState:
    """The sandbox's memory of users, businesses, codes, grants and tokens."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        catalogue, memberships = _catalogue()
        self.businesses = catalogue
        self.memberships = {k: list(v) for k, v in memberships.items()}
        self.sessions: dict[str, AuthorizeSession] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_index: dict[str, str] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.faults: dict[str, deque[str]] = {t: deque() for t in FAULT_TARGETS}
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.refreshes_in_flight = 0
        self.requests_in_flight = 0

    # --- counters -------------------------------------------------------

    def count(self, name: str, step: int = 1) -> None:
        with self.lock:
            self.counters[name] += step

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counters)

    def reset_counters(self) -> None:
        with self.lock:
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)

    def refresh_started(self) -> None:
        with self.lock:
            self.refreshes_in_flight += 1
            if self.refreshes_in_flight > self.counters["max_refreshes_in_flight"]:
                self.counters["max_refreshes_in_flight"] = self.refreshes_in_flight

    def refresh_finished(self) -> None:
        with self.lock:
            self.refreshes_in_flight -= 1

    def enter_request(self) -> bool:
        """Admit a request unless ``max_concurrent`` are already in flight."""
        with self.lock:
            if self.requests_in_flight >= self.config.max_concurrent:
                self.counters["too_many_requests"] += 1
                return False
            self.requests_in_flight += 1
            return True

    def leave_request(self) -> None:
        with self.lock:
            self.requests_in_flight -= 1

    # --- faults ---------------------------------------------------------

    def add_faults(self, target: str, kinds: list[str]) -> None:
        if target not in FAULT_TARGETS:
            raise ValueError(f"unknown fault target: {target!r}")
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault: {kind!r}")
        with self.lock:
            self.faults[target].extend(kinds)

    def clear_faults(self) -> None:
        with self.lock:
            for queue in self.faults.values():
                queue.clear()

    def next_fault(self, target: str) -> str | None:
        with self.lock:
            queue = self.faults[target]
            if not queue:
                return None
            self.counters["faults_served"] += 1
            return queue.popleft()

    # --- users and businesses -------------------------------------------

    def user(self, email: str) -> DemoUser:
        return DEMO.user(email)

    def business_ids(self, email: str) -> list[str]:
        with self.lock:
            return list(self.memberships.get(DEMO.user(email).email, ()))

    def grant_business(self, email: str, business_id: str) -> None:
        user = DEMO.user(email)
        if business_id not in self.businesses:
            raise KeyError(business_id)
        with self.lock:
            ids = self.memberships[user.email]
            if business_id not in ids:
                ids.append(business_id)

    def revoke_business(self, email: str, business_id: str) -> None:
        user = DEMO.user(email)
        with self.lock:
            ids = self.memberships[user.email]
            if business_id in ids:
                ids.remove(business_id)

    # --- authorize --------------------------------------------------------

    def open_session(self, **params: Any) -> AuthorizeSession:
        session = AuthorizeSession(
            id=secrets.token_urlsafe(24),
            expires_at=time.monotonic() + 900.0,
            **params,
        )
        with self.lock:
            now = time.monotonic()
            for key in [k for k, s in self.sessions.items() if s.expires_at < now]:
                del self.sessions[key]
            self.sessions[session.id] = session
        return session

    def find_session(self, session_id: str) -> AuthorizeSession | None:
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None or session.expires_at < time.monotonic():
                return None
            return session

    def close_session(self, session_id: str) -> None:
        with self.lock:
            self.sessions.pop(session_id, None)

    def issue_code(self, session: AuthorizeSession, region: str) -> str:
        """A code as Sage writes it: ``<REGION>/<random>``."""
        assert session.email is not None
        code = f"{region}/{random_token(40)}"
        with self.lock:
            self.codes[code] = AuthorizationCode(
                client_id=session.client_id,
                redirect_uri=session.redirect_uri,
                email=session.email,
                scope=session.scope,
                code_challenge=session.code_challenge,
                expires_at=time.monotonic() + self.config.code_ttl,
            )
            self.sessions.pop(session.id, None)
        return code

    # --- token endpoint ---------------------------------------------------

    def exchange_code(
        self,
        client_id: str,
        code: str,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        """RFC 6749 section 4.1.3 with RFC 7636 section 4.6 (PKCE)."""
        with self.lock:
            record = self.codes.get(code)
            if record is None or record.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "Invalid authorization code")
            if record.used:
                # RFC 6749 section 4.1.2: a code used twice revokes what it
                # issued, since someone else may hold it.
                if record.grant_id and record.grant_id in self.grants:
                    self.grants[record.grant_id].revoked = True
                raise OAuthError(
                    400, "invalid_grant", "Authorization code already used"
                )
            if record.expires_at < time.monotonic():
                del self.codes[code]
                raise OAuthError(400, "invalid_grant", "Authorization code expired")
            if redirect_uri != record.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri mismatch")
            if record.code_challenge is not None:
                if not code_verifier or not _valid_verifier(code_verifier):
                    raise OAuthError(400, "invalid_grant", "Invalid code_verifier")
                if not secrets.compare_digest(
                    s256(code_verifier), record.code_challenge
                ):
                    raise OAuthError(400, "invalid_grant", "Invalid code_verifier")
            record.used = True
            grant = self._new_grant(record.email, client_id, record.scope)
            record.grant_id = grant.id
            self.counters["code_exchanges"] += 1
            return self._token_response(grant)

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        """Rotate: only the grant's newest refresh token is accepted.

        A reused or superseded token is simply refused; as on Sage the
        grant stays alive with its newest token.
        """
        with self.lock:
            grant_id = self.refresh_index.get(refresh_token)
            grant = self.grants.get(grant_id) if grant_id else None
            problem = None
            if grant is None or grant.client_id != client_id:
                problem = "Invalid refresh token"
            elif grant.revoked:
                problem = "Refresh token revoked"
            elif not secrets.compare_digest(grant.refresh_token, refresh_token):
                problem = "Refresh token already used"
            elif grant.refresh_expires_at < time.monotonic():
                problem = "Refresh token expired"
            if problem is not None or grant is None:
                self.counters["refreshes_rejected"] += 1
                raise OAuthError(400, "invalid_grant", problem or "invalid")
            self._rotate(grant)
            self.counters["refreshes_accepted"] += 1
            return self._token_response(grant)

    def revoke_token(self, client_id: str, token: str) -> bool:
        """RFC 7009: revoke the grant behind a current token; unknown or
        superseded tokens are ignored (the answer is the same)."""
        with self.lock:
            grant: Grant | None = None
            grant_id = self.refresh_index.get(token)
            if grant_id is not None:
                candidate = self.grants.get(grant_id)
                if candidate is not None and candidate.refresh_token == token:
                    grant = candidate
            elif token in self.access_tokens:
                grant = self.grants.get(self.access_tokens[token].grant_id)
            if grant is None or grant.client_id != client_id or grant.revoked:
                return False
            grant.revoked = True
            self.counters["revocations"] += 1
            return True

    def revoke_grants(self, email: str) -> int:
        user = DEMO.user(email)
        with self.lock:
            hit = 0
            for grant in self.grants.values():
                if grant.email == user.email and not grant.revoked:
                    grant.revoked = True
                    hit += 1
            return hit

    def issue_tokens(self, email: str, scope: str, client_id: str) -> dict[str, Any]:
        user = DEMO.user(email)
        with self.lock:
            grant = self._new_grant(user.email, client_id, scope)
            return self._token_response(grant)

    def _new_grant(self, email: str, client_id: str, scope: str) -> Grant:
        grant = Grant(
            id=secrets.token_hex(16),
            email=email,
            client_id=client_id,
            scope=scope,
            refresh_token="",
            refresh_expires_at=0.0,
        )
        self.grants[grant.id] = grant
        self._rotate(grant)
        return grant

    def _rotate(self, grant: Grant) -> None:
        token = random_token(self.config.token_size)
        grant.refresh_token = token
        grant.refresh_expires_at = time.monotonic() + self.config.refresh_ttl
        grant.history.add(token)
        self.refresh_index[token] = grant.id

    def _token_response(self, grant: Grant) -> dict[str, Any]:
        access = random_token(self.config.token_size)
        self.access_tokens[access] = AccessToken(
            grant.id, grant.email, time.monotonic() + self.config.access_ttl
        )
        self._forget_expired_access_tokens()
        return {
            "access_token": access,
            "scope": grant.scope,
            "token_type": "bearer",
            "expires_in": round(self.config.access_ttl),
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_in": round(self.config.refresh_ttl),
            "requested_by_id": DEMO.user(grant.email).id,
        }

    def _forget_expired_access_tokens(self) -> None:
        if len(self.access_tokens) < 5000:
            return
        now = time.monotonic()
        for key in [k for k, t in self.access_tokens.items() if t.expires_at < now]:
            del self.access_tokens[key]

    # --- API --------------------------------------------------------------

    def authenticate(self, access_token: str) -> str | None:
        """The e-mail of the user behind a live access token, else None."""
        with self.lock:
            record = self.access_tokens.get(access_token)
            if record is None or record.expires_at < time.monotonic():
                return None
            grant = self.grants.get(record.grant_id)
            if grant is None or grant.revoked:
                return None
            return record.email


_VERIFIER_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def _valid_verifier(verifier: str) -> bool:
    """RFC 7636 section 4.1: 43 to 128 unreserved characters."""
    return 43 <= len(verifier) <= 128 and set(verifier) <= _VERIFIER_CHARS
