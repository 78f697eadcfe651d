"""SageClient: calls Sage Accounting's v3.1 API for one connection.

Every call carries ``Authorization: Bearer`` and, for the chosen business,
``X-Business``: without it Sage answers for the lead business, which the
user can change at any time (Sage API docs, "Businesses"). The business
echoed back in the response is checked against the one sent. Tokens come
from a provider (normally :meth:`RefreshWorker.token`), so this class never
refreshes by itself: a 401 is reported back to the worker, which decides
whether a refresh is needed, and the call is retried once.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter

from sage_desktop.errors import (
    ApiError,
    BusinessAccessDenied,
    BusinessMismatch,
    RateLimited,
    SageUnavailable,
)
from sage_desktop.models import Business, UserInfo

log = logging.getLogger(__name__)

#: What ``/businesses`` is asked for beyond id and name: Sage's
#: ``attributes`` takes a comma-separated list; "all" triples the payload.
BUSINESS_ATTRIBUTES = "name,country,subscriptions,is_demo"

TokenProvider = Callable[[], str]
UnauthorizedHook = Callable[[str], None]
T = TypeVar("T")

ProgressCallback = Callable[[int, "int | None"], None]
#: ``on_page(new_items, loaded, total)``: a page's items as it arrives.
PageCallback = Callable[[list[T], int, "int | None"], None]

# Paths that select nothing by X-Business (Sage does not echo it there).
_UNSCOPED_ROOTS = frozenset({"businesses", "user"})
# Sage allows up to 200 items per page on list endpoints.
MAX_ITEMS_PER_PAGE = 200
_JSON = "application/json"


class TokenSource(Protocol):
    """What a client needs from the refresh worker."""

    def token(self, connection_id: str) -> str: ...

    def invalidate(self, connection_id: str, access_token: str) -> None: ...


@dataclass(frozen=True)
class BusinessDetails:
    """``GET /businesses/{id}``: the business plus why it may be unusable.

    ``inactive_reason`` is Sage's own wording for an inactive subscription
    (its status or description), shown when ``use`` refuses the business.
    """

    business: Business
    inactive_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class SageClient:
    """A thin, pooled client for one connection and (optionally) one business.

    Args:
        api_url: the API base, e.g. ``https://api.accounting.sage.com/v3.1``.
        token_provider: returns a valid access token; called for every
            request, so it must be cheap (the worker answers from memory).
        business_id: sent as ``X-Business`` on every business-scoped call.
        session: a ``requests.Session`` to share; one is made (with a pool
            large enough for many threads) when omitted.
        timeout: seconds for every HTTP call; no call waits forever.
        on_unauthorized: called with the token Sage refused (HTTP 401), so
            the worker can refresh it if it is still the current one.
    """

    def __init__(
        self,
        api_url: str,
        token_provider: TokenProvider,
        business_id: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 15.0,
        on_unauthorized: UnauthorizedHook | None = None,
        *,
        business_name: str | None = None,
        max_parallel_pages: int = 4,
        items_per_page: int = MAX_ITEMS_PER_PAGE,
        max_rate_limit_retries: int = 3,
        max_retry_after: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.business_id = business_id
        self.business_name = business_name
        self.timeout = timeout
        self._token_provider = token_provider
        self._on_unauthorized = on_unauthorized
        self._owns_session = session is None
        self._session = session if session is not None else _pooled_session()
        self._max_parallel_pages = max(1, max_parallel_pages)
        self._items_per_page = max(1, min(items_per_page, MAX_ITEMS_PER_PAGE))
        self._max_rate_limit_retries = max_rate_limit_retries
        self._max_retry_after = max_retry_after
        self._sleep = time.sleep
        # Resolved URL and "sends X-Business" per path, as paths repeat.
        self._targets: dict[str, tuple[str, bool]] = {}
        base = urlsplit(self.api_url)
        self._origin = f"{base.scheme}://{base.netloc}"
        self._api_path = base.path

    @classmethod
    def for_connection(
        cls,
        worker: TokenSource,
        connection_id: str,
        api_url: str,
        business_id: str | None = None,
        **kwargs: Any,
    ) -> SageClient:
        """A client whose tokens come from ``worker`` for ``connection_id``."""

        def provider() -> str:
            return worker.token(connection_id)

        def unauthorized(token: str) -> None:
            worker.invalidate(connection_id, token)

        return cls(
            api_url,
            provider,
            business_id,
            on_unauthorized=unauthorized,
            **kwargs,
        )

    def close(self) -> None:
        """Close the pooled connections if this client made the session."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_business(
        self, business_id: str | None, business_name: str | None = None
    ) -> SageClient:
        """A client for another business sharing this one's pool and tokens."""
        return SageClient(
            self.api_url,
            self._token_provider,
            business_id,
            self._session,
            self.timeout,
            self._on_unauthorized,
            business_name=business_name,
            max_parallel_pages=self._max_parallel_pages,
            items_per_page=self._items_per_page,
            max_rate_limit_retries=self._max_rate_limit_retries,
            max_retry_after=self._max_retry_after,
        )

    # --- the calls ----------------------------------------------------

    def user(self) -> UserInfo:
        """``GET /user``: who signed in, to label the connection."""
        data = self._expect_object(self.request("GET", "user"), "user")
        return UserInfo(
            id=str(data.get("id", "")),
            displayed_as=str(data.get("displayed_as", "")),
            email=str(data.get("email", "")),
            locale=str(data.get("locale") or ""),
        )

    def businesses(
        self,
        on_progress: ProgressCallback | None = None,
        *,
        on_page: PageCallback[Business] | None = None,
    ) -> list[Business]:
        """Every business the user can reach, the lead one marked.

        Asks for the attributes the picker shows (:data:`BUSINESS_ATTRIBUTES`)
        so subscription state and country come in the list without the
        weight of ``attributes=all``; 200 per page (Sage's maximum), pages
        in parallel once ``$total`` is known. ``on_progress(loaded, total)``
        is called as pages arrive, and ``on_page(businesses, loaded, total)``
        with each page's businesses, so a picker can show the first ones
        while the rest load; an exception ``on_page`` raises stops paging.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="sage-lead") as pool:
            lead_future = pool.submit(self._lead_business_id)

            def deliver(
                items: list[dict[str, Any]], loaded: int, total: int | None
            ) -> None:
                if on_page is not None:
                    lead = lead_future.result()
                    on_page([_to_business(i, lead) for i in items], loaded, total)

            items = self.list_all(
                "businesses",
                {"attributes": BUSINESS_ATTRIBUTES},
                on_progress=on_progress,
                on_page=deliver,
            )
            lead_id = lead_future.result()
        return [_to_business(item, lead_id) for item in items]

    def business(self, business_id: str) -> BusinessDetails:
        """``GET /businesses/{id}``: one business, with subscription state."""
        data = self._expect_object(
            self.request("GET", f"businesses/{business_id}"), "business"
        )
        lead_id = self._lead_business_id()
        return BusinessDetails(
            business=_to_business(data, lead_id),
            inactive_reason=_inactive_reason(data),
            raw=data,
        )

    def list_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        on_page: PageCallback[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """All ``$items`` of a Sage list endpoint, in Sage's order.

        Pages are fetched at most ``max_parallel_pages`` at once (Sage
        rejects more than 150 concurrent requests with 429). Page 1 tells
        ``$total``, but while it is on its way the rest of that window would
        sit idle, so pages 2 to ``max_parallel_pages`` are asked for with
        it: a list of P pages then takes ceil(P / window) round trips rather
        than 1 + ceil((P - 1) / window). A list shorter than the window
        costs a few requests answered with empty pages, and those answers
        (or their errors) are dropped. Without ``$total`` the ``$next``
        links are followed one at a time.

        Items are de-duplicated by id, since a list that changes while
        paging can shift an item onto the next page. ``on_page`` gets each
        page's new items as the page arrives (page 1 first, the rest not
        necessarily in order); what it raises stops the paging and reaches
        the caller.
        """
        base_params = dict(params or {})
        base_params["items_per_page"] = self._items_per_page
        window = self._max_parallel_pages
        pages: dict[int, dict[str, Any]] = {}
        seen: set[str] = set()
        loaded = 0
        total: int | None = None

        def arrived(number: int, page: dict[str, Any]) -> None:
            nonlocal loaded
            pages[number] = page
            items = _items_of(page)
            loaded += len(items)
            _report(on_progress, loaded, total)
            if on_page is not None:
                on_page(_unseen(items, seen), loaded, total)

        pool = ThreadPoolExecutor(window, thread_name_prefix="sage-page")
        try:

            def fetch(number: int) -> Future[dict[str, Any]]:
                return pool.submit(self._get_page, path, base_params, number)

            in_flight = {number: fetch(number) for number in range(1, window + 1)}
            first = in_flight.pop(1).result()
            total = _as_int(first.get("$total"))
            per_page = (
                _as_int(first.get("$items_per_page"))
                or _as_int(first.get("$itemsPerPage"))
                or self._items_per_page
            )
            arrived(1, first)
            page_count = 1
            if total is not None and first.get("$next"):
                page_count = max(1, math.ceil(total / per_page))
            for number in [n for n in in_flight if n > page_count]:
                # Beyond the end: its answer, or its error, is dropped.
                in_flight.pop(number).cancel()
            for number in range(window + 1, page_count + 1):
                in_flight[number] = fetch(number)
            numbers = {future: number for number, future in in_flight.items()}
            for future in as_completed(numbers):
                arrived(numbers[future], future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

        # Follow $next from the last page: the only way when $total is
        # unknown, and a catch-up when the list grew while paging.
        number = max(pages)
        next_link = pages[number].get("$next")
        seen_links: set[str] = set()
        while isinstance(next_link, str) and next_link and next_link not in seen_links:
            seen_links.add(next_link)
            number += 1
            page = self._expect_object(
                self.request("GET", self._resolve(next_link)), "page"
            )
            arrived(number, page)
            next_link = page.get("$next")

        return _dedupe(item for key in sorted(pages) for item in _items_of(pages[key]))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One API call; returns the decoded JSON (None for an empty body).

        ``path`` is relative to the API base, with or without a leading
        slash, or an absolute URL under it (as in ``$next``). Raises
        :class:`ApiError` (Sage's ``$message`` and ``$dataCode``),
        :class:`BusinessAccessDenied`, :class:`BusinessMismatch`,
        :class:`RateLimited` or :class:`SageUnavailable`.
        """
        target = self._targets.get(path)
        if target is None:
            url = self._resolve(path)
            target = (url, self._is_scoped(url))
            if len(self._targets) < 512:
                self._targets[path] = target
        url, scoped = target
        business = self.business_id if scoped else None
        return self._send(method.upper(), url, params, json, business)

    # --- internals ----------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        business: str | None,
    ) -> Any:
        token = self._token_provider()
        retried_unauthorized = False
        rate_limited = 0
        while True:
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": _JSON,
                "Content-Type": _JSON,
            }
            if business is not None:
                headers["X-Business"] = business
            response = self._http(method, url, params, body, headers)
            status = response.status_code

            if status == 401 and not retried_unauthorized:
                # RFC 6750 s3.1 invalid_token: let the worker decide whether
                # this token is still the current one (then it refreshes)
                # or was already replaced (then the newer one is used).
                retried_unauthorized = True
                response.close()
                if self._on_unauthorized is not None:
                    self._on_unauthorized(token)
                newer = self._token_provider()
                if newer != token:
                    log.info("retrying %s %s with a newer token", method, _p(url))
                    token = newer
                    continue
                raise _error_from(response, self.business_name, business)

            if status == 429 and rate_limited < self._max_rate_limit_retries:
                delay = self._rate_limit_delay(response, rate_limited)
                rate_limited += 1
                log.info("Sage asked to slow down; retrying in %.1fs", delay)
                response.close()
                self._sleep(delay)
                continue

            if status >= 400:
                raise _error_from(response, self.business_name, business)
            return self._decode(response, business)

    def _http(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: dict[str, str],
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise SageUnavailable(
                f"Sage did not answer within {self.timeout:g} seconds."
            ) from exc
        except requests.RequestException as exc:
            raise SageUnavailable(
                f"Sage could not be reached ({type(exc).__name__})."
            ) from exc

    def _decode(self, response: requests.Response, business: str | None) -> Any:
        if business is not None:
            echoed = response.headers.get("X-Business")
            if echoed is not None and echoed != business:
                raise BusinessMismatch(
                    f"Sage answered for business {echoed} instead of "
                    f"{business}; the answer was discarded.",
                    status=response.status_code,
                )
        if not response.content:
            return None
        if not _is_json(response):
            raise SageUnavailable(
                "Sage sent a web page instead of data; it may be down for maintenance."
            )
        try:
            return response.json()
        except ValueError as exc:
            raise SageUnavailable(
                "Sage sent an answer that is not valid JSON."
            ) from exc

    def _rate_limit_delay(self, response: requests.Response, attempt: int) -> float:
        """RFC 9110 s10.2.3 Retry-After (seconds or a date), else backoff."""
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            retry_after = min(8.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after > self._max_retry_after:
            raise RateLimited(
                f"Sage asked to wait {retry_after:.0f} seconds before retrying."
            )
        return max(0.0, retry_after)

    def _get_page(
        self, path: str, params: Mapping[str, Any], number: int
    ) -> dict[str, Any]:
        page = self.request("GET", path, params={**params, "page": number})
        return self._expect_object(page, "page")

    def _lead_business_id(self) -> str | None:
        try:
            data = self.request("GET", "businesses/lead")
        except ApiError as exc:
            log.info("lead business unknown (%s)", exc.data_code or exc.status)
            return None
        if isinstance(data, dict) and data.get("id") is not None:
            return str(data["id"])
        return None

    def _resolve(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if self._api_path != "/" and path.startswith(self._api_path):
            return self._origin + path
        return urljoin(self.api_url, path.lstrip("/"))

    def _is_scoped(self, url: str) -> bool:
        rest = urlsplit(url).path[len(self._api_path) :]
        root = rest.strip("/").split("/", 1)[0]
        return root not in _UNSCOPED_ROOTS

    @staticmethod
    def _expect_object(data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise SageUnavailable(f"Sage sent an unexpected {what} answer.")
        return data


def _pooled_session() -> requests.Session:
    """A session whose pool serves many threads without discarding sockets."""
    session = _ApiSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _KeepAuthorization(requests.auth.AuthBase):
    """Leaves the request's own ``Authorization`` header as it is.

    Set as the session's auth so that requests does not look in ~/.netrc:
    an entry there for Sage's host would replace the bearer token.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _ApiSession(requests.Session):
    """A ``requests.Session`` that reads the environment once in a while.

    requests looks up proxies (environment variables, and on Windows and
    macOS the system settings) and the CA bundle variables on every call:
    about a millisecond of CPU each time, nearly a third of what the client
    spends on a page of 200 businesses. Here the answer is kept per origin for
    ``ENVIRONMENT_TTL`` seconds, so a proxy the user switches on is still
    picked up within that time.
    """

    ENVIRONMENT_TTL = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.auth = _KeepAuthorization()
        self._environment: dict[str, tuple[float, dict[str, Any]]] = {}

    def merge_environment_settings(
        self,
        url: Any,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> Any:
        if proxies or stream is not None or verify is not None or cert is not None:
            # Settings given for this one call: no shortcut.
            return super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        scheme, netloc = urlsplit(str(url))[:2]
        origin = f"{scheme}://{netloc}"
        now = time.monotonic()
        cached = self._environment.get(origin)
        if cached is None or now - cached[0] > self.ENVIRONMENT_TTL:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            cached = (now, dict(settings))
            self._environment[origin] = cached
        fresh = dict(cached[1])
        fresh["proxies"] = dict(fresh["proxies"])
        return fresh


def _p(url: str) -> str:
    """The path of ``url`` only, for logs (query strings can be long)."""
    return urlsplit(url).path


def _is_json(response: requests.Response) -> bool:
    kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return kind == _JSON or kind.endswith("+json") or kind == ""


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _sage_errors(response: requests.Response) -> list[dict[str, Any]]:
    """Sage's error array: ``[{"$severity", "$dataCode", "$message", ...}]``."""
    if not _is_json(response) or not response.content:
        return []
    try:
        data = response.json()
    except ValueError:
        return []
    if isinstance(data, dict):
        data = data.get("$errors") or data.get("errors") or [data]
    if not isinstance(data, list):
        return []
    return [entry for entry in data if isinstance(entry, dict)]


def _error_from(
    response: requests.Response, business_name: str | None, business: str | None
) -> Exception:
    """Translate an error response; keeps Sage's ``$message``/``$dataCode``."""
    status = response.status_code
    entries = _sage_errors(response)
    messages = [str(e["$message"]) for e in entries if e.get("$message")]
    codes = [str(e["$dataCode"]) for e in entries if e.get("$dataCode")]
    data_code = codes[0] if codes else None
    message = "; ".join(messages) or None

    if status >= 500 or (status >= 400 and response.content and not _is_json(response)):
        detail = f" ({message})" if message else ""
        return SageUnavailable(f"Sage answered HTTP {status}{detail}.")
    if status == 429:
        return RateLimited(message)
    if status == 403 and "MultiUserAccessDenied" in codes:
        label = business_name or business or "this business"
        return BusinessAccessDenied(
            f"You no longer have access to {label} in Sage.",
            status=status,
            data_code=data_code,
        )
    if status == 401:
        return ApiError(
            message or "Sage refused the access token.",
            status=status,
            data_code=data_code or "AuthorizationFailure",
            remedy="Retry; if it persists, sign in again with 'sage-desktop login'.",
        )
    return ApiError(
        message or f"Sage answered HTTP {status}.", status=status, data_code=data_code
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _items_of(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = page.get("$items")
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]


def _dedupe(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return _unseen(items, set())


def _unseen(items: Iterable[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """The items whose id is not in ``seen`` (which learns them)."""
    result: list[dict[str, Any]] = []
    for item in items:
        key = str(item.get("id"))
        if item.get("id") is not None and key in seen:
            continue
        seen.add(key)
        result.append(item)
    return result


def _report(callback: ProgressCallback | None, loaded: int, total: int | None) -> None:
    if callback is None:
        return
    try:
        callback(loaded, total)
    except Exception:
        log.exception("a paging progress callback failed")


def _region_of(item: Mapping[str, Any]) -> str:
    """Region from ``country`` (a code or ``{"id": code}``) or the address."""
    for candidate in (item.get("country"), _nested(item, "address", "country")):
        if isinstance(candidate, dict):
            candidate = candidate.get("id") or candidate.get("code")
        if isinstance(candidate, str) and candidate:
            return candidate.upper()
    return ""


def _nested(item: Mapping[str, Any], *keys: str) -> Any:
    value: Any = item
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _active_of(item: Mapping[str, Any]) -> bool | None:
    """Active when any subscription is; None when Sage said nothing."""
    subscriptions = item.get("subscriptions")
    if isinstance(subscriptions, list) and subscriptions:
        flags = [s.get("active") for s in subscriptions if isinstance(s, dict)]
        known = [bool(f) for f in flags if f is not None]
        if known:
            return any(known)
    active = item.get("active")
    return bool(active) if isinstance(active, bool) else None


def _inactive_reason(item: Mapping[str, Any]) -> str | None:
    """Sage's wording for why a subscription is inactive, when it is."""
    if _active_of(item) is not False:
        return None
    subscriptions = item.get("subscriptions")
    for sub in subscriptions if isinstance(subscriptions, list) else []:
        if not isinstance(sub, dict) or sub.get("active") is not False:
            continue
        for key in ("inactive_reason", "reason", "status"):
            value = sub.get(key)
            if isinstance(value, dict):
                value = value.get("displayed_as") or value.get("id")
            if isinstance(value, str) and value:
                return value
        name = sub.get("displayed_as") or "Sage"
        expired = sub.get("expires_at")
        if isinstance(expired, str) and expired:
            return f"The {name} subscription expired on {expired[:10]}."
        return f"The {name} subscription is inactive."
    return "Sage reports this business's subscription as inactive."


def _to_business(item: Mapping[str, Any], lead_id: str | None) -> Business:
    business_id = str(item.get("id", ""))
    return Business(
        id=business_id,
        name=str(item.get("name") or item.get("displayed_as") or business_id),
        region=_region_of(item),
        active=_active_of(item),
        is_demo=bool(item.get("is_demo", False)),
        is_lead=lead_id is not None and business_id == lead_id,
        inactive_reason=_inactive_reason(item),
    )
