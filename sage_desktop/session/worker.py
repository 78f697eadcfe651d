"""RefreshWorker: the one thread in a process that refreshes Sage tokens.

Sage issues a new refresh token on every refresh and rejects (with
``invalid_grant``) any refresh token that was already used or is not the
newest. So when tokens expire, exactly one refresh per grant may be in
flight, across the threads of this process and across processes. Here:

* callers of :meth:`RefreshWorker.token` get the cached access token at once
  while it has more than a safety margin left; otherwise they wait for the
  worker thread, which alone talks to the token endpoint;
* the worker takes the grant's inter-process lock, re-reads the vault, adopts
  tokens another process already refreshed, and otherwise refreshes with the
  newest stored refresh token and saves the result (compare-and-swap on the
  generation) before releasing the lock or waking anyone;
* grants in use are refreshed ahead of expiry, so callers rarely wait.

Limitation: if the process dies (or the network drops) after Sage accepted a
refresh but before the answer was saved, the refresh token in the vault was
already used at Sage. The next attempt sends it once more and Sage answers
``invalid_grant``; the connection then says "sign in again". No client can
avoid this: the new tokens existed only in the lost answer (RFC 6749 s10.4).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

from sage_desktop.errors import (
    ConfigError,
    KeychainError,
    SageDesktopError,
    SageUnavailable,
    SignInRequired,
    VaultConflict,
)
from sage_desktop.session.events import (
    EventCallback,
    EventHub,
    TokenEvent,
    TokenEventKind,
)
from sage_desktop.session.lock import GrantLocks
from sage_desktop.tokens import TokenSet

log = logging.getLogger(__name__)


class TokenRefresher(Protocol):
    """The token endpoint, as far as refreshing goes (``auth.TokenEndpoint``)."""

    def refresh(self, refresh_token: str) -> TokenSet: ...


class VaultLike(Protocol):
    def load(self, grant_id: str) -> TokenSet | None: ...

    def save(
        self,
        grant_id: str,
        tokens: TokenSet,
        *,
        expected_generation: int | None = None,
    ) -> TokenSet: ...

    def delete(self, grant_id: str) -> None: ...


class RegistryLike(Protocol):
    def mark_sign_in_required(self, connection_id: str, flag: bool = True) -> Any: ...


EndpointFactory = Callable[[], TokenRefresher]
E = TypeVar("E", bound=BaseException)

# A token whose lifetime is unknown is assumed to live as long as Sage's.
_SAGE_ACCESS_LIFETIME = 300.0


class WorkerStopped(SageUnavailable):
    """The worker was stopped while a caller waited for a token."""

    explanation = "sage-desktop is shutting down; no token was obtained."
    remedy = "Start the command again."


@dataclass
class _Grant:
    """What the worker knows about one grant; guarded by the condition."""

    id: str
    tokens: TokenSet | None = None
    dead: SignInRequired | None = None
    wanted: bool = False
    refused_token: str | None = None
    retry_pending: bool = False
    failures: int = 0
    next_attempt_at: float = 0.0
    last_error: SageDesktopError | None = None
    outcomes: int = 0
    last_used: float = 0.0
    unsaved: bool = False
    # Wall-clock time until which ``tokens`` are handed out without a
    # look at anything else (0: never).
    fresh_until: float = 0.0


@dataclass(frozen=True)
class _Job:
    grant_id: str
    reason: str  # "wanted", "proactive", "retry", "expiry"
    held: TokenSet | None
    refused_token: str | None
    unsaved: bool


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class RefreshWorker:
    """The single refresh thread of this process, for every connection.

    Args:
        settings: ``config.Settings`` (for the default token endpoint and
            the HTTP timeout).
        vault: the ``TokenVault`` holding each grant (grant id =
            connection id).
        registry: the ``ConnectionRegistry``; a dead grant's connection is
            marked "sign in again" there. May be None.
        endpoint_factory: makes the token endpoint; by default an
            ``auth.TokenEndpoint`` with the client secret from the settings
            or the vault.
        margin: seconds of validity below which a cached access token is not
            handed out; capped at a fifth of the token's lifetime so that
            short-lived tokens still work.
        proactive_at: fraction of the lifetime after which a token in use
            is refreshed ahead of expiry.
        idle_after: seconds without a ``token()`` call after which a
            connection no longer counts as in use.
        backoff_base, backoff_cap: capped exponential backoff (with jitter)
            between refresh attempts that failed transiently.
        locks: the inter-process grant locks (default: a lock dir from
            platformdirs, waiting up to twice the HTTP timeout).
    """

    def __init__(
        self,
        settings: Any,
        vault: VaultLike,
        registry: RegistryLike | None = None,
        endpoint_factory: EndpointFactory | None = None,
        *,
        margin: float = 30.0,
        proactive_at: float = 0.8,
        idle_after: float = 600.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        locks: GrantLocks | None = None,
    ) -> None:
        self._settings = settings
        self._vault = vault
        self._registry = registry
        self._endpoint_factory = endpoint_factory or self._default_endpoint
        self._endpoint: TokenRefresher | None = None
        self.margin = margin
        self.proactive_at = proactive_at
        self.idle_after = idle_after
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        http_timeout = float(getattr(settings, "http_timeout", 15.0) or 15.0)
        self._locks = locks or GrantLocks(timeout=2 * http_timeout + 10)

        self._cond = threading.Condition(threading.Lock())
        self._grants: dict[str, _Grant] = {}
        self._spent: set[str] = set()
        self._stopping = False
        self._events = EventHub()
        self._thread = threading.Thread(
            target=self._run, name="sage-refresh-worker", daemon=True
        )
        self._thread.start()

    # --- public API ---------------------------------------------------

    def token(self, connection_id: str, *, timeout: float = 30.0) -> str:
        """A valid access token for ``connection_id``.

        Returns at once while the cached token has more than the margin
        left. Otherwise waits (up to ``timeout``) for the one refresh in
        flight for the grant. Raises :class:`SignInRequired` for a dead
        grant, :class:`SageUnavailable` while Sage cannot be reached (the
        tokens are kept and the worker keeps trying), or the error that
        stopped the refresh (e.g. ``InvalidClient``, ``KeychainError``).
        """
        with self._cond:
            # The path taken all day long: a fresh token in memory.
            grant = self._grants.get(connection_id)
            now_mono = time.monotonic()
            if grant is not None and time.time() < grant.fresh_until:
                grant.last_used = now_mono
                assert grant.tokens is not None
                return grant.tokens.access_token
        return self._token_slow(connection_id, now_mono + timeout, timeout)

    def _token_slow(self, connection_id: str, deadline: float, timeout: float) -> str:
        if threading.current_thread() is self._thread:
            # An event callback waiting for the worker would wait forever.
            raise RuntimeError("token() must not wait inside a token event callback")
        with self._cond:
            grant = self._grant(connection_id)
            grant.last_used = time.monotonic()
            waited_from: int | None = None
            while True:
                if grant.dead is not None:
                    raise _copy(grant.dead)
                tokens = grant.tokens
                now = time.time()
                if tokens is not None and self._fresh(tokens, grant, now):
                    return tokens.access_token
                if waited_from is not None and grant.outcomes != waited_from:
                    # The attempt this caller waited for has ended.
                    if grant.last_error is not None:
                        return self._fallback(grant, now)
                    waited_from = None
                    continue
                if self._stopping:
                    raise WorkerStopped()

                remaining = deadline - time.monotonic()
                if waited_from is None:
                    waited_from = grant.outcomes
                    retry_in = grant.next_attempt_at - time.monotonic()
                    if grant.last_error is not None and retry_in > remaining:
                        # Backing off past this caller's patience: say why.
                        return self._fallback(grant, now)
                    grant.wanted = True
                    self._cond.notify_all()
                if remaining <= 0:
                    if grant.last_error is not None:
                        raise _copy(grant.last_error)
                    raise SageUnavailable(
                        f"No token was obtained within {timeout:g} seconds; "
                        "Sage may be slow to answer."
                    )
                self._cond.wait(remaining)

    def invalidate(self, connection_id: str, access_token: str) -> None:
        """Sage refused ``access_token`` (HTTP 401).

        If it is still the current token, the next :meth:`token` call waits
        for a refresh (or adopts tokens another process refreshed); if it
        was already replaced, nothing happens and callers get the newer one.
        """
        with self._cond:
            grant = self._grants.get(connection_id)
            if grant is None or grant.tokens is None:
                return
            if grant.tokens.access_token == access_token:
                log.info("Sage refused the current token of %s", connection_id)
                grant.refused_token = access_token
                grant.fresh_until = 0.0
                self._cond.notify_all()

    def reset(self, connection_id: str) -> None:
        """Forget what is known about a grant, e.g. after a new sign-in."""
        with self._cond:
            self._grants.pop(connection_id, None)
            self._cond.notify_all()

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(TokenEvent)`` from the worker thread on changes.

        Returns a function that unsubscribes. Callbacks must be quick and
        must not call :meth:`token` (a GUI hands the event to its own
        thread, e.g. with a Qt signal).
        """
        return self._events.subscribe(callback)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it; waiting callers get an error.

        A refresh in flight is completed and saved first (it is bounded by
        the HTTP timeout), so stopping never loses rotated tokens.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> RefreshWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- caller-side helpers (hold the condition) ---------------------

    def _grant(self, grant_id: str) -> _Grant:
        grant = self._grants.get(grant_id)
        if grant is None:
            grant = self._grants[grant_id] = _Grant(grant_id)
        return grant

    def margin_for(self, tokens: TokenSet) -> float:
        """The safety margin: ``margin``, at most a fifth of the lifetime."""
        return min(self.margin, _lifetime(tokens) / 5)

    def _fresh(self, tokens: TokenSet, grant: _Grant, now: float) -> bool:
        if grant.refused_token == tokens.access_token:
            return False
        return tokens.access_seconds_left(now) > self.margin_for(tokens)

    def _fallback(self, grant: _Grant, now: float) -> str:
        """After a failed attempt: the old token while it lasts, else why."""
        tokens = grant.tokens
        error = grant.last_error
        if (
            error is not None
            and error.transient
            and tokens is not None
            and grant.refused_token != tokens.access_token
            and tokens.access_seconds_left(now) > 1.0
        ):
            return tokens.access_token
        if error is None:
            raise SageUnavailable()
        raise _copy(error)

    # --- the worker thread --------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                job = None if self._stopping else self._next_job()
                while job is None and not self._stopping:
                    self._cond.wait(self._sleep_time())
                    job = None if self._stopping else self._next_job()
                if job is None:
                    self._cond.notify_all()
                    return
            try:
                self._process(job)
            except Exception:
                # Never let one grant's bug kill every connection's refresh.
                log.exception("refresh of %s failed unexpectedly", job.grant_id)
                self._finish_failed(job, SageUnavailable(), transient=True)

    def _next_job(self) -> _Job | None:
        now_mono = time.monotonic()
        now = time.time()
        for grant in self._grants.values():
            reason = self._due(grant, now, now_mono)
            if reason is not None:
                return _Job(
                    grant.id, reason, grant.tokens, grant.refused_token, grant.unsaved
                )
        return None

    def _due(self, grant: _Grant, now: float, now_mono: float) -> str | None:
        if grant.dead is not None:
            return None
        backing_off = grant.last_error is not None and now_mono < grant.next_attempt_at
        tokens = grant.tokens
        if grant.wanted and not backing_off:
            return "wanted"
        if tokens is None:
            return None
        if tokens.refresh_seconds_left(now) <= 0:
            return "expiry"
        if backing_off:
            return None
        if grant.retry_pending and self._in_use(grant, now_mono):
            return "retry"
        if grant.unsaved:
            return "retry"
        if now >= self._proactive_time(tokens) and self._in_use(grant, now_mono):
            return "proactive"
        return None

    def _sleep_time(self) -> float:
        """Seconds until the next proactive refresh, retry or expiry."""
        now_mono = time.monotonic()
        now = time.time()
        wake = 60.0
        for grant in self._grants.values():
            if grant.dead is not None or grant.tokens is None:
                if grant.wanted and grant.last_error is not None:
                    wake = min(wake, grant.next_attempt_at - now_mono)
                continue
            tokens = grant.tokens
            in_use = self._in_use(grant, now_mono)
            wake = min(wake, tokens.refresh_seconds_left(now))
            if grant.last_error is not None and now_mono < grant.next_attempt_at:
                # Backing off: nothing happens before the next attempt.
                if grant.wanted or grant.unsaved or grant.retry_pending or in_use:
                    wake = min(wake, grant.next_attempt_at - now_mono)
            elif in_use:
                wake = min(wake, self._proactive_time(tokens) - now)
        return max(0.01, wake)

    def _in_use(self, grant: _Grant, now_mono: float) -> bool:
        return grant.last_used > 0 and now_mono - grant.last_used < self.idle_after

    def _proactive_time(self, tokens: TokenSet) -> float:
        lifetime = _lifetime(tokens)
        due = tokens.access_expires_at - lifetime * (1 - self.proactive_at)
        # Never later than the point where callers would start waiting.
        return min(due, tokens.access_expires_at - self.margin_for(tokens))

    # --- one refresh, under the grant's inter-process lock ------------

    def _process(self, job: _Job) -> None:
        try:
            if job.held is None and self._adopt_unlocked(job):
                return
            with self._locks.hold(job.grant_id):
                self._refresh_locked(job)
        except SignInRequired as exc:
            self._finish_dead(job, exc)
        except SageDesktopError as exc:
            if exc.transient and not isinstance(exc, SageUnavailable):
                # One kind of transient error for callers, whatever the cause.
                wrapped = SageUnavailable(str(exc), remedy=exc.remedy)
                wrapped.__cause__ = exc
                exc = wrapped
            self._finish_failed(job, exc, transient=exc.transient)

    def _adopt_unlocked(self, job: _Job) -> bool:
        """First use in this process: take valid stored tokens as they are.

        Reading needs no lock (the vault always shows one whole
        generation), so a script started while another process renews the
        grant does not wait for that renewal if the stored token still has
        time left.
        """
        stored = self._vault.load(job.grant_id)
        if stored is None or not self._adoptable(job, stored, time.time()):
            return False
        self._finish_ok(job, stored, adopted=True)
        return True

    def _refresh_locked(self, job: _Job) -> None:
        started = time.monotonic()
        stored = self._vault.load(job.grant_id)
        now = time.time()

        if job.unsaved and job.held is not None:
            stored = self._save_unsaved(job, stored)

        if stored is None:
            self._declare_dead(
                job.grant_id,
                SignInRequired(
                    "This connection has no saved sign-in on this computer."
                ),
                stored=None,
            )

        if self._adoptable(job, stored, now):
            log.info(
                "connection %s: using tokens renewed by another program",
                job.grant_id,
            )
            self._finish_ok(job, stored, adopted=True)
            return

        if stored.refresh_seconds_left(now) <= 1.0:
            # Sage's refresh tokens live 31 days; known ahead, no request.
            self._declare_dead(
                job.grant_id,
                SignInRequired(
                    "This connection's sign-in expired (Sage allows 31 days "
                    "between sign-ins)."
                ),
                stored=stored,
            )
        if _fingerprint(stored.refresh_token) in self._spent:
            # Never send a refresh token twice: Sage would kill the grant.
            raise SageUnavailable(
                "The saved sign-in is older than one already renewed here."
            )

        endpoint = self._get_endpoint()
        try:
            fresh = endpoint.refresh(stored.refresh_token)
        except SignInRequired as exc:
            latest = self._vault.load(job.grant_id)
            if latest is not None and latest.refresh_token != stored.refresh_token:
                # Superseded by a writer that ignored the lock (or a new
                # sign-in): its tokens are the live ones, never delete them.
                log.warning("connection %s was renewed elsewhere", job.grant_id)
                self._finish_ok(job, latest, adopted=True)
                return
            self._declare_dead(job.grant_id, exc, stored=stored)
        # Spent at Sage now: it must never leave this process again.
        self._spent.add(_fingerprint(stored.refresh_token))

        saved = self._save(job.grant_id, fresh, stored)
        log.info(
            "refreshed tokens for connection %s in %.0f ms",
            job.grant_id,
            (time.monotonic() - started) * 1000,
        )
        self._finish_ok(job, saved, adopted=False)

    def _adoptable(self, job: _Job, stored: TokenSet, now: float) -> bool:
        """Use the stored tokens as they are, without a request?

        Yes when they are not the token Sage just refused, have more than
        the margin left and a live refresh token, and (for a refresh ahead
        of expiry) are not themselves due: then another process has
        already refreshed, or this process merely had not loaded them.
        """
        if stored.access_token == job.refused_token:
            return False
        if stored.access_seconds_left(now) <= self.margin_for(stored):
            return False
        if stored.refresh_seconds_left(now) <= 1.0:
            return False
        if job.held is None or job.reason == "wanted":
            return True
        return now < self._proactive_time(stored)

    def _save(self, grant_id: str, fresh: TokenSet, stored: TokenSet) -> TokenSet:
        """Store the rotated tokens before anyone may use or lose them."""
        try:
            return self._vault.save(
                grant_id, fresh, expected_generation=stored.generation
            )
        except VaultConflict:
            # Someone wrote without the lock (a new sign-in): theirs wins.
            log.warning("connection %s changed while refreshing", grant_id)
            newer = self._vault.load(grant_id)
            if newer is not None:
                return newer
            raise
        except KeychainError as exc:
            # Limitation: the old refresh token is spent at Sage; these tokens
            # live only in memory until a later save succeeds.
            log.error("could not save renewed tokens of %s: %s", grant_id, exc)
            with self._cond:
                grant = self._grant(grant_id)
                grant.unsaved = True
            return fresh.with_generation(stored.generation)

    def _save_unsaved(self, job: _Job, stored: TokenSet | None) -> TokenSet | None:
        held = job.held
        assert held is not None
        if stored is not None and stored.generation != held.generation:
            return stored  # replaced meanwhile (e.g. a new sign-in)
        expected = stored.generation if stored is not None else None
        saved = self._vault.save(job.grant_id, held, expected_generation=expected)
        with self._cond:
            self._grant(job.grant_id).unsaved = False
        log.info("saved the renewed tokens of %s after all", job.grant_id)
        return saved

    def _declare_dead(
        self, grant_id: str, error: SignInRequired, *, stored: TokenSet | None
    ) -> NoReturn:
        """The grant is dead: forget its tokens, mark the connection, raise."""
        log.warning("connection %s needs a new sign-in: %s", grant_id, error)
        if stored is not None:
            try:
                self._vault.delete(grant_id)
            except KeychainError as exc:
                log.error("could not delete dead tokens of %s: %s", grant_id, exc)
        if self._registry is not None:
            try:
                self._registry.mark_sign_in_required(grant_id, True)
            except Exception:
                log.exception("could not mark %s as needing sign-in", grant_id)
        raise error

    def _get_endpoint(self) -> TokenRefresher:
        if self._endpoint is None:
            self._endpoint = self._endpoint_factory()
        return self._endpoint

    def _default_endpoint(self) -> TokenRefresher:
        from sage_desktop.auth import TokenEndpoint

        settings = self._settings
        secret = getattr(settings, "client_secret", None)
        if not secret:
            load_secret = getattr(self._vault, "load_client_secret", None)
            if load_secret is not None:
                secret = load_secret(settings.client_id)
        if not secret:
            raise ConfigError(
                "The app's client secret is not set.",
                remedy="Enter the client secret in the app registration "
                "settings, or set SAGE_DESKTOP_CLIENT_SECRET.",
            )
        endpoint: TokenRefresher = TokenEndpoint(settings, secret)
        return endpoint

    # --- outcomes (wake callers, publish events) ----------------------

    def _finish_ok(self, job: _Job, tokens: TokenSet, *, adopted: bool) -> None:
        with self._cond:
            grant = self._grant(job.grant_id)
            recovered = grant.last_error is not None and grant.failures > 0
            grant.tokens = tokens
            grant.fresh_until = tokens.access_expires_at - self.margin_for(tokens)
            grant.wanted = False
            grant.retry_pending = False
            grant.refused_token = None
            grant.failures = 0
            grant.last_error = None
            grant.outcomes += 1
            self._cond.notify_all()
        if job.held is None and adopted:
            return  # a first load is no news
        self._events.publish(
            TokenEvent(
                TokenEventKind.REFRESHED,
                job.grant_id,
                generation=tokens.generation,
                adopted=adopted,
            )
        )
        if recovered:
            self._events.publish(TokenEvent(TokenEventKind.RECOVERED, job.grant_id))

    def _finish_dead(self, job: _Job, error: SignInRequired) -> None:
        with self._cond:
            grant = self._grant(job.grant_id)
            grant.dead = error
            grant.tokens = None
            grant.fresh_until = 0.0
            grant.wanted = False
            grant.retry_pending = False
            grant.last_error = error
            grant.outcomes += 1
            self._cond.notify_all()
        self._events.publish(
            TokenEvent(TokenEventKind.SIGN_IN_REQUIRED, job.grant_id, error=error)
        )

    def _finish_failed(
        self, job: _Job, error: SageDesktopError, *, transient: bool
    ) -> None:
        with self._cond:
            grant = self._grant(job.grant_id)
            grant.failures += 1
            grant.last_error = error
            grant.wanted = False
            grant.outcomes += 1
            # Capped exponential backoff with jitter, for every failure: a
            # wrong client secret must not turn into a request loop either.
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (grant.failures - 1))
            delay *= random.uniform(0.5, 1.0)
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float):
                delay = max(delay, min(float(retry_after), self.backoff_cap))
            grant.next_attempt_at = time.monotonic() + delay
            # Only transient trouble is retried without a caller asking.
            grant.retry_pending = transient and grant.tokens is not None
            failures = grant.failures
            self._cond.notify_all()
        log.warning(
            "could not renew tokens of %s (attempt %d): %s",
            job.grant_id,
            failures,
            error,
        )
        if transient:
            self._events.publish(
                TokenEvent(TokenEventKind.TRANSIENT_TROUBLE, job.grant_id, error=error)
            )


def _copy(error: E) -> E:
    """A copy to raise: many threads raising one object tangle tracebacks."""
    clone = copy.copy(error)
    clone.__cause__ = error.__cause__
    clone.__traceback__ = None
    return clone


def _lifetime(tokens: TokenSet) -> float:
    if tokens.obtained_at > 0 and tokens.access_expires_at > tokens.obtained_at:
        return tokens.access_expires_at - tokens.obtained_at
    return _SAGE_ACCESS_LIFETIME
