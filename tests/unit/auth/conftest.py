"""Fixtures for the sign-in unit tests: a started receiver on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receiver_helpers import free_port

from sage_desktop.auth import LoopbackReceiver


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def receiver(port: int) -> Iterator[LoopbackReceiver]:
    rec = LoopbackReceiver([f"http://localhost:{port}/callback"], "the-state")
    rec.start()
    yield rec
    rec.cancel()
    rec.close()
