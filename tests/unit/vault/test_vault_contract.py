"""The vault's contract, run against every backend sage-desktop supports.

The same tests run on an in-memory keyring, on one that enforces Windows
Credential Manager's 2560-byte UTF-16 limit, and (with
SAGE_DESKTOP_TEST_KEYCHAIN=1) on the real Secret Service.
"""

from __future__ import annotations

import time

import pytest
from keyring.backend import KeyringBackend
from vault_backends import stored_entries

from sage_desktop.errors import VaultConflict
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault, holds_whole_records
from sage_desktop.vault.memory import WINDOWS_MAX_BYTES

NOW = time.time()


def sage_tokens(size: int = 2048, tag: str = "x") -> TokenSet:
    """Tokens as long as Sage's longest (2048 bytes each)."""
    now = NOW
    return TokenSet(
        access_token=("A" + tag) * (size // (len(tag) + 1)),
        access_expires_at=now + 300,
        refresh_token=("R" + tag) * (size // (len(tag) + 1)),
        refresh_expires_at=now + 2_678_400,
        scope="full_access",
        requested_by_id="b4f1c0de-0000-4000-8000-000000000001",
        obtained_at=now,
    )


def test_an_unknown_grant_loads_as_none(vault: TokenVault) -> None:
    assert vault.load("never-saved") is None


def test_saved_tokens_load_back_whole(vault: TokenVault) -> None:
    tokens = sage_tokens()

    saved = vault.save("grant1", tokens)

    assert saved == tokens.with_generation(1)
    assert vault.load("grant1") == saved


def test_each_save_stores_the_next_generation(vault: TokenVault) -> None:
    generations = [
        vault.save("grant1", sage_tokens(tag=str(i))).generation for i in range(3)
    ]

    assert generations == [1, 2, 3]
    assert vault.load("grant1") == sage_tokens(tag="2").with_generation(3)


def test_a_save_expecting_the_stored_generation_succeeds(vault: TokenVault) -> None:
    vault.save("grant1", sage_tokens(tag="a"), expected_generation=0)

    saved = vault.save("grant1", sage_tokens(tag="b"), expected_generation=1)

    assert saved.generation == 2
    assert vault.load("grant1") == saved


def test_a_save_expecting_an_older_generation_is_refused(vault: TokenVault) -> None:
    vault.save("grant1", sage_tokens(tag="a"))
    current = vault.save("grant1", sage_tokens(tag="b"))

    with pytest.raises(VaultConflict):
        vault.save("grant1", sage_tokens(tag="c"), expected_generation=1)

    assert vault.load("grant1") == current


def test_expecting_nothing_stored_conflicts_with_a_stored_grant(
    vault: TokenVault,
) -> None:
    vault.save("grant1", sage_tokens())

    with pytest.raises(VaultConflict):
        vault.save("grant1", sage_tokens(tag="y"), expected_generation=0)


def test_a_record_of_four_and_a_half_kilobytes_round_trips(vault: TokenVault) -> None:
    tokens = sage_tokens(size=2048)
    assert len(str(tokens.to_record())) > 4096

    vault.save("grant1", tokens)

    loaded = vault.load("grant1")
    assert loaded is not None
    assert loaded.access_token == tokens.access_token
    assert loaded.refresh_token == tokens.refresh_token


def test_every_entry_fits_windows_credential_manager(
    vault: TokenVault, backend: KeyringBackend, service: str
) -> None:
    if holds_whole_records(backend):
        pytest.skip("this keychain holds a whole record in one entry")
    vault.save("grant1", sage_tokens(size=4000))
    vault.save_client_secret("client/with-slash", "s" * 3000)

    for value in stored_entries(backend, service).values():
        assert len(value.encode("utf-16-le")) <= WINDOWS_MAX_BYTES


def test_a_roomy_keychain_holds_a_grant_in_one_entry(
    vault: TokenVault, backend: KeyringBackend, service: str
) -> None:
    if not holds_whole_records(backend):
        pytest.skip("this keychain's entries are too small for a record")
    tokens = sage_tokens(size=4000)

    vault.save("grant1", tokens)

    entries = stored_entries(backend, service)
    assert list(entries) == ["grant/grant1"]
    assert tokens.refresh_token in entries["grant/grant1"]


def test_text_beyond_ascii_round_trips(vault: TokenVault) -> None:
    tokens = TokenSet("é" * 1500 + "😀" * 900, 1.0, "ü" * 2000, 2.0, scope="ßcope")

    vault.save("grant1", tokens)

    assert vault.load("grant1") == tokens.with_generation(1)


def test_a_save_leaves_only_the_new_generation_behind(
    vault: TokenVault, backend: KeyringBackend, service: str
) -> None:
    vault.save("grant1", sage_tokens(tag="a"))
    vault.save("grant1", sage_tokens(tag="b"))

    entries = stored_entries(backend, service)
    names = sorted(entries)

    assert names[0] == "grant/grant1"
    assert all(n.startswith("grant/grant1/g2/") for n in names[1:])
    assert not any(sage_tokens(tag="a").refresh_token in v for v in entries.values())


def test_deleting_a_grant_removes_every_entry(
    vault: TokenVault, backend: KeyringBackend, service: str
) -> None:
    vault.save("grant1", sage_tokens(tag="a"))
    vault.save("grant1", sage_tokens(tag="b"))

    vault.delete("grant1")

    assert vault.load("grant1") is None
    assert stored_entries(backend, service) == {}


def test_deleting_an_unknown_grant_is_harmless(vault: TokenVault) -> None:
    vault.delete("never-saved")

    assert vault.load("never-saved") is None


def test_a_deleted_grant_starts_again_at_generation_one(vault: TokenVault) -> None:
    vault.save("grant1", sage_tokens(tag="a"))
    vault.save("grant1", sage_tokens(tag="b"))
    vault.delete("grant1")

    assert vault.save("grant1", sage_tokens(tag="c")).generation == 1
    assert vault.load("grant1") == sage_tokens(tag="c").with_generation(1)


def test_grants_are_kept_apart(vault: TokenVault) -> None:
    one = vault.save("grant1", sage_tokens(tag="1"))
    two = vault.save("grant2", sage_tokens(tag="2"))

    vault.delete("grant1")

    assert vault.load("grant1") is None
    assert vault.load("grant2") == two
    assert one != two


def test_a_client_secret_round_trips(vault: TokenVault) -> None:
    client_id = "4b6f8e2a-1111-4222-8333-444455556666/0a1b2c3d-aaaa-4bbb-8ccc-dddd"

    vault.save_client_secret(client_id, "s3cr3t-value")

    assert vault.load_client_secret(client_id) == "s3cr3t-value"
    assert vault.load_client_secret("other-client") is None


def test_a_replaced_client_secret_wins(vault: TokenVault) -> None:
    vault.save_client_secret("client", "old-secret")
    vault.save_client_secret("client", "new-secret")

    assert vault.load_client_secret("client") == "new-secret"


def test_deleting_a_client_secret_keeps_grants(
    vault: TokenVault, backend: KeyringBackend, service: str
) -> None:
    saved = vault.save("grant1", sage_tokens())
    vault.save_client_secret("client", "s3cr3t-value")

    vault.delete_client_secret("client")

    assert vault.load_client_secret("client") is None
    assert vault.load("grant1") == saved
    assert not any(n.startswith("client/") for n in stored_entries(backend, service))


def test_a_grant_id_with_a_slash_is_refused(vault: TokenVault) -> None:
    with pytest.raises(ValueError, match="grant id"):
        vault.save("a/b", sage_tokens())
