"""The whole sign-in, for the command line and the GUI alike (no Qt here).

DESIGN.md, "Sign-in": bind the first free registered callback port, open
the browser on the authorization URL, wait for the genuine callback,
exchange the code at once (it lives 60 seconds), ask Sage who signed in
(``GET /user``) to label the connection, then save the tokens under it. The same Sage
user signing in again keeps their connection (its id, its chosen business)
and gets new tokens, rather than a twin.

Progress is reported through a callback, and :meth:`SignInFlow.cancel`
may be called from any thread (the GUI's Cancel button).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from sage_desktop.auth.browser import Opener, open_in_background, system_browser
from sage_desktop.auth.endpoint import TokenEndpoint
from sage_desktop.auth.last_sign_in import LastSignIn, SignInRecord
from sage_desktop.auth.receiver import (
    DEFAULT_TIMEOUT,
    CallbackResult,
    LoopbackReceiver,
)
from sage_desktop.auth.request import AuthorizationRequest, new_state
from sage_desktop.config import Settings
from sage_desktop.errors import SageDesktopError, SignInCancelled
from sage_desktop.models import Business, UserInfo
from sage_desktop.tokens import TokenSet

if TYPE_CHECKING:
    from sage_desktop.connections import Connection, ConnectionRegistry
    from sage_desktop.context import AppContext
    from sage_desktop.vault import TokenVault

__all__ = [
    "AuthorizationRequest",
    "LoopbackReceiver",
    "SignInFlow",
    "SignInProgress",
    "SignInResult",
]

log = logging.getLogger(__name__)


class ApiClient(Protocol):
    """What the flow needs from :class:`~sage_desktop.session.SageClient`."""

    def user(self) -> UserInfo: ...

    def businesses(self) -> list[Business]: ...

    def close(self) -> None: ...


ClientFactory = Callable[[Callable[[], str]], ApiClient]


@dataclass(frozen=True)
class SignInProgress:
    """One step of the sign-in, for a status line.

    ``stage`` is one of ``listening``, ``browser``, ``browser_failed``,
    ``waiting``, ``exchanging``, ``saving``, ``labelling``, ``businesses``,
    ``done``. ``url`` is the authorization URL (to copy into a browser
    elsewhere) on the ``listening`` and ``browser_failed`` steps.
    """

    stage: str
    message: str
    url: str | None = None


@dataclass(frozen=True)
class SignInResult:
    """A finished sign-in. ``created`` is False when an existing connection
    of the same Sage user was updated. ``timings`` holds seconds spent from
    the callback's arrival: ``exchange``, ``user``, ``save`` (tokens in the
    vault and the connection file) and ``total``."""

    connection: Connection
    user: UserInfo
    created: bool
    businesses: list[Business] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    businesses_error: SageDesktopError | None = None


class SignInFlow:
    """Sign in through the browser and register (or update) a connection.

    Args:
        settings: endpoints, registration and callback URLs.
        endpoint: the token endpoint client (it holds the client secret).
        vault: where the tokens go, under the connection id.
        registry: the connections.
        opener: shows the URL to the user; default the system browser via
            :mod:`webbrowser`. Tests inject a player of the sign-in pages.
        on_progress: called with :class:`SignInProgress` from the thread
            running :meth:`run` (and from the browser thread on failure).
        client_factory: builds the API client from a token provider;
            default :class:`~sage_desktop.session.SageClient`.
        record: where how each sign-in ended is kept for ``doctor``;
            default ``last-sign-in.json`` in the user state directory.
    """

    def __init__(
        self,
        settings: Settings,
        endpoint: TokenEndpoint,
        vault: TokenVault,
        registry: ConnectionRegistry,
        *,
        opener: Opener = system_browser,
        on_progress: Callable[[SignInProgress], None] | None = None,
        client_factory: ClientFactory | None = None,
        record: SignInRecord | None = None,
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._vault = vault
        self._registry = registry
        self._opener = opener
        self._on_progress = on_progress
        self._client_factory = client_factory or self._default_client
        self._record = record or SignInRecord()
        self._receiver: LoopbackReceiver | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self.authorize_url: str | None = None

    @classmethod
    def from_context(cls, context: AppContext, **kwargs: object) -> SignInFlow:
        """A flow on the context's settings, secret, vault, registry and
        sign-in record."""
        kwargs.setdefault("record", context.sign_in_record)
        return cls(
            context.settings,
            context.token_endpoint(),
            context.vault,
            context.registry,
            **kwargs,  # type: ignore[arg-type]
        )

    def cancel(self) -> None:
        """Stop waiting for the browser; :meth:`run` raises SignInCancelled.

        Once the callback has arrived the flow finishes (a second or so):
        the code is single-use, so abandoning it would only waste it.
        """
        self._cancelled.set()
        with self._lock:
            receiver = self._receiver
        if receiver is not None:
            receiver.cancel()

    def run(
        self,
        *,
        country: str | None = None,
        scope: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        open_browser: bool = True,
        fetch_businesses: bool = False,
    ) -> SignInResult:
        """Run the sign-in to the end; raises the mapped error on failure.

        How it ended is recorded for ``sage-desktop doctor``, because the
        code's expiry or a refused region leave nothing to probe later. A
        cancelled sign-in is not an outcome and leaves the record alone.
        """
        region = (country or self._settings.country or "").upper() or None
        try:
            callback, request = self._wait_for_callback(
                country=country, scope=scope, timeout=timeout, open_browser=open_browser
            )
            result = self._complete(callback, request, fetch_businesses)
        except SignInCancelled:
            raise
        except SageDesktopError as exc:
            self._record.remember(LastSignIn.failure(exc, region=region))
            raise
        self._record.remember(LastSignIn.success(region=region))
        return result

    # --- steps --------------------------------------------------------------

    def _wait_for_callback(
        self,
        *,
        country: str | None,
        scope: str | None,
        timeout: float,
        open_browser: bool,
    ) -> tuple[CallbackResult, AuthorizationRequest]:
        state = new_state()
        receiver = LoopbackReceiver(self._settings.redirect_uris, state)
        with self._lock:
            self._receiver = receiver
        if self._cancelled.is_set():
            receiver.cancel()
        try:
            redirect_uri = receiver.start()
            request = AuthorizationRequest(
                settings=self._settings,
                redirect_uri=redirect_uri,
                scope=scope or self._settings.scope,
                country=country or self._settings.country,
                locale=self._settings.locale,
                state=state,
            )
            self.authorize_url = request.url
            self._report(
                "listening",
                f"Waiting for Sage's answer on {redirect_uri}.",
                url=request.url,
            )
            if open_browser:
                open_in_background(request.url, self._opener, self._browser_failed)
                self._report("browser", "Opened the browser on Sage's sign-in page.")
            self._report("waiting", "Waiting for you to sign in to Sage...")
            callback = receiver.wait(timeout)
        finally:
            receiver.close()
            with self._lock:
                self._receiver = None
        return callback, request

    def _complete(
        self,
        callback: CallbackResult,
        request: AuthorizationRequest,
        fetch_businesses: bool,
    ) -> SignInResult:
        arrived = time.perf_counter()
        timings: dict[str, float] = {}

        self._report("exchanging", "Signed in; fetching the tokens from Sage.")
        started = time.perf_counter()
        tokens = self._endpoint.exchange_code(
            callback.code, callback.redirect_uri, request.code_verifier
        )
        timings["exchange"] = time.perf_counter() - started

        # Ask Sage who signed in before saving, so the tokens are written
        # once, under the right connection id. Reading /user does not use
        # the refresh token, so nothing rotates meanwhile (DESIGN.md: a
        # rotated token must be saved before anything else).
        self._report("labelling", "Asking Sage who signed in.")
        started = time.perf_counter()
        client = self._client_factory(lambda: tokens.access_token)
        try:
            try:
                user = client.user()
            except BaseException:
                self._abandon(tokens)
                raise
            timings["user"] = time.perf_counter() - started

            self._report("saving", "Saving the tokens in the keychain.")
            started = time.perf_counter()
            connection, created = self._register(tokens, user, callback, request)
            timings["save"] = time.perf_counter() - started
            timings["total"] = time.perf_counter() - arrived

            businesses = None
            businesses_error = None
            if fetch_businesses:
                # The sign-in already succeeded; a failure here is reported
                # with the result rather than undoing it.
                self._report("businesses", "Listing the businesses you can reach.")
                try:
                    businesses = client.businesses()
                except SageDesktopError as exc:
                    log.warning("could not list the businesses: %s", exc.title)
                    businesses_error = exc
        finally:
            client.close()

        verb = "Added" if created else "Updated"
        self._report("done", f"{verb} the connection for {user.email}.")
        return SignInResult(
            connection, user, created, businesses, timings, businesses_error
        )

    def _register(
        self,
        tokens: TokenSet,
        user: UserInfo,
        callback: CallbackResult,
        request: AuthorizationRequest,
    ) -> tuple[Connection, bool]:
        """Save the tokens and the connection; the same user keeps theirs."""
        from sage_desktop.connections import Connection

        now = time.time()
        region = (callback.country or request.country or "").upper()
        scope = tokens.scope or request.scope
        existing = self._registry.find_by_user(user.id) if user.id else None
        if existing is not None:
            # The same Sage user again: keep the connection (and its chosen
            # business), replace its tokens.
            self._vault.save(existing.id, tokens)
            connection = replace(
                existing,
                user_name=user.displayed_as or existing.user_name,
                email=user.email or existing.email,
                region=region or existing.region,
                scope=scope,
                last_used_at=now,
                needs_sign_in=False,
            )
            self._registry.save(connection)
            log.info("signed in again: updated connection %s", existing.id)
            return connection, False

        connection = Connection(
            id=uuid.uuid4().hex,
            user_id=user.id,
            user_name=user.displayed_as,
            email=user.email,
            region=region,
            scope=scope,
            business_id=None,
            business_name=None,
            created_at=now,
            last_used_at=now,
        )
        self._vault.save(connection.id, tokens)
        self._registry.save(connection)
        log.info("signed in: added connection %s", connection.id)
        return connection, True

    def _abandon(self, tokens: TokenSet) -> None:
        """/user failed: revoke the unlabelled grant rather than keep it."""
        log.warning("could not learn who signed in; revoking the new grant")
        with contextlib.suppress(SageDesktopError):
            self._endpoint.revoke(tokens.refresh_token)

    def _browser_failed(self) -> None:
        self._report(
            "browser_failed",
            "Could not open a browser; open this address yourself.",
            url=self.authorize_url,
        )

    def _report(self, stage: str, message: str, url: str | None = None) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(SignInProgress(stage, message, url))
        except Exception:
            log.exception("a sign-in progress callback failed")

    def _default_client(self, token_provider: Callable[[], str]) -> ApiClient:
        from sage_desktop.session import SageClient

        return SageClient(
            self._settings.api_url,
            token_provider,
            timeout=self._settings.http_timeout,
        )
