"""The desktop app's "Connect" with Debian's Chromium as the user's browser:
the window catches the callback, shows the business picker, the user picks
a business, and the tokens live in the Secret Service only."""

from __future__ import annotations

import shlex
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import ACCOUNTANT, browser_command, read_report
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot
from secret_scan import files_holding, secret_service_items

import sage_desktop.ui  # noqa: F401  (Qt work-arounds before any Qt call)
from sage_desktop.connections import ConnectionRegistry
from sage_desktop.context import AppContext
from sage_desktop.sandbox import Sandbox
from sage_desktop.ui.main_window import MainWindow
from sage_desktop.ui.services import Services
from sage_desktop.ui.workers import wait_for_tasks
from sage_desktop.vault import TokenVault

pytestmark = [
    pytest.mark.browser,
    pytest.mark.keychain,
    pytest.mark.usefixtures("chromium", "keychain"),
]


@pytest.fixture
def window(
    qtbot: QtBot,
    sandbox: Sandbox,
    shots: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MainWindow]:
    # What webbrowser does with BROWSER="<command> %s", without depending on
    # which browsers an earlier test in this process made webbrowser find.
    browser = webbrowser.GenericBrowser(shlex.split(browser_command()))
    monkeypatch.setenv("SAGE_E2E_SHOTS", str(shots))  # for the browser
    vault = TokenVault()  # the real keychain: Secret Service here
    context = AppContext(
        env=sandbox.env(),
        settings_path=tmp_path / "settings.json",
        vault=vault,
        registry=ConnectionRegistry(path=tmp_path / "connections.json", vault=vault),
    )
    services = Services(
        context,
        opener=browser.open,
        sign_in_timeout=90,
        settings_path=tmp_path / "settings.json",
    )
    main = MainWindow(
        services,
        window_settings=QSettings(
            str(tmp_path / "window.ini"), QSettings.Format.IniFormat
        ),
    )
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    main.start()
    yield main
    main.close()
    services.shutdown()
    wait_for_tasks()


def test_gui_connect_in_chromium_shows_the_picker_and_keeps_the_business(
    qtbot: QtBot, window: MainWindow, sandbox: Sandbox, shots: Path, tmp_path: Path
) -> None:
    business_id = sandbox.business_ids(ACCOUNTANT)[7]
    name = sandbox.business(business_id)["name"]

    window.connect_action.trigger()
    qtbot.waitUntil(lambda: window.picker is not None, timeout=90_000)
    picker = window.picker
    assert picker is not None
    qtbot.waitUntil(
        lambda: picker.model.total() == 2500 and picker.progress.isHidden(),
        timeout=60_000,
    )
    qtbot.keyClicks(picker.search, name)
    picker.grab().save(str(shots / "gui-picker.png"))
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: (
            (c := window.selected_connection()) is not None
            and c.business_id == business_id
        ),
        timeout=10_000,
    )
    window.grab().save(str(shots / "gui-connected.png"))

    connection = window.selected_connection()
    assert connection is not None
    report = read_report(shots)
    assert report["steps"] == ["region", "sign_in", "consent", "callback"]
    assert report["code_shown"] is False
    items = secret_service_items(connection.id)
    assert items, "no Secret Service item for the new connection"
    assert all(i.get("secret") for i in items)
    tokens = window.services.context.vault.load(connection.id)
    assert tokens is not None
    secrets = [tokens.access_token, tokens.refresh_token]
    secrets += [i.get("secret", "") for i in items]
    assert files_holding(secrets, tmp_path) == []
