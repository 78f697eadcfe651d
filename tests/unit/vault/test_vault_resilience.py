"""Transient keychain errors are retried; real failures fail closed."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import InitError, KeyringLocked
from secretstorage.exceptions import ItemNotFoundException
from vault_backends import FlakyKeyring

from sage_desktop.errors import (
    KeychainCorrupt,
    KeychainError,
    KeychainLocked,
    KeychainPromptDismissed,
    KeychainTimeout,
    NoKeychainBackend,
)
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import WINDOWS_MAX_BYTES, MemoryKeyring

TOKENS = TokenSet("acc-" + "a" * 2044, 1.0, "ref-" + "r" * 2044, 2.0)


@pytest.fixture
def flaky() -> FlakyKeyring:
    return FlakyKeyring(MemoryKeyring(max_bytes=2560))


def vault_on(
    backend: KeyringBackend, tmp_path: Path, timeout: float = 10.0
) -> TokenVault:
    return TokenVault(backend, timeout=timeout, lock_dir=tmp_path / "locks")


def test_a_transient_item_not_found_on_a_chunk_is_retried(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path)
    saved = vault.save("grant1", TOKENS)
    flaky.fail("get", ItemNotFoundException("No such object"), times=3)

    assert vault.load("grant1") == saved


def test_a_moment_without_the_default_collection_is_retried(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path)
    flaky.fail("set", InitError("Failed to create the collection: Prompt dismissed.."))

    assert vault.save("grant1", TOKENS).generation == 1


def test_a_prompt_dismissed_for_good_is_reported_as_such(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path)
    flaky.fail(
        "get", InitError("Failed to create the collection: Prompt dismissed.."), 99
    )

    with pytest.raises(KeychainPromptDismissed) as caught:
        vault.load("grant1")

    assert isinstance(caught.value, KeychainLocked)
    assert "prompt" in caught.value.user_message().lower()


def test_a_locked_keychain_is_reported_without_prompting_again(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path)
    flaky.fail("get", KeyringLocked("Failed to unlock the collection!"), times=99)

    with pytest.raises(KeychainLocked):
        vault.load("grant1")

    assert vault.keychain_calls == 1
    assert len(flaky.faults["get"]) == 98


def test_a_missing_chunk_that_stays_missing_is_damage(
    tmp_path: Path,
) -> None:
    keyring = MemoryKeyring(max_bytes=WINDOWS_MAX_BYTES)
    vault = vault_on(keyring, tmp_path)
    vault.save("grant1", TOKENS)
    keyring.delete_password("sage-desktop", "grant/grant1/g1/c1")

    with pytest.raises(KeychainCorrupt):
        vault.load("grant1")


def test_a_damaged_grant_can_be_replaced_by_signing_in_again(tmp_path: Path) -> None:
    keyring = MemoryKeyring()
    vault = vault_on(keyring, tmp_path)
    keyring.set_password("sage-desktop", "grant/grant1", "{garbage")

    with pytest.raises(KeychainCorrupt):
        vault.load("grant1")
    vault.save("grant1", TOKENS)

    assert vault.load("grant1") == TOKENS.with_generation(1)


def test_a_keychain_that_never_answers_times_out(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path, timeout=0.2)
    flaky.hang()
    try:
        with pytest.raises(KeychainTimeout):
            vault.load("grant1")
        assert flaky.blocked.is_set()
    finally:
        flaky.release.set()


@pytest.mark.parametrize(
    "backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"]
)
def test_no_keychain_is_refused_before_touching_the_disk(
    backend: KeyringBackend, tmp_path: Path
) -> None:
    vault = vault_on(backend, tmp_path)

    for call in (
        lambda: vault.load("grant1"),
        lambda: vault.save("grant1", TOKENS),
        lambda: vault.delete("grant1"),
        lambda: vault.save_client_secret("client", "secret"),
    ):
        with pytest.raises(NoKeychainBackend):
            call()

    assert not (tmp_path / "locks").exists()


class PlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt's file backends."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


def test_a_plain_file_keyring_is_refused(tmp_path: Path) -> None:
    keyring = PlaintextKeyring()
    vault = vault_on(keyring, tmp_path)

    with pytest.raises(NoKeychainBackend, match="plain-file"):
        vault.save("grant1", TOKENS)

    assert keyring.values() == []


def test_an_unknown_backend_error_is_a_keychain_error_without_its_text(
    flaky: FlakyKeyring, tmp_path: Path
) -> None:
    vault = vault_on(flaky, tmp_path)
    flaky.fail("set", RuntimeError("echoing acc-aaaa secret"))

    with pytest.raises(KeychainError) as caught:
        vault.save("grant1", TOKENS)

    assert "acc-" not in str(caught.value)
    assert "RuntimeError" in str(caught.value)


def test_secrets_never_reach_reprs_errors_or_logs(
    flaky: FlakyKeyring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = vault_on(flaky, tmp_path)
    saved = vault.save("grant1", TOKENS)
    flaky.fail("get", ItemNotFoundException("No such object"), times=2)
    loaded = vault.load("grant1")
    vault.save_client_secret("client", "client-secret-value")
    vault.load_client_secret("client")
    flaky.fail("get", KeyringLocked("Failed to unlock the collection!"))
    with pytest.raises(KeychainLocked) as caught:
        vault.load("grant1")

    shown = " ".join(
        [repr(saved), str(saved), repr(loaded), f"{loaded}", repr(vault)]
        + [str(caught.value), caught.value.user_message(), repr(caught.value)]
        + [r.getMessage() for r in caplog.records]
    )
    for secret in ("acc-aaaa", "ref-rrrr", "aaaaaaaa", "rrrrrrrr", "client-secret"):
        assert secret not in shown
    assert "…aaaa" in repr(saved)


def test_threads_of_one_process_never_tear_a_grant(tmp_path: Path) -> None:
    vault = vault_on(MemoryKeyring(max_bytes=2560), tmp_path)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                tokens = TokenSet(f"{n}-{i}-" * 300, 1.0, f"{n}-{i}-" * 300, 2.0)
                vault.save("grant1", tokens)
                loaded = vault.load("grant1")
                assert loaded is not None
                assert loaded.access_token == loaded.refresh_token
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    final = vault.load("grant1")
    assert final is not None
    assert final.generation == 120


def test_a_record_held_in_its_head_is_checked_against_its_checksum(
    tmp_path: Path,
) -> None:
    keyring = MemoryKeyring()
    vault = vault_on(keyring, tmp_path)
    vault.save("grant1", TOKENS)
    head = keyring.get_password("sage-desktop", "grant/grant1")
    assert head is not None
    keyring.set_password("sage-desktop", "grant/grant1", head.replace("a", "b", 1))

    with pytest.raises(KeychainCorrupt):
        vault.load("grant1")


def test_in_memory_keyrings_never_join_keyrings_automatic_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keyring.backend import get_all_keyring
    from keyring.core import load_keyring

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    offered = get_all_keyring()

    assert not [b for b in offered if isinstance(b, MemoryKeyring)]

    monkeypatch.setenv(
        "PYTHON_KEYRING_BACKEND", "sage_desktop.vault.memory.MemoryKeyring"
    )
    assert isinstance(
        load_keyring("sage_desktop.vault.memory.MemoryKeyring"), MemoryKeyring
    )
