"""Where secrets ended up, for the browser and packaging tests: the items
the Secret Service holds, and files that contain a secret."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def secret_service_items(connection_id: str) -> list[dict[str, str]]:
    """``secret-tool``'s view of the items stored for one connection.

    secret-tool prints each item's secret on stdout and its attributes on
    stderr; unbuffered (stdbuf), the two streams interleave item by item.
    """
    command = ["secret-tool", "search", "--all", "--unlock", "service"]
    done = subprocess.run(
        ["stdbuf", "-o0", "-e0", *command, "sage-desktop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    items: list[dict[str, str]] = []
    for line in done.stdout.splitlines():
        if line.startswith("["):
            items.append({})
        elif " = " in line and items:
            key, _, value = line.partition(" = ")
            items[-1][key.strip()] = value
    return [i for i in items if connection_id in i.get("attribute.username", "")]


def files_holding(secrets: list[str], *roots: Path) -> list[Path]:
    """Files under ``roots`` (and under HOME when it is a throw-away test
    home, as in .ci/test) that contain any of ``secrets``."""
    folders = list(roots)
    home = Path(os.path.expanduser("~"))
    if str(home).startswith(tempfile.gettempdir()):
        folders.append(home)
    needles = [s.encode() for s in secrets if len(s) >= 20]
    assert needles, "nothing to look for"
    found = []
    for root in folders:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in needles):
                    found.append(path)
    return found
