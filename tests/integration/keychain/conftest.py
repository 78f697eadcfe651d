from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from keychain_helpers import (
    KEYCHAIN,
    Shared,
    file_shared,
    needs_keychain,
    secret_service_shared,
)


@pytest.fixture(
    params=[
        pytest.param("file", id="file"),
        pytest.param(
            "secret-service",
            id="secret-service",
            marks=[pytest.mark.keychain, needs_keychain],
        ),
    ]
)
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    if request.param == "file":
        yield file_shared(tmp_path)
    else:
        yield secret_service_shared(tmp_path)


@pytest.fixture
def secret_service(tmp_path: Path) -> Shared:
    if not KEYCHAIN:
        pytest.skip("set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service")
    return secret_service_shared(tmp_path)
