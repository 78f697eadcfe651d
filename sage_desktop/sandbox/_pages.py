"""The HTML pages of the sandbox's authorize flow.

Plain pages with a little CSS. Every value that came from a request is
passed through :func:`html.escape`. Each page's form carries
``data-step`` so the test browser (``autobrowser``) knows where it is, the
way a person reads the heading.
"""

from __future__ import annotations

from html import escape

from sage_desktop.sandbox._demo import DEMO, REGIONS

_CSS = """
body { font-family: system-ui, sans-serif; background: #f2f5f3; color: #1b1b1b;
  margin: 0; }
header { background: #00815d; color: #fff; padding: 0.8rem 1.5rem;
  font-weight: 600; }
main { max-width: 30rem; margin: 2rem auto; background: #fff;
  padding: 1.5rem 2rem; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.3rem; margin-top: 0; }
label { display: block; margin: 0.8rem 0 0.2rem; font-weight: 600; }
input[type=email], input[type=password], select { width: 100%;
  padding: 0.45rem; box-sizing: border-box; font-size: 1rem; }
button { margin-top: 1.2rem; padding: 0.5rem 1.2rem; font-size: 1rem;
  border: 0; border-radius: 4px; background: #00815d; color: #fff;
  cursor: pointer; }
button.secondary { background: #ccc; color: #1b1b1b; margin-left: 0.5rem; }
.error { background: #fdecea; color: #8a1c12; padding: 0.6rem;
  border-radius: 4px; }
.demo { font-size: 0.9rem; background: #eef6f2; padding: 0.6rem 1rem;
  border-radius: 4px; margin-top: 1.5rem; }
.demo code { font-size: 0.85rem; }
small { color: #555; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - Sage Sandbox</title>"
        '<meta name="viewport" content="width=device-width">'
        f"<style>{_CSS}</style></head><body>"
        "<header>Sage Business Cloud Accounting &middot; local sandbox</header>"
        f"<main>{body}</main></body></html>\n"
    )


def _hidden(session_id: str) -> str:
    return f'<input type="hidden" name="session" value="{escape(session_id)}">'


def error_page(title: str, message: str) -> str:
    """An error the browser stays on: Sage does not redirect these."""
    return _page(
        title,
        f'<h1 data-step="error">{escape(title)}</h1>'
        f'<p class="error" id="error">{escape(message)}</p>',
    )


def region_page(session_id: str, action: str) -> str:
    """Sage's region picker, shown when no ``country`` was passed."""
    options = "".join(
        f'<option value="{code}">{escape(name)}</option>'
        for code, name in REGIONS.items()
    )
    return _page(
        "Choose your region",
        "<h1>Where is your business based?</h1>"
        f'<form method="post" action="{escape(action)}" data-step="region">'
        f"{_hidden(session_id)}"
        '<label for="country">Region</label>'
        f'<select id="country" name="country">{options}</select>'
        '<button type="submit">Continue</button></form>',
    )


def sign_in_page(
    session_id: str, action: str, *, email: str = "", error: str | None = None
) -> str:
    """The sign-in form; lists the demo logins, since this is a demo."""
    alert = f'<p class="error" id="error">{escape(error)}</p>' if error else ""
    logins = "".join(
        f"<li><code>{escape(user.email)}</code> <small>"
        f"{escape(user.region)}, {escape(user.description)}</small></li>"
        for user in DEMO.users
    )
    return _page(
        "Sign in",
        "<h1>Sign in to Sage</h1>"
        f"{alert}"
        f'<form method="post" action="{escape(action)}" data-step="sign_in">'
        f"{_hidden(session_id)}"
        '<label for="email">Email</label>'
        f'<input type="email" id="email" name="email" value="{escape(email)}"'
        ' autocomplete="username" required>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password"'
        ' autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
        '<div class="demo"><strong>Demo logins</strong> (password '
        f"<code>{escape(DEMO.password)}</code>):<ul>{logins}</ul></div>",
    )


def consent_page(
    session_id: str, action: str, *, user_name: str, scope: str, client_name: str
) -> str:
    """Sage's "allow access" page for the app's requested scope."""
    access = "read your data" if scope == "readonly" else "read and change your data"
    return _page(
        "Allow access",
        f"<h1>Allow {escape(client_name)} to access Sage?</h1>"
        f"<p>Signed in as <strong>{escape(user_name)}</strong>.</p>"
        f"<p>The app asks to {escape(access)} (scope "
        f"<code>{escape(scope)}</code>).</p>"
        f'<form method="post" action="{escape(action)}" data-step="consent">'
        f"{_hidden(session_id)}"
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny" class="secondary">'
        "Deny</button></form>",
    )


def index_page(base_url: str) -> str:
    """What a person sees when they open the sandbox's root URL."""
    return _page(
        "Sandbox",
        "<h1>Sage sandbox</h1><p>A local stand-in for Sage Business Cloud "
        "Accounting. Point sage-desktop at it with the environment printed "
        "by <code>sage-desktop sandbox</code>.</p>"
        f"<p>API: <code>{escape(base_url)}/v3.1</code></p>",
    )
