"""SageClient against a scripted loopback server: headers, errors, paging."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from session_fake_api import FakeApi, Seen, json_reply

from sage_desktop.errors import (
    ApiError,
    BusinessAccessDenied,
    BusinessMismatch,
    RateLimited,
    SageUnavailable,
)
from sage_desktop.models import Business
from sage_desktop.session import SageClient

pytestmark = pytest.mark.timeout(30)


class Tokens:
    """A token provider whose current token the test can change."""

    def __init__(self, token: str = "tok-1") -> None:
        self.current = token
        self.invalidated: list[str] = []

    def __call__(self) -> str:
        return self.current

    def refresh_on_401(self, token: str) -> None:
        self.invalidated.append(token)
        if token == self.current:
            self.current = self.current + "x"


def client_for(api: FakeApi, tokens: Tokens | None = None, **kw: object) -> SageClient:
    tokens = tokens or Tokens()
    kw.setdefault("on_unauthorized", tokens.refresh_on_401)
    return SageClient(api.api_url, tokens, **kw)  # type: ignore[arg-type]


def test_every_call_carries_the_token_json_headers_and_the_business(
    fake_api: FakeApi,
) -> None:
    fake_api.route = lambda s: json_reply(200, {"ok": 1}, **{"X-Business": "b1"})
    client = client_for(fake_api, business_id="b1")

    assert client.request("GET", "/contacts", params={"a": "1"}) == {"ok": 1}
    assert client.request("GET", "contacts") == {"ok": 1}

    for seen in fake_api.seen:
        assert seen.path == "/v3.1/contacts"
        assert seen.headers["authorization"] == "Bearer tok-1"
        assert seen.headers["x-business"] == "b1"
        assert seen.headers["accept"] == "application/json"
        assert seen.headers["content-type"] == "application/json"
    assert fake_api.seen[0].query == {"a": "1"}


def test_user_and_business_list_are_not_sent_an_x_business(
    fake_api: FakeApi,
) -> None:
    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path.endswith("/user"):
            return json_reply(
                200, {"id": "u1", "displayed_as": "Ann", "email": "a@x", "locale": "en"}
            )
        if seen.path.endswith("/lead"):
            return json_reply(200, {"id": "b2"})
        return json_reply(200, {"$total": 1, "$items": [{"id": "b2", "name": "B"}]})

    fake_api.route = route
    client = client_for(fake_api, business_id="b1")

    user = client.user()
    businesses = client.businesses()

    assert user.displayed_as == "Ann"
    assert user.email == "a@x"
    assert [b.id for b in businesses] == ["b2"]
    assert businesses[0].is_lead
    assert all("x-business" not in s.headers for s in fake_api.seen)


def test_a_401_with_the_current_token_refreshes_once_and_retries(
    fake_api: FakeApi,
) -> None:
    tokens = Tokens()
    fake_api.route = lambda s: (
        json_reply(401, [{"$dataCode": "AuthorizationFailure"}])
        if s.headers["authorization"] == "Bearer tok-1"
        else json_reply(200, {"ok": True})
    )

    assert client_for(fake_api, tokens).request("GET", "contacts") == {"ok": True}
    assert tokens.invalidated == ["tok-1"]
    assert len(fake_api.seen) == 2


def test_a_401_that_persists_after_one_retry_is_reported(fake_api: FakeApi) -> None:
    tokens = Tokens()
    fake_api.route = lambda s: json_reply(
        401, [{"$dataCode": "AuthorizationFailure", "$message": "Nope"}]
    )

    with pytest.raises(ApiError) as caught:
        client_for(fake_api, tokens).request("GET", "contacts")

    assert caught.value.status == 401
    assert len(fake_api.seen) == 2


def test_a_401_with_a_stale_token_retries_with_the_newer_one(
    fake_api: FakeApi,
) -> None:
    tokens = Tokens()

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.headers["authorization"] == "Bearer tok-1":
            tokens.current = "tok-2"  # the worker refreshed meanwhile
            return json_reply(401, [])
        return json_reply(200, {"ok": True})

    fake_api.route = route

    assert client_for(fake_api, tokens).request("GET", "contacts") == {"ok": True}
    assert fake_api.seen[-1].headers["authorization"] == "Bearer tok-2"


def test_a_429_honours_retry_after(fake_api: FakeApi) -> None:
    calls = iter([json_reply(429, [], **{"Retry-After": "0"}), json_reply(200, [1])])
    fake_api.route = lambda s: next(calls)

    assert client_for(fake_api).request("GET", "contacts") == [1]


def test_a_429_that_never_ends_is_a_rate_limit_error(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(429, [], **{"Retry-After": "0"})

    with pytest.raises(RateLimited):
        client_for(fake_api, max_rate_limit_retries=2).request("GET", "contacts")
    assert len(fake_api.seen) == 3


def test_a_429_asking_for_a_long_wait_fails_at_once(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(429, [], **{"Retry-After": "3600"})

    with pytest.raises(RateLimited):
        client_for(fake_api).request("GET", "contacts")
    assert len(fake_api.seen) == 1


def test_multi_user_access_denied_names_the_business(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(
        403, [{"$dataCode": "MultiUserAccessDenied", "$message": "Denied"}]
    )
    client = client_for(fake_api, business_id="b1", business_name="Acme Ltd")

    with pytest.raises(BusinessAccessDenied) as caught:
        client.request("GET", "contacts")

    assert "no longer have access to Acme Ltd" in str(caught.value)


def test_a_different_x_business_in_the_answer_is_an_error(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(200, {}, **{"X-Business": "other"})

    with pytest.raises(BusinessMismatch):
        client_for(fake_api, business_id="b1").request("GET", "contacts")


def test_sages_error_message_and_data_code_are_kept(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(
        422,
        [
            {
                "$severity": "error",
                "$dataCode": "RecordInvalid",
                "$message": "Reference is required",
                "$source": "reference",
            }
        ],
    )

    with pytest.raises(ApiError) as caught:
        client_for(fake_api).request("POST", "contacts", json={"a": 1})

    assert str(caught.value) == "Reference is required"
    assert caught.value.data_code == "RecordInvalid"
    assert caught.value.status == 422


@pytest.mark.parametrize("status", [200, 502])
def test_a_web_page_instead_of_json_means_sage_is_unavailable(
    fake_api: FakeApi, status: int
) -> None:
    fake_api.route = lambda s: (
        status,
        {"Content-Type": "text/html"},
        b"<html>Down for maintenance</html>",
    )

    with pytest.raises(SageUnavailable):
        client_for(fake_api).request("GET", "contacts")


def test_an_unreachable_server_is_reported_as_unavailable() -> None:
    client = SageClient("http://127.0.0.1:9/v3.1", lambda: "t", timeout=2)

    with pytest.raises(SageUnavailable):
        client.request("GET", "contacts")


def test_an_empty_answer_returns_none(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: (204, {}, b"")

    assert client_for(fake_api).request("DELETE", "contacts/1") is None


def test_a_shared_session_is_used_and_left_open(fake_api: FakeApi) -> None:
    fake_api.route = lambda s: json_reply(200, {})
    session = requests.Session()

    with client_for(fake_api, session=session) as client:
        client.request("GET", "x")

    assert session.adapters  # still usable
    session.close()


def _business_pages(total: int) -> object:
    businesses = [
        {
            "id": f"b{i}",
            "displayed_as": f"Business {i}",
            "country": {"id": "IE"} if i % 2 else "gb",
            "subscriptions": [{"active": i != 3, "status": "Cancelled"}],
            "is_demo": i == 4,
        }
        for i in range(total)
    ]

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path.endswith("/lead"):
            return json_reply(200, {"id": "b0"})
        page = int(seen.query.get("page", "1"))
        per = int(seen.query["items_per_page"])
        chunk = businesses[(page - 1) * per : page * per]
        more = page * per < total
        return json_reply(
            200,
            {
                "$total": total,
                "$page": page,
                "$items_per_page": per,
                "$next": f"/businesses?page={page + 1}&items_per_page={per}"
                if more
                else None,
                "$items": chunk,
            },
        )

    return route


def test_all_pages_are_fetched_in_order_and_mapped(fake_api: FakeApi) -> None:
    fake_api.route = _business_pages(23)  # type: ignore[assignment]
    progress: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def on_progress(loaded: int, total: int | None) -> None:
        with lock:
            progress.append((loaded, total))

    client = client_for(fake_api, items_per_page=5)
    businesses = client.businesses(on_progress=on_progress)

    assert [b.id for b in businesses] == [f"b{i}" for i in range(23)]
    assert businesses[0].is_lead
    assert not businesses[1].is_lead
    assert businesses[0].region == "GB"
    assert businesses[1].region == "IE"
    assert businesses[3].active is False
    assert businesses[3].inactive_reason == "Cancelled"  # Sage's own word
    assert businesses[2].active is True
    assert businesses[2].inactive_reason is None
    assert businesses[4].is_demo
    assert max(progress) == (23, 23)
    pages = [s for s in fake_api.seen if s.path.endswith("/businesses")]
    assert sorted(int(s.query["page"]) for s in pages) == [1, 2, 3, 4, 5]
    assert all(
        set(s.query["attributes"].split(","))
        >= {"name", "country", "subscriptions", "is_demo"}
        for s in pages
    )


def test_without_a_total_the_next_links_are_followed(fake_api: FakeApi) -> None:
    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        page = int(seen.query.get("page", "1"))
        nxt = f"/v3.1/contacts?page={page + 1}&items_per_page=2" if page < 3 else None
        return json_reply(
            200, {"$next": nxt, "$items": [{"id": page * 10}, {"id": page * 10 + 1}]}
        )

    fake_api.route = route

    items = client_for(fake_api).list_all("contacts")

    assert [i["id"] for i in items] == [10, 11, 20, 21, 30, 31]


def test_one_business_reports_sages_reason_for_an_inactive_subscription(
    fake_api: FakeApi,
) -> None:
    fake_api.route = lambda s: (
        json_reply(200, {"id": "b0"})
        if s.path.endswith("/lead")
        else json_reply(
            200,
            {
                "id": "b7",
                "name": "Closed Ltd",
                "subscriptions": [{"active": False, "status": "Expired"}],
            },
        )
    )

    details = client_for(fake_api).business("b7")

    assert details.business.active is False
    assert details.inactive_reason == "Expired"


def test_each_page_of_businesses_is_handed_over_as_it_arrives(
    fake_api: FakeApi,
) -> None:
    fake_api.route = _business_pages(23)  # type: ignore[assignment]
    batches: list[list[Business]] = []
    lock = threading.Lock()

    def on_page(batch: list[Business], loaded: int, total: int | None) -> None:
        with lock:
            batches.append(batch)
        assert total == 23

    client = client_for(fake_api, items_per_page=5)
    businesses = client.businesses(on_page=on_page)

    assert len(batches) == 5
    assert batches[0] == businesses[:5]
    assert sorted(b.id for batch in batches for b in batch) == sorted(
        b.id for b in businesses
    )
    assert batches[0][0].is_lead


def test_an_error_raised_by_the_page_callback_stops_the_paging(
    fake_api: FakeApi,
) -> None:
    fake_api.route = _business_pages(23)  # type: ignore[assignment]

    class Stop(Exception):
        pass

    def on_page(batch: list[Business], loaded: int, total: int | None) -> None:
        raise Stop

    client = client_for(fake_api, items_per_page=5, max_parallel_pages=2)
    with pytest.raises(Stop):
        client.businesses(on_page=on_page)

    pages = [s for s in fake_api.seen if s.path.endswith("/businesses")]
    # Page 2 may have been asked for with page 1; nothing after that.
    assert {1} <= {int(s.query["page"]) for s in pages} <= {1, 2}


def test_pages_are_fetched_at_most_the_bound_at_once(fake_api: FakeApi) -> None:
    pages_of = _business_pages(23)
    lock = threading.Lock()
    now = most = 0

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        try:
            time.sleep(0.02)
            return pages_of(seen)  # type: ignore[operator, no-any-return]
        finally:
            with lock:
                now -= 1

    fake_api.route = route
    client = client_for(fake_api, items_per_page=2, max_parallel_pages=3)

    items = client.list_all("businesses")

    assert [i["id"] for i in items] == [f"b{i}" for i in range(23)]
    assert most == 3
    pages = sorted(int(s.query["page"]) for s in fake_api.seen)
    assert pages == list(range(1, 13))


@pytest.mark.parametrize("status", [404, 500])
def test_pages_asked_for_ahead_of_a_short_list_are_dropped_even_if_they_fail(
    fake_api: FakeApi, status: int
) -> None:
    short = _business_pages(3)

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.query.get("page", "1") != "1":
            return status, {"Content-Type": "text/html"}, b"<html>gone</html>"
        time.sleep(0.2)  # the pages asked for ahead fail before page 1 comes
        return short(seen)  # type: ignore[operator, no-any-return]

    fake_api.route = route
    client = client_for(fake_api, items_per_page=5)

    items = client.list_all("businesses")

    assert [i["id"] for i in items] == ["b0", "b1", "b2"]
    asked = sorted(int(s.query["page"]) for s in fake_api.seen)
    assert asked == [1, 2, 3, 4]  # the default window of 4


def test_a_failing_page_within_the_list_is_an_error(fake_api: FakeApi) -> None:
    pages_of = _business_pages(23)

    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.query.get("page") == "5":
            return 502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"
        return pages_of(seen)  # type: ignore[operator, no-any-return]

    fake_api.route = route

    with pytest.raises(SageUnavailable):
        client_for(fake_api, items_per_page=5).list_all("businesses")


def test_a_netrc_entry_for_the_host_does_not_replace_the_token(
    fake_api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake_api.route = lambda s: json_reply(200, {"ok": 1})

    client_for(fake_api).request("GET", "user")

    assert fake_api.seen[0].headers["authorization"] == "Bearer tok-1"


def test_the_proxy_named_in_the_environment_is_used(
    fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The fake answers as the proxy: the request names Sage's host.
    monkeypatch.setenv("HTTP_PROXY", fake_api.api_url.rsplit("/v3.1", 1)[0])
    fake_api.route = lambda s: json_reply(200, {"via": "proxy"})
    client = SageClient("http://sage-api.invalid/v3.1", Tokens())

    assert client.request("GET", "user") == {"via": "proxy"}
    assert client.request("GET", "user") == {"via": "proxy"}
    assert [s.headers["host"] for s in fake_api.seen] == ["sage-api.invalid"] * 2
