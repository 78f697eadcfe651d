"""The main window: connections, their business and their tokens' health.

Each connection shows its Sage user, chosen business and a status that the
refresh worker's events keep live: connected, refreshing, Sage unreachable
(retrying), or sign in again. The selected connection's details show the
access token's remaining life as a bar that moves every second, the refresh
token's days left (Sage: 31 days) and the last refresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QToolBar,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

from sage_desktop.ui.errors import ErrorBanner
from sage_desktop.ui.services import Services, TokenHealth
from sage_desktop.ui.workers import EventBridge, run_task

if TYPE_CHECKING:
    from PySide6.QtGui import QCloseEvent, QPaintEvent
    from PySide6.QtWidgets import QTreeWidgetItem

    from sage_desktop.connections import Connection
    from sage_desktop.errors import SageDesktopError
    from sage_desktop.models import Business
    from sage_desktop.ui.picker import BusinessPicker
    from sage_desktop.ui.services import BusinessBatch

log = logging.getLogger(__name__)

CONNECTED = "Connected"
REFRESHING = "Refreshing..."
UNREACHABLE = "Sage unreachable (retrying)"
SIGN_IN_AGAIN = "Sign in again"
UNKNOWN = "Checking..."

#: Seconds the copied access token may stay on the clipboard.
CLIPBOARD_SECONDS = 60
#: Pacing of the window's own token requests while Sage is unreachable:
#: 2 s, doubling up to 30 s (the worker adds its own backoff and jitter).
RETRY_FIRST = 2.0
RETRY_CAP = 30.0

COLUMNS = ("User", "Email", "Region", "Business", "Status")
# Qt.ItemDataRole.UserRole. Touching the ``Qt`` namespace builds all of its
# ~160 enums (about 100 ms), so nothing before the first paint does.
_ID_ROLE = 0x0100
_ACCESSIBLE_TEXT_ROLE = 11  # Qt.ItemDataRole.AccessibleTextRole


def describe_seconds(seconds: float) -> str:
    """``4 min 12 s left`` style text for the access token bar."""
    if seconds <= 0:
        return "expired"
    whole = int(seconds)
    if whole >= 60:
        return f"{whole // 60} min {whole % 60:02d} s left"
    return f"{whole} s left"


class MainWindow(QMainWindow):
    """The connection manager's window.

    Args:
        services: the layers below, called on worker threads only.
        window_settings: where the geometry is remembered (QSettings).

    Signals:
        first_painted: the window's first frame is on screen; start-up work
            that may block (files, keychain, threads) begins after it.
    """

    first_painted = Signal()

    def __init__(
        self,
        services: Services,
        *,
        window_settings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(
            "sage-desktop (sandbox)" if services.sandbox else "sage-desktop"
        )
        self.setAccessibleName("sage-desktop")
        self.services = services
        self._window_settings = window_settings
        self._connections: dict[str, Connection] = {}
        self._health: dict[str, TokenHealth] = {}
        self._status: dict[str, str] = {}
        self._errors: dict[str, SageDesktopError] = {}
        self._last_refresh: dict[str, float] = {}
        self._inflight: set[str] = set()
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._clipboard_digest: str | None = None
        self._closing = False
        self._painted = False
        self.picker: BusinessPicker | None = None
        self.connect_dialog: Any = None
        self.registration_dialog: Any = None

        self._shortcuts: list[tuple[QAction, str]] = []
        self._build_actions()
        self._build_widgets()
        self._restore_geometry()

        self._bridge = EventBridge(self)
        self._bridge.received.connect(self._on_token_event)
        services.subscribe(self._bridge)

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self._clipboard_timer = QTimer(self)
        self._clipboard_timer.setSingleShot(True)
        self._clipboard_timer.timeout.connect(self.clear_clipboard)
        self._update_actions()

    # --- building ---------------------------------------------------------

    def _action(self, text: str, shortcut: str | None, slot: Any, tip: str) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            # Applied by start(): setShortcut builds the Qt namespace.
            self._shortcuts.append((action, shortcut))
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.connect_action = self._action(
            "&Connect...", "Ctrl+N", self.connect_new, "Sign in to Sage"
        )
        self.sign_in_action = self._action(
            "&Sign in again",
            "Ctrl+Shift+S",
            self.sign_in_again,
            "Sign in again for the selected connection",
        )
        self.change_action = self._action(
            "Change &business...",
            "Ctrl+B",
            self.change_business,
            "Choose another business for the selected connection",
        )
        self.copy_action = self._action(
            "Copy access &token",
            "Ctrl+Shift+C",
            self.copy_access_token,
            f"Copy a valid access token; the clipboard is cleared after "
            f"{CLIPBOARD_SECONDS} s",
        )
        self.disconnect_action = self._action(
            "&Disconnect...",
            "Del",
            self.disconnect_selected,
            "Revoke the selected connection at Sage and forget it",
        )
        self.registration_action = self._action(
            "App &registration...",
            "Ctrl+,",
            self.edit_registration,
            "Client id, secret and callback URLs from Sage's developer portal",
        )
        self.diagnostics_action = self._action(
            "&Diagnostics...",
            None,
            self.show_diagnostics,
            "Check the set-up and explain what is wrong",
        )
        self.reload_action = self._action(
            "&Reload connections", "F5", self.reload_connections, "Read them again"
        )
        self.quit_action = self._action("&Quit", "Ctrl+Q", self.close, "Quit")

        menu = self.menuBar().addMenu("&Connection")
        for action in (
            self.connect_action,
            self.sign_in_action,
            self.change_action,
            self.copy_action,
            self.disconnect_action,
        ):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.reload_action)
        menu.addAction(self.quit_action)
        settings_menu = self.menuBar().addMenu("&Settings")
        settings_menu.addAction(self.registration_action)
        settings_menu.addAction(self.diagnostics_action)

        toolbar = QToolBar("Actions")
        toolbar.setObjectName("actionsToolbar")
        toolbar.setMovable(False)
        for action in (
            self.connect_action,
            self.sign_in_action,
            self.change_action,
            self.copy_action,
            self.disconnect_action,
        ):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

    def _build_widgets(self) -> None:
        self.connections_view = QTreeWidget()
        self.connections_view.setObjectName("connections")
        self.connections_view.setAccessibleName("Connections")
        self.connections_view.setColumnCount(len(COLUMNS))
        self.connections_view.setHeaderLabels(COLUMNS)
        self.connections_view.setRootIsDecorated(False)
        self.connections_view.setUniformRowHeights(True)
        self.connections_view.setAlternatingRowColors(True)
        header = self.connections_view.header()
        header.setStretchLastSection(False)
        for column, width in ((0, 150), (1, 220), (2, 60), (4, 190)):
            self.connections_view.setColumnWidth(column, width)
        self.connections_view.itemSelectionChanged.connect(self._on_selection)
        self.connections_view.itemActivated.connect(lambda *_: self.change_business())

        self.empty_panel = self._build_empty_panel()

        details = QGroupBox("Selected connection")
        details.setObjectName("details")
        self.details = details
        self.business_label = QLabel("-")
        self.business_label.setObjectName("businessName")
        self.change_button = QPushButton("C&hange...")
        self.change_button.setAccessibleName("Change business")
        self.change_button.clicked.connect(self.change_business)
        business_row = QHBoxLayout()
        business_row.addWidget(self.business_label, 1)
        business_row.addWidget(self.change_button)
        self.status_label = QLabel("-")
        self.status_label.setObjectName("connectionStatus")
        self.access_bar = QProgressBar()
        self.access_bar.setObjectName("accessTokenLife")
        self.access_bar.setAccessibleName("Access token remaining life")
        self.access_bar.setTextVisible(True)
        self.access_bar.setFormat("-")
        self.refresh_label = QLabel("-")
        self.refresh_label.setObjectName("refreshTokenDays")
        self.last_refresh_label = QLabel("-")
        self.last_refresh_label.setObjectName("lastRefresh")
        self.details_error = ErrorBanner(self)

        form = QFormLayout(details)
        form.addRow("Business:", business_row)
        form.addRow("Status:", self.status_label)
        form.addRow("Access token:", self.access_bar)
        form.addRow("Refresh token:", self.refresh_label)
        form.addRow("Last refresh:", self.last_refresh_label)
        form.addRow(self.details_error)

        self.note_label = QLabel()
        self.note_label.setObjectName("note")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet(
            "#note { background: #e8f4fd; border: 1px solid #9cc9ef;"
            " border-radius: 4px; padding: 6px; color: #0b3c61; }"
        )
        self.note_label.hide()

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.note_label)
        top_layout.addWidget(self.connections_view)
        top_layout.addWidget(self.empty_panel, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(top, 3)
        layout.addWidget(details, 0)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready")
        self.resize(900, 600)

    def _build_empty_panel(self) -> QWidget:
        """What a first-time user sees: one obvious next step."""
        panel = QGroupBox()
        panel.setObjectName("emptyPanel")
        panel.setAccessibleName("No connection yet")
        # Alignment through the style sheet: see _ID_ROLE on Qt's enums.
        panel.setStyleSheet(
            "#emptyPanel QLabel { qproperty-alignment: AlignCenter; }"
            " #emptyHeading { font-size: 15pt; font-weight: bold; }"
        )
        heading = QLabel("No connection yet")
        heading.setObjectName("emptyHeading")
        text = QLabel(
            "Connect signs you in to Sage in your own browser. Then you "
            "choose which business to work on, and every tool on this "
            "computer can get a valid access token."
        )
        text.setWordWrap(True)
        button = QPushButton("Connect to Sage...")
        button.setObjectName("emptyConnect")
        button.setAccessibleName("Connect to Sage")
        button.clicked.connect(self.connect_new)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(panel)
        layout.addStretch(1)
        layout.addWidget(heading)
        layout.addWidget(text)
        layout.addSpacing(12)
        layout.addLayout(row)
        layout.addStretch(2)
        panel.hide()
        return panel

    # --- start-up ---------------------------------------------------------

    def start(self) -> None:
        """After the window shows: first-run registration, then the list."""
        from PySide6.QtCore import Qt  # see _ID_ROLE: not before the paint
        from PySide6.QtGui import QKeySequence
        from PySide6.QtWidgets import QHeaderView

        for action, shortcut in self._shortcuts:
            action.setShortcut(QKeySequence(shortcut))
        self.connections_view.header().setSectionResizeMode(
            3, QHeaderView.ResizeMode.Stretch
        )
        self.business_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self._ticker.start()
        if self.services.needs_registration():
            self.edit_registration(first_run=True)
        self.reload_connections()

    def show_note(self, text: str) -> None:
        """A lasting note above the connections (e.g. the sandbox logins)."""
        self.note_label.setText(text)
        self.note_label.show()

    def bring_forward(self) -> None:
        """Another start of the app asked for this window (single instance)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    # --- connections --------------------------------------------------------

    def reload_connections(self, select_id: str | None = None) -> None:
        """Read the connections (registry file) on a worker thread."""
        run_task(
            self.services.connections,
            owner=self,
            on_done=lambda conns: self._show_connections(conns, select_id),
            on_error=self._show_error,
        )

    def _show_connections(
        self, connections: list[Connection], select_id: str | None
    ) -> None:
        current = select_id or self.selected_id()
        self._connections = {c.id: c for c in connections}
        for gone in set(self._health) - set(self._connections):
            self._health.pop(gone, None)
            self._status.pop(gone, None)
            self._errors.pop(gone, None)
        from PySide6.QtWidgets import QTreeWidgetItem

        view = self.connections_view
        view.clear()
        for connection in connections:
            if connection.needs_sign_in:
                self._status[connection.id] = SIGN_IN_AGAIN
            else:
                self._status.setdefault(connection.id, UNKNOWN)
            item = QTreeWidgetItem(view)
            item.setData(0, _ID_ROLE, connection.id)
            self._fill_item(item, connection)
            self._load_health(connection.id)
        has_any = bool(connections)
        view.setVisible(has_any)
        self.empty_panel.setVisible(not has_any)
        self.details.setVisible(has_any)
        if has_any:
            ids = [c.id for c in connections]
            index = ids.index(current) if current in ids else 0
            top = view.topLevelItem(index)
            if top is not None:
                view.setCurrentItem(top)
        self._on_selection()

    def _fill_item(self, item: QTreeWidgetItem, connection: Connection) -> None:
        status = self._status.get(connection.id, UNKNOWN)
        values = (
            connection.user_name,
            connection.email,
            connection.region,
            connection.business_name or "No business chosen",
            status,
        )
        for column, value in enumerate(values):
            item.setText(column, value)
        item.setToolTip(4, self._status_tip(connection.id))
        item.setData(
            0,
            _ACCESSIBLE_TEXT_ROLE,
            f"{connection.user_name}, {connection.email}, {status}",
        )

    def _refresh_item(self, connection_id: str) -> None:
        view = self.connections_view
        for row in range(view.topLevelItemCount()):
            item = view.topLevelItem(row)
            if item is not None and item.data(0, _ID_ROLE) == connection_id:
                connection = self._connections.get(connection_id)
                if connection is not None:
                    self._fill_item(item, connection)
        if connection_id == self.selected_id():
            self._show_details()

    def _status_tip(self, connection_id: str) -> str:
        error = self._errors.get(connection_id)
        return error.user_message() if error is not None else ""

    def selected_id(self) -> str | None:
        item = self.connections_view.currentItem()
        if item is None:
            return None
        value = item.data(0, _ID_ROLE)
        return str(value) if value else None

    def selected_connection(self) -> Connection | None:
        selected = self.selected_id()
        return self._connections.get(selected) if selected else None

    def status_of(self, connection_id: str) -> str:
        return self._status.get(connection_id, UNKNOWN)

    def _on_selection(self) -> None:
        self._show_details()
        self._update_actions()

    def _update_actions(self) -> None:
        connection = self.selected_connection()
        has = connection is not None
        dead = has and self._status.get(connection.id) == SIGN_IN_AGAIN  # type: ignore[union-attr]
        self.sign_in_action.setEnabled(has)
        self.change_action.setEnabled(has and not dead)
        self.change_button.setEnabled(has and not dead)
        self.copy_action.setEnabled(has and not dead)
        self.disconnect_action.setEnabled(has)
        self.details.setEnabled(has)

    # --- details and the live bar -------------------------------------------

    def _show_details(self) -> None:
        connection = self.selected_connection()
        if connection is None:
            self.business_label.setText("-")
            self.status_label.setText("-")
            self.details_error.clear()
            self._show_health(None)
            return
        if connection.business_name:
            business = f"{connection.business_name}  ({connection.business_id})"
        else:
            business = "No business chosen yet"
        self.business_label.setText(business)
        self.status_label.setText(self._status.get(connection.id, UNKNOWN))
        error = self._errors.get(connection.id)
        if error is not None:
            self.details_error.show_error(error)
        else:
            self.details_error.clear()
        self._show_health(connection.id)

    def _show_health(self, connection_id: str | None) -> None:
        health = self._health.get(connection_id) if connection_id else None
        if health is None:
            self.access_bar.setRange(0, 1)
            self.access_bar.setValue(0)
            self.access_bar.setFormat("-")
            self.refresh_label.setText("-")
            self.last_refresh_label.setText("-")
            return
        now = time.time()
        lifetime = max(1, int(health.access_lifetime))
        left = health.access_left(now)
        self.access_bar.setRange(0, lifetime)
        self.access_bar.setValue(max(0, min(lifetime, int(left))))
        self.access_bar.setFormat(describe_seconds(left))
        self.access_bar.setAccessibleDescription(describe_seconds(left))
        days = health.refresh_days_left(now)
        if self._status.get(connection_id or "") == SIGN_IN_AGAIN:
            self.access_bar.setValue(0)
            self.access_bar.setFormat("not accepted by Sage: sign in again")
            self.refresh_label.setText("not accepted by Sage: sign in again")
        else:
            self._show_days(days)
        self._show_last_refresh(connection_id or "", health, now)

    def _show_days(self, days: float) -> None:
        self.refresh_label.setText(
            "expired"
            if days <= 0
            else f"{days:.0f} days left"
            if days >= 1
            else "less than a day left"
        )

    def _show_last_refresh(
        self, connection_id: str, health: TokenHealth, now: float
    ) -> None:
        when = self._last_refresh.get(connection_id, health.obtained_at)
        if when:
            ago = max(0, int(now - when))
            ago_text = f"{ago} s ago" if ago < 90 else f"{ago // 60} min ago"
            self.last_refresh_label.setText(
                f"{time.strftime('%H:%M:%S', time.localtime(when))} ({ago_text})"
            )
        else:
            self.last_refresh_label.setText("-")

    def _tick(self) -> None:
        """Every second: move the bar; refresh tokens that are nearly due."""
        now = time.time()
        for connection_id, health in list(self._health.items()):
            if self._status.get(connection_id) == SIGN_IN_AGAIN:
                continue
            if connection_id in self._inflight:
                continue
            if self._retry_at.get(connection_id, 0) > time.monotonic():
                continue
            due = max(5.0, 0.2 * health.access_lifetime)
            if health.access_left(now) <= due:
                self._refresh(connection_id)
        selected = self.selected_id()
        if selected:
            self._show_health(selected)

    def _load_health(self, connection_id: str) -> None:
        run_task(
            lambda: self.services.token_health(connection_id),
            owner=self,
            on_done=lambda health: self._set_health(connection_id, health),
            on_error=lambda exc: self._connection_failed(connection_id, exc),
        )

    def _set_health(self, connection_id: str, health: TokenHealth | None) -> None:
        if health is None:
            self._health.pop(connection_id, None)
        else:
            self._health[connection_id] = health
            if self._status.get(connection_id) in (UNKNOWN, REFRESHING):
                self._status[connection_id] = CONNECTED
        self._refresh_item(connection_id)

    def _refresh(self, connection_id: str) -> None:
        log.debug("asking for a fresh token for %s", connection_id)
        self._inflight.add(connection_id)
        if self._status.get(connection_id) != UNREACHABLE:
            self._status[connection_id] = REFRESHING
        self._refresh_item(connection_id)

        def done(health: TokenHealth | None) -> None:
            self._inflight.discard(connection_id)
            self._retry_at.pop(connection_id, None)
            self._failures.pop(connection_id, None)
            self._errors.pop(connection_id, None)
            self._status[connection_id] = CONNECTED
            self._set_health(connection_id, health)

        def failed(exc: BaseException) -> None:
            log.debug("no fresh token for %s: %r", connection_id, exc)
            self._inflight.discard(connection_id)
            failures = self._failures.get(connection_id, 0) + 1
            self._failures[connection_id] = failures
            delay = min(RETRY_CAP, RETRY_FIRST * 2 ** (failures - 1))
            self._retry_at[connection_id] = time.monotonic() + delay
            self._connection_failed(connection_id, exc)

        run_task(
            lambda: self.services.refresh_if_needed(connection_id),
            owner=self,
            on_done=done,
            on_error=failed,
        )

    def _connection_failed(self, connection_id: str, exc: BaseException) -> None:
        from sage_desktop.errors import SageDesktopError, SignInRequired

        if isinstance(exc, SignInRequired):
            self._status[connection_id] = SIGN_IN_AGAIN
        elif isinstance(exc, SageDesktopError) and exc.transient:
            self._status[connection_id] = UNREACHABLE
        if isinstance(exc, SageDesktopError):
            self._errors[connection_id] = exc
        else:
            log.error("connection %s failed", connection_id, exc_info=exc)
            self._errors[connection_id] = SageDesktopError()
        self._refresh_item(connection_id)
        self._update_actions()

    def _on_token_event(self, event: Any) -> None:
        """A refresh worker event (already on the GUI thread)."""
        from sage_desktop.errors import SageDesktopError, SignInRequired

        connection_id = event.connection_id
        if connection_id not in self._connections:
            return
        kind = str(event.kind)
        if kind in ("refreshed", "recovered"):
            self._last_refresh[connection_id] = event.at
            self._errors.pop(connection_id, None)
            self._status[connection_id] = CONNECTED
            self._load_health(connection_id)
        elif kind == "sign_in_required":
            self._connection_failed(connection_id, event.error or SignInRequired())
        elif kind == "transient_trouble":
            self._connection_failed(connection_id, event.error or SageDesktopError())
        self._refresh_item(connection_id)
        self._update_actions()

    # --- actions --------------------------------------------------------------

    def connect_new(self) -> None:
        """Connect...: sign in through the browser, then pick a business."""
        self._open_connect_dialog("Connect to Sage", None)

    def sign_in_again(self) -> None:
        connection = self.selected_connection()
        if connection is not None:
            self._open_connect_dialog("Sign in again", connection.id)

    def _open_connect_dialog(self, title: str, previous_id: str | None) -> None:
        from sage_desktop.ui.connect import ConnectDialog

        if self.services.needs_registration():
            self.edit_registration(first_run=True)
            return
        dialog = ConnectDialog(self.services, self, title=title)
        self.connect_dialog = dialog
        dialog.connected.connect(lambda result: self._signed_in(result, previous_id))
        dialog.open()
        dialog.start()

    def _signed_in(self, result: Any, previous_id: str | None) -> None:
        connection = result.connection
        self.services.after_sign_in(connection.id)
        self._status[connection.id] = CONNECTED
        self._errors.pop(connection.id, None)
        self._health.pop(connection.id, None)
        if previous_id and previous_id != connection.id:
            self._status.pop(previous_id, None)
        verb = "Connected" if result.created else "Signed in again"
        self.statusBar().showMessage(f"{verb} as {connection.email}.", 10_000)
        self._connections[connection.id] = connection
        self._retry_at.pop(connection.id, None)
        self._failures.pop(connection.id, None)
        self._refresh_item(connection.id)
        self._update_actions()
        self.reload_connections(select_id=connection.id)
        if not connection.business_id:
            self.change_business(connection)

    def change_business(self, connection: Connection | None = None) -> None:
        """Open the business picker for the selected connection."""
        from sage_desktop.ui.picker import BusinessPicker

        connection = connection or self.selected_connection()
        if connection is None:
            return
        picker = BusinessPicker(
            self,
            connection_label=f"{connection.user_name} ({connection.email})",
            remembered_id=connection.business_id,
        )
        self.picker = picker
        picker.setAttribute(_qt().WidgetAttribute.WA_DeleteOnClose)
        state = _LoadState()
        connection_id = connection.id

        def load() -> None:
            state.cancel.set()
            cancel = state.cancel = threading.Event()
            state.generation += 1
            generation = state.generation
            picker.begin_loading()

            def current() -> bool:
                return state.generation == generation

            def batch(value: BusinessBatch) -> None:
                if current():
                    picker.add_batch(*value)

            def done(_count: object) -> None:
                if current():
                    picker.finish_loading()

            def failed(exc: BaseException) -> None:
                from sage_desktop.errors import SageDesktopError

                if current():
                    picker.loading_failed(exc)
                    if isinstance(exc, SageDesktopError):
                        self._connection_failed(connection_id, exc)

            run_task(
                lambda report: self.services.load_businesses(
                    connection_id, report, cancel
                ),
                owner=picker,
                on_progress=batch,
                on_done=done,
                on_error=failed,
            )

        def finished(code: int) -> None:
            state.cancel.set()
            chosen = picker.chosen_business()
            if self.picker is picker:
                self.picker = None
            if code == BusinessPicker.DialogCode.Accepted.value and chosen:
                self._choose(connection_id, chosen)

        picker.reload_requested.connect(load)
        picker.finished.connect(finished)
        picker.open()
        load()

    def _choose(self, connection_id: str, business: Business) -> None:
        def done(connection: Connection) -> None:
            self._connections[connection.id] = connection
            self.statusBar().showMessage(
                f"{connection.email} now works on {business.name}.", 10_000
            )
            self.reload_connections(select_id=connection.id)

        run_task(
            lambda: self.services.choose_business(connection_id, business),
            owner=self,
            on_done=done,
            on_error=self._show_error,
        )

    def copy_access_token(self) -> None:
        """Copy a valid access token; cleared from the clipboard after 60 s."""
        connection = self.selected_connection()
        if connection is None:
            return
        connection_id = connection.id

        def done(token: str) -> None:
            _clipboard().setText(token)
            self._clipboard_digest = _digest(token)
            self._clipboard_timer.start(CLIPBOARD_SECONDS * 1000)
            self.statusBar().showMessage(
                f"Access token copied; the clipboard is cleared in "
                f"{CLIPBOARD_SECONDS} s.",
                CLIPBOARD_SECONDS * 1000,
            )

        run_task(
            lambda: self.services.access_token(connection_id),
            owner=self,
            on_done=done,
            on_error=self._show_error,
        )

    def clear_clipboard(self) -> None:
        """Empty the clipboard if it still holds the token this app put there."""
        self._clipboard_timer.stop()
        digest, self._clipboard_digest = self._clipboard_digest, None
        if digest is None:
            return
        clipboard = _clipboard()
        if _digest(clipboard.text()) == digest:
            clipboard.clear()
            self.statusBar().showMessage("Cleared the access token from the clipboard.")

    def ask_confirmation(self, title: str, text: str) -> bool:
        """Ask yes or no (tests replace this)."""
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return bool(answer == QMessageBox.StandardButton.Yes)

    def disconnect_selected(self) -> None:
        """Disconnect: confirm, revoke at Sage, forget tokens and entry."""
        connection = self.selected_connection()
        if connection is None:
            return
        if not self.ask_confirmation(
            "Disconnect",
            f"Disconnect {connection.email}? The app's access is revoked at "
            "Sage and the connection is forgotten on this computer. You can "
            "connect again at any time.",
        ):
            return
        connection_id = connection.id

        def done(problem: SageDesktopError | None) -> None:
            from sage_desktop.errors import SageDesktopError

            self._inflight.discard(connection_id)
            self.statusBar().showMessage(f"Disconnected {connection.email}.", 10_000)
            self.reload_connections()
            if problem is not None:
                self._show_error(
                    SageDesktopError(
                        "The connection was forgotten, but Sage could not be "
                        f"told to revoke it ({problem.explanation})",
                        title="Disconnected, not revoked",
                        remedy="Revoke the app's access in Sage's settings.",
                    )
                )

        self._inflight.add(connection_id)
        run_task(
            lambda: self.services.disconnect(connection_id),
            owner=self,
            on_done=done,
            on_error=self._show_error,
        )

    def edit_registration(self, first_run: bool = False) -> None:
        from sage_desktop.ui.registration import RegistrationDialog

        dialog = RegistrationDialog(self.services, self, first_run=first_run is True)
        self.registration_dialog = dialog
        dialog.open()

    def show_diagnostics(self) -> None:
        """Open the Diagnostics panel and run its checks."""
        from sage_desktop.ui.diagnostics_panel import DiagnosticsPanel

        panel = DiagnosticsPanel(
            self.services.context, self, worker_factory=self.services.worker
        )
        self.diagnostics_panel = panel
        panel.open()
        panel.run_checks()

    def _show_error(self, exc: BaseException) -> None:
        """The window's one way to show an error that belongs to no row."""
        from sage_desktop.ui.errors import show_error

        if self._closing:
            return
        show_error(self, exc)

    # --- geometry and closing ------------------------------------------------

    def _restore_geometry(self) -> None:
        store = self._window_settings
        if store is None:
            return
        geometry = store.value("main/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)

    def save_geometry(self) -> None:
        store = self._window_settings
        if store is None:
            return
        store.setValue("main/geometry", self.saveGeometry())
        store.sync()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._closing = True
        self.save_geometry()
        self._ticker.stop()
        self.clear_clipboard()
        for dialog in (self.picker, self.connect_dialog, self.registration_dialog):
            if dialog is not None:
                with contextlib.suppress(RuntimeError):  # already deleted
                    dialog.reject()
        super().closeEvent(event)


@dataclass
class _LoadState:
    """The business list being loaded into one picker (a reload replaces it)."""

    cancel: threading.Event = field(default_factory=threading.Event)
    generation: int = 0


def _clipboard() -> Any:
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.clipboard()


def _qt() -> Any:
    """The ``Qt`` namespace, imported when first needed (see _ID_ROLE)."""
    from PySide6.QtCore import Qt

    return Qt


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()
