"""AppContext: where the client secret comes from, and what it says if none."""

from __future__ import annotations

from pathlib import Path

import pytest

from sage_desktop.auth import TokenEndpoint
from sage_desktop.config import Settings
from sage_desktop.context import AppContext
from sage_desktop.errors import ConfigError
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring


def _vault(tmp_path: Path) -> TokenVault:
    return TokenVault(backend=MemoryKeyring(), lock_dir=tmp_path / "locks")


def test_the_secret_from_the_environment_wins(tmp_path: Path) -> None:
    env = {"SAGE_DESKTOP_CLIENT_ID": "c", "SAGE_DESKTOP_CLIENT_SECRET": "from-env"}
    context = AppContext(env=env, settings_path=tmp_path / "s.json")

    assert context.client_secret() == "from-env"


def test_the_secret_is_read_from_the_keychain_otherwise(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    vault.save_client_secret("c", "from-keychain")
    context = AppContext(settings=Settings(client_id="c"), vault=vault)

    assert context.client_secret() == "from-keychain"
    assert isinstance(context.token_endpoint(), TokenEndpoint)


def test_no_secret_anywhere_says_what_to_do(tmp_path: Path) -> None:
    context = AppContext(settings=Settings(client_id="c"), vault=_vault(tmp_path))

    with pytest.raises(ConfigError) as caught:
        context.client_secret()

    assert "SAGE_DESKTOP_CLIENT_SECRET" in caught.value.remedy


def test_no_client_id_says_what_to_do(tmp_path: Path) -> None:
    context = AppContext(settings=Settings(), vault=_vault(tmp_path))

    with pytest.raises(ConfigError, match="client_id"):
        context.client_secret()


def test_nothing_is_opened_until_needed() -> None:
    context = AppContext(env={"SAGE_DESKTOP_TOKEN_URL": "not a url"})

    with pytest.raises(ConfigError, match="token_url"):
        _ = context.settings
