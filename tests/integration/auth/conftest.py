"""Sign-in against the sandbox over real HTTP, with an in-memory keychain.

The sandbox knows only its demo registration, whose callback URLs are
fixed ports (8765-8767 on localhost, then on 127.0.0.1), so these tests run
one at a time, as the suite does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from signin_helpers import Browser, MakeFlow

from sage_desktop.auth.endpoint import TokenEndpoint
from sage_desktop.auth.flow import SignInFlow, SignInProgress
from sage_desktop.config import Settings, load_settings
from sage_desktop.connections import ConnectionRegistry
from sage_desktop.sandbox import DEMO, Sandbox
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def settings(sandbox: Sandbox, tmp_path: Path) -> Settings:
    return load_settings(env=sandbox.env(), path=tmp_path / "settings.json")


@pytest.fixture
def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def vault(keyring_backend: MemoryKeyring, tmp_path: Path) -> TokenVault:
    return TokenVault(backend=keyring_backend, lock_dir=tmp_path / "locks")


@pytest.fixture
def registry(vault: TokenVault, tmp_path: Path) -> ConnectionRegistry:
    return ConnectionRegistry(path=tmp_path / "connections.json", vault=vault)


@pytest.fixture
def endpoint(settings: Settings) -> Iterator[TokenEndpoint]:
    ep = TokenEndpoint(settings, DEMO.client_secret)
    yield ep
    ep.close()


@pytest.fixture
def make_flow(
    settings: Settings,
    endpoint: TokenEndpoint,
    vault: TokenVault,
    registry: ConnectionRegistry,
) -> MakeFlow:
    def make(
        browser: Callable[[str], object] | None = None,
        progress: list[SignInProgress] | None = None,
        **overrides: object,
    ) -> SignInFlow:
        return SignInFlow(
            settings.with_(**overrides) if overrides else settings,
            endpoint,
            vault,
            registry,
            opener=browser or Browser(email="sole.trader@sandbox.example"),
            on_progress=None if progress is None else progress.append,
        )

    return make
