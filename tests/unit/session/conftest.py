from __future__ import annotations

from collections.abc import Iterator

import pytest
from session_fake_api import FakeApi


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    api.start()
    yield api
    api.stop()
