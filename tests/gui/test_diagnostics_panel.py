"""The Diagnostics panel against the sandbox: each cause the checks can
see shows as a marked row that unfolds into the catalogue's explanation and
remedy; causes that only arise at sign-in reach the screen through the
app's one error path (``ui.errors``) with the same words."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sage_desktop.auth.flow import SignInFlow
from sage_desktop.auth.last_sign_in import SignInRecord
from sage_desktop.config import Settings, load_settings
from sage_desktop.connections import Connection, ConnectionRegistry
from sage_desktop.context import AppContext
from sage_desktop.diagnostics.catalogue import CLEAR_COOKIES_URL, cause
from sage_desktop.errors import CodeExpired, RegionMismatch, SageDesktopError
from sage_desktop.sandbox import DEMO, Sandbox
from sage_desktop.sandbox.autobrowser import play
from sage_desktop.tokens import TokenSet
from sage_desktop.ui.diagnostics_panel import DiagnosticsPanel
from sage_desktop.ui.errors import ErrorBanner
from sage_desktop.ui.workers import wait_for_tasks
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

SOLE = "sole.trader@sandbox.example"
US_USER = "us.user@sandbox.example"
DEVELOPER = "developer@sandbox.example"


class Lab:
    """A sandbox, an in-memory keychain and the contexts the panel checks."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self.sandbox = sandbox
        self.root = root
        self.settings = load_settings(env=sandbox.env(), path=root / "none.json")
        self.vault = TokenVault(backend=MemoryKeyring(), lock_dir=root / "locks")
        self.registry = ConnectionRegistry(path=root / "c.json", vault=self.vault)
        self.record = SignInRecord(root / "last-sign-in.json")
        self.issued: list[str] = []
        self.held: list[socket.socket] = []

    def context(self, **changes: Any) -> AppContext:
        settings = self.settings.with_(**changes) if changes else self.settings
        return AppContext(
            settings=settings,
            vault=self.vault,
            registry=self.registry,
            sign_in_record=self.record,
        )

    def connect(
        self, email: str, *, region: str = "GB", expired_access: bool = False
    ) -> Connection:
        answer = self.sandbox.issue_tokens(email)
        self.issued += [answer["access_token"], answer["refresh_token"]]
        now = time.time()
        self.vault.save(
            email,
            TokenSet(
                access_token=answer["access_token"],
                access_expires_at=now + (-5 if expired_access else 300),
                refresh_token=answer["refresh_token"],
                refresh_expires_at=now + answer["refresh_token_expires_in"],
                obtained_at=now,
            ),
        )
        ids = self.sandbox.business_ids(email)
        connection = Connection(
            id=email,
            user_id=email,
            user_name=email,
            email=email,
            region=region,
            scope="full_access",
            business_id=ids[0] if ids else None,
            business_name=self.sandbox.business(ids[0])["name"] if ids else None,
            created_at=now,
            last_used_at=now,
        )
        self.registry.save(connection)
        return connection


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Sandbox() as sandbox:
        made = Lab(sandbox, tmp_path)
        yield made
        for sock in made.held:
            sock.close()


def run_panel(qtbot: QtBot, context: AppContext) -> DiagnosticsPanel:
    panel = DiagnosticsPanel(context, timeout=2)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.finished_checks, timeout=30_000):
        panel.run_checks()
    return panel


def shows(panel: DiagnosticsPanel, status: str, title: str) -> None:
    rows = [(s, t) for s, t, _ in panel.rows()]
    assert (status, title) in rows, rows


def explains(panel: DiagnosticsPanel, cause_id: str, variant: str | None) -> None:
    values = {"region": "US"} if cause_id == "region_mismatch" else None
    text = cause(cause_id).render(variant, values)
    shown = panel.text()
    assert text.explanation in shown
    assert text.remedy.split(".")[0] in shown


# --- causes the checks see -------------------------------------------------


def _wrong_case_callback(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    return lab.context(redirect_uris=("http://localhost:8765/Callback",))


def _developer_login(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    lab.connect(DEVELOPER)
    return lab.context()


def _region_forced(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    lab.connect(US_USER, region="US")
    return lab.context(country="gb")


def _headers_dropped(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    real = requests.Session.request

    def request(self: requests.Session, method: str, url: str, **kw: Any) -> Any:
        if method.upper() == "POST":
            kw["headers"] = {**dict(kw.get("headers") or {}), "Accept": None}
        return real(self, method, url, **kw)

    mp.setattr(requests.Session, "request", request)
    return lab.context()


def _revoked(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    connection = lab.connect(SOLE)
    lab.registry.mark_sign_in_required(connection.id)
    return lab.context()


def _wrong_secret(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    return lab.context(client_secret="not-the-secret-" + "y" * 20)


def _ports_busy(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    holder = socket.socket()
    lab.held.append(holder)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    return lab.context(redirect_uris=(f"http://127.0.0.1:{port}/callback",))


def _business_removed(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    connection = lab.connect(SOLE)
    lab.sandbox.revoke_business(SOLE, connection.business_id or "")
    return lab.context()


def _sage_down(lab: Lab, mp: pytest.MonkeyPatch) -> AppContext:
    lab.sandbox.add_faults("api", ["hang"])
    return lab.context()


Setup = Callable[[Lab, pytest.MonkeyPatch], AppContext]

CASES: list[tuple[str, Setup, str, str, str, str | None]] = [
    # name, set-up, status, row title, cause, variant
    (
        "callback",
        _wrong_case_callback,
        "failed",
        "Callback URLs registered",
        "callback_mismatch",
        "refused",
    ),
    (
        "developer",
        _developer_login,
        "failed",
        f"Business ({DEVELOPER})",
        "developer_login",
        None,
    ),
    (
        "region",
        _region_forced,
        "warning",
        f"Region ({US_USER})",
        "region_mismatch",
        None,
    ),
    (
        "headers",
        _headers_dropped,
        "failed",
        "Client id and secret",
        "missing_headers",
        None,
    ),
    (
        "refresh",
        _revoked,
        "failed",
        f"Sign-in ({SOLE})",
        "refresh_token_invalid",
        None,
    ),
    (
        "client",
        _wrong_secret,
        "failed",
        "Client id and secret",
        "invalid_client",
        None,
    ),
    (
        "ports",
        _ports_busy,
        "failed",
        "Callback ports",
        "registration",
        "ports_busy",
    ),
    (
        "business",
        _business_removed,
        "failed",
        f"Business ({SOLE})",
        "business_access",
        None,
    ),
    ("down", _sage_down, "failed", "Sage API", "sage_unavailable", None),
]


@pytest.mark.parametrize(
    ("setup", "status", "title", "cause_id", "variant"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_panel_marks_the_cause_and_unfolds_its_remedy(
    qtbot: QtBot,
    lab: Lab,
    monkeypatch: pytest.MonkeyPatch,
    setup: Setup,
    status: str,
    title: str,
    cause_id: str,
    variant: str | None,
) -> None:
    context = setup(lab, monkeypatch)

    panel = run_panel(qtbot, context)

    shows(panel, status, title)
    if cause_id == "business_access":
        assert "You no longer have access to" in panel.text()
        assert cause(cause_id).text.remedy.split(".")[0] in panel.text()
    else:
        explains(panel, cause_id, variant)
    if cause_id == "region_mismatch":
        assert CLEAR_COOKIES_URL in panel.text()
        assert "choose US" in panel.text()


def test_a_healthy_set_up_passes_and_copy_report_holds_no_secret(
    qtbot: QtBot, lab: Lab
) -> None:
    lab.connect(SOLE)

    panel = run_panel(qtbot, lab.context())
    qtbot.mouseClick(panel.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()

    assert panel.report is not None
    assert panel.report.ok
    assert "failed" not in {s for s, _, _ in panel.rows()}
    assert panel.status_label.text().startswith("Report copied")
    assert "[ ok ] Business (sole.trader@sandbox.example)" in copied
    report = json.loads(copied[copied.index("\n{") :])
    assert report["ok"] is True
    assert DEMO.client_secret not in copied
    for token in lab.issued:
        assert token not in copied


# --- causes that arise at sign-in, shown through the one error path -----------


def _sign_in(settings: Settings, lab: Lab, email: str, **kw: Any) -> BaseException:
    from sage_desktop.auth.endpoint import TokenEndpoint

    endpoint = TokenEndpoint(settings, DEMO.client_secret)

    def opener(url: str) -> bool:
        play(url, email=email)
        return True

    flow = SignInFlow(
        settings, endpoint, lab.vault, lab.registry, opener=opener, record=lab.record
    )
    try:
        flow.run(timeout=10, **kw)
    except SageDesktopError as exc:
        return exc
    finally:
        endpoint.close()
    raise AssertionError("the sign-in should have failed")


@pytest.mark.parametrize(
    ("cause_id", "error"),
    [("region_mismatch", RegionMismatch), ("code_expired", CodeExpired)],
)
def test_sign_in_failures_show_the_catalogue_words_in_the_window(
    qtbot: QtBot, lab: Lab, cause_id: str, error: type[BaseException]
) -> None:
    if cause_id == "code_expired":
        lab.sandbox.config.code_ttl = 0
        failure = _sign_in(lab.settings, lab, SOLE)
    else:
        failure = _sign_in(lab.settings, lab, US_USER, country="gb")
    banner = ErrorBanner()
    qtbot.addWidget(banner)

    banner.show_error(failure)

    assert isinstance(failure, error)
    text = cause(cause_id).render()
    assert text.title in banner.text()
    assert text.explanation in banner.text()
    assert text.remedy in banner.text()


@pytest.mark.parametrize("cause_id", ["region_mismatch", "code_expired"])
def test_the_panel_recalls_a_failed_sign_in_with_its_remedy(
    qtbot: QtBot, lab: Lab, cause_id: str
) -> None:
    if cause_id == "code_expired":
        lab.sandbox.config.code_ttl = 0
        _sign_in(lab.settings, lab, SOLE)
    else:
        _sign_in(lab.settings, lab, US_USER, country="gb")

    panel = run_panel(qtbot, lab.context())

    text = cause(cause_id).render()
    assert ("failed", "Last sign-in") in [(s, t) for s, t, _ in panel.rows()]
    assert any(t == "Last sign-in" and text.title in r for _, t, r in panel.rows())
    assert text.explanation in panel.text()
    assert f"What to do: {text.remedy}" in panel.text()
    assert '"last_sign_in"' in panel.report_text()


# --- reached from the main window --------------------------------------------


def test_the_main_window_opens_diagnostics_with_the_apps_own_worker(
    qtbot: QtBot, lab: Lab
) -> None:
    from sage_desktop.ui.main_window import MainWindow
    from sage_desktop.ui.services import Services

    lab.connect(SOLE)
    services = Services(lab.context())
    window = MainWindow(services)
    qtbot.addWidget(window)
    try:
        window.diagnostics_action.trigger()
        panel = window.diagnostics_panel
        qtbot.waitUntil(lambda: panel.report is not None, timeout=30_000)

        assert panel.isVisible()
        assert panel.report is not None
        assert panel.report.ok
        shows(panel, "passed", f"Business ({SOLE})")
    finally:
        window.close()
        services.shutdown()
        wait_for_tasks()
