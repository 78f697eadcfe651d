from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from session_helpers import Shared, shared_setup

from sage_desktop.connections import ConnectionRegistry
from sage_desktop.sandbox import Sandbox, SandboxConfig
from sage_desktop.session.lock import GrantLocks
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(token_size=256)) as sb:
        yield sb


@pytest.fixture
def vault(tmp_path: Path) -> TokenVault:
    return TokenVault(MemoryKeyring(), lock_dir=tmp_path / "vault-locks")


@pytest.fixture
def registry(tmp_path: Path, vault: TokenVault) -> ConnectionRegistry:
    return ConnectionRegistry(tmp_path / "connections.json", vault=vault)


@pytest.fixture
def locks(tmp_path: Path) -> GrantLocks:
    return GrantLocks(tmp_path / "grant-locks", timeout=20)


_KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"


@pytest.fixture(
    params=[
        pytest.param("file", id="file-keyring"),
        pytest.param(
            "secret-service",
            id="secret-service",
            marks=[
                pytest.mark.keychain,
                pytest.mark.skipif(
                    not _KEYCHAIN, reason="set SAGE_DESKTOP_TEST_KEYCHAIN=1"
                ),
            ],
        ),
    ]
)
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    """Shared with child processes: a file keyring, or the real keychain."""
    with shared_setup(tmp_path, request.param) as setup:
        yield setup


@pytest.fixture
def shared_files(tmp_path: Path) -> Iterator[Shared]:
    """Shared with child processes through the test-only file keyring."""
    with shared_setup(tmp_path, "file") as setup:
        yield setup
