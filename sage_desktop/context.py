"""The application's shared parts, built once and only when first needed.

The command line and the GUI both start from an :class:`AppContext`: it
reads the settings, opens the token vault and the connection registry
lazily, so a command that needs none of them (``--help``) touches neither
the keychain nor the disk.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sage_desktop.config import Settings, load_settings
from sage_desktop.errors import ConfigError

if TYPE_CHECKING:
    from sage_desktop.auth.endpoint import TokenEndpoint
    from sage_desktop.auth.last_sign_in import SignInRecord
    from sage_desktop.connections import ConnectionRegistry
    from sage_desktop.session import RefreshWorker
    from sage_desktop.vault import TokenVault

log = logging.getLogger(__name__)


class AppContext:
    """Settings, vault, registry and sign-in record of one process, created
    on first use.

    Anything passed in is used as is (tests pass an in-memory keyring, a
    registry in a temporary directory or ready-made settings).
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        settings: Settings | None = None,
        settings_path: Path | str | None = None,
        vault: TokenVault | None = None,
        registry: ConnectionRegistry | None = None,
        keyring_backend: Any = None,
        sign_in_record: SignInRecord | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._settings = settings
        self._settings_path = settings_path
        self._vault = vault
        self._registry = registry
        self._keyring_backend = keyring_backend
        self._sign_in_record = sign_in_record
        self._lock = threading.RLock()
        self._worker: RefreshWorker | None = None

    def __repr__(self) -> str:
        return "AppContext()"

    @property
    def settings(self) -> Settings:
        """The settings: defaults, then the file, then the environment."""
        with self._lock:
            if self._settings is None:
                self._settings = load_settings(self._env, self._settings_path)
            return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        with self._lock:
            self._settings = value

    @property
    def vault(self) -> TokenVault:
        """The token vault on the OS keychain (or the backend given)."""
        with self._lock:
            if self._vault is None:
                from sage_desktop.vault import TokenVault

                self._vault = TokenVault(backend=self._keyring_backend)
            return self._vault

    @property
    def registry(self) -> ConnectionRegistry:
        """The connection registry, sharing this context's vault."""
        with self._lock:
            if self._registry is None:
                from sage_desktop.connections import ConnectionRegistry

                self._registry = ConnectionRegistry(vault=self.vault)
            return self._registry

    @property
    def sign_in_record(self) -> SignInRecord:
        """Where how the last sign-in ended is kept (see ``doctor``)."""
        with self._lock:
            if self._sign_in_record is None:
                from sage_desktop.auth.last_sign_in import SignInRecord

                self._sign_in_record = SignInRecord()
            return self._sign_in_record

    def client_secret(self) -> str:
        """The app's client secret: ``SAGE_DESKTOP_CLIENT_SECRET``, else the
        keychain entry saved for the client id.

        Raises :class:`ConfigError` saying how to provide it when neither
        has one (the secret is never read from the settings file).
        """
        settings = self.settings
        if not settings.client_id:
            raise ConfigError(
                "client_id is not set: the app registration from Sage's "
                "developer portal is needed before signing in.",
                remedy=(
                    "Set SAGE_DESKTOP_CLIENT_ID (or client_id in the settings "
                    "file), or try the app with 'sage-desktop --sandbox'."
                ),
            )
        if settings.client_secret:
            return settings.client_secret
        secret = self.vault.load_client_secret(settings.client_id)
        if secret:
            return secret
        raise ConfigError(
            "client_secret is not set for this client id: no "
            "SAGE_DESKTOP_CLIENT_SECRET and nothing saved in the keychain.",
            remedy=(
                "Set SAGE_DESKTOP_CLIENT_SECRET, or enter the secret in the "
                "app's registration settings (it is kept in the keychain)."
            ),
        )

    def token_endpoint(self) -> TokenEndpoint:
        """A :class:`TokenEndpoint` for the current settings and secret."""
        from sage_desktop.auth.endpoint import TokenEndpoint

        return TokenEndpoint(self.settings, self.client_secret())

    @property
    def worker(self) -> RefreshWorker:
        """This process's one refresh worker, started on first use.

        Whoever starts it stops it (``context.worker.stop()``) on the way
        out; a stopped worker is replaced by a new one on the next use.
        """
        with self._lock:
            if self._worker is None or not self._worker.running:
                from sage_desktop.session import RefreshWorker

                self._worker = RefreshWorker(
                    self.settings,
                    self.vault,
                    self.registry,
                    endpoint_factory=self.token_endpoint,
                )
            return self._worker
