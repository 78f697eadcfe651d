"""Opening the system browser on the authorization URL.

Python's :mod:`webbrowser` honours ``BROWSER``. Its generic launcher waits
for the browser command to exit, so the call runs on a daemon thread and
never holds up the receiver. The caller also shows the URL, for copying
into a browser elsewhere (RFC 8252 section 6 asks for the user's own
browser, never an embedded one).
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable

log = logging.getLogger(__name__)

Opener = Callable[[str], object]
"""Something that shows ``url`` to the user; its result is ignored."""


def system_browser(url: str) -> bool:
    """Open ``url`` with :func:`webbrowser.open` (blocks for some browsers)."""
    return webbrowser.open(url, new=2)


def open_in_background(
    url: str,
    opener: Opener = system_browser,
    on_failure: Callable[[], None] | None = None,
) -> threading.Thread:
    """Call ``opener(url)`` on a daemon thread and return that thread.

    ``on_failure`` runs (on that thread) when the opener returns False or
    raises, so the caller can tell the user to open the URL by hand.
    """

    def run() -> None:
        try:
            opened = opener(url)
        except Exception:
            log.warning("could not open a browser", exc_info=True)
            opened = False
        if opened is False:
            log.warning("no browser could be opened; the URL must be opened by hand")
            if on_failure is not None:
                on_failure()

    thread = threading.Thread(target=run, name="sage-desktop-browser", daemon=True)
    thread.start()
    return thread
