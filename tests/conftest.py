"""Suite-wide set-up: offscreen Qt and private platformdirs locations.

Every test session gets its own XDG directories, so nothing a test writes
lands in the developer's real config, data or state folders.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_ROOT = tempfile.mkdtemp(prefix="sage-desktop-tests-")
for _var, _sub in (
    ("XDG_CONFIG_HOME", "config"),
    ("XDG_DATA_HOME", "data"),
    ("XDG_STATE_HOME", "state"),
    ("XDG_CACHE_HOME", "cache"),
):
    os.environ[_var] = os.path.join(_ROOT, _sub)
for _var in list(os.environ):
    if _var.startswith("SAGE_DESKTOP_") and _var != "SAGE_DESKTOP_TEST_KEYCHAIN":
        del os.environ[_var]
