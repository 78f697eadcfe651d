"""Fixtures: a sandbox per test on a free loopback port (stopped when the
test ends) and a requests session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sage_desktop.sandbox import Sandbox, SandboxConfig


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
def sb(sandbox_config: SandboxConfig) -> Iterator[Sandbox]:
    with Sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
