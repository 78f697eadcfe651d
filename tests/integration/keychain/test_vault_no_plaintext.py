"""After save, load and delete cycles no token text is in any file."""

from __future__ import annotations

import time
from pathlib import Path

import platformdirs
import pytest
from keychain_helpers import KEYCHAIN
from keyring.backend import KeyringBackend

from sage_desktop.connections import Connection, ConnectionRegistry
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

SECRETS = ("ACCESSsecret", "REFRESHsecret", "CLIENTsecret")


def backend() -> KeyringBackend:
    if KEYCHAIN:
        from keyring.backends import SecretService

        return SecretService.Keyring()
    return MemoryKeyring(max_bytes=2560)


def platformdirs_locations() -> list[Path]:
    app = "sage-desktop"
    return [
        Path(platformdirs.user_data_dir(app)),
        Path(platformdirs.user_config_dir(app)),
        Path(platformdirs.user_state_dir(app)),
        Path(platformdirs.user_cache_dir(app)),
        Path(platformdirs.user_log_dir(app)),
        Path(platformdirs.user_runtime_dir(app)),
    ]


def test_no_token_text_lands_in_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("CONFIG", "DATA", "STATE", "CACHE", "RUNTIME"):
        monkeypatch.setenv(f"XDG_{var}_HOME", str(tmp_path / var.lower()))
    (tmp_path / "runtime").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    vault = TokenVault(backend())  # default lock directory
    registry = ConnectionRegistry(vault=vault)

    for n in range(5):
        cid = f"conn{n}"
        now = time.time()
        registry.save(
            Connection(
                cid,
                "u",
                "Ada",
                "ada@x.example",
                "GB",
                "full_access",
                "b",
                "Biz",
                now,
                now,
            )
        )
        tokens = TokenSet(
            f"{SECRETS[0]}{n}" * 200, now + 300, f"{SECRETS[1]}{n}" * 200, now + 9e5
        )
        vault.save(cid, tokens)
        vault.save(cid, vault.load(cid) or tokens, expected_generation=1)
        vault.save_client_secret("client", f"{SECRETS[2]}{n}")
        assert vault.load_client_secret("client") == f"{SECRETS[2]}{n}"
        if n % 2:
            registry.remove(cid)
    vault.delete_client_secret("client")

    scanned = 0
    for root in platformdirs_locations():
        assert root.is_relative_to(tmp_path)
        for path in root.rglob("*") if root.exists() else ():
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, path
                    assert secret.encode("utf-16-le") not in data, path
    assert scanned >= 2  # connections.json and the locks were looked at
