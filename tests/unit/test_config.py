"""Settings: Sage's defaults, the file, the environment, and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage_desktop.config import (
    DEFAULT_AUTH_URL,
    DEFAULT_REDIRECT_URIS,
    Settings,
    default_settings_path,
    load_settings,
)
from sage_desktop.errors import ConfigError


def test_defaults_are_sages_real_endpoints(tmp_path: Path) -> None:
    settings = load_settings(env={}, path=tmp_path / "none.json")

    assert settings.auth_url == (
        "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1"
    )
    assert settings.token_url == "https://oauth.accounting.sage.com/token"
    assert settings.revoke_url == "https://oauth.accounting.sage.com/revoke"
    assert settings.api_url == "https://api.accounting.sage.com/v3.1"
    assert settings.redirect_uris == (
        "http://localhost:8765/callback",
        "http://localhost:8766/callback",
        "http://localhost:8767/callback",
    )
    assert settings.scope == "full_access"
    assert settings.country is None
    assert settings.client_secret is None


def test_settings_file_lives_in_the_platformdirs_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    assert default_settings_path() == tmp_path / "sage-desktop" / "settings.json"


def test_file_values_override_defaults_and_env_overrides_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "client_id": "from-file",
                "country": "IE",
                "scope": "readonly",
                "token_url": "https://file.example/token",
            }
        )
    )
    env = {
        "SAGE_DESKTOP_TOKEN_URL": "http://127.0.0.1:9/token",
        "SAGE_DESKTOP_REDIRECT_URIS": (
            "http://127.0.0.1:9001/cb, http://localhost:9002/cb"
        ),
        "SAGE_DESKTOP_CLIENT_SECRET": "s3cret-from-env",
        "SAGE_DESKTOP_AUTH_URL": "",
    }

    settings = load_settings(env=env, path=path)

    assert settings.client_id == "from-file"
    assert settings.country == "ie"
    assert settings.scope == "readonly"
    assert settings.token_url == "http://127.0.0.1:9/token"
    assert settings.redirect_uris == (
        "http://127.0.0.1:9001/cb",
        "http://localhost:9002/cb",
    )
    assert settings.client_secret == "s3cret-from-env"
    assert settings.auth_url == DEFAULT_AUTH_URL


def test_every_environment_variable_is_honoured(tmp_path: Path) -> None:
    env = {
        "SAGE_DESKTOP_AUTH_URL": "http://127.0.0.1:1/auth?filter=apiv3.1",
        "SAGE_DESKTOP_TOKEN_URL": "http://127.0.0.1:1/token",
        "SAGE_DESKTOP_REVOKE_URL": "http://127.0.0.1:1/revoke",
        "SAGE_DESKTOP_API_URL": "http://127.0.0.1:1/v3.1",
        "SAGE_DESKTOP_CLIENT_ID": "abc/def",
        "SAGE_DESKTOP_CLIENT_SECRET": "xyz",
        "SAGE_DESKTOP_REDIRECT_URIS": "http://localhost:9100/callback",
    }

    s = load_settings(env=env, path=tmp_path / "missing.json")

    assert (s.auth_url, s.token_url, s.revoke_url, s.api_url) == (
        "http://127.0.0.1:1/auth?filter=apiv3.1",
        "http://127.0.0.1:1/token",
        "http://127.0.0.1:1/revoke",
        "http://127.0.0.1:1/v3.1",
    )
    assert (s.client_id, s.client_secret) == ("abc/def", "xyz")
    assert s.redirect_uris == ("http://localhost:9100/callback",)


def test_save_round_trips_and_never_writes_the_client_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sub" / "settings.json"
    settings = Settings(client_id="id", client_secret="TOPSECRET", country="gb")

    settings.save(path)
    loaded = load_settings(env={}, path=path)

    assert "TOPSECRET" not in path.read_text()
    assert loaded == settings.with_(client_secret=None)
    assert loaded.client_secret is None


def test_client_secret_in_the_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"client_secret": "nope", "unknown": 1}))

    assert load_settings(env={}, path=path).client_secret is None


def test_repr_hides_the_client_secret() -> None:
    settings = Settings(client_id="id", client_secret="TOPSECRET")

    assert "TOPSECRET" not in repr(settings)
    assert "TOPSECRET" not in str(settings)


def test_with_changes_a_copy_and_validates_again() -> None:
    settings = Settings()

    assert settings.with_(scope="readonly").scope == "readonly"
    with pytest.raises(ConfigError, match="scope"):
        settings.with_(scope="everything")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"auth_url": "not a url"}, "auth_url"),
        ({"token_url": "ftp://oauth.example/token"}, "token_url"),
        ({"token_url": "http://oauth.accounting.sage.com/token"}, "token_url"),
        ({"api_url": "https://"}, "api_url"),
        ({"revoke_url": "https://host:99999/revoke"}, "revoke_url"),
        ({"redirect_uris": ("https://localhost:8765/callback",)}, "https"),
        ({"redirect_uris": ("https://127.0.0.1:8765/callback",)}, "https"),
        ({"redirect_uris": ("http://example.com:8765/callback",)}, "public"),
        ({"redirect_uris": ("https://example.com/callback",)}, "loopback"),
        ({"redirect_uris": ("http://localhost/callback",)}, "port"),
        ({"redirect_uris": ("localhost:8765",)}, "redirect_uris"),
        ({"redirect_uris": ("http://localhost:8765/cb#frag",)}, "fragment"),
        (
            {
                "redirect_uris": (
                    "http://localhost:8765/callback",
                    "http://localhost:8765/other",
                )
            },
            "listed twice",
        ),
        ({"redirect_uris": ()}, "redirect_uris"),
        ({"scope": "admin"}, "scope"),
        ({"country": "xx"}, "country"),
        ({"http_timeout": 0}, "http_timeout"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(**changes)  # type: ignore[arg-type]

    assert named in str(caught.value)


@pytest.mark.parametrize("country", ["gb", "ie", "ca", "us", "fr", "de", "es"])
def test_every_sage_region_is_accepted(country: str) -> None:
    assert Settings(country=country.upper()).country == country


def test_the_same_port_on_localhost_and_127_is_allowed() -> None:
    uris = ("http://localhost:8765/callback", "http://127.0.0.1:8765/callback")

    assert Settings(redirect_uris=uris).redirect_uris == uris


def test_ipv6_loopback_callback_is_allowed() -> None:
    assert Settings(redirect_uris=("http://[::1]:8765/callback",))


def test_a_broken_settings_file_is_a_config_error_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")

    with pytest.raises(ConfigError, match=r"settings\.json"):
        load_settings(env={}, path=path)


def test_an_invalid_env_callback_list_names_redirect_uris(tmp_path: Path) -> None:
    env = {"SAGE_DESKTOP_REDIRECT_URIS": "http://example.com:1/cb"}

    with pytest.raises(ConfigError, match="redirect_uris"):
        load_settings(env=env, path=tmp_path / "x.json")


def test_default_callbacks_are_the_documented_ones() -> None:
    assert DEFAULT_REDIRECT_URIS[0] == "http://localhost:8765/callback"
