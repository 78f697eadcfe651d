"""The causes catalogue: Sage's "Troubleshooting oAuth Issues" as data.

Each :class:`Cause` says how the app detects the problem, what it tells the
user, what to do (with the exact values to check filled in where known) and,
where the app makes the problem impossible, how. The exception tree in
:mod:`sage_desktop.errors` takes its titles, explanations and remedies from
here, so the command line, the desktop app and ``sage-desktop doctor`` all
say the same thing.

This module imports nothing from the rest of sage-desktop: ``errors``
imports it while it is itself being imported.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Sage's page that clears its cookies, so the region picker shows again.
CLEAR_COOKIES_URL = "https://sageone.com/?clear"

#: Where app registrations (client id, secret, callback URLs) are managed.
DEVELOPER_PORTAL_URL = "https://developerselfservice.sageone.com"

# What a placeholder says when the caller does not know the exact value.
FALLBACKS: Mapping[str, str] = {
    "callback_urls": " the callback URLs listed by 'sage-desktop doctor'",
    "region": "the region of your business",
    "clear_url": CLEAR_COOKIES_URL,
    "portal_url": DEVELOPER_PORTAL_URL,
    "business": "this business",
    "email": "this login",
}


@dataclass(frozen=True)
class Text:
    """What the user reads: a title, an explanation and a remedy.

    ``remedy`` may hold ``{placeholders}`` named in :data:`FALLBACKS`;
    :meth:`render` fills them with the exact values when they are known.
    """

    title: str
    explanation: str
    remedy: str

    def render(self, values: Mapping[str, object] | None = None) -> Text:
        """This text with the placeholders filled (fallback phrases if not)."""
        filled = {**FALLBACKS, **{k: _show(v) for k, v in (values or {}).items()}}
        return Text(
            _fill(self.title, filled),
            _fill(self.explanation, filled),
            _fill(self.remedy, filled),
        )


@dataclass(frozen=True)
class Cause:
    """One entry of the catalogue.

    Attributes:
        id: the name errors carry in their ``cause`` attribute.
        name: the cause in a few words, as Sage's guide lists it.
        number: the cause's number in issue 7's list (None: an extra entry).
        detection: how the app notices it (for support and the README).
        text: the default title, explanation and remedy.
        prevention: what the app does by design against it, or None when
            it can only be detected and explained.
        variants: more specific texts for situations of the same cause.
        fully_prevented: the prevention leaves no way for it to happen.
    """

    id: str
    name: str
    number: int | None
    detection: str
    text: Text
    prevention: str | None = None
    variants: Mapping[str, Text] = field(default_factory=dict)
    fully_prevented: bool = False

    @property
    def prevented_by_design(self) -> bool:
        """True when the app makes the cause impossible, not just rarer."""
        return self.fully_prevented and self.prevention is not None

    def render(
        self, variant: str | None = None, values: Mapping[str, object] | None = None
    ) -> Text:
        """The text of ``variant`` (default text if None) with values filled."""
        text = self.variants[variant] if variant else self.text
        return text.render(values)


def _show(value: object) -> str:
    if isinstance(value, list | tuple):
        return "\n  " + "\n  ".join(str(v) for v in value)
    return str(value)


def _fill(template: str, values: Mapping[str, str]) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if not names:
        return template
    return template.format_map({n: values.get(n, "{" + n + "}") for n in names})


_REGISTER = (
    "In Sage's developer portal ({portal_url}), register these callback URLs "
    "exactly, case included:{callback_urls}\nthen sign in again."
)

CAUSES: tuple[Cause, ...] = (
    Cause(
        id="callback_mismatch",
        name="The callback URL sent does not match a registered one",
        number=1,
        detection=(
            "Sage shows its own error page instead of coming back, so the "
            "loopback receiver times out; doctor opens Sage's sign-in page "
            "with each callback URL and reports one Sage refuses."
        ),
        text=Text(
            "No answer from Sage",
            "Sage did not send the browser back to the app. Usually the "
            "callback URL sent is not registered in Sage exactly as written, "
            "case included.",
            _REGISTER,
        ),
        prevention=None,
        variants={
            "refused": Text(
                "Callback URL not registered",
                "Sage refuses to start a sign-in with this callback URL: it "
                "is not registered for the app exactly as written (Sage "
                "compares it letter for letter, case included).",
                _REGISTER,
            ),
        },
    ),
    Cause(
        id="developer_login",
        name="Signed in with the developer-portal login (no business)",
        number=2,
        detection=(
            "After sign-in, or in doctor, GET /businesses returns no "
            "business for the login."
        ),
        text=Text(
            "No business on this login",
            "This Sage login reaches no business. The login of Sage's "
            "developer portal is not a Sage Accounting login and reaches "
            "none.",
            "Sign out ('sage-desktop logout'), then sign in with the email "
            "and password you use for Sage Accounting itself (the business "
            "login, not the developer-portal one). If the browser signs you "
            "in automatically with the wrong login, open {clear_url} first.",
        ),
    ),
    Cause(
        id="region_mismatch",
        name="The region chosen does not match the business's region",
        number=3,
        detection=(
            "Sage's callback carries error=Invalid request&reason=Email "
            "already in use; doctor compares the region passed to Sage with "
            "each connection's region, and reports a sign-in that failed so."
        ),
        text=Text(
            "Wrong region",
            "The region chosen at sign-in does not match the region of your "
            "Sage business.",
            "Sign in again and choose {region}. If Sage keeps choosing the "
            "wrong one, open {clear_url} to clear Sage's cookies first, and "
            "leave 'country' empty in the settings so Sage shows its region "
            "picker.",
        ),
    ),
    Cause(
        id="missing_headers",
        name="The token request lacks its Content-Type or Accept header",
        number=4,
        detection=(
            "The token endpoint answers invalid_request; doctor sends a "
            "harmless token request and checks Sage accepts its form."
        ),
        text=Text(
            "Token request rejected",
            "Sage rejected the token request as malformed (invalid_request).",
            "This is a bug in sage-desktop; please report it with the output "
            "of 'sage-desktop doctor --json'.",
        ),
        prevention=(
            "every token, refresh and revoke request is sent as "
            "application/x-www-form-urlencoded with Accept: application/json"
        ),
        fully_prevented=True,
    ),
    Cause(
        id="refresh_token_invalid",
        name="The refresh token is expired, revoked, used or not the newest",
        number=5,
        detection=(
            "A refresh answers invalid_grant; doctor reads each connection's "
            "stored refresh-token expiry (without refreshing) and warns "
            "days ahead."
        ),
        text=Text(
            "Sign in again",
            "Sage no longer accepts this connection's sign-in: it expired "
            "after 31 days, access was revoked, or it was replaced.",
            "Sign in to Sage again for this connection ('sage-desktop login', "
            "or Sign in again in the app).",
        ),
        prevention=(
            "one refresh at a time per connection, across every sage-desktop "
            "process; the newest refresh token is saved before it is used, "
            "and a used one is never sent again. Only expiry after 31 days "
            "unused, or access revoked in Sage, remain: the app then asks "
            "you to sign in again"
        ),
        variants={
            "expiring": Text(
                "Sign-in expires soon",
                "This connection's refresh token expires in {days}; Sage "
                "lets a sign-in live 31 days unless it is used.",
                "Use the connection (any command or the app renews it), or "
                "sign in again before then.",
            ),
            "no_tokens": Text(
                "Sign in again",
                "No tokens are stored for this connection on this computer.",
                "Sign in to Sage again for this connection ('sage-desktop login').",
            ),
        },
    ),
    Cause(
        id="invalid_client",
        name="Invalid client id or secret",
        number=6,
        detection=(
            "The token endpoint answers invalid_client; doctor sends a "
            "harmless token request with the registration's credentials."
        ),
        text=Text(
            "App registration rejected",
            "Sage rejected the app's client id or client secret.",
            "Copy the client id and client secret again from Sage's "
            "developer portal ({portal_url}) into the app's registration "
            "settings (the secret is kept in the keychain).",
        ),
    ),
    Cause(
        id="registration",
        name=(
            "The registration is unusable (no callback URL, https for "
            "localhost, http elsewhere, a port in use)"
        ),
        number=7,
        detection=(
            "Settings are checked when read: no callback URL, https for "
            "localhost, http for a public host, a missing port; doctor also "
            "binds each callback port as the receiver would."
        ),
        text=Text(
            "App registration incomplete",
            "The app registration (client id, client secret and callback "
            "URLs) is missing or not usable.",
            "Enter the client id and secret from Sage's developer portal, and "
            "register these callback URLs there:{callback_urls}",
        ),
        prevention=(
            "callback URLs are checked when settings are read (http on "
            "localhost only, a port, no fragment); a port another program "
            "holds is skipped for the next registered one"
        ),
        variants={
            "ports_busy": Text(
                "Callback ports in use",
                "Every registered callback port is held by another program.",
                "Close the program holding the port ('sage-desktop doctor' "
                "names it), or register a callback URL on another port in "
                "Sage's developer portal and add it to the settings.",
            ),
            "no_secret": Text(
                "Client secret missing",
                "The app's client secret is not set for this client id.",
                "Enter the client secret from Sage's developer portal in the "
                "app's registration settings (it is kept in the keychain), "
                "or set SAGE_DESKTOP_CLIENT_SECRET.",
            ),
        },
    ),
    Cause(
        id="code_expired",
        name="The authorization code expired (60 s) or was used twice",
        number=8,
        detection=(
            "Exchanging the callback's code answers invalid_grant; doctor "
            "reports the last sign-in when it failed so."
        ),
        text=Text(
            "Sign-in took too long",
            "Sage's one-time sign-in code expired (it lives 60 seconds) or "
            "was already used.",
            "Connect again; the app exchanges the code at once. If it keeps "
            "happening, check this computer's network connection to "
            "Sage ('sage-desktop doctor').",
        ),
        prevention=(
            "the code is exchanged the moment the callback arrives, exactly "
            "once, and the callback is answered only once"
        ),
        fully_prevented=True,
    ),
    Cause(
        id="business_access",
        name=(
            "Access to the chosen business lost, its subscription inactive, "
            "or the lead business changed"
        ),
        number=9,
        detection=(
            "Sage answers 403 MultiUserAccessDenied, the business is missing "
            "from /businesses or its subscription is inactive; X-Business "
            "echoed back differs from the one sent. Doctor fetches the "
            "chosen business."
        ),
        text=Text(
            "No access to this business",
            "You no longer have access to {business} in Sage.",
            "Ask the business owner to add you again, or choose another "
            "business ('sage-desktop use', or Choose business in the app).",
        ),
        prevention=(
            "X-Business is sent on every call, so a change of lead business "
            "cannot redirect work; an answer for another business is "
            "discarded"
        ),
        variants={
            "inactive": Text(
                "Subscription inactive",
                "This business's Sage subscription is not active.",
                "Choose another business, or ask its owner to renew the "
                "subscription; Sage advises against using it meanwhile.",
            ),
            "mismatch": Text(
                "Wrong business answered",
                "Sage answered for a different business than the one the "
                "request was meant for, so the answer was discarded.",
                "Choose the business again ('sage-desktop use'), then retry.",
            ),
            "none_chosen": Text(
                "No business chosen",
                "This connection has no business chosen yet.",
                "Choose one with 'sage-desktop use BUSINESS' or Choose "
                "business in the app.",
            ),
        },
    ),
    Cause(
        id="sage_unavailable",
        name="Sage unavailable",
        number=10,
        detection=(
            "Network errors, timeouts, HTTP 5xx or HTML instead of JSON; "
            "doctor sends a plain GET to each Sage endpoint with a short "
            "timeout."
        ),
        text=Text(
            "Sage unreachable",
            "Sage could not be reached or had a temporary problem.",
            "Check your internet connection; the app retries by itself. Your "
            "connection is kept.",
        ),
        prevention=(
            "a temporary failure never signs you out: tokens are kept and "
            "the app retries with back-off"
        ),
    ),
    Cause(
        id="rate_limited",
        name="Rate limiting (HTTP 429)",
        number=10,
        detection="Sage answers HTTP 429 (over 150 concurrent requests).",
        text=Text(
            "Too many requests",
            "Sage asked the app to slow down (HTTP 429).",
            "Wait a moment; the app retries by itself.",
        ),
        prevention=(
            "the app limits its own parallel requests and honours "
            "Retry-After before retrying"
        ),
    ),
    Cause(
        id="access_denied",
        name="Consent refused at Sage",
        number=None,
        detection="Sage's callback carries error=access_denied.",
        text=Text(
            "Access not granted",
            "The sign-in was cancelled or access was not allowed in Sage.",
            "Connect again and choose Allow on Sage's consent page.",
        ),
    ),
    Cause(
        id="keychain",
        name="The system keychain is missing or locked",
        number=None,
        detection="The keychain backend is missing, locked or does not answer.",
        text=Text(
            "Keychain unavailable",
            "The system keychain could not be used.",
            "Make sure a keychain is installed and unlocked: on Linux GNOME "
            "Keyring or KWallet, on macOS the login keychain, on Windows "
            "Credential Manager.",
        ),
        prevention="tokens are never written to a plain file instead",
    ),
)

_BY_ID: Mapping[str, Cause] = {c.id: c for c in CAUSES}


def cause(cause_id: str) -> Cause:
    """The catalogue entry named ``cause_id`` (KeyError if there is none)."""
    return _BY_ID[cause_id]


def text(cause_id: str, variant: str | None = None) -> Text:
    """The unfilled text of a cause (what ``errors`` uses as defaults)."""
    found = cause(cause_id)
    return found.variants[variant] if variant else found.text


def default_text(cause_id: str, variant: str | None = None) -> Text:
    """The text with the fallback phrases filled in, ready to show."""
    return text(cause_id, variant).render()


def troubleshooting_markdown() -> str:
    """The README's Troubleshooting section, one line per cause.

    Generated from the catalogue so the README cannot drift from what the
    app says; a test compares them.
    """
    lines = [
        "## Troubleshooting",
        "",
        "Run `sage-desktop doctor` (or Settings > Diagnostics... in the app): "
        "it checks the registration, the keychain, the callback ports, "
        "Sage's endpoints, how the last sign-in ended and every connection "
        "without asking for anything, "
        "and says what to do. `sage-desktop doctor --json` makes a report for "
        "a support ticket; it never contains a token or the client secret.",
        "",
        "Each cause in Sage's *Troubleshooting oAuth Issues* guide:",
        "",
    ]
    numbered: set[int] = set()
    for entry in CAUSES:
        if entry.number is None:
            continue
        said = entry.text.render()
        if entry.prevented_by_design:
            how = f"prevented by design: {entry.prevention}."
        else:
            remedy = said.remedy.replace("\n", " ").rstrip(".") + "."
            how = f'the app says "{said.title}: {said.explanation}" {remedy}'
            if entry.prevention:
                how += f" By design, {entry.prevention}."
        # Sage's guide lists rate limiting and outages as one cause.
        mark = "   -" if entry.number in numbered else f"{entry.number}."
        numbered.add(entry.number)
        lines.append(f"{mark} **{entry.name}**: {how}")
    return "\n".join(lines) + "\n"
