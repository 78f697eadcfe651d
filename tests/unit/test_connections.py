"""The connection registry: metadata on disk, atomic, private, secret-free."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import replace
from pathlib import Path

import platformdirs
import pytest

from sage_desktop.connections import Connection, ConnectionRegistry, default_path
from sage_desktop.errors import (
    ConfigError,
    ConnectionNotFound,
    KeychainError,
    RegistryCorrupt,
)
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring


def connection(cid: str = "c0ffee01", **changes: object) -> Connection:
    base = Connection(
        id=cid,
        user_id="user-1",
        user_name="Ada Accountant",
        email="ada@practice.example",
        region="GB",
        scope="full_access",
        business_id="biz-1",
        business_name="Lovelace Ltd",
        created_at=1_700_000_000.0,
        last_used_at=1_700_000_000.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def vault(keyring: MemoryKeyring, tmp_path: Path) -> TokenVault:
    return TokenVault(keyring, lock_dir=tmp_path / "locks")


@pytest.fixture
def registry(tmp_path: Path, vault: TokenVault) -> ConnectionRegistry:
    return ConnectionRegistry(tmp_path / "data" / "connections.json", vault=vault)


def test_a_new_registry_lists_nothing(registry: ConnectionRegistry) -> None:
    assert registry.list() == []


def test_a_saved_connection_reads_back(registry: ConnectionRegistry) -> None:
    registry.save(connection())

    assert registry.list() == [connection()]
    assert registry.get("c0ffee01") == connection()


def test_saving_the_same_id_replaces_in_place(registry: ConnectionRegistry) -> None:
    registry.save(connection("a1"))
    registry.save(connection("b2"))

    registry.save(connection("a1", business_name="Babbage plc"))

    assert [c.id for c in registry.list()] == ["a1", "b2"]
    assert registry.get("a1").business_name == "Babbage plc"


def test_an_unknown_id_is_a_clear_error(registry: ConnectionRegistry) -> None:
    with pytest.raises(ConnectionNotFound) as caught:
        registry.get("nope")

    assert isinstance(caught.value, KeyError)
    assert "nope" in str(caught.value)


def test_find_takes_an_id_a_prefix_or_an_email(registry: ConnectionRegistry) -> None:
    registry.save(connection("c0ffee01"))
    registry.save(connection("deadbeef", email="bob@practice.example"))

    assert registry.find("c0ffee01") == registry.get("c0ffee01")
    assert registry.find("dead") == registry.get("deadbeef")
    assert registry.find("BOB@practice.example") == registry.get("deadbeef")
    assert registry.find("nobody@practice.example") is None


def test_find_by_email_prefers_the_most_recently_used(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection("old1", last_used_at=1.0))
    registry.save(connection("new2", last_used_at=2.0))

    found = registry.find("ada@practice.example")

    assert found is not None
    assert found.id == "new2"


def test_find_by_user_returns_that_users_connection(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection("a1", user_id="u-1"))
    registry.save(connection("b2", user_id="u-2"))

    found = registry.find_by_user("u-2")

    assert found is not None
    assert found.id == "b2"
    assert registry.find_by_user("u-3") is None


def test_marking_sign_in_required_is_kept(registry: ConnectionRegistry) -> None:
    registry.save(connection())

    registry.mark_sign_in_required("c0ffee01")
    assert registry.get("c0ffee01").needs_sign_in is True

    registry.mark_sign_in_required("c0ffee01", flag=False)
    assert registry.get("c0ffee01").needs_sign_in is False


def test_touch_records_the_last_use(registry: ConnectionRegistry) -> None:
    registry.save(connection())

    registry.touch("c0ffee01", when=1_800_000_000.0)

    assert registry.get("c0ffee01").last_used_at == 1_800_000_000.0


def test_changing_an_unknown_connection_is_refused(
    registry: ConnectionRegistry,
) -> None:
    with pytest.raises(ConnectionNotFound):
        registry.mark_sign_in_required("nope")


def test_removing_a_connection_deletes_its_keychain_entries(
    registry: ConnectionRegistry, vault: TokenVault, keyring: MemoryKeyring
) -> None:
    registry.save(connection("a1"))
    registry.save(connection("b2"))
    vault.save("a1", TokenSet("a" * 3000, 1.0, "r" * 3000, 2.0))
    kept = vault.save("b2", TokenSet("b" * 30, 1.0, "s" * 30, 2.0))

    registry.remove("a1")

    assert [c.id for c in registry.list()] == ["b2"]
    assert vault.load("a1") is None
    assert vault.load("b2") == kept
    assert not any(u.startswith("grant/a1") for u in keyring.usernames("sage-desktop"))


def test_removing_an_unknown_connection_is_a_clear_error(
    registry: ConnectionRegistry,
) -> None:
    with pytest.raises(ConnectionNotFound):
        registry.remove("nope")


class _LockedKeyring(MemoryKeyring):
    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import KeyringLocked

        raise KeyringLocked("Failed to unlock the collection!")

    get_password = delete_password  # type: ignore[assignment]


def test_a_connection_stays_listed_when_the_keychain_refuses_removal(
    tmp_path: Path,
) -> None:
    vault = TokenVault(_LockedKeyring(), lock_dir=tmp_path)
    registry = ConnectionRegistry(tmp_path / "connections.json", vault=vault)
    registry.save(connection())

    with pytest.raises(KeychainError):
        registry.remove("c0ffee01")

    assert registry.get("c0ffee01") == connection()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_file_is_private_to_its_owner(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection())

    mode = stat.S_IMODE(os.stat(registry.path).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(registry.path.parent).st_mode) == 0o700


def test_the_file_is_plain_json_with_a_version(registry: ConnectionRegistry) -> None:
    registry.save(connection())

    data = json.loads(registry.path.read_text())

    assert data["version"] == 1
    assert data["connections"][0]["email"] == "ada@practice.example"


def test_a_write_leaves_no_temporary_file(registry: ConnectionRegistry) -> None:
    for n in range(5):
        registry.save(connection(f"id{n}"))

    names = sorted(p.name for p in registry.path.parent.iterdir())
    assert names == ["connections.json", "connections.json.lock"]


def test_a_damaged_file_is_reported_not_discarded(
    registry: ConnectionRegistry,
) -> None:
    registry.path.parent.mkdir(parents=True)
    registry.path.write_text("{not json")

    with pytest.raises(RegistryCorrupt) as caught:
        registry.list()
    with pytest.raises(RegistryCorrupt):
        registry.save(connection())

    assert str(registry.path) in str(caught.value)
    assert registry.path.read_text() == "{not json"


def test_fields_from_a_newer_version_are_ignored(registry: ConnectionRegistry) -> None:
    registry.path.parent.mkdir(parents=True)
    record = connection().to_dict() | {"colour": "teal"}
    registry.path.write_text(json.dumps({"version": 2, "connections": [record]}))

    assert registry.list() == [connection()]


def test_the_default_file_follows_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))

    path = default_path()

    assert path == Path(platformdirs.user_data_dir("sage-desktop")) / "connections.json"
    if sys.platform.startswith("linux"):
        assert path.is_relative_to(tmp_path / "elsewhere")


def test_the_default_registry_uses_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))

    ConnectionRegistry(vault=TokenVault(MemoryKeyring())).save(connection())

    assert json.loads(default_path().read_text())["connections"][0]["id"] == "c0ffee01"


def test_concurrent_savers_lose_no_connection(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "connections.json"

    def add(n: int) -> None:
        ConnectionRegistry(path, vault=TokenVault(MemoryKeyring())).save(
            connection(f"id{n:02d}", created_at=time.time())
        )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = sorted(c.id for c in ConnectionRegistry(path).list())
    assert ids == [f"id{n:02d}" for n in range(20)]


def test_choosing_without_a_name_takes_the_only_connection(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection())

    assert registry.choose(None).id == "c0ffee01"


def test_choosing_among_several_without_a_name_lists_them(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection())
    registry.save(connection("beef0002", email="bob@practice.example"))

    with pytest.raises(ConfigError) as caught:
        registry.choose(None)

    assert "c0ffee01 (ada@practice.example)" in caught.value.explanation
    assert "--connection" in caught.value.remedy
    assert registry.choose("bob@practice.example").id == "beef0002"


def test_choosing_with_no_connection_asks_for_a_sign_in(
    registry: ConnectionRegistry,
) -> None:
    with pytest.raises(ConnectionNotFound) as caught:
        registry.choose(None)

    assert "sage-desktop login" in caught.value.remedy


def test_choosing_a_name_that_matches_nothing_says_so(
    registry: ConnectionRegistry,
) -> None:
    registry.save(connection())

    with pytest.raises(ConnectionNotFound):
        registry.choose("nobody@practice.example")
