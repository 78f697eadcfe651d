"""The one exception tree of sage-desktop.

Every failure a user can act on is a subclass of :class:`SageDesktopError`.
Each carries a short ``title``, an ``explanation`` in plain words and a
``remedy`` saying what to do, plus the command line's exit code. Lower-level
exceptions (``requests``, ``keyring``, ``OSError``) are translated into these
where they enter, with ``raise ... from exc``.

The texts of the failures listed in Sage's troubleshooting guide come from
the causes catalogue (:mod:`sage_desktop.diagnostics.catalogue`), so every
screen and ``sage-desktop doctor`` explain a cause in the same words.

No message built here may contain a token, a code or a client secret.
"""

from __future__ import annotations

from enum import IntEnum

from sage_desktop.diagnostics.catalogue import default_text


def _texts(cause_id: str, variant: str | None = None) -> tuple[str, str, str]:
    """``title, explanation, remedy`` of a catalogue cause, for a class body."""
    text = default_text(cause_id, variant)
    return text.title, text.explanation, text.remedy


class ExitCode(IntEnum):
    """Exit codes of the ``sage-desktop`` command, as documented in --help."""

    OK = 0
    ERROR = 1
    USAGE = 2
    SIGN_IN_REQUIRED = 3
    KEYCHAIN_UNAVAILABLE = 4
    UNREACHABLE = 5


class SageDesktopError(Exception):
    """Base of every error that sage-desktop explains to its user.

    Subclasses set class-level defaults; an instance may override any of
    them. ``cause`` names the entry of the troubleshooting catalogue
    (see :mod:`sage_desktop.diagnostics`) the error belongs to, if any.
    """

    title = "Something went wrong"
    explanation = "sage-desktop could not complete the request."
    remedy = "Try again. If it keeps happening, run 'sage-desktop doctor'."
    exit_code = ExitCode.ERROR
    transient = False
    cause: str | None = None

    def __init__(
        self,
        explanation: str | None = None,
        *,
        remedy: str | None = None,
        title: str | None = None,
        cause: str | None = None,
    ) -> None:
        if explanation is not None:
            self.explanation = explanation
        if remedy is not None:
            self.remedy = remedy
        if title is not None:
            self.title = title
        if cause is not None:
            self.cause = cause
        super().__init__(self.explanation)

    def __str__(self) -> str:
        return self.explanation

    def user_message(self) -> str:
        """The explanation and the remedy, as shown on screen."""
        return f"{self.title}: {self.explanation}\nWhat to do: {self.remedy}"


# --- settings -------------------------------------------------------------


class ConfigError(SageDesktopError):
    """A setting is missing or malformed; the message names the setting."""

    title = "Settings problem"
    remedy = "Correct the setting named above, then try again."
    exit_code = ExitCode.USAGE
    cause = "registration"


# --- keychain -------------------------------------------------------------


class KeychainError(SageDesktopError):
    """The OS keychain cannot be used. sage-desktop never falls back to a file."""

    title, explanation, remedy = _texts("keychain")
    exit_code = ExitCode.KEYCHAIN_UNAVAILABLE
    cause = "keychain"


class NoKeychainBackend(KeychainError):
    explanation = "No system keychain was found on this computer."
    remedy = (
        "Install and start a keychain service: on Linux GNOME Keyring "
        "('apt-get install gnome-keyring') or KWallet. sage-desktop never "
        "stores tokens in a plain file."
    )


class KeychainLocked(KeychainError):
    explanation = "The system keychain is locked, or the unlock prompt was dismissed."
    remedy = "Unlock your keychain (it usually unlocks when you sign in), then retry."


class KeychainPromptDismissed(KeychainLocked):
    explanation = "The keychain's unlock or create prompt was dismissed."
    remedy = (
        "Retry and accept the keychain prompt (on Linux GNOME Keyring or "
        "KWallet asks for your login password)."
    )


class KeychainTimeout(KeychainError):
    explanation = "The system keychain did not answer in time."
    remedy = (
        "Check that the keychain service is running and not waiting for a "
        "prompt, then retry. Restarting your session usually fixes it."
    )


class KeychainCorrupt(KeychainError):
    explanation = "The tokens stored in the keychain are damaged."
    remedy = "Sign in again to replace them."
    exit_code = ExitCode.SIGN_IN_REQUIRED


class VaultConflict(SageDesktopError):
    """A compare-and-swap save found a newer generation than expected."""

    title = "Tokens changed meanwhile"
    explanation = "Another process stored newer tokens for this connection."


# --- connections ----------------------------------------------------------


class ConnectionNotFound(SageDesktopError, KeyError):
    """No connection with that id (or email) is registered."""

    title = "No such connection"
    explanation = "No connection with that name is registered."
    remedy = "Run 'sage-desktop connections' to list the registered ones."
    exit_code = ExitCode.USAGE


class RegistryCorrupt(SageDesktopError):
    """The connections file exists but cannot be read as connections."""

    title = "Connections file damaged"
    explanation = "The list of connections could not be read."
    remedy = (
        "Move the connections.json file named in the details aside and "
        "connect again; your tokens stay in the keychain."
    )


# --- sign-in and tokens ---------------------------------------------------


class AuthError(SageDesktopError):
    """The sign-in or a token request failed."""

    title = "Sign-in failed"


class SignInRequired(AuthError):
    """The grant is dead (expired, revoked, reused or superseded)."""

    title, explanation, remedy = _texts("refresh_token_invalid")
    exit_code = ExitCode.SIGN_IN_REQUIRED
    cause = "refresh_token_invalid"


class InvalidClient(AuthError):
    title, explanation, remedy = _texts("invalid_client")
    cause = "invalid_client"


class RegionMismatch(AuthError):
    title, explanation, remedy = _texts("region_mismatch")
    cause = "region_mismatch"


class AccessDenied(AuthError):
    title, explanation, remedy = _texts("access_denied")
    cause = "access_denied"


class CodeExpired(AuthError):
    title, explanation, remedy = _texts("code_expired")
    cause = "code_expired"


class CallbackTimeout(AuthError):
    title, explanation, remedy = _texts("callback_mismatch")
    cause = "callback_mismatch"


class CallbackPortsBusy(AuthError):
    title, explanation, remedy = _texts("registration", "ports_busy")
    cause = "registration"


class NoBusinessReachable(AuthError):
    """The login reaches no business: usually the developer-portal login."""

    title, explanation, remedy = _texts("developer_login")
    cause = "developer_login"


class SignInCancelled(AuthError):
    title = "Sign-in cancelled"
    explanation = "The sign-in was cancelled."
    remedy = "Connect again when ready."


class MissingHeaders(AuthError):
    title, explanation, remedy = _texts("missing_headers")
    cause = "missing_headers"


class BadTokenResponse(AuthError):
    """Sage answered the token endpoint with something that is not a token."""

    title = "Unexpected answer from Sage"
    explanation = "Sage's token endpoint sent an answer that is not valid."
    remedy = "Try again in a minute; nothing was changed."
    transient = True
    exit_code = ExitCode.UNREACHABLE
    cause = "sage_unavailable"


# --- network and API ------------------------------------------------------


class SageUnavailable(SageDesktopError):
    """A transient failure: network, timeout, 5xx, HTML instead of JSON."""

    title, explanation, remedy = _texts("sage_unavailable")
    exit_code = ExitCode.UNREACHABLE
    transient = True
    cause = "sage_unavailable"


class RateLimited(SageUnavailable):
    title, explanation, remedy = _texts("rate_limited")
    cause = "rate_limited"


class ApiError(SageDesktopError):
    """Sage answered an API call with an error (its ``$message`` is kept)."""

    title = "Sage reported an error"

    def __init__(
        self,
        explanation: str | None = None,
        *,
        status: int | None = None,
        data_code: str | None = None,
        remedy: str | None = None,
        title: str | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(explanation, remedy=remedy, title=title, cause=cause)
        self.status = status
        self.data_code = data_code


class BusinessAccessDenied(ApiError):
    title, explanation, remedy = _texts("business_access")
    cause = "business_access"


class InactiveSubscription(SageDesktopError):
    title, explanation, remedy = _texts("business_access", "inactive")
    cause = "business_access"


class BusinessMismatch(ApiError):
    """The ``X-Business`` echoed by Sage differs from the one sent."""

    title, explanation, remedy = _texts("business_access", "mismatch")
    cause = "business_access"
