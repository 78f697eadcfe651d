"""Doctor's keychain checks on the real Secret Service (gnome-keyring)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sage_desktop.config import Settings
from sage_desktop.connections import ConnectionRegistry
from sage_desktop.context import AppContext
from sage_desktop.diagnostics.checks import Doctor, Status
from sage_desktop.vault import TokenVault

pytestmark = [
    pytest.mark.keychain,
    pytest.mark.skipif(
        os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") != "1",
        reason="needs SAGE_DESKTOP_TEST_KEYCHAIN=1 and a Secret Service",
    ),
]

CLIENT_ID = "doctor-keychain-test-client"


def test_the_real_keychain_passes_and_keeps_no_probe_entry(tmp_path: Path) -> None:

    vault = TokenVault(service="sage-desktop-doctor-test", lock_dir=tmp_path)
    vault.save_client_secret(CLIENT_ID, "a-secret-for-the-test-only")
    settings = Settings(
        auth_url="http://127.0.0.1:9/auth",
        token_url="http://127.0.0.1:9/token",
        revoke_url="http://127.0.0.1:9/revoke",
        api_url="http://127.0.0.1:9/v3.1",
        client_id=CLIENT_ID,
    )
    context = AppContext(
        settings=settings,
        vault=vault,
        registry=ConnectionRegistry(path=tmp_path / "c.json", vault=vault),
    )
    try:
        report = Doctor(context, timeout=0.5).run()
    finally:
        vault.delete_client_secret(CLIENT_ID)

    statuses = {r.id: r.status for r in report.results}
    assert statuses["keychain"] is Status.OK
    assert statuses["client_secret"] is Status.OK
    assert vault.load_client_secret("sage-desktop-doctor-probe") is None
