"""Starting the app: sandbox mode, one instance per user, crashes, Qt logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from guikit import save_shot
from PySide6.QtCore import qWarning
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sage_desktop.sandbox import DEMO
from sage_desktop.ui.app import launch, route_qt_messages
from sage_desktop.ui.crash import REDACTED, CrashHandler, scrub
from sage_desktop.ui.instance import SingleInstance, instance_name

SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQtdGhhdC1pcy1sb25n.sig4567890abcdef"


def unique_name() -> str:
    return f"sage-desktop-test-{uuid.uuid4().hex[:12]}"


def test_a_second_start_in_another_process_brings_the_first_forward(
    qtbot: QtBot,
) -> None:
    name = unique_name()
    first = SingleInstance(name)
    assert first.acquire()
    first.listen()
    script = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import sage_desktop.ui\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "app = QCoreApplication([])\n"
        "from sage_desktop.ui.instance import SingleInstance\n"
        f"sys.exit(3 if not SingleInstance({name!r}).acquire() else 0)\n"
    )
    result: list[int] = []

    def second_start() -> None:
        done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
        result.append(done.returncode)

    starter = threading.Thread(target=second_start)
    with qtbot.waitSignal(first.activation_requested, timeout=30_000):
        starter.start()
    starter.join(60)
    first.release()

    assert result == [3]


def test_the_name_is_free_again_after_release() -> None:
    name = unique_name()
    first = SingleInstance(name)
    assert first.acquire()
    first.listen()
    first.release()

    again = SingleInstance(name)
    assert again.acquire()
    again.release()


def test_instance_names_differ_for_the_sandbox() -> None:
    assert instance_name(sandbox=True) != instance_name(sandbox=False)
    assert instance_name() == instance_name()


def test_sandbox_mode_starts_the_sandbox_with_the_demo_registration(
    qtbot: QtBot, shots: Path
) -> None:
    name = unique_name()
    session = launch(sandbox=True, instance=name)
    assert session is not None
    try:
        window = session.window
        qtbot.waitUntil(lambda: window.note_label.isVisible(), timeout=20_000)
        settings = session.services.settings
        assert settings.client_id == DEMO.client_id
        assert settings.auth_url.startswith("http://127.0.0.1:")
        assert "accountant@sandbox.example" in window.note_label.text()
        assert window.registration_dialog is None
        qtbot.waitUntil(lambda: window.empty_panel.isVisible(), timeout=10_000)
        save_shot(window, shots, "app-sandbox-start")

        assert launch(sandbox=True, instance=name) is None
    finally:
        session.window.close()
        session.close()


def test_the_crash_report_is_copyable_and_holds_no_secret(
    qtbot: QtBot, shots: Path
) -> None:
    handler = CrashHandler()
    handler.install()
    try:
        try:
            raise RuntimeError(f"refresh failed: refresh_token={SECRET} code=GB%2Fabc")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(lambda: bool(handler.dialogs), timeout=5_000)
        dialog = handler.dialogs[0]
        report = dialog.report.toPlainText()
        save_shot(dialog, shots, "crash-dialog")
        dialog.copy_button.click()

        assert "RuntimeError" in report
        assert "Traceback" in report
        assert SECRET not in report
        assert "GB%2Fabc" not in report
        assert REDACTED in report
        assert QGuiApplication.clipboard().text() == report
        dialog.reject()
    finally:
        handler.uninstall()


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f'{{"access_token": "{SECRET}"}}',
        "client_secret=s3cr3t-short",
        f"https://x/callback?code={SECRET}&state=abc",
    ],
)
def test_scrub_removes_secrets(text: str) -> None:
    scrubbed = scrub(text)
    assert SECRET not in scrubbed
    assert "s3cr3t-short" not in scrubbed


def test_scrub_keeps_file_paths_readable() -> None:
    line = '  File "/work/main/sage_desktop/session/worker.py", line 417, in _run'
    assert scrub(line) == line


def test_qt_warnings_reach_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    from PySide6.QtCore import qInstallMessageHandler

    previous = qInstallMessageHandler(None)
    route_qt_messages()
    try:
        with caplog.at_level(logging.WARNING, logger="sage_desktop.ui.qt"):
            qWarning("a warning from Qt")
    finally:
        qInstallMessageHandler(previous)

    assert any(
        r.name == "sage_desktop.ui.qt" and "a warning from Qt" in r.getMessage()
        for r in caplog.records
    )


def test_scrub_keeps_function_names_and_platform_readable() -> None:
    line = (
        "in test_the_crash_report_is_copyable_and_holds_no_secret"
        " on Linux-6.18.0-1-x86_64-with-glibc2.36"
    )
    assert scrub(line) == line
