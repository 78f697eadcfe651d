"""App registration: the client id, secret and callback URLs from Sage.

Sage's developer portal issues a client id and secret for each app and
matches callback URLs exactly, case included, so the dialog shows the URLs
to register with a copy button each and says so. The secret goes straight
to the keychain through the vault; it is never written to the settings
file and never shown again.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sage_desktop.ui.errors import ErrorBanner
from sage_desktop.ui.services import Services
from sage_desktop.ui.workers import run_task

log = logging.getLogger(__name__)

REGIONS = (
    ("Let Sage ask (region picker)", None),
    ("United Kingdom (GB)", "gb"),
    ("Ireland (IE)", "ie"),
    ("Canada (CA)", "ca"),
    ("United States (US)", "us"),
)
SCOPES = (
    ("Full access (full_access)", "full_access"),
    ("Read only (readonly)", "readonly"),
)
EXACT_NOTE = (
    "Register each of these callback URLs in Sage's developer portal "
    "exactly as written here: Sage compares them character by character, "
    "case included (http://localhost:8765/callback is not "
    "http://localhost:8765/Callback). The app uses the first one whose port "
    "is free."
)


class RegistrationDialog(QDialog):
    """Edit the app registration; saving runs on a worker thread."""

    def __init__(
        self,
        services: Services,
        parent: QWidget | None = None,
        *,
        first_run: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("registrationDialog")
        self.setWindowTitle("App registration")
        self.setAccessibleName("App registration")
        self._services = services
        settings = services.settings

        intro = QLabel(
            "Welcome. sage-desktop needs your app's registration from Sage's "
            "App Registry (developerselfservice.sageone.com) before you can "
            "connect."
            if first_run
            else "Your app's registration from Sage's App Registry."
        )
        intro.setWordWrap(True)

        self.client_id = QLineEdit(settings.client_id)
        self.client_id.setObjectName("clientId")
        self.client_id.setAccessibleName("Client ID")
        self.client_id.setPlaceholderText("e.g. 4b6a.../a1f3...")
        self.client_id.setCursorPosition(0)  # show the start of a long id
        self.client_secret = QLineEdit()
        self.client_secret.setObjectName("clientSecret")
        self.client_secret.setAccessibleName("Client secret")
        self.client_secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.client_secret.setPlaceholderText(
            "Kept in the system keychain; leave empty to keep the saved one"
        )
        self.region = QComboBox()
        self.region.setAccessibleName("Region")
        for label, value in REGIONS:
            self.region.addItem(label, value)
        self.region.setCurrentIndex(
            max(0, self.region.findData(settings.country)) if settings.country else 0
        )
        self.scope = QComboBox()
        self.scope.setAccessibleName("Scope")
        for label, value in SCOPES:
            self.scope.addItem(label, value)
        self.scope.setCurrentIndex(max(0, self.scope.findData(settings.scope)))

        form = QFormLayout()
        form.addRow("Client &ID:", self.client_id)
        form.addRow("Client &secret:", self.client_secret)
        form.addRow("&Region:", self.region)
        form.addRow("S&cope:", self.scope)

        urls_box = QGroupBox("Callback URLs to register in Sage")
        self.note = QLabel(EXACT_NOTE)
        self.note.setObjectName("exactNote")
        self.note.setWordWrap(True)
        self._url_grid = QGridLayout()
        self.url_fields: list[QLineEdit] = []
        for uri in settings.redirect_uris:
            self._add_url_row(uri)
        add_button = QPushButton("&Add a callback URL")
        add_button.clicked.connect(lambda: self._add_url_row(""))
        copy_all = QPushButton("Copy &all")
        copy_all.setAccessibleName("Copy all callback URLs")
        copy_all.clicked.connect(self.copy_all_urls)
        url_buttons = QHBoxLayout()
        url_buttons.addWidget(add_button)
        url_buttons.addStretch(1)
        url_buttons.addWidget(copy_all)
        box_layout = QVBoxLayout(urls_box)
        box_layout.addWidget(self.note)
        box_layout.addLayout(self._url_grid)
        box_layout.addLayout(url_buttons)

        self.error = ErrorBanner(self)
        self.status = QLabel()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(urls_box)
        layout.addWidget(self.error)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(620, 520)

    def _add_url_row(self, uri: str) -> None:
        row = len(self.url_fields)
        field = QLineEdit(uri)
        field.setObjectName(f"callbackUrl{row}")
        field.setAccessibleName(f"Callback URL {row + 1}")
        copy = QPushButton("Copy")
        copy.setAccessibleName(f"Copy callback URL {row + 1}")
        copy.clicked.connect(lambda: self._copy(field.text()))
        self._url_grid.addWidget(field, row, 0)
        self._url_grid.addWidget(copy, row, 1)
        self.url_fields.append(field)

    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status.setText(f"Copied {text}")

    def copy_all_urls(self) -> None:
        self._copy("\n".join(self.redirect_uris()))
        self.status.setText("Copied every callback URL, one per line.")

    def redirect_uris(self) -> tuple[str, ...]:
        return tuple(f.text().strip() for f in self.url_fields if f.text().strip())

    def save(self) -> None:
        """Validate and save on a worker thread (the keychain may prompt)."""
        self.error.clear()
        self.save_button.setEnabled(False)
        self.status.setText("Saving...")
        services = self._services
        values: dict[str, Any] = {
            "client_id": self.client_id.text().strip(),
            "client_secret": self.client_secret.text(),
            "redirect_uris": self.redirect_uris(),
            "country": self.region.currentData(),
            "scope": self.scope.currentData(),
        }

        def work() -> Any:
            settings = services.save_registration(**values)
            if not services.has_client_secret():
                from sage_desktop.errors import ConfigError

                raise ConfigError(
                    "The client secret is missing for this client id.",
                    remedy="Enter the client secret from Sage's developer portal.",
                )
            return settings

        run_task(work, owner=self, on_done=self._saved, on_error=self._failed)

    def _saved(self, _settings: object) -> None:
        self.client_secret.clear()
        self.status.setText("Saved.")
        self.save_button.setEnabled(True)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        self.status.clear()
        self.error.show_error(exc)
