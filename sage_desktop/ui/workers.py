"""Blocking work off the GUI thread, results back as Qt signals.

Network and keychain calls can take seconds (or, for a keychain prompt,
much longer); the window must never freeze meanwhile. :func:`run_task`
runs a plain function on Qt's global thread pool and delivers its result,
its error or its progress reports on the GUI thread. Deliveries to an owner
widget that was closed and deleted meanwhile are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

Report = Callable[[object], None]


class _Relay(QObject):
    """Lives on the GUI thread; signals emitted by the pool thread queue."""

    done = Signal(object)
    failed = Signal(object)
    progress = Signal(object)

    def __init__(
        self,
        owner: QObject | None,
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
        on_progress: Callable[[Any], None] | None,
    ) -> None:
        # Parented to a GUI-thread object: the C++ side is then deleted only
        # by deleteLater() on the GUI thread, never by the pool thread
        # dropping the last Python reference.
        super().__init__(_hub())
        self._owner = owner
        self._on_done = on_done
        self._on_error = on_error
        self._on_progress = on_progress
        self.done.connect(self._deliver_done)
        self.failed.connect(self._deliver_failed)
        self.progress.connect(self._deliver_progress)

    def _owner_alive(self) -> bool:
        return self._owner is None or shiboken6.isValid(self._owner)

    @Slot(object)
    def _deliver_done(self, result: object) -> None:
        try:
            if self._on_done is not None and self._owner_alive():
                self._on_done(result)
        finally:
            self._release()

    @Slot(object)
    def _deliver_failed(self, error: object) -> None:
        try:
            if (
                isinstance(error, BaseException)
                and self._on_error is not None
                and self._owner_alive()
            ):
                self._on_error(error)
        finally:
            self._release()

    def _release(self) -> None:
        self._on_done = self._on_error = self._on_progress = None
        self._owner = None
        _LIVE.discard(self)
        self.deleteLater()

    @Slot(object)
    def _deliver_progress(self, value: object) -> None:
        if self._on_progress is not None and self._owner_alive():
            self._on_progress(value)


# Relays waiting for their task: referenced here so Python keeps them.
_LIVE: set[_Relay] = set()
_HUB: list[QObject] = []


def _hub() -> QObject:
    """The GUI-thread parent of every relay (made on first use)."""
    if not _HUB:
        _HUB.append(QObject())
    return _HUB[0]


def _strip_tracebacks(exc: BaseException) -> None:
    """Drop frames (and the widgets their locals hold) before the error
    crosses threads, so no Qt object is ever freed on a pool thread."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


class _Task(QRunnable):
    def __init__(
        self, fn: Callable[..., Any], relay: _Relay, with_report: bool
    ) -> None:
        super().__init__()
        self._fn: Callable[..., Any] | None = fn
        self._relay = relay
        self._with_report = with_report

    def run(self) -> None:
        # The function (and whatever its closure holds, often widgets) is
        # released here before the result is announced: the GUI thread may
        # otherwise drop its side first and leave the last reference, and
        # so a widget's destructor, to this pool thread.
        relay, fn = self._relay, self._fn
        self._fn = None
        if fn is None:
            return
        args = (relay.progress.emit,) if self._with_report else ()
        try:
            result = fn(*args)
        except BaseException as exc:  # delivered to the GUI thread
            del fn
            from sage_desktop.errors import SageDesktopError

            if not isinstance(exc, SageDesktopError):
                log.error("background task failed", exc_info=exc)
            _strip_tracebacks(exc)
            relay.failed.emit(exc)
        else:
            del fn
            relay.done.emit(result)


def run_task(
    fn: Callable[..., Any],
    *,
    owner: QObject | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> None:
    """Run ``fn`` on the thread pool; call back on the GUI thread.

    With ``on_progress``, ``fn`` is called with a ``report(value)`` function
    it may call from its thread; each value reaches ``on_progress`` in
    order. ``owner`` (usually the widget asking) ends deliveries once it is
    deleted. Exceptions reach ``on_error`` (or the log), never the pool.
    """
    relay = _Relay(owner, on_done, on_error, on_progress)
    _LIVE.add(relay)
    task = _Task(fn, relay, with_report=on_progress is not None)
    QThreadPool.globalInstance().start(task)


def wait_for_tasks(timeout_ms: int = 30_000) -> bool:
    """Wait for every pool task (used on exit and by tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)


class EventBridge(QObject):
    """Turns the refresh worker's callbacks into a Qt signal.

    The worker calls subscribers from its own thread; emitting a signal of
    an object living on the GUI thread queues the call there, so slots
    connected to :attr:`received` always run on the GUI thread.

    Signals:
        received: a ``TokenEvent`` from ``sage_desktop.session``.
    """

    received = Signal(object)

    def __call__(self, token_event: object) -> None:
        if shiboken6.isValid(self):
            self.received.emit(token_event)
