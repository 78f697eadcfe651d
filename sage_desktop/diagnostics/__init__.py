"""The troubleshooting guide as code: the causes catalogue and the checks.

:mod:`sage_desktop.diagnostics.catalogue` holds every cause of a failed
connection with its explanation and remedy (the exception tree takes its
texts from there); :mod:`sage_desktop.diagnostics.checks` runs the checks
behind ``sage-desktop doctor`` and the desktop app's Diagnostics panel.
Only the catalogue is imported here, because ``errors`` imports it.
"""

from __future__ import annotations

from sage_desktop.diagnostics.catalogue import (
    CAUSES,
    CLEAR_COOKIES_URL,
    Cause,
    Text,
    cause,
    default_text,
)

__all__ = ["CAUSES", "CLEAR_COOKIES_URL", "Cause", "Text", "cause", "default_text"]
