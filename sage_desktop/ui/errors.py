"""The one path from an error to the screen.

Every failure the user sees goes through :func:`describe`: a
:class:`SageDesktopError` shows its own title, explanation and remedy; any
other exception is shown as a generic failure, never as a traceback (the
traceback goes to the log and, for uncaught ones, the crash dialog).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from sage_desktop.errors import SageDesktopError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorText:
    """What the screen shows for one error."""

    title: str
    explanation: str
    remedy: str

    @property
    def plain(self) -> str:
        return f"{self.title}\n{self.explanation}\nWhat to do: {self.remedy}"


def describe(exc: BaseException) -> ErrorText:
    """The user-facing text of ``exc``; secret-free by construction.

    Only :class:`SageDesktopError` messages are shown verbatim, because only
    they are written for users and kept free of tokens (see errors.py).
    """
    from sage_desktop.errors import SageDesktopError

    if isinstance(exc, SageDesktopError):
        return ErrorText(exc.title, exc.explanation, exc.remedy)
    generic = SageDesktopError()
    return ErrorText(generic.title, generic.explanation, generic.remedy)


def show_error(parent: QWidget | None, exc: BaseException) -> None:
    """Show ``exc`` in a modal message box: explanation and remedy."""
    text = describe(exc)
    if not isinstance(exc, SageDesktopError):
        log.error("unexpected failure shown to the user", exc_info=exc)
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(text.title)
    box.setText(f"<b>{_escape(text.title)}</b><br>{_escape(text.explanation)}")
    box.setInformativeText(f"What to do: {text.remedy}")
    box.setAccessibleName(text.title)
    box.setObjectName("errorBox")
    box.exec()


class ErrorBanner(QFrame):
    """An inline error panel: the same text as :func:`show_error`, no dialog.

    Used where a modal box would interrupt work that can go on, such as a
    failed business list reload or a sign-in that can simply be retried.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "#errorBanner { background: #fdecea; border: 1px solid #e0a39b;"
            " border-radius: 4px; } #errorBanner QLabel { color: #5f2120; }"
        )
        self._title = QLabel()
        self._title.setStyleSheet("font-weight: bold;")
        self._body = QLabel()
        self._body.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self._title)
        layout.addWidget(self._body)
        self.hide()

    def show_error(self, exc: BaseException) -> None:
        """Show ``exc`` here (explanation and remedy)."""
        text = describe(exc)
        if not _is_ours(exc):
            log.error("unexpected failure shown to the user", exc_info=exc)
        self.show_text(text)

    def show_text(self, text: ErrorText) -> None:
        """Show ``text``; the body can be selected, to copy it."""
        # Imported here: the banner is built before the window's first paint,
        # and the Qt namespace costs ~100 ms to build (see main_window).
        from PySide6.QtCore import Qt

        self._body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._title.setText(text.title)
        self._body.setText(f"{text.explanation}\nWhat to do: {text.remedy}")
        self.setAccessibleName(f"Error: {text.title}")
        self.setAccessibleDescription(text.plain)
        self.show()

    def text(self) -> str:
        """The text shown, for tests and screen readers."""
        return f"{self._title.text()}\n{self._body.text()}"

    def clear(self) -> None:
        self._title.clear()
        self._body.clear()
        self.hide()


def _is_ours(exc: BaseException) -> bool:
    from sage_desktop.errors import SageDesktopError

    return isinstance(exc, SageDesktopError)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
