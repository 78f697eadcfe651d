"""The causes catalogue: complete, the one source of the errors' words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sage_desktop import errors
from sage_desktop.diagnostics import catalogue
from sage_desktop.diagnostics.catalogue import (
    CAUSES,
    CLEAR_COOKIES_URL,
    cause,
    troubleshooting_markdown,
)


def test_every_one_of_the_ten_causes_has_detection_explanation_and_remedy() -> None:
    numbers = {c.number for c in CAUSES if c.number is not None}

    assert numbers == set(range(1, 11))
    for entry in CAUSES:
        assert entry.detection
        assert entry.name
        assert entry.text.title
        assert entry.text.explanation.endswith(".")
        assert entry.text.remedy


def test_ids_are_unique_and_every_errors_cause_names_an_entry() -> None:
    ids = [c.id for c in CAUSES]
    used = {
        value.cause
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.SageDesktopError)
        and value.cause is not None
    }

    assert len(ids) == len(set(ids))
    assert used <= set(ids)
    assert {"developer_login", "keychain"} <= used


@pytest.mark.parametrize(
    ("error", "cause_id", "variant"),
    [
        (errors.CallbackTimeout, "callback_mismatch", None),
        (errors.NoBusinessReachable, "developer_login", None),
        (errors.RegionMismatch, "region_mismatch", None),
        (errors.MissingHeaders, "missing_headers", None),
        (errors.SignInRequired, "refresh_token_invalid", None),
        (errors.InvalidClient, "invalid_client", None),
        (errors.CallbackPortsBusy, "registration", "ports_busy"),
        (errors.CodeExpired, "code_expired", None),
        (errors.BusinessAccessDenied, "business_access", None),
        (errors.InactiveSubscription, "business_access", "inactive"),
        (errors.BusinessMismatch, "business_access", "mismatch"),
        (errors.SageUnavailable, "sage_unavailable", None),
        (errors.RateLimited, "rate_limited", None),
        (errors.AccessDenied, "access_denied", None),
        (errors.KeychainError, "keychain", None),
    ],
)
def test_each_error_shows_the_catalogues_words(
    error: type[errors.SageDesktopError], cause_id: str, variant: str | None
) -> None:
    shown = error()
    text = cause(cause_id).render(variant)

    assert shown.cause == cause_id
    assert (shown.title, shown.explanation, shown.remedy) == (
        text.title,
        text.explanation,
        text.remedy,
    )
    assert "{" not in shown.user_message()


def test_region_remedy_names_the_region_and_sages_cookie_page() -> None:
    text = cause("region_mismatch").render(values={"region": "IE"})

    assert "choose IE" in text.remedy
    assert CLEAR_COOKIES_URL == "https://sageone.com/?clear"
    assert CLEAR_COOKIES_URL in text.remedy


def test_developer_login_remedy_says_which_login_to_use() -> None:
    remedy = cause("developer_login").text.render().remedy

    assert "business login, not the developer-portal one" in remedy


def test_callback_remedy_lists_each_url_to_register_on_its_own_line() -> None:
    urls = ["http://localhost:8765/callback", "http://127.0.0.1:8766/callback"]

    remedy = cause("callback_mismatch").render(values={"callback_urls": urls}).remedy

    assert "\n  http://localhost:8765/callback\n  http://127.0.0.1:8766/callback" in (
        remedy
    )
    assert "case included" in remedy


def test_readme_section_has_one_line_per_cause() -> None:
    text = troubleshooting_markdown()
    lines = [line for line in text.splitlines() if re.match(r"^(\d+\.|   -) ", line)]

    assert text.startswith("## Troubleshooting")
    assert len(lines) == len([c for c in CAUSES if c.number is not None])
    assert "prevented by design" in lines[3]  # the headers
    assert CLEAR_COOKIES_URL in lines[2]


def test_the_catalogue_imports_nothing_from_the_app() -> None:
    # errors imports the catalogue while being imported itself.
    tree = ast.parse(Path(catalogue.__file__).read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]

    assert not [name for name in imported if name.startswith("sage_desktop")]


def test_the_readme_carries_the_catalogue_word_for_word() -> None:
    readme = Path(__file__).parents[3] / "README.md"

    assert troubleshooting_markdown().strip() in readme.read_text()
