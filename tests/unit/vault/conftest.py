from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from vault_backends import BACKENDS, make_backend

from sage_desktop.vault import TokenVault


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> KeyringBackend:
    return make_backend(request.param)


@pytest.fixture
def service() -> str:
    """A service name of its own, so tests on the real keychain never meet."""
    return f"sage-desktop-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def vault(backend: KeyringBackend, service: str, tmp_path: Path) -> TokenVault:
    return TokenVault(backend, service=service, timeout=10.0, lock_dir=tmp_path)
