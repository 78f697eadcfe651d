"""Token events for whoever shows a connection's state, without Qt.

The refresh worker publishes what happens to each grant; the GUI turns the
events into Qt signals in ``sage_desktop.ui``, scripts may log them. This
module stays free of Qt so the worker runs in any plain Python process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from sage_desktop.errors import SageDesktopError

log = logging.getLogger(__name__)


class TokenEventKind(StrEnum):
    """What happened to a grant."""

    REFRESHED = "refreshed"
    SIGN_IN_REQUIRED = "sign_in_required"
    TRANSIENT_TROUBLE = "transient_trouble"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class TokenEvent:
    """One event about one connection; never carries a token.

    ``error`` is set for ``sign_in_required`` and ``transient_trouble``;
    ``generation`` is the vault generation now in use, when known;
    ``adopted`` tells a refresh done by another process from one done here.
    """

    kind: TokenEventKind
    connection_id: str
    error: SageDesktopError | None = None
    generation: int | None = None
    adopted: bool = False
    at: float = field(default_factory=time.time)


EventCallback = Callable[[TokenEvent], None]


class EventHub:
    """A list of subscribers called in order, outside any lock.

    A failing subscriber is logged and skipped: one broken listener must not
    stop the refresh worker or starve the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[EventCallback] = []

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it again."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def publish(self, event: TokenEvent) -> None:
        """Call every subscriber with ``event`` (from the caller's thread)."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("a token event subscriber failed on %s", event.kind)
