"""Work-arounds for the Qt binding, applied once when the UI is imported."""

from __future__ import annotations

import ctypes
import sys

_applied = False


def apply() -> None:
    """Make ``None``, ``True`` and ``False`` immortal on Python 3.11.

    WORKAROUND: PySide6 6.12's stable-ABI build (abi3, made for 3.12+ where
    these singletons are immortal) drops a reference to ``None`` for every
    void method call and to ``True`` for every signal emitted. On 3.11 the
    counts reach zero after a few thousand Qt calls and the interpreter
    aborts ("none_dealloc"). Giving them a huge reference count is exactly
    what Python 3.12 does (PEP 683), so nothing else changes.
    """
    global _applied
    if _applied or sys.version_info >= (3, 12):
        return
    for singleton in (None, True, False, Ellipsis, NotImplemented):
        count = ctypes.c_ssize_t.from_address(id(singleton))
        count.value += 1 << 40
    _applied = True
