"""The checks behind ``sage-desktop doctor`` and the Diagnostics panel.

Every check needs no user action and spends nothing: no refresh token is
sent (token health is read from the vault), Sage's endpoints get a plain
GET with a short timeout, and the client credentials are tried with a
made-up authorization code that Sage can only refuse. How the last sign-in
ended is read from the record the sign-in leaves behind. The chosen business
is fetched with a token from the refresh worker, the one place that
refreshes, so a check never races another sage-desktop process.

Each check yields a :class:`CheckResult`: a status, a one-line summary and,
when something is wrong, the catalogue's explanation and remedy with the
exact values filled in. Results never hold a token, a code or a secret.
"""

from __future__ import annotations

import logging
import platform
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from sage_desktop import __version__
from sage_desktop.diagnostics.catalogue import cause as catalogue_cause
from sage_desktop.errors import (
    ApiError,
    AuthError,
    BusinessAccessDenied,
    BusinessMismatch,
    CallbackPortsBusy,
    CodeExpired,
    ConfigError,
    ConnectionNotFound,
    ExitCode,
    InvalidClient,
    KeychainError,
    MissingHeaders,
    RateLimited,
    SageDesktopError,
    SageUnavailable,
    SignInRequired,
)

if TYPE_CHECKING:
    from sage_desktop.config import Settings
    from sage_desktop.connections import Connection
    from sage_desktop.context import AppContext
    from sage_desktop.session.client import TokenSource

log = logging.getLogger(__name__)

#: Seconds any single network probe may take.
DEFAULT_TIMEOUT = 5.0

#: Warn when a refresh token has less than this many days left.
EXPIRY_WARNING_DAYS = 3.0

# A keychain entry written and deleted again to prove the keychain works.
_PROBE_CLIENT_ID = "sage-desktop-doctor-probe"

# A code Sage never issued: the token endpoint can only refuse it, with
# invalid_grant when it accepted the client, invalid_client when not.
_PROBE_CODE = "sage-desktop-doctor-probe"


class Status(StrEnum):
    """How a check came out, worst last."""

    OK = "ok"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist.

    ``details`` holds secret-free values for support (URLs, ids, times).
    ``explanation`` and ``remedy`` come from the catalogue entry ``cause``.
    """

    id: str
    title: str
    status: Status
    summary: str
    cause: str | None = None
    explanation: str | None = None
    remedy: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (for ``doctor --json``)."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "cause": self.cause,
            "explanation": self.explanation,
            "remedy": self.remedy,
            "details": dict(self.details),
            "notes": list(self.notes),
        }


@dataclass
class Report:
    """Every result of one run, in order."""

    results: list[CheckResult] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.FAIL]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.WARN]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not count)."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.ok else ExitCode.ERROR)

    def to_dict(self) -> dict[str, Any]:
        """The report for a support ticket: versions, results, no secret."""
        return {
            "sage_desktop": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "generated_at": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)
            ),
            "ok": self.ok,
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "checks": [r.to_dict() for r in self.results],
        }

    def to_text(self) -> str:
        """The checklist as plain text: a mark per line, remedies below."""
        lines = [f"sage-desktop {__version__} doctor"]
        for result in self.results:
            lines.extend(format_result(result))
        lines.append(summary_line(self))
        return "\n".join(lines)


MARKS = {
    Status.OK: "[ ok ]",
    Status.WARN: "[warn]",
    Status.FAIL: "[FAIL]",
    Status.SKIP: "[skip]",
}


def format_result(result: CheckResult) -> list[str]:
    """The lines of one result: the mark and summary, then what to do."""
    lines = [f"{MARKS[result.status]} {result.title}: {result.summary}"]
    lines.extend(f"       {note}" for note in result.notes)
    if result.status in (Status.WARN, Status.FAIL):
        if result.explanation:
            lines.append(f"       {result.explanation}")
        if result.remedy:
            remedy = result.remedy.replace("\n", "\n         ")
            lines.append(f"       What to do: {remedy}")
    return lines


def summary_line(report: Report) -> str:
    """The last line: how many problems, and where to go from here."""
    fails, warns = len(report.failures), len(report.warnings)
    if not fails and not warns:
        return "Everything looks fine."
    parts = []
    if fails:
        parts.append(f"{fails} problem{'s' if fails != 1 else ''}")
    if warns:
        parts.append(f"{warns} warning{'s' if warns != 1 else ''}")
    return (
        f"{' and '.join(parts)} found. For a support ticket, attach the "
        "output of 'sage-desktop doctor --json' (it holds no secret)."
    )


def _result(
    check_id: str,
    title: str,
    status: Status,
    summary: str,
    cause: str | None = None,
    *,
    variant: str | None = None,
    values: Mapping[str, object] | None = None,
    explanation: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> CheckResult:
    """A result whose explanation and remedy come from the catalogue."""
    remedy = None
    if cause is not None and status in (Status.WARN, Status.FAIL):
        text = catalogue_cause(cause).render(variant, values)
        explanation = explanation or text.explanation
        remedy = text.remedy
    return CheckResult(
        check_id,
        title,
        status,
        summary,
        cause=cause,
        explanation=explanation,
        remedy=remedy,
        details=dict(details or {}),
    )


def _from_error(
    check_id: str,
    title: str,
    status: Status,
    summary: str,
    exc: SageDesktopError,
    details: Mapping[str, Any] | None = None,
) -> CheckResult:
    """A result showing an error's own (catalogue-made, secret-free) text."""
    return CheckResult(
        check_id,
        title,
        status,
        summary,
        cause=exc.cause,
        explanation=exc.explanation,
        remedy=exc.remedy,
        details=dict(details or {}),
    )


class Doctor:
    """Runs every check for one app context.

    Args:
        context: the settings, vault and registry to check.
        connection: only this connection (id, id prefix or email);
            None checks every connection.
        worker: where access tokens come from (the app's refresh worker);
            by default one is started for the run and stopped after.
        session: the ``requests.Session`` for the probes (tests inject one).
        timeout: seconds any single probe may take.
        now: the clock, for refresh-token age.
    """

    def __init__(
        self,
        context: AppContext,
        *,
        connection: str | None = None,
        worker: TokenSource | None = None,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._context = context
        self._wanted = connection
        self._worker = worker
        self._session = session
        self._timeout = timeout
        self._now = now

    def use_worker(self, worker: TokenSource) -> None:
        """Take access tokens from ``worker`` (the app's own) from now on."""
        self._worker = worker

    def run(self, on_result: Callable[[CheckResult], None] | None = None) -> Report:
        """Run every check in order; ``on_result`` sees each as it ends.

        Raises :class:`ConnectionNotFound` only when ``connection`` names
        none; every other problem becomes a result.
        """
        report = Report(started_at=self._now())
        for result in self.results():
            report.results.append(result)
            if on_result is not None:
                on_result(result)
        return report

    def results(self) -> Iterator[CheckResult]:
        """The results one by one, as the checks complete."""
        session = self._session or requests.Session()
        owned_worker: Any = None
        try:
            settings = yield from self._registration()
            yield self._keychain()
            if settings is None:
                return
            secret = yield from self._client_secret(settings)
            yield self._callback_ports(settings)
            for check_id, name, url in _endpoints(settings):
                yield self._endpoint(session, check_id, name, url)
            client_ok = yield from self._client_credentials(settings, secret)
            yield self._callback_registered(session, settings, client_ok)
            yield self._last_sign_in(settings)

            connections = yield from self._connections()
            if not connections:
                return
            worker = self._worker
            if worker is None:
                owned_worker = worker = self._start_worker(settings)
            for connection in connections:
                yield from self._connection_checks(settings, worker, connection)
        finally:
            if owned_worker is not None:
                owned_worker.stop()
            if self._session is None:
                session.close()

    # --- the app registration ---------------------------------------------

    def _registration(self) -> Generator[CheckResult, None, Settings | None]:
        title = "App registration"
        try:
            settings = self._context.settings
        except ConfigError as exc:
            yield _broken_settings(title, exc)
            return None
        uris = list(settings.redirect_uris)
        details = {
            "client_id": settings.client_id,
            "callback_urls": uris,
            "region": settings.country or "Sage's region picker",
            "scope": settings.scope,
            "auth_url": settings.auth_url,
            "token_url": settings.token_url,
            "api_url": settings.api_url,
        }
        if not settings.client_id:
            yield _result(
                "registration",
                title,
                Status.FAIL,
                "no client id is set",
                "registration",
                values={"callback_urls": uris},
                details=details,
            )
            return settings
        region = settings.country.upper() if settings.country else "Sage's picker"
        result = _result(
            "registration",
            title,
            Status.OK,
            f"client id {_short(settings.client_id)}, {len(uris)} callback "
            f"URL{'s' if len(uris) != 1 else ''}, region: {region}",
            details=details,
        )
        yield replace(result, notes=_registration_notes(settings))
        return settings

    def _keychain(self) -> CheckResult:
        title = "Keychain"
        try:
            vault = self._context.vault
            probe = secrets.token_urlsafe(16)
            vault.save_client_secret(_PROBE_CLIENT_ID, probe)
            try:
                readable = vault.load_client_secret(_PROBE_CLIENT_ID) == probe
            finally:
                vault.delete_client_secret(_PROBE_CLIENT_ID)
        except KeychainError as exc:
            return _from_error("keychain", title, Status.FAIL, exc.title, exc)
        if not readable:
            return _result(
                "keychain",
                title,
                Status.FAIL,
                "an entry written to the keychain did not read back",
                "keychain",
            )
        return _result("keychain", title, Status.OK, "stores and reads back entries")

    def _client_secret(
        self, settings: Settings
    ) -> Generator[CheckResult, None, str | None]:
        title = "Client secret"
        if not settings.client_id:
            yield _result("client_secret", title, Status.SKIP, "no client id yet")
            return None
        if settings.client_secret:
            yield _result(
                "client_secret",
                title,
                Status.OK,
                "set by SAGE_DESKTOP_CLIENT_SECRET",
                details={"source": "environment"},
            )
            return settings.client_secret
        try:
            secret = self._context.vault.load_client_secret(settings.client_id)
        except KeychainError as exc:
            yield _from_error(
                "client_secret", title, Status.FAIL, "keychain unavailable", exc
            )
            return None
        if not secret:
            yield _result(
                "client_secret",
                title,
                Status.FAIL,
                "none saved in the keychain for this client id",
                "registration",
                variant="no_secret",
            )
            return None
        yield _result(
            "client_secret",
            title,
            Status.OK,
            "saved in the keychain",
            details={"source": "keychain"},
        )
        return secret

    def _callback_ports(self, settings: Settings) -> CheckResult:
        """Bind each callback URL as the receiver would, then let go."""
        from sage_desktop.auth.receiver import LoopbackReceiver

        title = "Callback ports"
        free: list[str] = []
        busy: list[str] = []
        for uri in settings.redirect_uris:
            receiver = LoopbackReceiver([uri], state="doctor-probe")
            try:
                receiver.start()
                free.append(uri)
            except CallbackPortsBusy:
                busy.append(uri)
            finally:
                receiver.close()
        details = {"free": free, "busy": busy}
        if not busy:
            return _result(
                "callback_ports",
                title,
                Status.OK,
                f"all {len(free)} free",
                details=details,
            )
        ports = ", ".join(str(urlsplit(u).port) for u in busy)
        if free:
            return _result(
                "callback_ports",
                title,
                Status.WARN,
                f"port {ports} held by another program; sign-in will use {free[0]}",
                "registration",
                variant="ports_busy",
                details=details,
            )
        return _result(
            "callback_ports",
            title,
            Status.FAIL,
            f"every callback port is held by another program ({ports})",
            "registration",
            variant="ports_busy",
            details=details,
        )

    # --- Sage's side ----------------------------------------------------

    def _endpoint(
        self, session: requests.Session, check_id: str, name: str, url: str
    ) -> CheckResult:
        """A plain GET: any answer below 500 means Sage is there."""
        title = f"Sage {name}"
        host = urlsplit(url).netloc
        started = time.monotonic()
        try:
            response = session.get(
                url, timeout=self._timeout, allow_redirects=False, stream=True
            )
            response.close()
        except requests.Timeout:
            return _result(
                check_id,
                title,
                Status.FAIL,
                f"{host} did not answer within {self._timeout:g} s",
                "sage_unavailable",
                details={"url": url},
            )
        except requests.RequestException as exc:
            return _result(
                check_id,
                title,
                Status.FAIL,
                f"{host} cannot be reached ({type(exc).__name__})",
                "sage_unavailable",
                details={"url": url},
            )
        ms = int((time.monotonic() - started) * 1000)
        details = {"url": url, "status": response.status_code, "ms": ms}
        if response.status_code == 429:
            return _result(
                check_id,
                title,
                Status.WARN,
                f"{host} is rate limiting (HTTP 429)",
                "rate_limited",
                details=details,
            )
        if response.status_code >= 500:
            return _result(
                check_id,
                title,
                Status.WARN,
                f"{host} has a temporary problem (HTTP {response.status_code})",
                "sage_unavailable",
                details=details,
            )
        return _result(
            check_id, title, Status.OK, f"{host} answered in {ms} ms", details=details
        )

    def _client_credentials(
        self, settings: Settings, secret: str | None
    ) -> Generator[CheckResult, None, bool | None]:
        """Ask for a token with a made-up code: only the kind of refusal
        matters (RFC 6749 section 5.2: invalid_client is checked first)."""
        from sage_desktop.auth.endpoint import TokenEndpoint

        title = "Client id and secret"
        if not secret:
            yield _result("client_credentials", title, Status.SKIP, "no secret")
            return None
        probe_settings = settings.with_(
            http_timeout=min(settings.http_timeout, self._timeout)
        )
        endpoint = TokenEndpoint(probe_settings, secret)
        try:
            # Limitation: other threads' warnings from the token endpoint's
            # logger are dropped too during the (short) probe.
            with _quiet("sage_desktop.auth.endpoint"):
                endpoint.exchange_code(_PROBE_CODE, settings.redirect_uris[0], "x" * 43)
        except CodeExpired:
            yield _result(
                "client_credentials",
                title,
                Status.OK,
                "Sage accepts them and the token request's form",
            )
            return True
        except (InvalidClient, MissingHeaders) as exc:
            yield _from_error("client_credentials", title, Status.FAIL, exc.title, exc)
            return False
        except (SageUnavailable, RateLimited) as exc:
            yield _from_error(
                "client_credentials", title, Status.WARN, "not checked now", exc
            )
            return None
        except AuthError as exc:
            yield _from_error("client_credentials", title, Status.WARN, exc.title, exc)
            return None
        finally:
            endpoint.close()
        # Limitation: a token for a made-up code means the server is no Sage.
        yield _result(
            "client_credentials",
            title,
            Status.WARN,
            "the token endpoint accepted a made-up code",
            "sage_unavailable",
        )
        return None

    def _callback_registered(
        self,
        session: requests.Session,
        settings: Settings,
        client_ok: bool | None,
    ) -> CheckResult:
        """Open Sage's sign-in page with each callback URL, as the browser
        would; Sage refuses a callback URL that is not registered exactly.

        Limitation: Sage may check the callback URL only once the user has
        signed in, so "accepted" here is a good sign, not a proof.
        """
        from sage_desktop.auth.request import AuthorizationRequest

        title = "Callback URLs registered"
        if not settings.client_id or client_ok is False:
            return _result(
                "callback_registered",
                title,
                Status.SKIP,
                "needs a client id Sage accepts",
            )
        refused: list[str] = []
        unclear: list[str] = []
        accepted: list[str] = []
        for uri in settings.redirect_uris:
            url = AuthorizationRequest.create(settings, uri).url
            try:
                with session.get(
                    url, timeout=self._timeout, allow_redirects=False, stream=True
                ) as response:
                    status = response.status_code
                    page = _head_of(response) if 400 <= status < 500 else ""
            except requests.RequestException:
                return _result(
                    "callback_registered",
                    title,
                    Status.SKIP,
                    "Sage's sign-in page cannot be reached now",
                )
            if not page or status == 429:
                accepted.append(uri)
            elif "redirect" in page.lower():
                refused.append(uri)
            else:
                unclear.append(uri)
        details = {"accepted": accepted, "refused": refused, "unclear": unclear}
        if refused or unclear:
            # A refusal that does not mention the redirect may have another
            # reason, so it only warns.
            return _result(
                "callback_registered",
                title,
                Status.FAIL if refused else Status.WARN,
                f"Sage refuses {', '.join(refused or unclear)}",
                "callback_mismatch",
                variant="refused",
                values={"callback_urls": refused or unclear},
                details=details,
            )
        return _result(
            "callback_registered",
            title,
            Status.OK,
            f"Sage's sign-in page opens for all {len(accepted)}",
            details=details,
        )

    # --- the last sign-in -----------------------------------------------

    def _last_sign_in(self, settings: Settings) -> CheckResult:
        """How the last sign-in ended, as the sign-in itself recorded it.

        An expired or reused code (cause 8) and a region Sage refused
        (cause 3) exist only while a sign-in runs, so nothing can be
        probed afterwards. A failure stays until a sign-in succeeds; a
        passing problem on Sage's side only warns.
        """
        check_id, title = "last_sign_in", "Last sign-in"
        record = self._context.sign_in_record
        try:
            last = record.load()
        except (OSError, ValueError) as exc:
            log.warning("could not read %s: %s", record.path, exc)
            return _result(
                check_id,
                title,
                Status.SKIP,
                f"its record cannot be read ({type(exc).__name__})",
                details={"path": str(record.path)},
            )
        if last is None:
            return _result(
                check_id, title, Status.SKIP, "none recorded on this computer yet"
            )

        when = _when(last.at, self._now())
        details = {k: v for k, v in last.to_dict().items() if k != "version"}
        notes = (f"Region passed to Sage: {last.region}",) if last.region else ()
        if not last.failed:
            return _result(
                check_id, title, Status.OK, f"succeeded {when}", details=details
            )

        status = Status.WARN if last.transient else Status.FAIL
        summary = f"failed {when}: {last.title or last.error or 'unknown error'}"
        try:
            entry = catalogue_cause(last.cause or "")
        except KeyError:
            return CheckResult(
                check_id,
                title,
                status,
                summary,
                cause=last.cause,
                explanation=f"The last sign-in failed ({last.error}).",
                remedy=(
                    "Sign in again. If it fails the same way, attach the "
                    "output of 'sage-desktop doctor --json' to a support "
                    "request."
                ),
                details=details,
                notes=notes,
            )
        # The error kept only its title; it names the variant, if any.
        variant = next(
            (name for name, text in entry.variants.items() if text.title == last.title),
            None,
        )
        result = _result(
            check_id,
            title,
            status,
            summary,
            entry.id,
            variant=variant,
            values={"callback_urls": list(settings.redirect_uris)},
            details=details,
        )
        return replace(result, notes=notes)

    # --- connections ----------------------------------------------------

    def _connections(self) -> Generator[CheckResult, None, list[Connection]]:
        try:
            registry = self._context.registry
            if self._wanted:
                found = registry.find(self._wanted)
                if found is None:
                    raise ConnectionNotFound(
                        f"No connection matches {self._wanted!r}.",
                        remedy="Run 'sage-desktop connections' to see them.",
                    )
                connections = [found]
            else:
                connections = registry.list()
        except KeychainError as exc:
            yield _from_error("connections", "Connections", Status.FAIL, exc.title, exc)
            return []
        except ConnectionNotFound:
            raise
        except SageDesktopError as exc:
            yield _from_error("connections", "Connections", Status.FAIL, exc.title, exc)
            return []
        if not connections:
            yield _result(
                "connections",
                "Connections",
                Status.SKIP,
                "none yet ('sage-desktop login' adds one)",
            )
        return connections

    def _start_worker(self, settings: Settings) -> Any:
        from sage_desktop.session import RefreshWorker

        probe = settings.with_(http_timeout=min(settings.http_timeout, self._timeout))
        return RefreshWorker(probe, self._context.vault, self._context.registry)

    def _connection_checks(
        self, settings: Settings, worker: TokenSource, connection: Connection
    ) -> Iterator[CheckResult]:
        label = connection.email or connection.id[:8]
        tokens_ok = self._tokens(connection, label)
        yield tokens_ok
        yield self._region(settings, connection, label)
        if tokens_ok.status is Status.FAIL:
            yield _result(
                f"business.{connection.id}",
                f"Business ({label})",
                Status.SKIP,
                "needs a new sign-in first",
            )
            return
        yield self._business(settings, worker, connection, label)

    def _tokens(self, connection: Connection, label: str) -> CheckResult:
        """Token health from the vault alone: no refresh is sent."""
        check_id = f"tokens.{connection.id}"
        title = f"Sign-in ({label})"
        base = {"connection": connection.id, "email": connection.email}
        if connection.needs_sign_in:
            return _result(
                check_id,
                title,
                Status.FAIL,
                "Sage refused the last refresh; a new sign-in is needed",
                "refresh_token_invalid",
                details=base,
            )
        try:
            tokens = self._context.vault.load(connection.id)
        except KeychainError as exc:
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, base)
        except SageDesktopError as exc:
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, base)
        if tokens is None:
            return _result(
                check_id,
                title,
                Status.FAIL,
                "no tokens stored on this computer",
                "refresh_token_invalid",
                variant="no_tokens",
                details=base,
            )
        now = self._now()
        left = tokens.refresh_seconds_left(now)
        days = left / 86400
        details = {
            **base,
            "refresh_days_left": round(days, 2),
            "access_seconds_left": int(tokens.access_seconds_left(now)),
            "generation": tokens.generation,
        }
        if left <= 0:
            return _result(
                check_id,
                title,
                Status.FAIL,
                "the refresh token has expired",
                "refresh_token_invalid",
                details=details,
            )
        when = _days(days)
        if days < EXPIRY_WARNING_DAYS:
            return _result(
                check_id,
                title,
                Status.WARN,
                f"the refresh token expires in {when}",
                "refresh_token_invalid",
                variant="expiring",
                values={"days": when},
                details=details,
            )
        return _result(
            check_id,
            title,
            Status.OK,
            f"refresh token valid for {when} more",
            details=details,
        )

    def _region(
        self, settings: Settings, connection: Connection, label: str
    ) -> CheckResult:
        check_id = f"region.{connection.id}"
        title = f"Region ({label})"
        forced = (settings.country or "").upper()
        own = (connection.region or "").upper()
        details = {"region_in_use": forced or "picker", "login_region": own}
        if forced and own and forced != own:
            return _result(
                check_id,
                title,
                Status.WARN,
                f"sign-in passes region {forced} but this login is in {own}",
                "region_mismatch",
                values={"region": own},
                details=details,
            )
        where = forced or "chosen in Sage's picker"
        return _result(
            check_id,
            title,
            Status.OK,
            f"login region {own or 'unknown'}; sign-in region {where}",
            details=details,
        )

    def _business(
        self,
        settings: Settings,
        worker: TokenSource,
        connection: Connection,
        label: str,
    ) -> CheckResult:
        """The chosen business still reachable and active; with none
        chosen, whether the login reaches any business at all."""
        from sage_desktop.session import SageClient

        check_id = f"business.{connection.id}"
        title = f"Business ({label})"
        business = connection.business_name or connection.business_id
        details = {"business_id": connection.business_id, "business_name": business}
        client = SageClient.for_connection(
            worker,
            connection.id,
            settings.api_url,
            connection.business_id,
            timeout=self._timeout,
            business_name=connection.business_name,
            max_rate_limit_retries=0,
        )
        try:
            if connection.business_id is None:
                return self._any_business(client, check_id, title, details)
            found = client.business(connection.business_id)
        except SignInRequired as exc:
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, details)
        except BusinessAccessDenied:
            return _result(
                check_id,
                title,
                Status.FAIL,
                f"no access to {business} any more",
                "business_access",
                values={"business": business},
                details=details,
            )
        except BusinessMismatch as exc:
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, details)
        except (SageUnavailable, RateLimited) as exc:
            return _from_error(
                check_id, title, Status.WARN, "not checked now", exc, details
            )
        except ApiError as exc:
            if exc.status == 404:
                return _result(
                    check_id,
                    title,
                    Status.FAIL,
                    f"{business} no longer exists for this login",
                    "business_access",
                    values={"business": business},
                    details=details,
                )
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, details)
        except SageDesktopError as exc:
            return _from_error(check_id, title, Status.FAIL, exc.title, exc, details)
        finally:
            client.close()
        if found.business.active is False:
            reason = found.inactive_reason or ""
            return _result(
                check_id,
                title,
                Status.FAIL,
                f"{business}: subscription inactive",
                "business_access",
                variant="inactive",
                explanation=f"{business}: {reason}".strip() if reason else None,
                details=details,
            )
        region = found.business.region
        return _result(
            check_id,
            title,
            Status.OK,
            f"{business} reachable{f' ({region})' if region else ''}, "
            "subscription active",
            details={**details, "region": region},
        )

    def _any_business(
        self, client: Any, check_id: str, title: str, details: Mapping[str, Any]
    ) -> CheckResult:
        page = client.request("GET", "businesses", params={"items_per_page": 1})
        total = 0
        if isinstance(page, dict):
            items = page.get("$items")
            raw_total = page.get("$total")
            if isinstance(raw_total, int) and not isinstance(raw_total, bool):
                total = raw_total
            elif isinstance(items, list):
                total = len(items)
        if total == 0:
            return _result(
                check_id,
                title,
                Status.FAIL,
                "this login reaches no business",
                "developer_login",
                details={**details, "businesses": 0},
            )
        return _result(
            check_id,
            title,
            Status.WARN,
            f"none chosen ({total} reachable)",
            "business_access",
            variant="none_chosen",
            details={**details, "businesses": total},
        )


def _endpoints(settings: Settings) -> list[tuple[str, str, str]]:
    return [
        ("endpoint.sign_in", "sign-in page", settings.auth_url),
        ("endpoint.token", "token endpoint", settings.token_url),
        ("endpoint.api", "API", settings.api_url),
    ]


def _broken_settings(title: str, exc: ConfigError) -> CheckResult:
    """Settings that cannot be read: the setting named, plus the catalogue's
    remedy with the callback URLs the app uses by default."""
    from sage_desktop.config import DEFAULT_REDIRECT_URIS

    text = catalogue_cause("registration").render(
        values={"callback_urls": DEFAULT_REDIRECT_URIS}
    )
    return CheckResult(
        "registration",
        title,
        Status.FAIL,
        exc.explanation,
        cause="registration",
        explanation=text.explanation,
        remedy=f"{exc.remedy} {text.remedy}",
    )


def _head_of(response: requests.Response, limit: int = 65536) -> str:
    """The start of an error page (enough to read why), as text."""
    try:
        chunk = next(response.iter_content(limit), b"")
    except requests.RequestException:
        return " "
    return chunk.decode("utf-8", "replace") or " "


def _short(client_id: str) -> str:
    return client_id if len(client_id) <= 12 else client_id[:8] + "…"


def _registration_notes(settings: Settings) -> tuple[str, ...]:
    """The exact values a user compares with Sage's developer portal."""
    region = settings.country.upper() if settings.country else None
    return (
        "Callback URLs to register in Sage (exact, case-sensitive):",
        *(f"  {uri}" for uri in settings.redirect_uris),
        f"Region passed to Sage: {region or 'none (Sage shows its picker)'}",
    )


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Drop a logger's warnings while a probe expects a refusal."""
    logger = logging.getLogger(logger_name)

    def expected(record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING

    logger.addFilter(expected)
    try:
        yield
    finally:
        logger.removeFilter(expected)


def _when(at: float, now: float) -> str:
    """``2024-05-03 14:02 (3 minutes ago)``, in the computer's local time."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
    seconds = max(0.0, now - at)
    if seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = _ago(int(seconds // 60), "minute")
    elif seconds < 2 * 86400:
        ago = _ago(int(seconds // 3600), "hour")
    else:
        ago = _ago(int(seconds // 86400), "day")
    return f"{stamp} ({ago})"


def _ago(count: int, unit: str) -> str:
    return f"{count} {unit}{'s' if count != 1 else ''} ago"


def _days(days: float) -> str:
    if days >= 2:
        return f"{int(days)} days"
    hours = max(1, int(days * 24))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def run_checks(
    context: AppContext,
    *,
    connection: str | None = None,
    worker: TokenSource | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run every check once; see :class:`Doctor`."""
    doctor = Doctor(context, connection=connection, worker=worker, timeout=timeout)
    return doctor.run(on_result)
