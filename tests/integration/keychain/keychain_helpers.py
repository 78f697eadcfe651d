"""Shared keychains for the multi-process vault tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from file_keyring import FileKeyring, with_support_path
from keyring.backend import KeyringBackend

from sage_desktop.vault import TokenVault

HERE = Path(__file__).parent
CHILD = HERE / "vault_child.py"
KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"

needs_keychain = pytest.mark.skipif(
    not KEYCHAIN, reason="set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service"
)


@dataclass
class Shared:
    """A keychain several processes can use at once."""

    spec: str  # the child's BACKEND argument
    backend: KeyringBackend
    service: str
    lock_dir: Path

    def vault(self, timeout: float = 10.0) -> TokenVault:
        return TokenVault(
            self.backend, service=self.service, timeout=timeout, lock_dir=self.lock_dir
        )

    def child(
        self, mode: str, grant: str, count: int, start: int = 0
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                mode,
                self.spec,
                str(self.lock_dir),
                self.service,
                grant,
                str(count),
                str(start),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=with_support_path(os.environ),
        )


def file_shared(tmp_path: Path) -> Shared:
    directory = tmp_path / "keyring"
    return Shared(
        f"file:{directory}",
        FileKeyring(directory),
        f"sage-desktop-test-{uuid.uuid4().hex[:8]}",
        tmp_path / "locks",
    )


def secret_service_shared(tmp_path: Path) -> Shared:
    from keyring.backends import SecretService

    return Shared(
        "secret-service",
        SecretService.Keyring(),
        f"sage-desktop-test-{uuid.uuid4().hex[:8]}",
        tmp_path / "locks",
    )
