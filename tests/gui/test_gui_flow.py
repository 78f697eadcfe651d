"""The whole app against the sandbox, driven like a user would.

A test browser (the sandbox's autobrowser) plays the Sage sign-in pages;
the keychain is in memory; every screen is saved as a screenshot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from guikit import save_shot
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sage_desktop.connections import ConnectionRegistry
from sage_desktop.context import AppContext
from sage_desktop.errors import CallbackTimeout, SignInRequired
from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig
from sage_desktop.sandbox.autobrowser import play
from sage_desktop.ui.connect import ConnectDialog
from sage_desktop.ui.main_window import (
    CONNECTED,
    SIGN_IN_AGAIN,
    UNREACHABLE,
    MainWindow,
)
from sage_desktop.ui.picker import BusinessPicker
from sage_desktop.ui.registration import RegistrationDialog
from sage_desktop.ui.services import Services
from sage_desktop.ui.workers import wait_for_tasks
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

PORTS = (8765, 8766, 8767)
ACCOUNTANT = "accountant@sandbox.example"
SOLE_TRADER = "sole.trader@sandbox.example"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sb:
        yield sb


def browser_as(email: str) -> Callable[[str], object]:
    """An opener that signs in through the sandbox's pages as ``email``."""

    def opener(url: str) -> bool:
        play(url, email=email)
        return True

    return opener


MakeWindow = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot, tmp_path: Path, sandbox: Sandbox) -> Iterator[MakeWindow]:
    made: list[tuple[MainWindow, Services]] = []

    def make(
        *,
        registered: bool = True,
        email: str = ACCOUNTANT,
        opener: Callable[[str], object] | None = None,
        sign_in_timeout: float = 30.0,
        redirect_uris: tuple[str, ...] | None = None,
    ) -> MainWindow:
        env = sandbox.env()
        if not registered:
            del env["SAGE_DESKTOP_CLIENT_ID"]
            del env["SAGE_DESKTOP_CLIENT_SECRET"]
        if redirect_uris is not None:
            env["SAGE_DESKTOP_REDIRECT_URIS"] = ",".join(redirect_uris)
        keyring = MemoryKeyring()
        vault = TokenVault(backend=keyring)
        context = AppContext(
            env=env,
            settings_path=tmp_path / "settings.json",
            vault=vault,
            registry=ConnectionRegistry(
                path=tmp_path / "connections.json", vault=vault
            ),
        )
        services = Services(
            context,
            opener=opener or browser_as(email),
            sign_in_timeout=sign_in_timeout,
            settings_path=tmp_path / "settings.json",
        )
        window = MainWindow(
            services,
            window_settings=QSettings(
                str(tmp_path / "window.ini"), QSettings.Format.IniFormat
            ),
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        window.start()
        made.append((window, services))
        return window

    yield make
    for window, services in made:
        window.close()
        services.shutdown()
    wait_for_tasks()


def wait_for_picker(qtbot: QtBot, window: MainWindow, total: int) -> BusinessPicker:
    qtbot.waitUntil(lambda: window.picker is not None, timeout=20_000)
    picker = window.picker
    assert picker is not None
    qtbot.waitUntil(
        lambda: picker.model.total() == total and picker.progress.isHidden(),
        timeout=30_000,
    )
    return picker


def connect_and_pick(
    qtbot: QtBot,
    window: MainWindow,
    search: str,
    total: int,
    shot: tuple[Path, str] | None = None,
) -> None:
    window.connect_action.trigger()
    picker = wait_for_picker(qtbot, window, total)
    qtbot.keyClicks(picker.search, search)
    if shot is not None:
        save_shot(picker, *shot)
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: (
            (c := window.selected_connection()) is not None
            and c.business_name is not None
        ),
        timeout=10_000,
    )


def force_expiry(window: MainWindow) -> None:
    """Make the stored access token expired, as if the app slept 5 minutes."""
    connection = window.selected_connection()
    assert connection is not None
    vault = window.services.context.vault
    tokens = vault.load(connection.id)
    assert tokens is not None
    vault.save(connection.id, replace(tokens, access_expires_at=time.time() - 1))
    window.services.worker().reset(connection.id)
    window.reload_connections()


def test_first_run_registration_connect_pick_refresh_change_disconnect(
    qtbot: QtBot, make_window: MakeWindow, sandbox: Sandbox, shots: Path, tmp_path: Path
) -> None:
    window = make_window(registered=False)
    save_shot(window, shots, "01-main-empty")

    # First run: the registration dialog asks for the app's client id/secret.
    qtbot.waitUntil(lambda: window.registration_dialog is not None)
    dialog: RegistrationDialog = window.registration_dialog
    assert dialog.isVisible()
    assert [f.text() for f in dialog.url_fields] == list(DEMO.redirect_uris)
    dialog.client_id.setText(DEMO.client_id)
    dialog.client_secret.setText(DEMO.client_secret)
    save_shot(dialog, shots, "02-registration-first-run")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    vault = window.services.context.vault
    assert vault.load_client_secret(DEMO.client_id) == DEMO.client_secret
    saved = (tmp_path / "settings.json").read_text()
    assert DEMO.client_secret not in saved
    assert json.loads(saved)["client_id"] == DEMO.client_id

    # Connect, then pick a business by typing and Enter.
    business_id = sandbox.business_ids(ACCOUNTANT)[1234]
    name = sandbox.business(business_id)["name"]
    connect_and_pick(qtbot, window, name, 2500, (shots, "03-picker-typed"))
    connection = window.selected_connection()
    assert connection is not None
    assert connection.business_id == business_id
    assert connection.email == ACCOUNTANT
    qtbot.waitUntil(lambda: window.status_of(connection.id) == CONNECTED)
    qtbot.waitUntil(lambda: "left" in window.access_bar.format())
    save_shot(window, shots, "04-main-connected")

    # Live status after a forced expiry: the app refreshes by itself.
    before = sandbox.counters()["refreshes_accepted"]
    force_expiry(window)
    qtbot.waitUntil(
        lambda: sandbox.counters()["refreshes_accepted"] > before, timeout=15_000
    )
    qtbot.waitUntil(
        lambda: (
            window.status_of(connection.id) == CONNECTED
            and "min" in window.access_bar.format()
        ),
        timeout=10_000,
    )
    assert "ago" in window.last_refresh_label.text()
    assert "days left" in window.refresh_label.text()
    save_shot(window, shots, "05-main-after-refresh")

    # Change business: the picker starts on the current one.
    window.change_action.trigger()
    picker = wait_for_picker(qtbot, window, 2500)
    assert picker.current_business_id() == business_id
    other_id = sandbox.business_ids(ACCOUNTANT)[7]
    qtbot.keyClicks(picker.search, other_id)
    save_shot(picker, shots, "06-picker-change")
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: (
            (c := window.selected_connection()) is not None
            and c.business_id == other_id
        ),
        timeout=10_000,
    )
    save_shot(window, shots, "07-main-business-changed")

    # Disconnect: confirmed, revoked at Sage, forgotten here.
    window.ask_confirmation = lambda *_args: True  # type: ignore[method-assign]
    window.disconnect_action.trigger()
    qtbot.waitUntil(lambda: window.selected_connection() is None, timeout=10_000)
    assert window.services.context.registry.list() == []
    assert vault.load(connection.id) is None
    assert window.empty_panel.isVisible()
    save_shot(window, shots, "07b-main-disconnected")


def test_callback_url_mismatch_shows_the_timeout_explanation(
    qtbot: QtBot, make_window: MakeWindow, shots: Path
) -> None:
    # Registered in Sage: .../callback; sent by the app: .../Callback.
    window = make_window(
        redirect_uris=tuple(f"http://localhost:{p}/Callback" for p in PORTS),
        sign_in_timeout=4,
    )

    window.connect_action.trigger()
    dialog: ConnectDialog = window.connect_dialog
    assert "Waiting for you to sign in to Sage in your browser" in (
        dialog.heading.text()
    )
    qtbot.waitUntil(lambda: dialog.copy_button.isEnabled(), timeout=10_000)
    save_shot(dialog, shots, "08-connect-waiting")
    dialog.copy_button.click()
    link = QGuiApplication.clipboard().text()
    assert link.startswith(window.services.settings.auth_url.split("?")[0])
    assert "code_challenge=" in link
    qtbot.waitUntil(lambda: not dialog.error.isHidden(), timeout=15_000)

    text = dialog.error.text()
    assert CallbackTimeout.title in text
    assert "case included" in text
    assert "/Callback" in text
    assert "Traceback" not in text
    assert dialog.retry_button.isVisible()
    save_shot(dialog, shots, "09-connect-timeout")
    dialog.reject()


def test_a_revoked_grant_asks_to_sign_in_again(
    qtbot: QtBot, make_window: MakeWindow, sandbox: Sandbox, shots: Path
) -> None:
    window = make_window(email=SOLE_TRADER)
    connect_and_pick(qtbot, window, "", 1)
    connection = window.selected_connection()
    assert connection is not None

    sandbox.revoke_grants(SOLE_TRADER)
    force_expiry(window)

    qtbot.waitUntil(
        lambda: window.status_of(connection.id) == SIGN_IN_AGAIN, timeout=15_000
    )
    qtbot.waitUntil(lambda: not window.details_error.isHidden())
    assert SignInRequired.explanation in window.details_error.text()
    assert not window.copy_action.isEnabled()
    assert window.sign_in_action.isEnabled()
    save_shot(window, shots, "10-main-sign-in-again")


def test_cancel_stops_waiting_and_frees_the_port(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(opener=lambda url: True)
    window.connect_action.trigger()
    dialog: ConnectDialog = window.connect_dialog
    qtbot.waitUntil(lambda: dialog.copy_button.isEnabled(), timeout=5_000)

    dialog.cancel_button.click()

    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
    assert not dialog.isVisible()
    assert window.services.context.registry.list() == []


def test_copied_access_token_is_cleared_from_the_clipboard(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(email=SOLE_TRADER)
    connect_and_pick(qtbot, window, "", 1)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("something else")

    window.copy_action.trigger()
    qtbot.waitUntil(lambda: clipboard.text() != "something else", timeout=10_000)
    token = clipboard.text()
    assert len(token) > 100
    assert window._clipboard_timer.isActive()
    assert window._clipboard_timer.interval() == 60_000

    window._clipboard_timer.timeout.emit()  # as if 60 s had passed

    assert clipboard.text() == ""
    assert not window._clipboard_timer.isActive()


def test_the_clipboard_is_left_alone_when_the_user_copied_something_else(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(email=SOLE_TRADER)
    connect_and_pick(qtbot, window, "", 1)
    clipboard = QGuiApplication.clipboard()
    window.copy_action.trigger()
    qtbot.waitUntil(lambda: window._clipboard_timer.isActive(), timeout=10_000)

    clipboard.setText("the user's own text")
    window.clear_clipboard()

    assert clipboard.text() == "the user's own text"


def test_window_geometry_is_remembered(qtbot: QtBot, make_window: MakeWindow) -> None:
    first = make_window()
    first.resize(700, 520)
    first.close()

    second = make_window()

    assert (second.width(), second.height()) == (700, 520)


def test_a_business_no_longer_reachable_is_reported_in_the_picker(
    qtbot: QtBot, make_window: MakeWindow, sandbox: Sandbox, shots: Path
) -> None:
    window = make_window()
    business_id = sandbox.business_ids(ACCOUNTANT)[3]
    connect_and_pick(qtbot, window, business_id, 2500)

    sandbox.revoke_business(ACCOUNTANT, business_id)
    window.change_action.trigger()
    picker = wait_for_picker(qtbot, window, 2499)

    assert not picker.notice.isHidden()
    assert "no longer reachable" in picker.notice.text()
    assert picker.current_business_id() != business_id
    save_shot(picker, shots, "11-picker-business-gone")
    picker.reject()


def test_sage_unreachable_shows_retrying_then_recovers(
    qtbot: QtBot, make_window: MakeWindow, sandbox: Sandbox, shots: Path
) -> None:
    window = make_window(email=SOLE_TRADER)
    connect_and_pick(qtbot, window, "", 1)
    connection = window.selected_connection()
    assert connection is not None

    sandbox.add_faults("token", ["502_html", "500", "502_html"])
    force_expiry(window)

    qtbot.waitUntil(
        lambda: window.status_of(connection.id) == UNREACHABLE, timeout=15_000
    )
    assert "Sage unreachable" in window.details_error.text()
    save_shot(window, shots, "12-main-unreachable")
    qtbot.waitUntil(
        lambda: window.status_of(connection.id) == CONNECTED, timeout=30_000
    )
    assert window.details_error.isHidden()


def test_sign_in_again_after_a_revoked_grant_restores_the_connection(
    qtbot: QtBot, make_window: MakeWindow, sandbox: Sandbox
) -> None:
    window = make_window(email=SOLE_TRADER)
    connect_and_pick(qtbot, window, "", 1)
    connection = window.selected_connection()
    assert connection is not None
    sandbox.revoke_grants(SOLE_TRADER)
    force_expiry(window)
    qtbot.waitUntil(
        lambda: window.status_of(connection.id) == SIGN_IN_AGAIN, timeout=15_000
    )

    window.sign_in_action.trigger()

    qtbot.waitUntil(
        lambda: window.status_of(connection.id) == CONNECTED, timeout=20_000
    )
    again = window.selected_connection()
    assert again is not None
    assert again.id == connection.id
    assert again.business_id == connection.business_id
    assert window.copy_action.isEnabled()


def test_registration_rejects_a_bad_callback_url_with_its_explanation(
    qtbot: QtBot, make_window: MakeWindow, shots: Path
) -> None:
    window = make_window()
    window.registration_action.trigger()
    dialog: RegistrationDialog = window.registration_dialog
    dialog.url_fields[0].setText("http://example.com/callback")

    dialog.save_button.click()

    qtbot.waitUntil(lambda: not dialog.error.isHidden(), timeout=10_000)
    assert dialog.isVisible()
    assert "Traceback" not in dialog.error.text()
    assert "What to do:" in dialog.error.text()
    save_shot(dialog, shots, "13-registration-error")
    dialog.reject()
