"""The desktop app: the only package of sage-desktop that imports Qt.

Everything below runs on the GUI thread unless a docstring says otherwise;
network and keychain work goes through :mod:`sage_desktop.ui.workers`.
Importing this package applies :func:`sage_desktop.ui._qtfix.apply` before
any Qt call is made.
"""

from __future__ import annotations

from sage_desktop.ui import _qtfix

_qtfix.apply()
