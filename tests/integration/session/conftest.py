from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
