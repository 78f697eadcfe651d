"""Settings: Sage's endpoints, the app registration and sign-in choices.

Defaults are Sage's real endpoints. A JSON file in the platformdirs config
directory (``settings.json``) overrides them, and the ``SAGE_DESKTOP_*``
environment variables override the file (DESIGN.md, "Interfaces").

Every value is checked when a :class:`Settings` is built, and a bad one is
refused with a :class:`~sage_desktop.errors.ConfigError` that names the
setting. The callback URLs get the strictest checks, because Sage matches
them exactly and a desktop app can only receive them on loopback
(RFC 8252 section 7.3).

The client secret is never written to the settings file: it comes from the
environment or the keychain (see :mod:`sage_desktop.context`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from sage_desktop.errors import ConfigError

log = logging.getLogger(__name__)

APP_NAME = "sage-desktop"
SETTINGS_FILE = "settings.json"

DEFAULT_AUTH_URL = "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1"
DEFAULT_TOKEN_URL = "https://oauth.accounting.sage.com/token"
DEFAULT_REVOKE_URL = "https://oauth.accounting.sage.com/revoke"
DEFAULT_API_URL = "https://api.accounting.sage.com/v3.1"
DEFAULT_REDIRECT_URIS = (
    "http://localhost:8765/callback",
    "http://localhost:8766/callback",
    "http://localhost:8767/callback",
)

# Sage's region codes: gb, ie, ca today; older documentation also us, fr,
# de, es. None means "let Sage show its region picker".
COUNTRIES = ("gb", "ie", "ca", "us", "fr", "de", "es")
SCOPES = ("full_access", "readonly")

# Environment variable -> settings field (DESIGN.md, "Interfaces").
ENV_VARS = {
    "SAGE_DESKTOP_AUTH_URL": "auth_url",
    "SAGE_DESKTOP_TOKEN_URL": "token_url",
    "SAGE_DESKTOP_REVOKE_URL": "revoke_url",
    "SAGE_DESKTOP_API_URL": "api_url",
    "SAGE_DESKTOP_CLIENT_ID": "client_id",
    "SAGE_DESKTOP_CLIENT_SECRET": "client_secret",
    "SAGE_DESKTOP_REDIRECT_URIS": "redirect_uris",
}

LOOPBACK_NAMES = ("localhost",)


def default_settings_path() -> Path:
    """Where the settings file lives: platformdirs' user config directory."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / SETTINGS_FILE


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (127/8, ::1)."""
    host = host.lower().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything sign-in and the API need to know, validated on creation.

    ``redirect_uris`` is the ordered list of callback URLs registered for
    the app in Sage's developer portal; the receiver takes the first whose
    port is free. ``client_secret`` is only set from the environment; it is
    kept out of ``repr`` and never saved to the file.
    """

    auth_url: str = DEFAULT_AUTH_URL
    token_url: str = DEFAULT_TOKEN_URL
    revoke_url: str = DEFAULT_REVOKE_URL
    api_url: str = DEFAULT_API_URL
    client_id: str = ""
    client_secret: str | None = field(default=None, repr=False, compare=False)
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    country: str | None = None
    scope: str = "full_access"
    locale: str | None = None
    http_timeout: float = 15.0

    def __post_init__(self) -> None:
        # Normalise what has an obvious canonical form, then check all.
        if self.country is not None:
            country = self.country.strip().lower() or None
            object.__setattr__(self, "country", country)
        if self.locale is not None:
            object.__setattr__(self, "locale", self.locale.strip() or None)
        object.__setattr__(self, "client_id", self.client_id.strip())
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        _validate(self)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_file_record(self) -> dict[str, Any]:
        """What :meth:`save` writes: every field except the client secret."""
        record: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "client_secret":
                continue
            value = getattr(self, f.name)
            record[f.name] = list(value) if isinstance(value, tuple) else value
        return record

    def save(self, path: Path | str | None = None) -> Path:
        """Write the settings file atomically (never the client secret)."""
        target = Path(path) if path is not None else default_settings_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_file_record(), indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".settings-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data + "\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.info("saved settings to %s", target)
        return target


def load_settings(
    env: Mapping[str, str] | None = None, path: Path | str | None = None
) -> Settings:
    """Defaults, then the settings file, then the environment.

    An empty environment variable counts as unset. Unknown keys in the
    file are ignored with a warning so an older app can read a newer file.
    """
    env = os.environ if env is None else env
    target = Path(path) if path is not None else default_settings_path()
    values: dict[str, Any] = {}

    values.update(_read_file(target))
    for var, name in ENV_VARS.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        if name == "redirect_uris":
            values[name] = tuple(u.strip() for u in raw.split(",") if u.strip())
        else:
            values[name] = raw

    return Settings(**values)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"The settings file {path} cannot be read ({exc.strerror})."
        ) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"The settings file {path} is not valid JSON "
            f"(line {getattr(exc, 'lineno', '?')}).",
            remedy="Fix or delete the file, then try again.",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"The settings file {path} must hold a JSON object.")

    known = {f.name for f in fields(Settings)} - {"client_secret"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "client_secret":
            log.warning(
                "ignoring client_secret in %s: the secret belongs in the "
                "keychain or SAGE_DESKTOP_CLIENT_SECRET",
                path,
            )
        elif key not in known:
            log.warning("ignoring unknown setting %r in %s", key, path)
        elif key == "redirect_uris":
            if not isinstance(value, list | tuple) or not all(
                isinstance(u, str) for u in value
            ):
                raise ConfigError(f"redirect_uris in {path} must be a list of URLs.")
            values[key] = tuple(value)
        else:
            values[key] = value
    return values


# --- validation -------------------------------------------------------------


def _validate(s: Settings) -> None:
    for name in ("auth_url", "token_url", "revoke_url", "api_url"):
        _check_endpoint(name, getattr(s, name))

    if not isinstance(s.client_id, str):
        raise ConfigError("client_id must be text.")
    if s.client_secret is not None and not isinstance(s.client_secret, str):
        raise ConfigError("client_secret must be text.")

    _check_redirect_uris(s.redirect_uris)

    if s.country is not None and s.country not in COUNTRIES:
        raise ConfigError(
            f"country {s.country!r} is not a Sage region; use one of "
            f"{', '.join(COUNTRIES)}, or leave it empty for Sage's picker."
        )
    if s.scope not in SCOPES:
        raise ConfigError(
            f"scope {s.scope!r} is not one Sage grants; use full_access or readonly."
        )
    if s.locale is not None and not isinstance(s.locale, str):
        raise ConfigError("locale must be text such as 'en-GB'.")
    timeout = s.http_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ConfigError("http_timeout must be a number of seconds.")
    if not 0 < timeout <= 600:
        raise ConfigError("http_timeout must be between 0 and 600 seconds.")


def _check_endpoint(name: str, url: object) -> None:
    if not isinstance(url, str):
        raise ConfigError(f"{name} must be a URL.")
    parts = _split(name, url)
    if parts.scheme not in ("https", "http"):
        raise ConfigError(f"{name} {url!r} must start with https://.")
    host = parts.hostname or ""
    # The token endpoint receives the client secret: plain http only for a
    # local Sage (the sandbox).
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"{name} {url!r} uses http on a public host; Sage's endpoints "
            "need https (http is allowed only for a local sandbox)."
        )


def _split(name: str, url: str) -> Any:
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError when out of range
    except ValueError as exc:
        raise ConfigError(f"{name} {url!r} is not a valid URL.") from exc
    del port
    if not parts.scheme or not parts.hostname or " " in url.strip():
        raise ConfigError(f"{name} {url!r} is not a valid URL.")
    return parts


def _check_redirect_uris(uris: tuple[str, ...]) -> None:
    if not uris:
        raise ConfigError(
            "redirect_uris is empty: at least one callback URL registered "
            "for the app in Sage is needed, such as "
            "http://localhost:8765/callback."
        )
    seen: dict[tuple[str, int], str] = {}
    for uri in uris:
        if not isinstance(uri, str):
            raise ConfigError("redirect_uris must be a list of URLs.")
        parts = _split("redirect_uris", uri)
        host = parts.hostname or ""
        loopback = is_loopback_host(host)
        if parts.scheme == "https" and loopback:
            raise ConfigError(
                f"redirect_uris: {uri!r} uses https on this computer; the "
                "app receives the callback over plain http on loopback "
                "(RFC 8252 section 7.3); register it with http:// instead."
            )
        if parts.scheme == "http" and not loopback:
            raise ConfigError(
                f"redirect_uris: {uri!r} uses http on a public host; Sage "
                "allows http only for localhost."
            )
        if not loopback:
            raise ConfigError(
                f"redirect_uris: {uri!r} is not on this computer; a desktop "
                "app receives the callback on a loopback address "
                "(localhost, 127.0.0.1 or [::1])."
            )
        if parts.scheme != "http":
            raise ConfigError(f"redirect_uris: {uri!r} must start with http://.")
        if parts.port is None or parts.port == 0:
            raise ConfigError(
                f"redirect_uris: {uri!r} must name a port, such as "
                "http://localhost:8765/callback; Sage matches it exactly."
            )
        if parts.fragment or "#" in uri:
            raise ConfigError(
                f"redirect_uris: {uri!r} must not contain a fragment "
                "(RFC 6749 section 3.1.2)."
            )
        if not parts.path.startswith("/"):
            raise ConfigError(
                f"redirect_uris: {uri!r} needs a path, such as /callback."
            )
        key = (host.lower(), parts.port)
        if key in seen:
            raise ConfigError(
                f"redirect_uris: port {parts.port} is listed twice for "
                f"{host} ({seen[key]!r} and {uri!r}); each callback URL "
                "needs its own port."
            )
        seen[key] = uri
