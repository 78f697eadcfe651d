"""What the windows ask of the layers below, as blocking calls.

Every method here may touch the network or the keychain, so the windows
call them only through :func:`sage_desktop.ui.workers.run_task`. This
module imports no Qt, and imports the session, auth and vault layers only
when first used, so the window shows before ``requests`` or ``keyring``
are loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sage_desktop.auth.flow import SignInFlow, SignInProgress
    from sage_desktop.config import Settings
    from sage_desktop.connections import Connection
    from sage_desktop.context import AppContext
    from sage_desktop.errors import SageDesktopError
    from sage_desktop.models import Business
    from sage_desktop.session import RefreshWorker, TokenEvent

log = logging.getLogger(__name__)

#: Sage's maximum page size on list endpoints.
ITEMS_PER_PAGE = 200

Opener = Callable[[str], object]
if TYPE_CHECKING:
    BusinessBatch = tuple[list[Business], int, int | None]


@dataclass(frozen=True)
class TokenHealth:
    """The life left in a connection's tokens: times only, never a token."""

    access_expires_at: float
    access_lifetime: float
    refresh_expires_at: float
    obtained_at: float
    generation: int

    def access_left(self, now: float | None = None) -> float:
        return self.access_expires_at - (time.time() if now is None else now)

    def refresh_days_left(self, now: float | None = None) -> float:
        left = self.refresh_expires_at - (time.time() if now is None else now)
        return left / 86400


class Services:
    """The app's context plus the one refresh worker, created on demand.

    Args:
        context: settings, vault and registry (tests inject an in-memory
            keyring and temporary paths); None makes the default one when
            first needed.
        opener: shows the sign-in URL; None means the system browser.
        sign_in_timeout: seconds to wait for the browser to come back.
        settings_path: where the registration dialog saves the settings.
        worker_options: keyword arguments for ``RefreshWorker``.
    """

    def __init__(
        self,
        context: AppContext | None = None,
        *,
        opener: Opener | None = None,
        sign_in_timeout: float = 300.0,
        settings_path: Path | None = None,
        worker_options: dict[str, Any] | None = None,
        sandbox: bool = False,
    ) -> None:
        self._context = context
        self.opener = opener
        self.sign_in_timeout = sign_in_timeout
        self.settings_path = settings_path
        self.sandbox = sandbox
        self._worker_options = dict(worker_options or {})
        self._worker: RefreshWorker | None = None
        self._subscribers: list[Callable[[TokenEvent], None]] = []
        self._lock = threading.Lock()

    @property
    def context(self) -> AppContext:
        """The app context, made on first use (after the window shows)."""
        if self._context is None:
            from sage_desktop.context import AppContext

            self._context = AppContext()
        return self._context

    @context.setter
    def context(self, value: AppContext) -> None:
        self._context = value

    # --- the refresh worker ---------------------------------------------

    def worker(self) -> RefreshWorker:
        """The process's single refresh worker (started on first use)."""
        with self._lock:
            if self._worker is None:
                from sage_desktop.session import RefreshWorker

                context = self.context
                worker = RefreshWorker(
                    context.settings,
                    context.vault,
                    context.registry,
                    **self._worker_options,
                )
                for callback in self._subscribers:
                    worker.subscribe(callback)
                self._worker = worker
            return self._worker

    def subscribe(self, callback: Callable[[TokenEvent], None]) -> None:
        """Receive every refresh event, also from a worker started later."""
        with self._lock:
            self._subscribers.append(callback)
            if self._worker is not None:
                self._worker.subscribe(callback)

    def shutdown(self) -> None:
        """Stop the refresh worker (it saves a refresh in flight first)."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._subscribers.clear()
        if worker is not None:
            worker.stop(timeout=30)

    def _restart_worker(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=30)

    # --- settings ---------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def needs_registration(self) -> bool:
        """True when no client id is configured (the first run)."""
        return not self.context.settings.client_id

    def has_client_secret(self) -> bool:
        settings = self.context.settings
        if settings.client_secret:
            return True
        if not settings.client_id:
            return False
        return bool(self.context.vault.load_client_secret(settings.client_id))

    def save_registration(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: tuple[str, ...],
        country: str | None,
        scope: str,
    ) -> Settings:
        """Validate and save the app registration; the secret goes to the
        keychain only, never to the settings file."""
        new = self.context.settings.with_(
            client_id=client_id,
            redirect_uris=redirect_uris,
            country=country,
            scope=scope,
        )
        if client_secret:
            self.context.vault.save_client_secret(new.client_id, client_secret)
        new.save(self.settings_path)
        self.context.settings = new
        self._restart_worker()
        log.info("saved the app registration for client %s", new.client_id[:8])
        return new

    # --- connections -------------------------------------------------------

    def connections(self) -> list[Connection]:
        return self.context.registry.list()

    def token_health(self, connection_id: str) -> TokenHealth | None:
        """Expiry times of the stored tokens (a keychain read)."""
        tokens = self.context.vault.load(connection_id)
        if tokens is None:
            return None
        return TokenHealth(
            access_expires_at=tokens.access_expires_at,
            access_lifetime=tokens.access_lifetime,
            refresh_expires_at=tokens.refresh_expires_at,
            obtained_at=tokens.obtained_at,
            generation=tokens.generation,
        )

    def refresh_if_needed(self, connection_id: str) -> TokenHealth | None:
        """Ask the worker for a token (it refreshes when due), then report
        the stored health. Asking also marks the grant in use, so the
        worker keeps it fresh ahead of expiry."""
        self.worker().token(connection_id)
        return self.token_health(connection_id)

    def access_token(self, connection_id: str) -> str:
        """A valid access token (for Copy access token)."""
        return self.worker().token(connection_id)

    def choose_business(self, connection_id: str, business: Business) -> Connection:
        """Remember the chosen business for the connection."""
        registry = self.context.registry
        connection = replace(
            registry.get(connection_id),
            business_id=business.id,
            business_name=business.name,
            last_used_at=time.time(),
        )
        registry.save(connection)
        return connection

    def disconnect(self, connection_id: str) -> SageDesktopError | None:
        """Revoke the grant at Sage, then forget it (tokens and entry).

        The connection is forgotten even when Sage cannot be told; the
        returned error then says so, so the user can revoke it in Sage.
        """
        from sage_desktop.errors import SageDesktopError

        problem: SageDesktopError | None = None
        tokens = self.context.vault.load(connection_id)
        if tokens is not None:
            try:
                endpoint = self.context.token_endpoint()
                endpoint.revoke(tokens.refresh_token)
            except SageDesktopError as exc:
                log.warning("could not revoke at Sage: %s", exc.title)
                problem = exc
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.reset(connection_id)
        self.context.registry.remove(connection_id)
        log.info("disconnected connection %s", connection_id)
        return problem

    # --- sign-in -----------------------------------------------------------

    def sign_in_flow(self, on_progress: Callable[[SignInProgress], None]) -> SignInFlow:
        """A sign-in flow on the current registration (keychain read)."""
        from sage_desktop.auth.flow import SignInFlow

        kwargs: dict[str, Any] = {"on_progress": on_progress}
        if self.opener is not None:
            kwargs["opener"] = self.opener
        return SignInFlow.from_context(self.context, **kwargs)

    def after_sign_in(self, connection_id: str) -> None:
        """A new sign-in replaced the grant: drop what the worker knew."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.reset(connection_id)

    # --- businesses --------------------------------------------------------

    def load_businesses(
        self,
        connection_id: str,
        report: Callable[[BusinessBatch], None],
        cancelled: threading.Event,
    ) -> int:
        """Fetch every business, reporting each page as it arrives.

        The first page comes alone (it tells ``$total``), so the first 200
        businesses are on screen within one round trip; the rest arrive
        several pages at once (SageClient's paging). Returns how many were
        loaded.
        """
        from sage_desktop.session import SageClient

        loaded = 0

        def page(batch: list[Business], count: int, total: int | None) -> None:
            nonlocal loaded
            if cancelled.is_set():
                raise _LoadCancelled
            loaded = count
            report((batch, count, total))

        client = SageClient.for_connection(
            self.worker(),
            connection_id,
            self.settings.api_url,
            timeout=self.settings.http_timeout,
        )
        try:
            client.businesses(on_page=page)
        except _LoadCancelled:
            log.info("stopped loading businesses for %s", connection_id)
        finally:
            client.close()
        return loaded


class _LoadCancelled(Exception):
    """Raised from a page callback to stop loading businesses."""
